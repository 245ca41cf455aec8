/**
 * Building complete IPv4/IPv6 + TCP packets from a plain representation.
 *
 * @module
 */

import { parseIp } from "./addr.ts";
import type { TcpRepr } from "./packet.ts";
import {
  fillIpv4HeaderChecksum,
  ipv4PseudoSum,
  ipv6PseudoSum,
  tcpChecksumWithPseudo,
} from "./checksum.ts";
import { IP_PROTO_TCP, IPV4_FLAG_DF, IPV4_MIN_HEADER_LEN } from "./ipv4.ts";
import { IPV6_HEADER_LEN } from "./ipv6.ts";
import { TCP_MIN_HEADER_LEN } from "./tcp.ts";
import {
  emitTcpOptions,
  TCP_MAX_OPTIONS_LEN,
  type TcpOptions,
  tcpOptionsLength,
} from "./tcp_options.ts";

/** Everything needed to build one TCP packet: the header fields plus options and payload. */
export interface TcpPacketRepr extends TcpRepr {
  /** IPv4 "don't fragment" bit (default true). */
  dontFragment?: boolean;
  /** TCP options (default none). */
  options?: TcpOptions;
  /** TCP payload (default empty). */
  payload?: Uint8Array;
}

/** True when both addresses have the length of `repr.family`. */
function addressesFit(repr: TcpRepr): boolean {
  const n = repr.family === 4 ? 4 : repr.family === 6 ? 16 : -1;
  return repr.srcAddr.length === n && repr.dstAddr.length === n;
}

/**
 * The family and binary addresses of two address literals, for packets described in text
 * (tools, probes, tests): `{ ...addressPair("10.0.0.1", "10.0.0.2"), srcPort, ... }`. Throws a
 * TypeError when either is not an address or their families differ (never use it on network
 * input; the hot path carries bytes from the parser).
 */
export function addressPair(
  src: string,
  dst: string,
): { family: 4 | 6; srcAddr: Uint8Array; dstAddr: Uint8Array } {
  const s = parseIp(src), d = parseIp(dst);
  if (typeof s === "string" || typeof d === "string" || s.family !== d.family) {
    throw new TypeError(`not two IP addresses of one family: "${src}", "${dst}"`);
  }
  return { family: s.family, srcAddr: s.bytes, dstAddr: d.bytes };
}

/**
 * Size in bytes of the packet {@link buildTcpPacket} writes for `repr`, or -1
 * when the addresses do not match the family, or the options do
 * not fit 40 bytes.
 */
export function tcpPacketLength(repr: TcpPacketRepr): number {
  if (!addressesFit(repr)) return -1;
  const optLen = repr.options ? tcpOptionsLength(repr.options) : 0;
  if (optLen > TCP_MAX_OPTIONS_LEN) return -1;
  const ipLen = repr.family === 4 ? IPV4_MIN_HEADER_LEN : IPV6_HEADER_LEN;
  return ipLen + TCP_MIN_HEADER_LEN + optLen + (repr.payload?.length ?? 0);
}

/**
 * Write an IPv4 (20-byte header, no options) or IPv6 (no extension headers)
 * packet with TCP header, options and payload into `out` at `offset`, with a
 * correct IPv4 header checksum and TCP checksum. Returns the number of bytes
 * written, or 0 when `repr` is invalid (see {@link tcpPacketLength}), the packet
 * exceeds 65,535 bytes, or `out` is too small; nothing is written then.
 */
export function buildTcpPacket(repr: TcpPacketRepr, out: Uint8Array, offset = 0): number {
  const length = tcpPacketLength(repr);
  if (length < 0 || offset < 0 || offset + length > out.length) return 0;
  const v4 = repr.family === 4;
  const ipLen = v4 ? IPV4_MIN_HEADER_LEN : IPV6_HEADER_LEN;
  if ((v4 ? length : length - IPV6_HEADER_LEN) > 0xffff) return 0;
  const o = offset, t = o + ipLen;
  if (v4) emitIpv4Header(repr, out, o, length);
  else emitIpv6Header(repr, out, o, length - IPV6_HEADER_LEN);
  const optLen = repr.options ? emitTcpOptions(repr.options, out, t + TCP_MIN_HEADER_LEN) : 0;
  if (optLen < 0) return 0;
  const thl = TCP_MIN_HEADER_LEN + optLen;
  emitTcpHeader(repr, out, t, thl);
  if (repr.payload) out.set(repr.payload, t + thl);

  const tcpLength = length - ipLen;
  const pseudo = v4
    ? ipv4PseudoSum(out, o, IP_PROTO_TCP, tcpLength)
    : ipv6PseudoSum(out, o, IP_PROTO_TCP, tcpLength);
  const csum = tcpChecksumWithPseudo(out, t, tcpLength, pseudo);
  out[t + 16] = csum >>> 8;
  out[t + 17] = csum;
  if (v4) fillIpv4HeaderChecksum(out, o);
  return length;
}

/** A 20-byte IPv4 header at `out[o..]` (checksum left 0: filled last). */
function emitIpv4Header(repr: TcpPacketRepr, out: Uint8Array, o: number, length: number): void {
  out[o] = 0x45;
  out[o + 1] = 0;
  out[o + 2] = length >>> 8;
  out[o + 3] = length;
  const id = repr.ipId ?? 0;
  out[o + 4] = id >>> 8;
  out[o + 5] = id;
  const frag = (repr.dontFragment ?? true) ? IPV4_FLAG_DF : 0;
  out[o + 6] = frag >>> 8;
  out[o + 7] = 0;
  out[o + 8] = repr.ttl ?? 64;
  out[o + 9] = IP_PROTO_TCP;
  out[o + 10] = 0;
  out[o + 11] = 0;
  out.set(repr.srcAddr, o + 12);
  out.set(repr.dstAddr, o + 16);
}

/** A 40-byte IPv6 header at `out[o..]` announcing `plen` payload bytes. */
function emitIpv6Header(repr: TcpPacketRepr, out: Uint8Array, o: number, plen: number): void {
  out[o] = 0x60;
  out[o + 1] = 0;
  out[o + 2] = 0;
  out[o + 3] = 0;
  out[o + 4] = plen >>> 8;
  out[o + 5] = plen;
  out[o + 6] = IP_PROTO_TCP;
  out[o + 7] = repr.ttl ?? 64;
  out.set(repr.srcAddr, o + 8);
  out.set(repr.dstAddr, o + 24);
}

/** The fixed TCP header at `out[t..]` with header length `thl` (checksum left 0). */
function emitTcpHeader(repr: TcpPacketRepr, out: Uint8Array, t: number, thl: number): void {
  out[t] = repr.srcPort >>> 8;
  out[t + 1] = repr.srcPort;
  out[t + 2] = repr.dstPort >>> 8;
  out[t + 3] = repr.dstPort;
  out[t + 4] = repr.seq >>> 24;
  out[t + 5] = repr.seq >>> 16;
  out[t + 6] = repr.seq >>> 8;
  out[t + 7] = repr.seq;
  out[t + 8] = repr.ack >>> 24;
  out[t + 9] = repr.ack >>> 16;
  out[t + 10] = repr.ack >>> 8;
  out[t + 11] = repr.ack;
  out[t + 12] = (thl >>> 2) << 4;
  out[t + 13] = repr.flags;
  out[t + 14] = repr.window >>> 8;
  out[t + 15] = repr.window;
  out[t + 16] = 0;
  out[t + 17] = 0;
  const urgent = repr.urgent ?? 0;
  out[t + 18] = urgent >>> 8;
  out[t + 19] = urgent;
}
