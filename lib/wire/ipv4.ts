/**
 * IPv4 header (RFC 791) as a view over a `Uint8Array`.
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
 * Nothing is copied: accessors read and write the caller's bytes.
 *
 * @module
 */

import { formatIpv4, ipv4ToU32, writeU32Ipv4 } from "./addr.ts";
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
 * buffer is allowed (captures cut by a snap length); use {@link Ipv4Packet.isComplete}
 * to tell. Returns null when usable.
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

/** A view of an IPv4 header at `bytes[offset..]`. Call {@link Ipv4Packet.check} first. */
export class Ipv4Packet {
  constructor(public bytes: Uint8Array, public offset = 0) {}

  /** {@link checkIpv4} for this view. */
  check(): WireError | null {
    return checkIpv4(this.bytes, this.offset);
  }

  private u16(at: number): number {
    return (this.bytes[this.offset + at] << 8) | this.bytes[this.offset + at + 1];
  }

  private setU16(at: number, value: number): void {
    this.bytes[this.offset + at] = value >>> 8;
    this.bytes[this.offset + at + 1] = value;
  }

  /** IP version (4 for a valid header). */
  get version(): number {
    return this.bytes[this.offset] >> 4;
  }
  /** Header length in 32-bit words. */
  get ihl(): number {
    return this.bytes[this.offset] & 0x0f;
  }
  /** Header length in bytes (ihl * 4). */
  get headerLength(): number {
    return (this.bytes[this.offset] & 0x0f) << 2;
  }
  /** Type of service / DSCP+ECN byte. */
  get tos(): number {
    return this.bytes[this.offset + Ipv4Field.TOS];
  }
  /** Total length of the datagram (header + payload) in bytes. */
  get totalLength(): number {
    return this.u16(Ipv4Field.TOTAL_LENGTH);
  }
  set totalLength(value: number) {
    this.setU16(Ipv4Field.TOTAL_LENGTH, value);
  }
  /** Identification field. */
  get id(): number {
    return this.u16(Ipv4Field.ID);
  }
  set id(value: number) {
    this.setU16(Ipv4Field.ID, value);
  }
  /** The 3 flag bits (bit 1 = DF, bit 0 = MF). */
  get flags(): number {
    return this.bytes[this.offset + Ipv4Field.FLAGS_FRAG] >> 5;
  }
  /** Don't-fragment bit. */
  get dontFragment(): boolean {
    return (this.u16(Ipv4Field.FLAGS_FRAG) & IPV4_FLAG_DF) !== 0;
  }
  /** More-fragments bit. */
  get moreFragments(): boolean {
    return (this.u16(Ipv4Field.FLAGS_FRAG) & IPV4_FLAG_MF) !== 0;
  }
  /** Fragment offset in bytes (the field counts 8-byte units). */
  get fragmentOffset(): number {
    return (this.u16(Ipv4Field.FLAGS_FRAG) & 0x1fff) << 3;
  }
  /** Part of a fragmented datagram (first or later fragment). */
  get isFragment(): boolean {
    return (this.u16(Ipv4Field.FLAGS_FRAG) & 0x3fff) !== 0;
  }
  /** Time to live. */
  get ttl(): number {
    return this.bytes[this.offset + Ipv4Field.TTL];
  }
  set ttl(value: number) {
    this.bytes[this.offset + Ipv4Field.TTL] = value;
  }
  /** Upper-layer protocol number (6 = TCP). */
  get protocol(): number {
    return this.bytes[this.offset + Ipv4Field.PROTOCOL];
  }
  /** Header checksum as stored. */
  get checksum(): number {
    return this.u16(Ipv4Field.CHECKSUM);
  }
  set checksum(value: number) {
    this.setU16(Ipv4Field.CHECKSUM, value);
  }
  /** Source address as dotted-quad text. */
  get srcAddr(): string {
    return formatIpv4(this.bytes, this.offset + Ipv4Field.SRC);
  }
  /** Destination address as dotted-quad text. */
  get dstAddr(): string {
    return formatIpv4(this.bytes, this.offset + Ipv4Field.DST);
  }
  /** Source address as an unsigned 32-bit integer. */
  get srcU32(): number {
    return ipv4ToU32(this.bytes, this.offset + Ipv4Field.SRC);
  }
  set srcU32(value: number) {
    writeU32Ipv4(value, this.bytes, this.offset + Ipv4Field.SRC);
  }
  /** Destination address as an unsigned 32-bit integer. */
  get dstU32(): number {
    return ipv4ToU32(this.bytes, this.offset + Ipv4Field.DST);
  }
  set dstU32(value: number) {
    writeU32Ipv4(value, this.bytes, this.offset + Ipv4Field.DST);
  }
  /** The whole datagram (total length) lies inside the buffer. */
  get isComplete(): boolean {
    return this.offset + this.totalLength <= this.bytes.length;
  }
}
