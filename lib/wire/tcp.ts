/**
 * TCP header (RFC 9293) as a view over a `Uint8Array`.
 *
 * ```
 * |          Source Port          |       Destination Port        |
 * |                        Sequence Number                        |
 * |                    Acknowledgment Number                      |
 * |  Data |       |C|E|U|A|P|R|S|F|                               |
 * | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 * |           Checksum            |         Urgent Pointer        |
 * |                    Options                    |    Padding    |
 * ```
 *
 * Setters for the fields tcpcopy rewrites take an optional `updateChecksum`
 * flag that patches the stored checksum incrementally (RFC 1624).
 *
 * @module
 */

import { checksumUpdate16, checksumUpdate32 } from "./checksum.ts";
import type { WireError } from "./error.ts";

/** Size of a TCP header without options. */
export const TCP_MIN_HEADER_LEN = 20;
/** Largest TCP header (data offset 15). */
export const TCP_MAX_HEADER_LEN = 60;

/** TCP flag bits as stored in byte 13 of the header. */
export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** FIN flag. */
export const FIN = TcpFlags.FIN;
/** SYN flag. */
export const SYN = TcpFlags.SYN;
/** RST flag. */
export const RST = TcpFlags.RST;
/** PSH flag. */
export const PSH = TcpFlags.PSH;
/** ACK flag. */
export const ACK = TcpFlags.ACK;
/** URG flag. */
export const URG = TcpFlags.URG;
/** ECE flag. */
export const ECE = TcpFlags.ECE;
/** CWR flag. */
export const CWR = TcpFlags.CWR;

/** Field offsets inside the TCP header. */
export const TcpField = {
  SRC_PORT: 0,
  DST_PORT: 2,
  SEQ: 4,
  ACK: 8,
  DATA_OFFSET: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT: 18,
  OPTIONS: 20,
} as const;

/** Short text of a flag byte, e.g. "SA" for SYN+ACK (tcpdump letters, "." for ACK). */
export function formatTcpFlags(flags: number): string {
  let s = "";
  if (flags & FIN) s += "F";
  if (flags & SYN) s += "S";
  if (flags & RST) s += "R";
  if (flags & PSH) s += "P";
  if (flags & URG) s += "U";
  if (flags & ECE) s += "E";
  if (flags & CWR) s += "W";
  if (flags & ACK) s += ".";
  return s === "" ? "none" : s;
}

/**
 * Validate the TCP header at `bytes[offset..]` against the end of the segment
 * (`end`, from the IP length): the fixed header and the options must fit.
 */
export function checkTcp(bytes: Uint8Array, offset: number, end: number): WireError | null {
  if (offset < 0 || offset + TCP_MIN_HEADER_LEN > end) return "bad_tcp_offset";
  if (offset + TCP_MIN_HEADER_LEN > bytes.length) return "truncated";
  const hl = (bytes[offset + 12] >> 4) << 2;
  if (hl < TCP_MIN_HEADER_LEN || offset + hl > end) return "bad_tcp_offset";
  if (offset + hl > bytes.length) return "truncated";
  return null;
}

function u16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function setU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v;
}

function setU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** A view of a TCP header at `bytes[offset..]`. Validate with {@link checkTcp} first. */
export class TcpHeader {
  constructor(public bytes: Uint8Array, public offset = 0) {}

  /** Source port. */
  get srcPort(): number {
    return u16(this.bytes, this.offset + TcpField.SRC_PORT);
  }
  /** Destination port. */
  get dstPort(): number {
    return u16(this.bytes, this.offset + TcpField.DST_PORT);
  }
  /** Sequence number. */
  get seq(): number {
    return u32(this.bytes, this.offset + TcpField.SEQ);
  }
  /** Acknowledgment number. */
  get ack(): number {
    return u32(this.bytes, this.offset + TcpField.ACK);
  }
  /** Data offset in 32-bit words. */
  get dataOffset(): number {
    return this.bytes[this.offset + TcpField.DATA_OFFSET] >> 4;
  }
  /** Header length in bytes (data offset * 4). */
  get headerLength(): number {
    return (this.bytes[this.offset + TcpField.DATA_OFFSET] >> 4) << 2;
  }
  /** Flag byte (see {@link TcpFlags}). */
  get flags(): number {
    return this.bytes[this.offset + TcpField.FLAGS];
  }
  /** Receive window (unscaled). */
  get window(): number {
    return u16(this.bytes, this.offset + TcpField.WINDOW);
  }
  /** Checksum as stored (the setter stores as given, no recomputation). */
  get checksum(): number {
    return u16(this.bytes, this.offset + TcpField.CHECKSUM);
  }
  set checksum(value: number) {
    setU16(this.bytes, this.offset + TcpField.CHECKSUM, value);
  }
  /** Urgent pointer. */
  get urgent(): number {
    return u16(this.bytes, this.offset + TcpField.URGENT);
  }
  /** True when every bit of `mask` is set in the flags. */
  has(mask: number): boolean {
    return (this.bytes[this.offset + TcpField.FLAGS] & mask) === mask;
  }

  private set16(at: number, value: number, updateChecksum: boolean): void {
    const p = this.offset + at;
    if (updateChecksum) {
      this.checksum = checksumUpdate16(this.checksum, u16(this.bytes, p), value & 0xffff);
    }
    setU16(this.bytes, p, value);
  }

  private set32(at: number, value: number, updateChecksum: boolean): void {
    const p = this.offset + at;
    if (updateChecksum) {
      this.checksum = checksumUpdate32(this.checksum, u32(this.bytes, p), value >>> 0);
    }
    setU32(this.bytes, p, value);
  }

  /** Set the source port; patch the checksum when `updateChecksum`. */
  setSrcPort(port: number, updateChecksum = false): void {
    this.set16(TcpField.SRC_PORT, port, updateChecksum);
  }
  /** Set the destination port; patch the checksum when `updateChecksum`. */
  setDstPort(port: number, updateChecksum = false): void {
    this.set16(TcpField.DST_PORT, port, updateChecksum);
  }
  /** Set the sequence number; patch the checksum when `updateChecksum`. */
  setSeq(seq: number, updateChecksum = false): void {
    this.set32(TcpField.SEQ, seq, updateChecksum);
  }
  /** Set the acknowledgment number; patch the checksum when `updateChecksum`. */
  setAck(ack: number, updateChecksum = false): void {
    this.set32(TcpField.ACK, ack, updateChecksum);
  }
  /** Set the window; patch the checksum when `updateChecksum`. */
  setWindow(window: number, updateChecksum = false): void {
    this.set16(TcpField.WINDOW, window, updateChecksum);
  }
  /** Set the flag byte; patch the checksum when `updateChecksum`. */
  setFlags(flags: number, updateChecksum = false): void {
    const p = this.offset + TcpField.DATA_OFFSET;
    const word = (this.bytes[p] << 8) | (flags & 0xff);
    this.set16(TcpField.DATA_OFFSET, word, updateChecksum);
  }
  /** Set the checksum. */
  setChecksum(checksum: number): void {
    this.checksum = checksum;
  }
}
