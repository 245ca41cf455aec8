import assert from "node:assert/strict";
import { addressPair, buildTcpPacket, type TcpPacketRepr } from "../../lib/wire/build.ts";
import {
  fillIpv4HeaderChecksum,
  tcpChecksumIpv4,
  tcpChecksumIpv6,
} from "../../lib/wire/checksum.ts";
import { checkIpv4 } from "../../lib/wire/ipv4.ts";
import { checkIpv6, Ipv6Walk, walkIpv6Extensions } from "../../lib/wire/ipv6.ts";
import { ipOffsetOf, LinkType } from "../../lib/wire/link.ts";
import { ParsedTcp, parseIpTcp, parseTcpPacket } from "../../lib/wire/packet.ts";
import { ACK, checkTcp, SYN } from "../../lib/wire/tcp.ts";
import { concat } from "../helpers/bytes.ts";

const repr = (src: string, dst: string, payload = 10): TcpPacketRepr => ({
  ...addressPair(src, dst),
  srcPort: 40000,
  dstPort: 8080,
  seq: 1,
  ack: 2,
  flags: SYN | ACK,
  window: 1000,
  ipId: 77,
  options: { mss: 1400, sackPermitted: true, sackBlocks: [], unknown: [] },
  payload: new Uint8Array(payload).fill(0x61),
});

function build(r: TcpPacketRepr): Uint8Array {
  const out = new Uint8Array(2000);
  return out.slice(0, buildTcpPacket(r, out));
}

const V4 = build(repr("192.0.2.1", "198.51.100.2"));
const V6 = build(repr("2001:db8::10", "2001:db8:1::20"));

const MACS = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
const ethType = (v6: boolean) => (v6 ? [0x86, 0xdd] : [0x08, 0x00]);

/** Frames of every supported link type around an IP packet, with the expected IP offset. */
function framesOf(ip: Uint8Array, v6: boolean): [string, number, Uint8Array, number][] {
  const af = v6 ? 10 : 2;
  return [
    ["ethernet", LinkType.EN10MB, concat(MACS, ethType(v6), ip), 14],
    ["ethernet+802.1Q", LinkType.EN10MB, concat(MACS, [0x81, 0, 0, 5], ethType(v6), ip), 18],
    [
      "ethernet+QinQ",
      LinkType.EN10MB,
      concat(MACS, [0x88, 0xa8, 0, 7], [0x81, 0, 0, 5], ethType(v6), ip),
      22,
    ],
    [
      "sll",
      LinkType.LINUX_SLL,
      concat([0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0], ethType(v6), ip),
      16,
    ],
    [
      "sll+802.1Q",
      LinkType.LINUX_SLL,
      concat([0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0], [0x81, 0, 0, 9], ethType(v6), ip),
      20,
    ],
    [
      "sll2",
      LinkType.LINUX_SLL2,
      concat(ethType(v6), [0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0], ip),
      20,
    ],
    ["raw12", LinkType.RAW, ip, 0],
    ["raw14", LinkType.RAW_OPENBSD, ip, 0],
    ["raw101", LinkType.RAW_LINKTYPE, ip, 0],
    [v6 ? "ipv6" : "ipv4", v6 ? LinkType.IPV6 : LinkType.IPV4, ip, 0],
    ["null-le", LinkType.NULL, concat([af, 0, 0, 0], ip), 4],
    ["null-be", LinkType.NULL, concat([0, 0, 0, af], ip), 4],
    ["loop", LinkType.LOOP, concat([0, 0, 0, v6 ? 24 : 2], ip), 4],
  ];
}

Deno.test("every link type yields the IP offset and the same parse", () => {
  const p = new ParsedTcp();
  for (const [ip, v6] of [[V4, false], [V6, true]] as const) {
    for (const [name, linkType, frame, offset] of framesOf(ip, v6)) {
      assert.equal(ipOffsetOf(linkType, frame), offset, name);
      assert.equal(parseTcpPacket(frame, linkType, p), null, name);
      assert.equal(p.ipOffset, offset, name);
      assert.equal(p.family, v6 ? 6 : 4, name);
      assert.equal(p.srcPort, 40000);
      assert.equal(p.dstPort, 8080);
      assert.equal(p.flags, SYN | ACK);
      assert.equal(p.payloadLength, 10);
      assert.equal(p.srcText(), v6 ? "2001:db8::10" : "192.0.2.1");
      assert.equal(p.dstText(), v6 ? "2001:db8:1::20" : "198.51.100.2");
    }
  }
});

Deno.test("non-IP frames, unknown link types and cut link headers are errors", () => {
  const arp = concat(MACS, [0x08, 0x06], new Uint8Array(28));
  assert.equal(ipOffsetOf(LinkType.EN10MB, arp), "not_ip");
  const threeTags = concat(MACS, [0x81, 0, 0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 8, 0], V4);
  assert.equal(ipOffsetOf(LinkType.EN10MB, threeTags), "not_ip");
  assert.equal(ipOffsetOf(LinkType.EN10MB, new Uint8Array(13)), "truncated");
  assert.equal(ipOffsetOf(LinkType.LINUX_SLL, new Uint8Array(15)), "truncated");
  assert.equal(ipOffsetOf(LinkType.LINUX_SLL2, new Uint8Array(19)), "truncated");
  assert.equal(ipOffsetOf(LinkType.NULL, new Uint8Array(3)), "truncated");
  assert.equal(ipOffsetOf(LinkType.NULL, concat([7, 0, 0, 0], V4)), "not_ip");
  assert.equal(ipOffsetOf(147, V4), "unsupported_link");
  const p = new ParsedTcp();
  assert.equal(parseTcpPacket(arp, LinkType.EN10MB, p), "not_ip");
});

Deno.test("IPv4 fields and error codes", () => {
  const p = new ParsedTcp();
  assert.equal(checkIpv4(V4, 0), null);
  assert.equal(parseIpTcp(V4, 0, p), null);
  assert.equal(p.family, 4);
  assert.equal(p.ipHeaderLength, 20);
  assert.equal(p.totalLength, V4.length);
  assert.equal(p.ipId, 77);
  assert.ok(!p.isFragment && !p.payloadTruncated);
  assert.equal(p.ttl, 64);
  assert.equal(p.srcText(), "192.0.2.1");
  assert.deepEqual([...p.dstAddr], [0xc6, 0x33, 0x64, 0x02]);
  const mutate = (f: (b: Uint8Array) => void) => {
    const b = V4.slice();
    f(b);
    return parseIpTcp(b, 0, p);
  };
  assert.equal(mutate((b) => (b[0] = 0x55)), "bad_ip_version");
  assert.equal(mutate((b) => (b[0] = 0x44)), "bad_ihl");
  assert.equal(mutate((b) => (b[0] = 0x4f)), "bad_length"); // header (60) longer than the datagram
  assert.equal(mutate((b) => ((b[2] = 0), (b[3] = 19))), "bad_length");
  assert.equal(mutate((b) => (b[9] = 17)), "not_tcp");
  assert.equal(mutate((b) => ((b[6] = 0), (b[7] = 1))), "fragment"); // offset 8
  assert.equal(mutate((b) => (b[20 + 12] = 0x40)), "bad_tcp_offset");
  assert.equal(mutate((b) => (b[20 + 12] = 0xf0)), "bad_tcp_offset"); // 60 > segment
  assert.equal(mutate((b) => ((b[2] = 0), (b[3] = 30))), "bad_tcp_offset"); // no room for TCP
  // First fragment (MF, offset 0): TCP header present, flagged.
  assert.equal(mutate((b) => ((b[6] = 0x20), (b[7] = 0))), null);
  assert.equal(p.isFragment, true);
});

Deno.test("IPv4 options are skipped and checksums still verify", () => {
  const opts = [1, 1, 1, 0]; // NOP NOP NOP EOL
  const b = concat(V4.subarray(0, 20), opts, V4.subarray(20));
  b[0] = 0x46;
  const total = b.length;
  b[2] = total >> 8;
  b[3] = total & 0xff;
  fillIpv4HeaderChecksum(b, 0);
  const p = new ParsedTcp();
  assert.equal(parseIpTcp(b, 0, p), null);
  assert.equal(p.ipHeaderLength, 24);
  assert.equal(p.tcpOffset, 24);
  assert.equal(tcpChecksumIpv4(b, 0), p.checksum);
});

/** Insert IPv6 extension headers (each [type, bytes]) between the fixed header and TCP. */
function withExtensions(ip: Uint8Array, exts: [number, number[]][]): Uint8Array {
  const parts: (Uint8Array | number[])[] = [ip.slice(0, 40)];
  const out0 = parts[0] as Uint8Array;
  const types = exts.map(([t]) => t);
  out0[6] = types[0];
  for (let i = 0; i < exts.length; i++) {
    const body = exts[i][1].slice();
    body[0] = i + 1 < exts.length ? types[i + 1] : 6;
    parts.push(body);
  }
  parts.push(ip.subarray(40));
  const b = concat(...parts);
  const plen = b.length - 40;
  b[4] = plen >> 8;
  b[5] = plen & 0xff;
  return b;
}

const HBH: [number, number[]] = [0, [0, 0, 1, 4, 0, 0, 0, 0]]; // PadN
const DST: [number, number[]] = [60, [0, 1, 1, 12, ...new Array(12).fill(0)]]; // 16 bytes
const RT: [number, number[]] = [43, [0, 0, 0, 0, 0, 0, 0, 0]]; // type 0, 0 segments left
const FRAG_FIRST: [number, number[]] = [44, [0, 0, 0, 1, 0, 0, 0x12, 0x34]]; // offset 0, M=1
const AH: [number, number[]] = [51, [0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, ...new Array(12).fill(0)]]; // (4+2)*4 = 24

Deno.test("IPv6 extension headers are walked to TCP", () => {
  const p = new ParsedTcp();
  const cases: [string, [number, number[]][], number][] = [
    ["hbh", [HBH], 48],
    ["hbh+dst+rt", [HBH, DST, RT], 72],
    ["frag first", [FRAG_FIRST], 48],
    ["ah", [AH], 64],
    ["all", [HBH, DST, RT, FRAG_FIRST, AH, DST], 120],
  ];
  for (const [name, exts, tcpOffset] of cases) {
    const b = withExtensions(V6, exts);
    assert.equal(parseIpTcp(b, 0, p), null, name);
    assert.equal(p.tcpOffset, tcpOffset, name);
    assert.equal(p.ipHeaderLength, tcpOffset, name);
    assert.equal(p.payloadLength, 10, name);
    assert.equal(p.isFragment, exts.includes(FRAG_FIRST), name);
    assert.equal(p.dstPort, 8080, name);
    // The pseudo-header length is the upper-layer length: the checksum still verifies.
    assert.equal(tcpChecksumIpv6(b, 0), p.checksum, name);
    const walk = new Ipv6Walk();
    assert.equal(walkIpv6Extensions(b, 0, walk), null);
    assert.equal(walk.offset, tcpOffset);
  }
});

Deno.test("IPv6 error codes", () => {
  const p = new ParsedTcp();
  const nonFirst = withExtensions(V6, [[44, [0, 0, 0, 0x11, 0, 0, 0, 1]]]); // offset 16
  assert.equal(parseIpTcp(nonFirst, 0, p), "fragment");
  const esp = withExtensions(V6, [[50, [0, 0, 0, 0, 0, 0, 0, 0]]]);
  assert.equal(parseIpTcp(esp, 0, p), "not_tcp");
  const long = withExtensions(V6, new Array(17).fill(DST));
  assert.equal(parseIpTcp(long, 0, p), "bad_ext_header");
  const b = withExtensions(V6, [DST]);
  b[4] = 0;
  b[5] = 8; // payload length ends inside the destination options
  assert.equal(parseIpTcp(b, 0, p), "bad_ext_header");
  const zero = V6.slice();
  zero[4] = 0;
  zero[5] = 0;
  assert.equal(parseIpTcp(zero, 0, p), "bad_length");
  assert.equal(checkIpv6(V6, 0), null);
  assert.equal(parseIpTcp(V6, 0, p), null);
  assert.equal(p.family, 6);
  assert.equal(p.totalLength, V6.length);
  assert.equal(p.ttl, 64);
  assert.equal(p.srcText(), "2001:db8::10");
  assert.equal(p.tcpHeaderLength, 28); // MSS + NOP NOP SACK-permitted
  assert.equal(p.flags, SYN | ACK);
  assert.equal(checkTcp(V6, 40, V6.length), null);
  assert.equal(checkTcp(V6, 40, 40 + 27), "bad_tcp_offset");
});
