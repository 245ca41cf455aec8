import assert from "node:assert/strict";
import { canonicalIp } from "../../lib/wire/addr.ts";
import {
  addressPair,
  buildTcpPacket,
  tcpPacketLength,
  type TcpPacketRepr,
} from "../../lib/wire/build.ts";
import {
  fillTcpChecksum,
  ipv4HeaderChecksum,
  tcpChecksumIpv4,
  tcpChecksumIpv6,
} from "../../lib/wire/checksum.ts";
import { LinkType } from "../../lib/wire/link.ts";
import { ParsedTcp, parseIpTcp, parseTcpPacket } from "../../lib/wire/packet.ts";
import { ACK, FIN, PSH, RST, SYN } from "../../lib/wire/tcp.ts";
import { parseTcpHeaderOptions, type TcpOptions } from "../../lib/wire/tcp_options.ts";
import { mulberry32 } from "../helpers/prng.ts";

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
}

function toHex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

// Computed independently with Python's struct module + a textbook RFC 1071 sum
// (see the report of the lib/wire change): 10.0.0.1:12345 -> 10.0.0.2:80, PSH|ACK,
// NOP NOP TS(0x11223344, 0x55667788), payload "GET / HTTP/1.1\r\n".
const GOLDEN_V4 =
  "450000441c46400040060a6c0a0000010a0000023039005001020304a0b0c0d0801801f6e7b000000101080a1122334455667788474554202f20485454502f312e310d0a";
const GOLDEN_V6 =
  "600000000030064020010db800000000000000000000000120010db80000000000000000000000023039005001020304a0b0c0d0801801f6a03e00000101080a1122334455667788474554202f20485454502f312e310d0a";

const goldenRepr = (src: string, dst: string): TcpPacketRepr => ({
  ...addressPair(src, dst),
  srcPort: 12345,
  dstPort: 80,
  seq: 0x01020304,
  ack: 0xa0b0c0d0,
  flags: PSH | ACK,
  window: 502,
  ipId: 0x1c46,
  ttl: 64,
  options: {
    sackPermitted: false,
    sackBlocks: [],
    unknown: [],
    timestamp: { tsval: 0x11223344, tsecr: 0x55667788 },
  },
  payload: new TextEncoder().encode("GET / HTTP/1.1\r\n"),
});

Deno.test("golden: buildTcpPacket matches independently computed IPv4 and IPv6 bytes", () => {
  const out = new Uint8Array(200);
  const n4 = buildTcpPacket(goldenRepr("10.0.0.1", "10.0.0.2"), out, 0);
  assert.equal(toHex(out.subarray(0, n4)), GOLDEN_V4);
  const n6 = buildTcpPacket(goldenRepr("2001:db8::1", "2001:db8::2"), out, 0);
  assert.equal(toHex(out.subarray(0, n6)), GOLDEN_V6);
});

Deno.test("golden: checksum functions agree with the reference bytes", () => {
  const v4 = hex(GOLDEN_V4);
  assert.equal(ipv4HeaderChecksum(v4, 0), 0x0a6c);
  assert.equal(tcpChecksumIpv4(v4, 0), 0xe7b0);
  const v6 = hex(GOLDEN_V6);
  assert.equal(tcpChecksumIpv6(v6, 0), 0xa03e);
  v6[40 + 16] = 0;
  v6[40 + 17] = 0;
  assert.equal(fillTcpChecksum(v6, 0), 0xa03e);
  assert.equal(toHex(v6), GOLDEN_V6);
});

Deno.test("golden: parseTcpPacket reads every field of the reference IPv4 packet in Ethernet", () => {
  const ip = hex(GOLDEN_V4);
  const frame = new Uint8Array(14 + ip.length + 6); // + Ethernet padding after the datagram
  frame.set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00]);
  frame.set(ip, 14);
  const p = new ParsedTcp();
  assert.equal(parseTcpPacket(frame, LinkType.EN10MB, p), null);
  assert.equal(p.family, 4);
  assert.equal(p.ipOffset, 14);
  assert.equal(p.ipHeaderLength, 20);
  assert.equal(p.tcpOffset, 34);
  assert.equal(p.tcpHeaderLength, 32);
  assert.equal(p.payloadOffset, 66);
  assert.equal(p.payloadLength, 16);
  assert.equal(p.capturedPayloadLength, 16);
  assert.equal(p.payloadTruncated, false);
  assert.equal(p.totalLength, 0x44);
  assert.equal(p.srcText(), "10.0.0.1");
  assert.equal(p.dstText(), "10.0.0.2");
  assert.equal(p.srcPort, 12345);
  assert.equal(p.dstPort, 80);
  assert.equal(p.seq, 0x01020304);
  assert.equal(p.ack, 0xa0b0c0d0);
  assert.equal(p.flags, PSH | ACK);
  assert.equal(p.window, 502);
  assert.equal(p.ipId, 0x1c46);
  assert.equal(p.ttl, 64);
  assert.equal(p.checksum, 0xe7b0);
  assert.equal(p.isFragment, false);
  assert.equal(new TextDecoder().decode(p.payload()), "GET / HTTP/1.1\r\n");
});

Deno.test("a capture cut by the snap length parses with payloadTruncated", () => {
  const ip = hex(GOLDEN_V4);
  const p = new ParsedTcp();
  assert.equal(parseIpTcp(ip.subarray(0, 60), 0, p), null);
  assert.equal(p.payloadLength, 16);
  assert.equal(p.capturedPayloadLength, 8);
  assert.equal(p.payloadTruncated, true);
  assert.equal(p.payload().length, 8);
  assert.equal(parseIpTcp(ip.subarray(0, 51), 0, p), "truncated"); // options cut
});

function randomRepr(rnd: () => number, v6: boolean): TcpPacketRepr {
  const r32 = () => Math.floor(rnd() * 2 ** 32);
  const r16 = () => Math.floor(rnd() * 65536);
  const addr = () => {
    if (!v6) return [0, 0, 0, 0].map(() => Math.floor(rnd() * 256)).join(".");
    const words = Array.from({ length: 8 }, () => (rnd() < 0.4 ? 0 : r16()));
    const b = new Uint8Array(16);
    words.forEach((w, i) => {
      b[2 * i] = w >> 8;
      b[2 * i + 1] = w & 0xff;
    });
    return b;
  };
  const fmt = (a: string | Uint8Array) =>
    typeof a === "string"
      ? a
      : [...Array(8).keys()].map((i) => ((a[2 * i] << 8) | a[2 * i + 1]).toString(16)).join(":");
  const options: TcpOptions = { sackPermitted: rnd() < 0.5, sackBlocks: [], unknown: [] };
  if (rnd() < 0.5) options.mss = r16();
  if (rnd() < 0.5) options.wscale = Math.floor(rnd() * 15);
  if (rnd() < 0.5) options.timestamp = { tsval: r32(), tsecr: r32() };
  const nBlocks = rnd() < 0.3 ? 1 + Math.floor(rnd() * 2) : 0;
  for (let i = 0; i < nBlocks; i++) options.sackBlocks.push([r32(), r32()]);
  const payload = new Uint8Array(Math.floor(rnd() * 1500));
  for (let i = 0; i < payload.length; i++) payload[i] = rnd() * 256;
  return {
    ...addressPair(fmt(addr()), fmt(addr())),
    srcPort: r16(),
    dstPort: r16(),
    seq: r32(),
    ack: r32(),
    flags: Math.floor(rnd() * 256),
    window: r16(),
    urgent: r16(),
    ipId: v6 ? 0 : r16(),
    ttl: 1 + Math.floor(rnd() * 255),
    options,
    payload,
  };
}

Deno.test("property: parse(build(x)) == x for random reprs of both families", () => {
  const rnd = mulberry32(42);
  const out = new Uint8Array(2000);
  const p = new ParsedTcp();
  for (let i = 0; i < 1000; i++) {
    const v6 = i % 2 === 1;
    const repr = randomRepr(rnd, v6);
    const off = Math.floor(rnd() * 8);
    const n = buildTcpPacket(repr, out, off);
    assert.equal(n, tcpPacketLength(repr));
    assert.ok(n > 0);
    const pkt = out.subarray(off, off + n);
    assert.equal(parseIpTcp(pkt, 0, p), null);
    assert.equal(p.family, v6 ? 6 : 4);
    assert.deepEqual(p.srcAddr, repr.srcAddr);
    assert.deepEqual(p.dstAddr, repr.dstAddr);
    assert.equal(canonicalIp(p.srcText()), p.srcText()); // text at the edge is canonical
    assert.equal(p.srcPort, repr.srcPort);
    assert.equal(p.dstPort, repr.dstPort);
    assert.equal(p.seq, repr.seq);
    assert.equal(p.ack, repr.ack);
    assert.equal(p.flags, repr.flags);
    assert.equal(p.window, repr.window);
    assert.equal(p.urgent, repr.urgent);
    assert.equal(p.ipId, repr.ipId);
    assert.equal(p.ttl, repr.ttl);
    assert.deepEqual(p.payload(), repr.payload);
    assert.equal(p.totalLength, n);
    const opts = parseTcpHeaderOptions(pkt, p.tcpOffset);
    assert.ok(typeof opts !== "string");
    assert.deepEqual(opts, repr.options);
    // Checksums: recomputation over the built bytes agrees with what was stored.
    if (!v6) assert.equal(ipv4HeaderChecksum(pkt, 0), (pkt[10] << 8) | pkt[11]);
    const stored = p.checksum;
    assert.equal(v6 ? tcpChecksumIpv6(pkt, 0) : tcpChecksumIpv4(pkt, 0), stored);
  }
});

Deno.test("buildTcpPacket refuses bad input without writing", () => {
  const out = new Uint8Array(100);
  const base = goldenRepr("10.0.0.1", "10.0.0.2");
  assert.equal(buildTcpPacket({ ...base, dstAddr: new Uint8Array(16) }, out), 0);
  assert.equal(buildTcpPacket({ ...base, srcAddr: new Uint8Array(3) }, out), 0);
  assert.equal(buildTcpPacket({ ...base, family: 6 }, out), 0);
  assert.throws(() => addressPair("10.0.0.300", "10.0.0.2"), TypeError);
  assert.throws(() => addressPair("10.0.0.1", "2001:db8::1"), TypeError);
  assert.equal(buildTcpPacket(base, new Uint8Array(40)), 0);
  assert.ok(out.every((b) => b === 0));
  const tooMany: TcpOptions = {
    sackPermitted: true,
    sackBlocks: [[1, 2], [3, 4], [5, 6], [7, 8]],
    unknown: [],
    timestamp: { tsval: 1, tsecr: 2 },
  };
  assert.equal(buildTcpPacket({ ...base, options: tooMany }, new Uint8Array(2000)), 0);
});

Deno.test("flag constants have their RFC 9293 bit values", () => {
  assert.deepEqual([FIN, SYN, RST, PSH, ACK], [1, 2, 4, 8, 16]);
});
