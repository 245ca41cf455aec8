/**
 * IPv4 header (RFC 791): field offsets and the header check the parser uses.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * |Version|  IHL  |Type of Service|          Total Length         |
 * |         Identification        |Flags|      Fragment Offset    |
 * |  Time to Live |    Protocol   |         Header Checksum       |
 * |                       Source Address                          |
 * |                    Destination Address                        |
 * |                    Options                    |    Padding    |
 * ```
 *
 * @module
 */

import type { WireError } from "./error.ts";

/** Size of an IPv4 header without options. */
export const IPV4_MIN_HEADER_LEN = 20;
/** IP protocol number of TCP. */
export const IP_PROTO_TCP = 6;
/** "Don't fragment" bit of the flags field. */
export const IPV4_FLAG_DF = 0x4000;
/** "More fragments" bit of the flags field. */
export const IPV4_FLAG_MF = 0x2000;

/** Field offsets inside the IPv4 header. */
export const Ipv4Field = {
  VER_IHL: 0,
  TOS: 1,
  TOTAL_LENGTH: 2,
  ID: 4,
  FLAGS_FRAG: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC: 12,
  DST: 16,
} as const;

/**
 * Validate the IPv4 header at `bytes[offset..]`: version 4, IHL >= 5, header inside
 * the buffer, total length at least the header length. A total length beyond the
 * buffer is allowed (captures cut by a snap length). Returns null when usable.
 */
export function checkIpv4(bytes: Uint8Array, offset: number): WireError | null {
  if (offset < 0 || offset + IPV4_MIN_HEADER_LEN > bytes.length) return "truncated";
  const vi = bytes[offset];
  if (vi >> 4 !== 4) return "bad_ip_version";
  const hl = (vi & 0x0f) << 2;
  if (hl < IPV4_MIN_HEADER_LEN) return "bad_ihl";
  const total = (bytes[offset + 2] << 8) | bytes[offset + 3];
  if (total < hl) return "bad_length";
  if (offset + hl > bytes.length) return "truncated";
  return null;
}
