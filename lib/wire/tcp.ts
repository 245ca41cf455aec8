/**
 * TCP header (RFC 9293): field offsets, flag bits and the header check the parser uses.
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
 * @module
 */

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
