/**
 * IPv6 header (RFC 8200): field offsets, the header check, and the walk over
 * extension headers to the upper-layer protocol.
 *
 * ```
 * |Version| Traffic Class |           Flow Label                  |
 * |         Payload Length        |  Next Header  |   Hop Limit   |
 * |                  Source Address (16 bytes)                    |
 * |               Destination Address (16 bytes)                  |
 * ```
 *
 * @module
 */

import type { WireError } from "./error.ts";

/** Size of the fixed IPv6 header. */
export const IPV6_HEADER_LEN = 40;

/** Extension-header and upper-layer numbers met while walking to TCP. */
export const Ipv6Next = {
  HOP_BY_HOP: 0,
  TCP: 6,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  NO_NEXT: 59,
  DEST_OPTS: 60,
} as const;

/** At most this many extension headers are walked before giving up. */
export const IPV6_MAX_EXT_HEADERS = 16;

/** Field offsets inside the fixed IPv6 header. */
export const Ipv6Field = {
  PAYLOAD_LENGTH: 4,
  NEXT_HEADER: 6,
  HOP_LIMIT: 7,
  SRC: 8,
  DST: 24,
} as const;

/** Result of {@link walkIpv6Extensions}; reuse one instance on hot paths. */
export class Ipv6Walk {
  /** Upper-layer protocol number after the last extension header. */
  protocol = 0;
  /** Offset of the upper-layer header in the buffer. */
  offset = 0;
  /** A Fragment header was present. */
  isFragment = false;
  /** Fragment offset in bytes (0 for the first fragment or no fragment). */
  fragmentOffset = 0;
}

/**
 * Validate the fixed IPv6 header at `bytes[offset..]`: inside the buffer and version 6.
 * A payload length beyond the buffer is allowed (snap length); a zero payload length
 * (jumbogram) is rejected as `"bad_length"`.
 */
export function checkIpv6(bytes: Uint8Array, offset: number): WireError | null {
  if (offset < 0 || offset + IPV6_HEADER_LEN > bytes.length) return "truncated";
  if (bytes[offset] >> 4 !== 6) return "bad_ip_version";
  if (((bytes[offset + 4] << 8) | bytes[offset + 5]) === 0) return "bad_length";
  return null;
}

/**
 * Walk the extension headers of the IPv6 packet at `bytes[ipOffset..]` and fill
 * `out` with the upper-layer protocol and its offset. Hop-by-hop, routing,
 * destination options, fragment and AH headers are skipped; ESP and "no next
 * header" end the walk with that protocol number. A non-first fragment stops at the
 * fragment header (`out.fragmentOffset > 0`): what follows is not a header.
 * Every header must fit the buffer (`"truncated"`) and the payload length
 * (`"bad_ext_header"`). Assumes {@link checkIpv6} passed.
 */
export function walkIpv6Extensions(
  bytes: Uint8Array,
  ipOffset: number,
  out: Ipv6Walk,
): WireError | null {
  const declaredEnd = ipOffset + IPV6_HEADER_LEN +
    ((bytes[ipOffset + 4] << 8) | bytes[ipOffset + 5]);
  let next = bytes[ipOffset + Ipv6Field.NEXT_HEADER];
  let at = ipOffset + IPV6_HEADER_LEN;
  out.isFragment = false;
  out.fragmentOffset = 0;
  for (let n = 0; n <= IPV6_MAX_EXT_HEADERS; n++) {
    let len: number;
    switch (next) {
      case Ipv6Next.HOP_BY_HOP:
      case Ipv6Next.ROUTING:
      case Ipv6Next.DEST_OPTS:
        if (at + 2 > bytes.length) return "truncated";
        len = (bytes[at + 1] + 1) << 3;
        break;
      case Ipv6Next.AH:
        if (at + 2 > bytes.length) return "truncated";
        len = (bytes[at + 1] + 2) << 2;
        break;
      case Ipv6Next.FRAGMENT: {
        len = 8;
        if (at + len > bytes.length) return "truncated";
        if (at + len > declaredEnd) return "bad_ext_header";
        out.isFragment = true;
        out.fragmentOffset = ((bytes[at + 2] << 8) | bytes[at + 3]) & 0xfff8;
        if (out.fragmentOffset !== 0) {
          out.protocol = bytes[at];
          out.offset = at + len;
          return null;
        }
        break;
      }
      default:
        out.protocol = next;
        out.offset = at;
        return null;
    }
    if (at + len > declaredEnd) return "bad_ext_header";
    if (at + len > bytes.length) return "truncated";
    next = bytes[at];
    at += len;
  }
  return "bad_ext_header";
}
