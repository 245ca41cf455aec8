/**
 * The Internet checksum (RFC 1071): full sums, the IPv4 header and TCP with its pseudo-header.
 *
 * Sums are 16-bit one's-complement sums of big-endian words; an odd trailing
 * byte is padded with a zero byte. Every function clamps its range to the buffer,
 * so malformed packets give a wrong checksum, never an exception.
 *
 * @module
 */

import { IPV6_HEADER_LEN, Ipv6Walk, walkIpv6Extensions } from "./ipv6.ts";
import { IP_PROTO_TCP } from "./ipv4.ts";

/** Fold a non-negative sum (below 2^53) to 16 bits with end-around carry. */
function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** True on little-endian hosts, where the word-at-a-time path below applies. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Ranges at least this long take the 32-bit word path (a view allocation pays off). */
const WORD_PATH_MIN = 128;

/** Byte-at-a-time sum: high and low bytes of each word are summed separately. */
function sumBytes(bytes: Uint8Array, start: number, end: number): number {
  let hi = 0;
  let lo = 0;
  let i = start;
  const last8 = end - 7;
  while (i < last8) {
    hi += bytes[i] + bytes[i + 2] + bytes[i + 4] + bytes[i + 6];
    lo += bytes[i + 1] + bytes[i + 3] + bytes[i + 5] + bytes[i + 7];
    i += 8;
  }
  while (i + 1 < end) {
    hi += bytes[i];
    lo += bytes[i + 1];
    i += 2;
  }
  if (i < end) hi += bytes[i];
  return hi * 256 + lo;
}

/**
 * Sum of a long range through a `Uint32Array` view of its 4-byte-aligned middle.
 * On a little-endian host every 16-bit half is byte-swapped; the one's-complement
 * sum is byte-order independent (RFC 1071 section 2(B)), so the folded sum is
 * swapped back once. Requires `start` to be even in absolute buffer terms.
 */
function sumWords(bytes: Uint8Array, start: number, end: number): number {
  let i = start;
  let sum = 0;
  if (((bytes.byteOffset + i) & 3) === 2) {
    sum += (bytes[i] << 8) | bytes[i + 1];
    i += 2;
  }
  const n = (end - i) >>> 2;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, n);
  let swapped = 0;
  let k = 0;
  for (; k + 1 < n; k += 2) {
    const a = words[k];
    const b = words[k + 1];
    swapped += (a & 0xffff) + (a >>> 16) + (b & 0xffff) + (b >>> 16);
  }
  if (k < n) swapped += (words[k] & 0xffff) + (words[k] >>> 16);
  swapped = fold(swapped);
  sum += ((swapped & 0xff) << 8) | (swapped >>> 8);
  i += n << 2;
  return sum + sumBytes(bytes, i, end);
}

/**
 * One's-complement sum of `bytes[start..end)` added to `initial`, folded to 16
 * bits (not complemented). `start` must be even relative to the data being summed
 * for the words to line up; an odd final byte counts as its high half.
 */
export function onesComplementSum(
  bytes: Uint8Array,
  start: number,
  end: number,
  initial = 0,
): number {
  if (start < 0) start = 0;
  if (end > bytes.length) end = bytes.length;
  if (end <= start) return fold(initial);
  const sum = end - start >= WORD_PATH_MIN && LITTLE_ENDIAN &&
      ((bytes.byteOffset + start) & 1) === 0
    ? sumWords(bytes, start, end)
    : sumBytes(bytes, start, end);
  return fold(sum + initial);
}

/** The Internet checksum of `bytes[start..end)`: complement of the one's-complement sum. */
export function internetChecksum(bytes: Uint8Array, start: number, end: number): number {
  return ~onesComplementSum(bytes, start, end) & 0xffff;
}

/**
 * IPv4 header checksum of the header at `packet[ipOffset..]`, computed as if the
 * checksum field were zero (so it is the value to store).
 */
export function ipv4HeaderChecksum(packet: Uint8Array, ipOffset: number): number {
  const hl = (packet[ipOffset] & 0x0f) << 2;
  let sum = onesComplementSum(packet, ipOffset, ipOffset + 10);
  sum = onesComplementSum(packet, ipOffset + 12, ipOffset + hl, sum);
  return ~sum & 0xffff;
}

/** Compute and store the IPv4 header checksum; returns the value written. */
export function fillIpv4HeaderChecksum(packet: Uint8Array, ipOffset: number): number {
  const c = ipv4HeaderChecksum(packet, ipOffset);
  packet[ipOffset + 10] = c >>> 8;
  packet[ipOffset + 11] = c;
  return c;
}

/**
 * TCP checksum of the segment `packet[tcpOffset..tcpOffset+tcpLength)` given the
 * folded sum of its pseudo-header; the checksum field (bytes 16-17) counts as zero.
 */
export function tcpChecksumWithPseudo(
  packet: Uint8Array,
  tcpOffset: number,
  tcpLength: number,
  pseudoSum: number,
): number {
  let sum = onesComplementSum(packet, tcpOffset, tcpOffset + 16, pseudoSum);
  sum = onesComplementSum(packet, tcpOffset + 18, tcpOffset + tcpLength, sum);
  return ~sum & 0xffff;
}

/** Folded sum of the IPv4 pseudo-header (src, dst, zero, protocol, length). */
export function ipv4PseudoSum(
  packet: Uint8Array,
  ipOffset: number,
  protocol: number,
  length: number,
): number {
  const sum = onesComplementSum(packet, ipOffset + 12, ipOffset + 20, protocol + length);
  return sum;
}

/** Folded sum of the IPv6 pseudo-header (src, dst, 32-bit length, next header). */
export function ipv6PseudoSum(
  packet: Uint8Array,
  ipOffset: number,
  protocol: number,
  length: number,
): number {
  return onesComplementSum(
    packet,
    ipOffset + 8,
    ipOffset + 40,
    protocol + (length >>> 16) + (length & 0xffff),
  );
}

/**
 * TCP checksum (value to store) of the IPv4 packet at `packet[ipOffset..]`. The
 * segment spans from the end of the IP header to the IP total length.
 */
export function tcpChecksumIpv4(packet: Uint8Array, ipOffset: number): number {
  const hl = (packet[ipOffset] & 0x0f) << 2;
  const total = (packet[ipOffset + 2] << 8) | packet[ipOffset + 3];
  const tcpLength = total - hl;
  const pseudo = ipv4PseudoSum(packet, ipOffset, IP_PROTO_TCP, tcpLength);
  return tcpChecksumWithPseudo(packet, ipOffset + hl, tcpLength, pseudo);
}

const walkScratch = new Ipv6Walk();

/**
 * TCP checksum (value to store) of the IPv6 packet at `packet[ipOffset..]`.
 * Extension headers are walked to find TCP; `tcpOffset` skips the walk when known.
 * Returns -1 when no TCP header is found. (A routing header's final destination
 * is not substituted into the pseudo-header.)
 */
export function tcpChecksumIpv6(packet: Uint8Array, ipOffset: number, tcpOffset = -1): number {
  if (tcpOffset < 0) {
    if (walkIpv6Extensions(packet, ipOffset, walkScratch) !== null) return -1;
    if (walkScratch.protocol !== IP_PROTO_TCP || walkScratch.fragmentOffset !== 0) return -1;
    tcpOffset = walkScratch.offset;
  }
  const end = ipOffset + IPV6_HEADER_LEN + ((packet[ipOffset + 4] << 8) | packet[ipOffset + 5]);
  const tcpLength = end - tcpOffset;
  const pseudo = ipv6PseudoSum(packet, ipOffset, IP_PROTO_TCP, tcpLength);
  return tcpChecksumWithPseudo(packet, tcpOffset, tcpLength, pseudo);
}

/**
 * Compute the TCP checksum of the IPv4 or IPv6 packet at `packet[ipOffset..]` and
 * store it in the TCP header. Returns the value written, or -1 when the packet is
 * not a complete IP/TCP packet (nothing is written then).
 */
export function fillTcpChecksum(packet: Uint8Array, ipOffset: number, tcpOffset = -1): number {
  if (ipOffset < 0 || ipOffset >= packet.length) return -1;
  const version = packet[ipOffset] >> 4;
  let c: number;
  if (version === 4) {
    if (ipOffset + 20 > packet.length) return -1;
    const hl = (packet[ipOffset] & 0x0f) << 2;
    const total = (packet[ipOffset + 2] << 8) | packet[ipOffset + 3];
    if (hl < 20 || total < hl + 20 || ipOffset + total > packet.length) return -1;
    if (packet[ipOffset + 9] !== IP_PROTO_TCP) return -1;
    tcpOffset = ipOffset + hl;
    c = tcpChecksumIpv4(packet, ipOffset);
  } else if (version === 6) {
    if (ipOffset + IPV6_HEADER_LEN > packet.length) return -1;
    const end = ipOffset + IPV6_HEADER_LEN +
      ((packet[ipOffset + 4] << 8) | packet[ipOffset + 5]);
    if (end > packet.length) return -1;
    if (tcpOffset < 0) {
      if (walkIpv6Extensions(packet, ipOffset, walkScratch) !== null) return -1;
      if (walkScratch.protocol !== IP_PROTO_TCP || walkScratch.fragmentOffset !== 0) return -1;
      tcpOffset = walkScratch.offset;
    }
    if (tcpOffset + 20 > end) return -1;
    c = tcpChecksumIpv6(packet, ipOffset, tcpOffset);
  } else {
    return -1;
  }
  packet[tcpOffset + 16] = c >>> 8;
  packet[tcpOffset + 17] = c;
  return c;
}
