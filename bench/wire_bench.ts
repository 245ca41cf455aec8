/**
 * lib/wire hot-path costs: `deno bench -A bench/wire_bench.ts`.
 *
 * - parse an Ethernet + IPv4 + TCP frame (parseTcpPacket) and the IPv6 variant,
 * - full TCP checksum of a 1,460-byte segment,
 * - building a packet.
 */
import { addressPair, buildTcpPacket, type TcpPacketRepr } from "../lib/wire/build.ts";
import { fillTcpChecksum, tcpChecksumIpv4 } from "../lib/wire/checksum.ts";
import { LinkType } from "../lib/wire/link.ts";
import { ParsedTcp, parseTcpPacket } from "../lib/wire/packet.ts";

const repr = (src: string, dst: string, payloadLength: number): TcpPacketRepr => ({
  ...addressPair(src, dst),
  srcPort: 51000,
  dstPort: 80,
  seq: 0x10000000,
  ack: 0x20000000,
  flags: 0x18,
  window: 502,
  ipId: 1,
  options: {
    sackPermitted: false,
    sackBlocks: [],
    unknown: [],
    timestamp: { tsval: 1, tsecr: 2 },
  },
  payload: new Uint8Array(payloadLength).fill(0x41),
});

function frame(r: TcpPacketRepr, v6: boolean): Uint8Array {
  const buf = new Uint8Array(2000);
  const n = buildTcpPacket(r, buf, 14);
  buf.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, v6 ? 0x86 : 0x08, v6 ? 0xdd : 0x00]);
  return buf.slice(0, 14 + n);
}

const small4 = frame(repr("10.0.0.1", "10.0.0.2", 64), false);
const small6 = frame(repr("2001:db8::1", "2001:db8::2", 64), true);
// 20 + 20 + 12 options + 1,408 = 1,460 bytes of TCP segment? Use a 1,460-byte segment:
// TCP header 32 bytes + 1,428 payload bytes.
const big4 = frame(repr("10.0.0.1", "10.0.0.2", 1460 - 32), false);
const parsed = new ParsedTcp();
let sink = 0;

Deno.bench("parseTcpPacket Ethernet+IPv4+TCP", { group: "parse", baseline: true }, () => {
  if (parseTcpPacket(small4, LinkType.EN10MB, parsed) === null) sink ^= parsed.seq;
});

Deno.bench("parseTcpPacket Ethernet+IPv6+TCP", { group: "parse" }, () => {
  if (parseTcpPacket(small6, LinkType.EN10MB, parsed) === null) sink ^= parsed.seq;
});

Deno.bench("full TCP checksum, 1,460-byte segment (IPv4)", { group: "checksum" }, () => {
  sink ^= tcpChecksumIpv4(big4, 14);
});

Deno.bench("fillTcpChecksum, 1,460-byte segment (IPv4)", { group: "checksum" }, () => {
  sink ^= fillTcpChecksum(big4, 14);
});

const out = new Uint8Array(2000);
const buildRepr = repr("10.0.0.1", "10.0.0.2", 64);
Deno.bench("buildTcpPacket IPv4, 64-byte payload + TS option", { group: "build" }, () => {
  buildRepr.seq = (buildRepr.seq + 64) >>> 0;
  sink ^= buildTcpPacket(buildRepr, out, 0);
});

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
