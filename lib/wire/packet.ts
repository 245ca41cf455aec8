/**
 * The one IP/TCP packet model: {@link TcpRepr} is what a parse yields and what an emit
 * (build.ts) takes; {@link ParsedTcp} is the parse output, {@link parseIpTcp} /
 * {@link parseTcpPacket} the parser of the hot path (tcpcopy captures, intercept replies,
 * offline files).
 *
 * `parseTcpPacket` fills a caller-owned {@link ParsedTcp} (allocate once, reuse for every
 * packet) and returns `null`, or returns a {@link WireError} reason code. Headers are
 * validated by the per-header checks (`checkIpv4`, `checkIpv6` + `walkIpv6Extensions`,
 * `checkTcp`) and read through their field tables. Addresses are bytes plus a family; text
 * only on request (`srcText()`, `dstText()`) for the edges that need it.
 *
 * A capture cut by a snap length still parses when every header is present:
 * `payloadLength` is then the true length from the IP header and
 * `capturedPayloadLength` is what the buffer holds (`payloadTruncated` = true).
 *
 * @module
 */

import { formatIp } from "./addr.ts";
import type { WireError } from "./error.ts";
import { checkIpv4, IP_PROTO_TCP, Ipv4Field } from "./ipv4.ts";
import { checkIpv6, IPV6_HEADER_LEN, Ipv6Field, Ipv6Walk, walkIpv6Extensions } from "./ipv6.ts";
import { ipOffsetOf } from "./link.ts";
import { SEQ_FIELD_INIT } from "./seq.ts";
import { checkTcp, TCP_MIN_HEADER_LEN, TcpField } from "./tcp.ts";
import { readTcpOptionFields, type TcpOptionFields } from "./tcp_options.ts";

/** IP and TCP header fields of one packet, as parsed or to be built. */
export interface TcpRepr {
  /** IP version: 4 or 6. */
  family: 4 | 6;
  /** Source address: 4 bytes (IPv4) or 16 (IPv6). */
  srcAddr: Uint8Array;
  /** Destination address, same family. */
  dstAddr: Uint8Array;
  srcPort: number;
  dstPort: number;
  /** Sequence number (unsigned 32-bit). */
  seq: number;
  /** Acknowledgment number (unsigned 32-bit). */
  ack: number;
  /** Flag byte (see TcpFlags). */
  flags: number;
  /** Window field (unscaled). */
  window: number;
  /** Urgent pointer (emit default 0). */
  urgent?: number;
  /** IPv4 identification (emit default 0; ignored for IPv6). */
  ipId?: number;
  /** IPv4 TTL / IPv6 hop limit (emit default 64). */
  ttl?: number;
}

/** Header fields of one IP/TCP packet; reusable across calls (nothing allocated per parse). */
export class ParsedTcp implements TcpRepr {
  /** The buffer that was parsed (the caller's, not a copy). */
  bytes: Uint8Array = new Uint8Array(0);
  /** IP version: 4 or 6. */
  family: 4 | 6 = 4;
  readonly #addr4 = [new Uint8Array(4), new Uint8Array(4)];
  readonly #addr6 = [new Uint8Array(16), new Uint8Array(16)];
  /** Source address bytes (owned by this object, overwritten by the next parse). */
  srcAddr: Uint8Array = this.#addr4[0];
  /** Destination address bytes (owned by this object, overwritten by the next parse). */
  dstAddr: Uint8Array = this.#addr4[1];
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
  /** TCP source port. */
  srcPort = 0;
  /** TCP destination port. */
  dstPort = 0;
  /** Sequence number (unsigned 32-bit; {@link SEQ_FIELD_INIT} before the first parse). */
  seq = SEQ_FIELD_INIT;
  /** Acknowledgment number (unsigned 32-bit). */
  ack = SEQ_FIELD_INIT;
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

  /**
   * Reads this header's options into `out` in place (every field set; see
   * `readTcpOptionFields`), the timestamps into `ts`; an error when they are malformed.
   */
  readOptions(out: TcpOptionFields, ts: { tsval: number; tsecr: number }): WireError | null {
    const start = this.tcpOffset + TCP_MIN_HEADER_LEN;
    return readTcpOptionFields(this.bytes, start, this.tcpOffset + this.tcpHeaderLength, out, ts);
  }

  /** Source address as canonical text (cached per address): for logs and the engine's keys. */
  srcText(): string {
    return formatIp(this.srcAddr, 0, this.family);
  }

  /** Destination address as canonical text (cached per address). */
  dstText(): string {
    return formatIp(this.dstAddr, 0, this.family);
  }

  /** Selects the address buffers of `family` and copies both addresses from `bytes`. */
  setAddresses(family: 4 | 6, bytes: Uint8Array, srcAt: number, dstAt: number): void {
    const pair = family === 4 ? this.#addr4 : this.#addr6;
    const src = pair[0], dst = pair[1];
    for (let i = 0; i < src.length; i++) {
      src[i] = bytes[srcAt + i];
      dst[i] = bytes[dstAt + i];
    }
    this.family = family;
    this.srcAddr = src;
    this.dstAddr = dst;
  }
}

const walk = new Ipv6Walk();

function u16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/** IPv4 header at `offset` into `out`; the TCP header offset, or an error. */
function parseIpv4(bytes: Uint8Array, offset: number, out: ParsedTcp): number | WireError {
  const err = checkIpv4(bytes, offset);
  if (err !== null) return err;
  if (bytes[offset + Ipv4Field.PROTOCOL] !== IP_PROTO_TCP) return "not_tcp";
  const frag = u16(bytes, offset + Ipv4Field.FLAGS_FRAG) & 0x3fff;
  if ((frag & 0x1fff) !== 0) return "fragment";
  out.isFragment = frag !== 0;
  out.ipId = u16(bytes, offset + Ipv4Field.ID);
  out.ttl = bytes[offset + Ipv4Field.TTL];
  out.totalLength = u16(bytes, offset + Ipv4Field.TOTAL_LENGTH);
  out.setAddresses(4, bytes, offset + Ipv4Field.SRC, offset + Ipv4Field.DST);
  return offset + ((bytes[offset] & 0x0f) << 2);
}

/** IPv6 header and extension headers at `offset` into `out`; the TCP header offset, or an error. */
function parseIpv6(bytes: Uint8Array, offset: number, out: ParsedTcp): number | WireError {
  const err = checkIpv6(bytes, offset) ?? walkIpv6Extensions(bytes, offset, walk);
  if (err !== null) return err;
  if (walk.fragmentOffset !== 0) return "fragment";
  if (walk.protocol !== IP_PROTO_TCP) return "not_tcp";
  out.isFragment = walk.isFragment;
  out.ipId = 0;
  out.ttl = bytes[offset + Ipv6Field.HOP_LIMIT];
  out.totalLength = IPV6_HEADER_LEN + u16(bytes, offset + Ipv6Field.PAYLOAD_LENGTH);
  out.setAddresses(6, bytes, offset + Ipv6Field.SRC, offset + Ipv6Field.DST);
  return walk.offset;
}

/**
 * Parse an IPv4 or IPv6 packet carrying TCP that starts at `bytes[offset]`
 * (tunnel records and NFQUEUE payloads start at the IP header).
 */
export function parseIpTcp(bytes: Uint8Array, offset: number, out: ParsedTcp): WireError | null {
  if (offset < 0 || offset >= bytes.length) return "truncated";
  const version = bytes[offset] >> 4;
  const t = version === 4
    ? parseIpv4(bytes, offset, out)
    : version === 6
    ? parseIpv6(bytes, offset, out)
    : "bad_ip_version";
  if (typeof t === "string") return t;
  const end = offset + out.totalLength;
  const err = checkTcp(bytes, t, end);
  if (err !== null) return err;
  const thl = (bytes[t + TcpField.DATA_OFFSET] >> 4) << 2;
  const payloadOffset = t + thl;
  out.bytes = bytes;
  out.ipOffset = offset;
  out.ipHeaderLength = t - offset;
  out.tcpOffset = t;
  out.tcpHeaderLength = thl;
  out.payloadOffset = payloadOffset;
  out.payloadLength = end - payloadOffset;
  out.capturedPayloadLength = (end < bytes.length ? end : bytes.length) - payloadOffset;
  out.payloadTruncated = end > bytes.length;
  out.srcPort = u16(bytes, t + TcpField.SRC_PORT);
  out.dstPort = u16(bytes, t + TcpField.DST_PORT);
  out.seq = u32(bytes, t + TcpField.SEQ);
  out.ack = u32(bytes, t + TcpField.ACK);
  out.flags = bytes[t + TcpField.FLAGS];
  out.window = u16(bytes, t + TcpField.WINDOW);
  out.checksum = u16(bytes, t + TcpField.CHECKSUM);
  out.urgent = u16(bytes, t + TcpField.URGENT);
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
