/**
 * External reference: frames captured with `tcpdump -i lo -xx -vv` in a scratch
 * network namespace (curl to a closed port on 127.0.0.1 and ::1). The expected
 * checksums and decoded fields are tcpdump's own, not this library's: the SYNs
 * carry the partial checksum of loopback offload and tcpdump printed
 * "incorrect -> <right value>"; the IPv4 RST was printed "(correct)".
 */
import assert from "node:assert/strict";
import { ipv4HeaderChecksum, tcpChecksumIpv4, tcpChecksumIpv6 } from "../../lib/wire/checksum.ts";
import { LinkType } from "../../lib/wire/link.ts";
import { ParsedTcp, parseTcpPacket } from "../../lib/wire/packet.ts";
import { ACK, RST, SYN } from "../../lib/wire/tcp.ts";
import { parseTcpHeaderOptions } from "../../lib/wire/tcp_options.ts";

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));
}

const ETH0 = "0000 0000 0000 0000 0000 0000";

// 127.0.0.1.58322 > 127.0.0.1.9: Flags [S], cksum 0xfe30 (incorrect -> 0x6920),
// seq 4046680410, win 65495, options [mss 65495,sackOK,TS val 3210404121 ecr 0,nop,wscale 10]
// IP: ttl 64, id 21863, flags [DF], length 60
const V4_SYN = hex(`${ETH0} 0800 4500
  003c 5567 4000 4006 e752 7f00 0001 7f00
  0001 e3d2 0009 f133 715a 0000 0000 a002
  ffd7 fe30 0000 0204 ffd7 0402 080a bf5a
  e119 0000 0000 0103 030a`);
// 127.0.0.1.9 > 127.0.0.1.58322: Flags [R.], cksum 0x6b63 (correct), seq 0, ack 4046680411
const V4_RST = hex(`${ETH0} 0800 4500
  0028 0000 4000 4006 3cce 7f00 0001 7f00
  0001 0009 e3d2 0000 0000 f133 715b 5014
  0000 6b63 0000`);
// ::1.40496 > ::1.9: Flags [S], cksum 0x0030 (incorrect -> 0xa96e), seq 1938736821,
// options [mss 65476,sackOK,TS val 3471375696 ecr 0,nop,wscale 10]
const V6_SYN = hex(`${ETH0} 86dd 6008
  932e 0028 0640 0000 0000 0000 0000 0000
  0000 0000 0001 0000 0000 0000 0000 0000
  0000 0000 0001 9e30 0009 738e c6b5 0000
  0000 a002 ffc4 0030 0000 0204 ffc4 0402
  080a cee8 fd50 0000 0000 0103 030a`);
// ::1.9 > ::1.40496: Flags [R.], cksum 0x001c (incorrect -> 0xd750), ack 1938736822
const V6_RST = hex(`${ETH0} 86dd 6008
  22a3 0014 0640 0000 0000 0000 0000 0000
  0000 0000 0001 0000 0000 0000 0000 0000
  0000 0000 0001 0009 9e30 0000 0000 738e
  c6b6 5014 0000 001c 0000`);

Deno.test("tcpdump reference: TCP checksums over IPv4 and IPv6 pseudo-headers", () => {
  assert.equal(tcpChecksumIpv4(V4_SYN, 14), 0x6920);
  assert.equal(tcpChecksumIpv4(V4_RST, 14), 0x6b63);
  assert.equal(tcpChecksumIpv6(V6_SYN, 14), 0xa96e);
  assert.equal(tcpChecksumIpv6(V6_RST, 14), 0xd750);
});

Deno.test("tcpdump reference: kernel-computed IPv4 header checksums", () => {
  assert.equal(ipv4HeaderChecksum(V4_SYN, 14), 0xe752);
  assert.equal(ipv4HeaderChecksum(V4_RST, 14), 0x3cce);
});

Deno.test("tcpdump reference: fields and options as tcpdump decoded them", () => {
  const p = new ParsedTcp();
  assert.equal(parseTcpPacket(V4_SYN, LinkType.EN10MB, p), null);
  assert.deepEqual(
    [p.srcText(), p.srcPort, p.dstText(), p.dstPort, p.seq, p.window, p.flags, p.ipId, p.ttl],
    ["127.0.0.1", 58322, "127.0.0.1", 9, 4046680410, 65495, SYN, 21863, 64],
  );
  assert.deepEqual(parseTcpHeaderOptions(V4_SYN, p.tcpOffset), {
    mss: 65495,
    sackPermitted: true,
    timestamp: { tsval: 3210404121, tsecr: 0 },
    wscale: 10,
    sackBlocks: [],
    unknown: [],
  });
  assert.equal(parseTcpPacket(V4_RST, LinkType.EN10MB, p), null);
  assert.deepEqual([p.seq, p.ack, p.flags, p.payloadLength], [0, 4046680411, RST | ACK, 0]);

  assert.equal(parseTcpPacket(V6_SYN, LinkType.EN10MB, p), null);
  assert.deepEqual(
    [p.family, p.srcText(), p.srcPort, p.dstText(), p.dstPort, p.seq, p.ttl],
    [6, "::1", 40496, "::1", 9, 1938736821, 64],
  );
  const o = parseTcpHeaderOptions(V6_SYN, p.tcpOffset);
  assert.ok(typeof o !== "string");
  assert.deepEqual([o.mss, o.timestamp?.tsval, o.wscale], [65476, 3471375696, 10]);
  assert.equal(parseTcpPacket(V6_RST, LinkType.EN10MB, p), null);
  assert.deepEqual([p.ack, p.flags, p.totalLength], [1938736822, RST | ACK, 60]);
});
