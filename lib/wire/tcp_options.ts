/**
 * TCP options (RFC 9293 section 3.2, RFC 7323, RFC 2018): a plain representation,
 * one walker behind the hot-path reader and the full parser, and the emitter.
 *
 * Option layout: kind 0 (End of Option List) and kind 1 (No-Operation) are one
 * byte; every other option is `kind, length, data...` with `length` counting the
 * two leading bytes.
 *
 * @module
 */

import type { WireError } from "./error.ts";
import { TCP_MIN_HEADER_LEN } from "./tcp.ts";

/** Option kinds. */
export const TcpOptionKind = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WSCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMP: 8,
} as const;

/** Most option bytes a TCP header can carry (data offset 15). */
export const TCP_MAX_OPTIONS_LEN = 40;

/** TCP options in plain form. Absent options are `undefined` / `false` / empty. */
export interface TcpOptions {
  /** Maximum segment size (kind 2). */
  mss?: number;
  /** Window scale shift count (kind 3). */
  wscale?: number;
  /** SACK permitted (kind 4). */
  sackPermitted: boolean;
  /** SACK blocks `[left edge, right edge)` (kind 5). */
  sackBlocks: [number, number][];
  /** Timestamps (kind 8). */
  timestamp?: { tsval: number; tsecr: number };
  /** Options of any other kind, in order of appearance, data without kind/length. */
  unknown: { kind: number; data: Uint8Array }[];
}

/** A fresh, empty {@link TcpOptions}. */
export function emptyTcpOptions(): TcpOptions {
  return { sackPermitted: false, sackBlocks: [], unknown: [] };
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function setU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** The options the hot path reads (the engine's view): set in place, nothing allocated. */
export interface TcpOptionFields {
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  timestamp?: { tsval: number; tsecr: number };
}

/**
 * The one option walker. Reads `bytes[start..end)` into `out` (only the options present are
 * set; the timestamps go into `ts`, which becomes `out.timestamp`); when `full` is given, SACK
 * blocks and unknown kinds are collected into it (data copied), otherwise skipped. Parsing
 * stops at EOL. A length below 2, an option running past `end`, or a known option with the
 * wrong length gives `"bad_option"`.
 */
function walkTcpOptions(
  bytes: Uint8Array,
  start: number,
  end: number,
  out: TcpOptionFields,
  ts: { tsval: number; tsecr: number },
  full: TcpOptions | null,
): WireError | null {
  if (start < 0 || end > bytes.length || start > end) return "truncated";
  let i = start;
  while (i < end) {
    const kind = bytes[i];
    if (kind === TcpOptionKind.EOL) break;
    if (kind === TcpOptionKind.NOP) {
      i++;
      continue;
    }
    if (i + 2 > end) return "bad_option";
    const len = bytes[i + 1];
    if (len < 2 || i + len > end) return "bad_option";
    switch (kind) {
      case TcpOptionKind.MSS:
        if (len !== 4) return "bad_option";
        out.mss = (bytes[i + 2] << 8) | bytes[i + 3];
        break;
      case TcpOptionKind.WSCALE:
        if (len !== 3) return "bad_option";
        out.wscale = bytes[i + 2];
        break;
      case TcpOptionKind.SACK_PERMITTED:
        if (len !== 2) return "bad_option";
        out.sackPermitted = true;
        break;
      case TcpOptionKind.SACK:
        if (len < 10 || (len - 2) % 8 !== 0) return "bad_option";
        for (let b = i + 2; full !== null && b < i + len; b += 8) {
          full.sackBlocks.push([u32(bytes, b), u32(bytes, b + 4)]);
        }
        break;
      case TcpOptionKind.TIMESTAMP:
        if (len !== 10) return "bad_option";
        ts.tsval = u32(bytes, i + 2);
        ts.tsecr = u32(bytes, i + 6);
        out.timestamp = ts;
        break;
      default:
        full?.unknown.push({ kind, data: bytes.slice(i + 2, i + len) });
    }
    i += len;
  }
  return null;
}

/**
 * The hot path's option reader: every field of `out` is set (undefined or false when absent,
 * so every options object keeps one shape), the timestamps into `ts` (reused). SACK blocks
 * and unknown kinds are checked and skipped. Rules and errors as {@link parseTcpOptions}; on
 * an error `out` is unspecified.
 */
export function readTcpOptionFields(
  bytes: Uint8Array,
  start: number,
  end: number,
  out: TcpOptionFields,
  ts: { tsval: number; tsecr: number },
): WireError | null {
  out.mss = undefined;
  out.wscale = undefined;
  out.sackPermitted = false;
  out.timestamp = undefined;
  return walkTcpOptions(bytes, start, end, out, ts, null);
}

/**
 * Parse the option bytes `bytes[start..end)` into a fresh {@link TcpOptions} (absent options
 * are left out). Parsing stops at EOL. A length below 2, an option running past `end`, or a
 * known option with the wrong length gives `"bad_option"`. Unknown kinds are kept (data
 * copied).
 */
export function parseTcpOptions(
  bytes: Uint8Array,
  start: number,
  end: number,
): TcpOptions | WireError {
  const opts = emptyTcpOptions();
  return walkTcpOptions(bytes, start, end, opts, { tsval: 0, tsecr: 0 }, opts) ?? opts;
}

/** Parse the options of the TCP header at `packet[tcpOffset..]` (data offset must be valid). */
export function parseTcpHeaderOptions(
  packet: Uint8Array,
  tcpOffset: number,
): TcpOptions | WireError {
  if (tcpOffset < 0 || tcpOffset + TCP_MIN_HEADER_LEN > packet.length) return "truncated";
  const hl = (packet[tcpOffset + 12] >> 4) << 2;
  if (hl < TCP_MIN_HEADER_LEN) return "bad_tcp_offset";
  if (tcpOffset + hl > packet.length) return "truncated";
  return parseTcpOptions(packet, tcpOffset + TCP_MIN_HEADER_LEN, tcpOffset + hl);
}

/** Unpadded number of bytes {@link emitTcpOptions} writes before padding. */
function rawLength(opts: TcpOptions): number {
  let n = 0;
  if (opts.mss !== undefined) n += 4;
  if (opts.sackPermitted && opts.timestamp) n += 12;
  else if (opts.sackPermitted) n += 4;
  else if (opts.timestamp) n += 12;
  if (opts.wscale !== undefined) n += 4;
  if (opts.sackBlocks.length > 0) n += 4 + 8 * opts.sackBlocks.length;
  for (const u of opts.unknown) n += 2 + u.data.length;
  return n;
}

/** Length of the emitted options, padded to a multiple of 4 (may exceed 40: then emit fails). */
export function tcpOptionsLength(opts: TcpOptions): number {
  return (rawLength(opts) + 3) & ~3;
}

/**
 * Write `opts` at `out[offset..]` in the layout Linux uses (MSS; SACK-permitted
 * and timestamps; NOP + window scale; NOP NOP + SACK blocks; unknown options
 * verbatim), padded to a multiple of 4 with EOL bytes. Returns the number of
 * bytes written, or -1 when the options exceed 40 bytes, do not fit `out`, or a
 * value is out of range (no bytes are written then).
 */
export function emitTcpOptions(opts: TcpOptions, out: Uint8Array, offset = 0): number {
  const total = tcpOptionsLength(opts);
  if (total > TCP_MAX_OPTIONS_LEN || offset < 0 || offset + total > out.length) return -1;
  if (opts.mss !== undefined && !(opts.mss >= 0 && opts.mss <= 0xffff)) return -1;
  if (opts.wscale !== undefined && !(opts.wscale >= 0 && opts.wscale <= 0xff)) return -1;
  for (const u of opts.unknown) {
    if (!(u.kind >= 2 && u.kind <= 255) || u.data.length > 38) return -1;
  }
  let i = offset;
  if (opts.mss !== undefined) {
    out[i++] = TcpOptionKind.MSS;
    out[i++] = 4;
    out[i++] = opts.mss >>> 8;
    out[i++] = opts.mss;
  }
  if (opts.sackPermitted && opts.timestamp) {
    out[i++] = TcpOptionKind.SACK_PERMITTED;
    out[i++] = 2;
  } else if (opts.sackPermitted || opts.timestamp) {
    out[i++] = TcpOptionKind.NOP;
    out[i++] = TcpOptionKind.NOP;
    if (opts.sackPermitted) {
      out[i++] = TcpOptionKind.SACK_PERMITTED;
      out[i++] = 2;
    }
  }
  if (opts.timestamp) {
    out[i++] = TcpOptionKind.TIMESTAMP;
    out[i++] = 10;
    setU32(out, i, opts.timestamp.tsval);
    setU32(out, i + 4, opts.timestamp.tsecr);
    i += 8;
  }
  if (opts.wscale !== undefined) {
    out[i++] = TcpOptionKind.NOP;
    out[i++] = TcpOptionKind.WSCALE;
    out[i++] = 3;
    out[i++] = opts.wscale;
  }
  if (opts.sackBlocks.length > 0) {
    out[i++] = TcpOptionKind.NOP;
    out[i++] = TcpOptionKind.NOP;
    out[i++] = TcpOptionKind.SACK;
    out[i++] = 2 + 8 * opts.sackBlocks.length;
    for (const [left, right] of opts.sackBlocks) {
      setU32(out, i, left);
      setU32(out, i + 4, right);
      i += 8;
    }
  }
  for (const u of opts.unknown) {
    out[i++] = u.kind;
    out[i++] = 2 + u.data.length;
    out.set(u.data, i);
    i += u.data.length;
  }
  while (i < offset + total) out[i++] = TcpOptionKind.EOL;
  return total;
}
