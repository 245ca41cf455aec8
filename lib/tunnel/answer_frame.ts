/**
 * The ANSWER frame (intercept -> tcpcopy, Cap.ANSWERS, issue 15): the summary of one target
 * answer, at most N first bytes plus 48 bytes (IPv4) or 72 bytes (IPv6) however long the
 * answer was. Encoder (intercept) and a total decoder (tcpcopy: every field is checked, a bad
 * body is a reason string, nothing throws).
 *
 *   frame = u8 0xE5 | u24 BE body length | body      (byte 1 is the length's high byte: a
 *                                                    body may exceed 65535 bytes)
 *   body:
 *   off  size
 *    0    1   flags: bit 0 IPv6 addresses, bit 1 digest present, bit 2 body length present,
 *             bit 3 reserved (0), bits 4-7 why the answer ended (ANSWER_ENDS index)
 *    1    1   digest kind: 0 http, 1 pg, 2 bytes
 *    2    2   part (0 = the answer; 1, 2 … = later bytes with the same ack)
 *    4    2   client port               6    2   target port
 *    8    4   ack (the reply's ACK number: end of the request answered)
 *   12    4   seq (the target's sequence number of the answer's first byte)
 *   16    6   total length (gaps included)
 *   22    6   body length (0 when absent: gaps)
 *   28    4   gap bytes (saturated at 2^32 - 1)
 *   32    8   digest: seed A's XXH32 then seed B's (the 64-bit value; 0 when absent)
 *   40  4|16  client address           44|56  4|16  target address
 *   48|72     first bytes (the rest of the body, at most the N of the COMPARE message)
 */
import type { DigestKind } from "../compare/sniff.ts";
import type { AnswerEndpoint, TargetAnswer } from "../compare/target_answer.ts";
import { emptySummary, MAX_COMPARE_BYTES } from "../compare/answer.ts";
import { sameFamily } from "../wire/addr.ts";

/** The frame kind byte (FrameKind.ANSWER in replies.ts). */
export const ANSWER_FRAME_KIND = 0xe5;
/** Body bytes before the first bytes, IPv4 and IPv6. */
export const ANSWER_HEADER_V4 = 48;
export const ANSWER_HEADER_V6 = 72;
/** Largest body a peer may receive (IPv6 header and MAX_COMPARE_BYTES). */
export const MAX_ANSWER_BODY = ANSWER_HEADER_V6 + MAX_COMPARE_BYTES;

/** Why intercept closed an answer (informational; the pairing uses ack and part). */
export type AnswerEnd = "ack" | "framing" | "fin" | "rst" | "quiet" | "route";
/** The end codes, by their wire value (the index). */
export const ANSWER_ENDS: readonly AnswerEnd[] = ["ack", "framing", "fin", "rst", "quiet", "route"];
/** Digest kinds by their wire value. */
export const DIGEST_KINDS: readonly DigestKind[] = ["http", "pg", "bytes"];

/** A {@link TargetAnswer} as the tunnel carries it: with the reason it ended. */
export interface TunnelAnswer extends TargetAnswer {
  end: AnswerEnd;
}

const F_V6 = 1, F_DIGEST = 2, F_BODY = 4, F_RESERVED = 8;
const U32 = 0x1_0000_0000;
/** The largest digest (compared, not computed per frame: BigInt.asUintN allocates). */
const MAX_U64 = 0xffff_ffff_ffff_ffffn;

function setU48(dv: DataView<ArrayBufferLike>, at: number, n: number): void {
  dv.setUint16(at, Math.floor(n / U32));
  dv.setUint32(at + 2, n >>> 0);
}

function getU48(dv: DataView<ArrayBufferLike>, at: number): number {
  return dv.getUint16(at) * U32 + dv.getUint32(at + 2);
}

// One DataView per buffer, kept while frames keep coming from the same buffer (intercept's
// reused frame, the tunnel client's read buffer): no DataView per frame.
let wdv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
let rdv = wdv;

function writerOf(buf: ArrayBufferLike): DataView<ArrayBufferLike> {
  if (wdv.buffer !== buf) wdv = new DataView(buf as ArrayBuffer);
  return wdv;
}

function readerOf(buf: ArrayBufferLike): DataView<ArrayBufferLike> {
  if (rdv.buffer !== buf) rdv = new DataView(buf as ArrayBuffer);
  return rdv;
}

/** Bytes of the whole frame for this answer (header included). */
export function answerFrameLength(a: TargetAnswer): number {
  const v6 = a.client.addr.length === 16;
  return 4 + (v6 ? ANSWER_HEADER_V6 : ANSWER_HEADER_V4) + a.summary.firstBytes.length;
}

/**
 * Encodes one answer as a whole frame (a new array; intercept writes into a reused one with
 * {@link writeAnswerFrame}). Throws a RangeError on impossible input, see there.
 */
export function encodeAnswerFrame(a: TunnelAnswer): Uint8Array {
  const out = new Uint8Array(answerFrameLength(a));
  writeAnswerFrame(a, out);
  return out;
}

/** Wire value of an end code (the index in {@link ANSWER_ENDS}). */
function endCode(end: AnswerEnd): number {
  switch (end) {
    case "ack":
      return 0;
    case "framing":
      return 1;
    case "fin":
      return 2;
    case "rst":
      return 3;
    case "quiet":
      return 4;
    case "route":
      return 5;
    default: {
      const never: never = end;
      throw new RangeError(`unknown answer end ${never}`);
    }
  }
}

/** Wire value of a digest kind (the index in {@link DIGEST_KINDS}). */
function kindCode(kind: DigestKind): number {
  switch (kind) {
    case "http":
      return 0;
    case "pg":
      return 1;
    case "bytes":
      return 2;
    default: {
      const never: never = kind;
      throw new RangeError(`unknown digest kind ${never}`);
    }
  }
}

/**
 * Writes one answer as a whole frame at `out[at...]` and returns its length
 * ({@link answerFrameLength}; `out` must hold it). Throws a RangeError on impossible input
 * (our own summaries never are): endpoints not both IPv4 or both IPv6, too many first bytes,
 * a digest outside 64 bits.
 *
 * `digestBytes` (intercept): when the summary has a digest, its 8 bytes big-endian (the
 * accumulator's `digestBytes` after `finishViewBytes`: no `bigint` per answer), written
 * instead of `summary.digest`, which is then only a placeholder.
 *
 * Per answer on intercept's hot path: no allocation, no array search, and a small body (it
 * is compiled by the JIT while the first answers wait).
 */
export function writeAnswerFrame(
  a: TunnelAnswer,
  out: Uint8Array,
  at = 0,
  digestBytes: Uint8Array | null = null,
): number {
  const s = a.summary;
  const ca = a.client.addr, ta = a.target.addr;
  const alen = ca.length;
  const first = s.firstBytes;
  const digest = s.digest;
  if (!sameFamily(ca, ta)) {
    throw new RangeError("answer endpoints must both be IPv4 or both IPv6");
  }
  if (first.length > MAX_COMPARE_BYTES) throw new RangeError("too many first bytes");
  if (digestBytes !== null) {
    if (digestBytes.length !== 8) throw new RangeError("digest bytes must be 8 bytes");
  } else if (digest !== null && (digest < 0n || digest > MAX_U64)) {
    throw new RangeError(`digest ${digest} is not a 64-bit value`);
  }
  const head = alen === 16 ? ANSWER_HEADER_V6 : ANSWER_HEADER_V4;
  const bodyLen = head + first.length;
  out[at] = ANSWER_FRAME_KIND;
  out[at + 1] = bodyLen >>> 16;
  out[at + 2] = (bodyLen >>> 8) & 0xff;
  out[at + 3] = bodyLen & 0xff;
  const b = at + 4; // the body's index in out
  out[b] = (alen === 16 ? F_V6 : 0) | (digest !== null ? F_DIGEST : 0) |
    (s.bodyLength !== null ? F_BODY : 0) | (endCode(a.end) << 4);
  out[b + 1] = kindCode(s.kind);
  const dv = writerOf(out.buffer);
  const o = out.byteOffset + b; // the body's offset in dv
  dv.setUint16(o + 2, a.part & 0xffff);
  dv.setUint16(o + 4, a.client.port);
  dv.setUint16(o + 6, a.target.port);
  dv.setUint32(o + 8, a.ack >>> 0);
  dv.setUint32(o + 12, a.seq >>> 0);
  setU48(dv, o + 16, s.totalLength);
  setU48(dv, o + 22, s.bodyLength ?? 0);
  dv.setUint32(o + 28, Math.min(s.gapBytes, U32 - 1));
  if (digestBytes === null) dv.setBigUint64(o + 32, digest ?? 0n);
  else if (digest === null) dv.setBigUint64(o + 32, 0n);
  else for (let i = 0; i < 8; i++) out[b + 32 + i] = digestBytes[i];
  for (let i = 0; i < alen; i++) {
    out[b + 40 + i] = ca[i];
    out[b + 40 + alen + i] = ta[i];
  }
  out.set(first, b + head);
  return 4 + bodyLen;
}

/**
 * Checks an ANSWER body `b[at, at + len)` against the layout; null when it is consistent, else
 * the reason. `maxFirst` is the N this side asked for.
 */
function answerBodyError(
  b: Uint8Array,
  at: number,
  len: number,
  maxFirst: number,
): string | null {
  if (len < ANSWER_HEADER_V4) return `answer of ${len} bytes`;
  const flags = b[at];
  const head = (flags & F_V6) !== 0 ? ANSWER_HEADER_V6 : ANSWER_HEADER_V4;
  if (len < head) return `IPv6 answer of ${len} bytes`;
  if (flags & F_RESERVED) return "answer with a reserved flag set";
  if (ANSWER_ENDS[flags >> 4] === undefined) return `answer end code ${flags >> 4}`;
  if (DIGEST_KINDS[b[at + 1]] === undefined) return `answer digest kind ${b[at + 1]}`;
  const dv = readerOf(b.buffer);
  const o = b.byteOffset + at; // the body's offset in dv
  const total = getU48(dv, o + 16);
  const gap = dv.getUint32(o + 28);
  const first = len - head;
  const hasDigest = (flags & F_DIGEST) !== 0, hasBody = (flags & F_BODY) !== 0;
  if (first > maxFirst) return `answer with ${first} first bytes (${maxFirst} asked for)`;
  if (first > total || gap > total) return "answer lengths beyond its total length";
  if (hasDigest !== (gap === 0) || hasBody !== (gap === 0)) {
    return "answer digest/body length present with gaps, or absent without";
  }
  if (hasBody && getU48(dv, o + 22) > total) return "answer body length beyond its total";
  return null;
}

/**
 * Decodes an ANSWER frame's body. `maxFirst` is the N this side asked for. With `copy` (the
 * default) the result owns its bytes and outlives `body`; without, its addresses and first
 * bytes are views of `body`, valid as long as `body` is. Returns a reason string for a body
 * that breaks the layout or is inconsistent (the caller counts it and goes on: the framing
 * itself was fine). The tunnel client's hot path uses {@link AnswerDecoder} instead.
 */
export function decodeAnswerBody(
  body: Uint8Array,
  maxFirst: number,
  copy = true,
): TunnelAnswer | string {
  const error = answerBodyError(body, 0, body.length, maxFirst);
  if (error !== null) return error;
  const flags = body[0];
  const v6 = (flags & F_V6) !== 0;
  const head = v6 ? ANSWER_HEADER_V6 : ANSWER_HEADER_V4;
  const alen = v6 ? 16 : 4;
  // both addresses and the first bytes in one copy (or none: views of the body)
  const rest = copy ? body.slice(40) : body;
  const at = copy ? 0 : 40;
  const dv = readerOf(body.buffer);
  const o = body.byteOffset;
  const client: AnswerEndpoint = {
    addr: rest.subarray(at, at + alen),
    port: dv.getUint16(o + 4),
  };
  const target: AnswerEndpoint = {
    addr: rest.subarray(at + alen, at + 2 * alen),
    port: dv.getUint16(o + 6),
  };
  // (latencies are tcpcopy's: not carried; the same shape as other summaries)
  const summary = emptySummary(rest.subarray(at + head - 40));
  const a: TunnelAnswer = { client, target, ack: 0, seq: 0, part: 0, summary, end: "ack" };
  readAnswerFields(body, 0, body.length, a);
  return a;
}

/** Fills `a`'s numbers, kind, end and summary fields (not its byte views) from a checked body. */
function readAnswerFields(b: Uint8Array, at: number, len: number, a: TunnelAnswer): void {
  readHeadFields(b, at, a);
  readSummaryFields(b, at, len, a);
}

/** Fills `a`'s pairing fields (ack, seq, part, end, ports) from a checked body. */
function readHeadFields(b: Uint8Array, at: number, a: TunnelAnswer): void {
  const dv = readerOf(b.buffer);
  const o = b.byteOffset + at;
  a.ack = dv.getUint32(o + 8);
  a.seq = dv.getUint32(o + 12);
  a.part = dv.getUint16(o + 2);
  a.end = ANSWER_ENDS[b[at] >> 4];
  a.client.port = dv.getUint16(o + 4);
  a.target.port = dv.getUint16(o + 6);
}

/** Fills `a.summary`'s lengths, kind, digest and flags (not its first bytes) from a checked body. */
function readSummaryFields(b: Uint8Array, at: number, len: number, a: TunnelAnswer): void {
  const flags = b[at];
  const head = (flags & F_V6) !== 0 ? ANSWER_HEADER_V6 : ANSWER_HEADER_V4;
  const dv = readerOf(b.buffer);
  const o = b.byteOffset + at;
  const total = getU48(dv, o + 16);
  const gap = dv.getUint32(o + 28);
  const s = a.summary;
  s.totalLength = total;
  s.gapBytes = gap;
  s.kind = DIGEST_KINDS[b[at + 1]];
  s.digest = (flags & F_DIGEST) !== 0 ? dv.getBigUint64(o + 32) : null;
  s.bodyLength = (flags & F_BODY) !== 0 ? getU48(dv, o + 22) : null;
  s.complete = gap === 0;
  s.truncated = total > len - head;
}

/**
 * Decodes ANSWER bodies into one reused {@link TunnelAnswer} (the tunnel client's hot path,
 * one per connection): no objects per answer but the view of its first bytes. The answer,
 * its endpoints and its summary are the decoder's and change with the next decode; the
 * addresses are the decoder's own arrays, the first bytes a view of the caller's buffer
 * (valid as long as it is). Keep a copy with {@link ownAnswer}.
 */
export class AnswerDecoder {
  readonly #v4 = [new Uint8Array(4), new Uint8Array(4)];
  readonly #v6 = [new Uint8Array(16), new Uint8Array(16)];
  readonly #answer: TunnelAnswer = {
    client: { addr: this.#v4[0], port: 0 },
    target: { addr: this.#v4[1], port: 0 },
    ack: 0,
    seq: 0,
    part: 0,
    summary: emptySummary(),
    end: "ack",
  };

  /**
   * The answer in `b[at, at + len)` (the body, after the frame's 4-byte header), or the
   * reason it is malformed (as {@link decodeAnswerBody}).
   */
  decode(b: Uint8Array, at: number, len: number, maxFirst: number): TunnelAnswer | string {
    const a = this.decodeHead(b, at, len, maxFirst);
    return typeof a === "string" ? a : this.decodeSummary(b, at, len);
  }

  /**
   * The first half of {@link decode}: the whole body is checked, but only what pairs the
   * answer with a turn is read (endpoints, ack, seq, part, end); its summary is left as it was
   * (the previous answer's) until {@link decodeSummary} with the same bytes. An answer nobody
   * waits for (its turn was skipped) then costs no digest `bigint` and no view of its first
   * bytes.
   */
  decodeHead(b: Uint8Array, at: number, len: number, maxFirst: number): TunnelAnswer | string {
    const error = answerBodyError(b, at, len, maxFirst);
    if (error !== null) return error;
    const a = this.#answer;
    const v6 = (b[at] & F_V6) !== 0;
    const pair = v6 ? this.#v6 : this.#v4;
    const alen = v6 ? 16 : 4;
    const c = pair[0], t = pair[1];
    for (let i = 0; i < alen; i++) {
      c[i] = b[at + 40 + i];
      t[i] = b[at + 40 + alen + i];
    }
    a.client.addr = c;
    a.target.addr = t;
    readHeadFields(b, at, a);
    return a;
  }

  /** The second half of {@link decode}: the summary of the body {@link decodeHead} just read. */
  decodeSummary(b: Uint8Array, at: number, len: number): TunnelAnswer {
    const a = this.#answer;
    const alen = (b[at] & F_V6) !== 0 ? 16 : 4;
    a.summary.firstBytes = b.subarray(at + 40 + 2 * alen, at + len);
    readSummaryFields(b, at, len, a);
    return a;
  }
}

/** A copy of `a` that owns its bytes (for keeping an answer received as views). */
export function ownAnswer<T extends TargetAnswer>(a: T): T {
  const s = a.summary;
  return {
    ...a,
    client: { addr: a.client.addr.slice(), port: a.client.port },
    target: { addr: a.target.addr.slice(), port: a.target.port },
    summary: { ...s, firstBytes: s.firstBytes.slice() },
  };
}
