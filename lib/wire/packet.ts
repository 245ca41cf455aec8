/**
 * The one-call parser of the hot path: link layer, IPv4 or IPv6, TCP header.
 *
 * `parseTcpPacket` fills a caller-owned {@link ParsedTcp} (allocate once, reuse
 * for every packet) and returns `null`, or returns a {@link WireError} reason
 * code. It reads header fields straight from the frame; nothing is copied.
 * Addresses come out as canonical strings (IPv4 strings are cached).
 *
 * A capture cut by a snap length still parses when every header is present:
 * `payloadLength` is then the true length from the IP header and
 * `capturedPayloadLength` is what the buffer holds (`payloadTruncated` = true).
 *
 * @module
 */

import { formatIpv4, formatIpv6 } from "./addr.ts";
import type { WireError } from "./error.ts";
import { IP_PROTO_TCP, IPV4_MIN_HEADER_LEN } from "./ipv4.ts";
import { IPV6_HEADER_LEN, Ipv6Walk, walkIpv6Extensions } from "./ipv6.ts";
import { ipOffsetOf } from "./link.ts";
import { TCP_MIN_HEADER_LEN } from "./tcp.ts";

/** Header fields of one IP/TCP packet; reusable across calls. */
export class ParsedTcp {
  /** The buffer that was parsed (the caller's, not a copy). */
  bytes: Uint8Array = new Uint8Array(0);
  /** IP version: 4 or 6. */
  family: 4 | 6 = 4;
  /** Offset of the IP header in `bytes`. */
  ipOffset = 0;
  /** IP header length in bytes; for IPv6 including extension headers (= tcpOffset - ipOffset). */
  ipHeaderLength = 0;
  /** Offset of the TCP header in `bytes`. */
  tcpOffset = 0;
  /** TCP header length in bytes (data offset * 4). */
  tcpHeaderLength = 0;
  /** Offset of the TCP payload in `bytes`. */
  payloadOffset = 0;
  /** TCP payload length according to the IP header. */
  payloadLength = 0;
  /** Payload bytes actually present in `bytes` (less than payloadLength when cut). */
  capturedPayloadLength = 0;
  /** The capture holds less payload than the IP header announces. */
  payloadTruncated = false;
  /** IP datagram length: IPv4 total length, or 40 + IPv6 payload length. */
  totalLength = 0;
  /** Source address, canonical text. */
  srcAddr = "";
  /** Destination address, canonical text. */
  dstAddr = "";
  /** TCP source port. */
  srcPort = 0;
  /** TCP destination port. */
  dstPort = 0;
  /** Sequence number (unsigned 32-bit). */
  seq = 0;
  /** Acknowledgment number (unsigned 32-bit). */
  ack = 0;
  /** TCP flag byte (see TcpFlags). */
  flags = 0;
  /** Window field (unscaled). */
  window = 0;
  /** TCP checksum as stored. */
  checksum = 0;
  /** Urgent pointer. */
  urgent = 0;
  /** IPv4 identification (0 for IPv6). */
  ipId = 0;
  /** IPv4 TTL or IPv6 hop limit. */
  ttl = 0;
  /** First fragment of a fragmented datagram (later fragments are rejected). */
  isFragment = false;

  /** The payload bytes present in the buffer (a view, not a copy). */
  payload(): Uint8Array {
    return this.bytes.subarray(this.payloadOffset, this.payloadOffset + this.capturedPayloadLength);
  }

  /** Copy every field of `other` into this object. */
  copyFrom(other: ParsedTcp): this {
    Object.assign(this, other);
    return this;
  }
}

const walk = new Ipv6Walk();

/**
 * Parse an IPv4 or IPv6 packet carrying TCP that starts at `bytes[offset]`
 * (tunnel records and NFQUEUE payloads start at the IP header).
 */
export function parseIpTcp(bytes: Uint8Array, offset: number, out: ParsedTcp): WireError | null {
  if (offset < 0 || offset >= bytes.length) return "truncated";
  const version = bytes[offset] >> 4;
  let tcpOffset: number;
  let end: number;
  if (version === 4) {
    if (offset + IPV4_MIN_HEADER_LEN > bytes.length) return "truncated";
    const hl = (bytes[offset] & 0x0f) << 2;
    if (hl < IPV4_MIN_HEADER_LEN) return "bad_ihl";
    const total = (bytes[offset + 2] << 8) | bytes[offset + 3];
    if (total < hl) return "bad_length";
    if (offset + hl > bytes.length) return "truncated";
    if (bytes[offset + 9] !== IP_PROTO_TCP) return "not_tcp";
    const frag = ((bytes[offset + 6] << 8) | bytes[offset + 7]) & 0x3fff;
    if ((frag & 0x1fff) !== 0) return "fragment";
    tcpOffset = offset + hl;
    end = offset + total;
    out.family = 4;
    out.isFragment = frag !== 0;
    out.ipId = (bytes[offset + 4] << 8) | bytes[offset + 5];
    out.ttl = bytes[offset + 8];
    out.totalLength = total;
  } else if (version === 6) {
    if (offset + IPV6_HEADER_LEN > bytes.length) return "truncated";
    const plen = (bytes[offset + 4] << 8) | bytes[offset + 5];
    if (plen === 0) return "bad_length";
    const err = walkIpv6Extensions(bytes, offset, walk);
    if (err !== null) return err;
    if (walk.fragmentOffset !== 0) return "fragment";
    if (walk.protocol !== IP_PROTO_TCP) return "not_tcp";
    tcpOffset = walk.offset;
    end = offset + IPV6_HEADER_LEN + plen;
    out.family = 6;
    out.isFragment = walk.isFragment;
    out.ipId = 0;
    out.ttl = bytes[offset + 7];
    out.totalLength = IPV6_HEADER_LEN + plen;
  } else {
    return "bad_ip_version";
  }
  if (tcpOffset + TCP_MIN_HEADER_LEN > end) return "bad_tcp_offset";
  if (tcpOffset + TCP_MIN_HEADER_LEN > bytes.length) return "truncated";
  const thl = (bytes[tcpOffset + 12] >> 4) << 2;
  if (thl < TCP_MIN_HEADER_LEN || tcpOffset + thl > end) return "bad_tcp_offset";
  if (tcpOffset + thl > bytes.length) return "truncated";

  const payloadOffset = tcpOffset + thl;
  const available = (end < bytes.length ? end : bytes.length) - payloadOffset;
  out.bytes = bytes;
  out.ipOffset = offset;
  out.ipHeaderLength = tcpOffset - offset;
  out.tcpOffset = tcpOffset;
  out.tcpHeaderLength = thl;
  out.payloadOffset = payloadOffset;
  out.payloadLength = end - payloadOffset;
  out.capturedPayloadLength = available;
  out.payloadTruncated = end > bytes.length;
  if (version === 4) {
    out.srcAddr = formatIpv4(bytes, offset + 12);
    out.dstAddr = formatIpv4(bytes, offset + 16);
  } else {
    out.srcAddr = formatIpv6(bytes, offset + 8);
    out.dstAddr = formatIpv6(bytes, offset + 24);
  }
  const t = tcpOffset;
  out.srcPort = (bytes[t] << 8) | bytes[t + 1];
  out.dstPort = (bytes[t + 2] << 8) | bytes[t + 3];
  out.seq = ((bytes[t + 4] << 24) | (bytes[t + 5] << 16) | (bytes[t + 6] << 8) | bytes[t + 7]) >>>
    0;
  out.ack = ((bytes[t + 8] << 24) | (bytes[t + 9] << 16) | (bytes[t + 10] << 8) |
    bytes[t + 11]) >>> 0;
  out.flags = bytes[t + 13];
  out.window = (bytes[t + 14] << 8) | bytes[t + 15];
  out.checksum = (bytes[t + 16] << 8) | bytes[t + 17];
  out.urgent = (bytes[t + 18] << 8) | bytes[t + 19];
  return null;
}

/**
 * Parse a captured link-layer `frame` of libpcap link type `linkType` (see
 * LinkType) down to the TCP header, filling `out`.
 */
export function parseTcpPacket(
  frame: Uint8Array,
  linkType: number,
  out: ParsedTcp,
): WireError | null {
  const ipOffset = ipOffsetOf(linkType, frame);
  if (typeof ipOffset === "string") return ipOffset;
  return parseIpTcp(frame, ipOffset, out);
}
