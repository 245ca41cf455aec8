/**
 * In-place rewrites of IP addresses with incremental checksum updates (RFC 1624).
 *
 * An address is covered by the IPv4 header checksum and, through the
 * pseudo-header, by the TCP checksum; both are patched so that a packet whose
 * checksums were right stays right. (Port, seq, ack and window rewrites are on
 * `TcpHeader`; option rewrites in `tcp_options.ts`.)
 *
 * @module
 */

import { checksumUpdate32, checksumUpdateBytes } from "./checksum.ts";
import { ipv4ToU32, writeU32Ipv4 } from "./addr.ts";

/** Which address of the IP header to rewrite. */
export type AddressSide = "src" | "dst";

function patchU16(packet: Uint8Array, at: number, update: (old: number) => number): void {
  const next = update((packet[at] << 8) | packet[at + 1]);
  packet[at] = next >>> 8;
  packet[at + 1] = next;
}

/**
 * Replace the IPv4 source or destination address (as an unsigned 32-bit value)
 * of the packet at `packet[ipOffset..]` whose TCP header is at `tcpOffset`,
 * patching the IP header checksum and the TCP checksum. Pass `tcpOffset` -1 to
 * leave the TCP checksum alone (e.g. for a non-first fragment).
 */
export function rewriteIpv4AddressU32(
  packet: Uint8Array,
  ipOffset: number,
  tcpOffset: number,
  side: AddressSide,
  value: number,
): void {
  const at = ipOffset + (side === "src" ? 12 : 16);
  const old = ipv4ToU32(packet, at);
  value >>>= 0;
  if (old === value) return;
  writeU32Ipv4(value, packet, at);
  const ipc = checksumUpdate32((packet[ipOffset + 10] << 8) | packet[ipOffset + 11], old, value);
  packet[ipOffset + 10] = ipc >>> 8;
  packet[ipOffset + 11] = ipc;
  if (tcpOffset >= 0) {
    const t = tcpOffset + 16;
    const tc = checksumUpdate32((packet[t] << 8) | packet[t + 1], old, value);
    packet[t] = tc >>> 8;
    packet[t + 1] = tc;
  }
}

/**
 * Replace the source or destination address with `addr[addrOffset..]` (4 bytes
 * for an IPv4 packet, 16 for IPv6, chosen by the version nibble), patching the
 * IPv4 header checksum (IPv4 only) and the TCP checksum (when `tcpOffset` >= 0).
 * Returns false, changing nothing, when the version is neither 4 nor 6 or the
 * bytes do not fit.
 */
export function rewriteAddress(
  packet: Uint8Array,
  ipOffset: number,
  tcpOffset: number,
  side: AddressSide,
  addr: Uint8Array,
  addrOffset = 0,
): boolean {
  if (ipOffset < 0 || ipOffset >= packet.length) return false;
  const version = packet[ipOffset] >> 4;
  const len = version === 4 ? 4 : version === 6 ? 16 : 0;
  if (len === 0 || addrOffset < 0 || addrOffset + len > addr.length) return false;
  const at = ipOffset + (version === 4 ? (side === "src" ? 12 : 16) : (side === "src" ? 8 : 24));
  if (at + len > packet.length) return false;
  if (tcpOffset >= 0 && tcpOffset + 18 > packet.length) return false;
  const old = packet.slice(at, at + len);
  packet.set(addr.subarray(addrOffset, addrOffset + len), at);
  if (version === 4) {
    patchU16(packet, ipOffset + 10, (c) => checksumUpdateBytes(c, old, 0, packet, at, len));
  }
  if (tcpOffset >= 0) {
    patchU16(packet, tcpOffset + 16, (c) => checksumUpdateBytes(c, old, 0, packet, at, len));
  }
  return true;
}
