/**
 * Guessing the protocol of a transfer (`--compare-proto auto`) from a request's and an
 * answer's first bytes, and the digest mode of an answer from its own first bytes (what
 * intercept can do: it sees answers only).
 *
 * @module
 */

/** A comparator (`--compare-proto` without `auto`). */
export type Proto = "http" | "resp" | "pg" | "bytes";
/** `--compare-proto` values. */
export type CompareProto = "auto" | Proto;
/** Every `--compare-proto` value, for the flag's parser and help. */
export const COMPARE_PROTOS: readonly CompareProto[] = ["auto", "http", "resp", "pg", "bytes"];

/** How an answer is digested: HTTP bodies, pg compared parts, or all bytes. */
export type DigestKind = "http" | "pg" | "bytes";
/** Answer bytes the digest-mode decision looks at (the same on both sides). */
export const SNIFF_BYTES = 16;

/** PostgreSQL backend message types. */
const PG_BACKEND = "RSKZTDCEINAGHWdcVtnsv123";
/** PostgreSQL frontend message types (after the startup message). */
const PG_FRONTEND = "QPBEDSCXFHdcfp";
/** RESP (2 and 3) reply type bytes. */
const RESP_TYPES = "+-:$*_,#!=(%~>|";

function has(set: string, byte: number | undefined): boolean {
  return byte !== undefined && set.indexOf(String.fromCharCode(byte)) >= 0;
}

function int32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

/** An HTTP/1.x response ("HTTP/1."). */
export function isHttpAnswer(b: Uint8Array): boolean {
  // "HTTP/1." byte by byte (once per answer on both sides: no string walk)
  return b.length >= 7 && b[0] === 0x48 && b[1] === 0x54 && b[2] === 0x54 && b[3] === 0x50 &&
    b[4] === 0x2f && b[5] === 0x31 && b[6] === 0x2e;
}

/** An HTTP/1.x request: an uppercase method of 3 to 16 letters, a space, a target. */
export function isHttpRequest(b: Uint8Array): boolean {
  let i = 0;
  while (i < b.length && i < 17 && b[i] >= 0x41 && b[i] <= 0x5a) i++;
  return i >= 3 && i <= 16 && b[i] === 0x20 && i + 1 < b.length && b[i + 1] > 0x20;
}

/** A RESP reply: a type byte, then a line ending in CRLF (or the bytes run out first). */
export function isRespAnswer(b: Uint8Array): boolean {
  return has(RESP_TYPES, b[0]) && lineOk(b);
}

/** A RESP command: `*<digits>\r\n` (an array of bulk strings). */
export function isRespRequest(b: Uint8Array): boolean {
  return b[0] === 0x2a && b.length > 1 && b[1] >= 0x30 && b[1] <= 0x39 && lineOk(b);
}

/** The first line is printable up to its CRLF (or the end of the first 64 bytes). */
function lineOk(b: Uint8Array): boolean {
  for (let i = 1; i < Math.min(b.length, 64); i++) {
    if (b[i] === 0x0d) return b[i + 1] === 0x0a || i + 1 === b.length;
    if (b[i] < 0x20 || b[i] > 0x7e) return false;
  }
  return true;
}

/** Plausible pg framing: a known type byte, a length of 4 to 16 MiB, the next type known. */
function pgFraming(b: Uint8Array, types: string, window: number): boolean {
  if (b.length < 5 || !has(types, b[0]) || b[1] !== 0) return false;
  const len = int32(b, 1);
  if (len < 4) return false;
  const next = 1 + len;
  return next >= Math.min(b.length, window) || has(types, b[next]);
}

/** A PostgreSQL backend message stream (judged on the first {@link SNIFF_BYTES}). */
export function isPgAnswer(b: Uint8Array): boolean {
  return pgFraming(b.subarray(0, SNIFF_BYTES), PG_BACKEND, SNIFF_BYTES);
}

/** A PostgreSQL startup/SSL/cancel request or a frontend message. */
export function isPgRequest(b: Uint8Array): boolean {
  if (b.length >= 8 && b[0] === 0 && int32(b, 0) >= 8 && int32(b, 0) <= 10000) {
    const code = int32(b, 4);
    if (code === 196608 || (code >= 80877102 && code <= 80877104)) return true;
  }
  return pgFraming(b, PG_FRONTEND, 64);
}

/** The digest mode for an answer: from its first {@link SNIFF_BYTES} bytes only. */
export function digestKindOf(answer: Uint8Array): DigestKind {
  if (isHttpAnswer(answer)) return "http"; // (its 7 bytes are within SNIFF_BYTES)
  if (isPgAnswer(answer)) return "pg"; // (judges the first SNIFF_BYTES itself)
  return "bytes";
}

/**
 * The comparator for a turn under `auto`: the request decides when it is recognised
 * (HTTP method, RESP array, pg startup or frontend message), else the answer does.
 */
export function sniffProto(request: Uint8Array | null, answer: Uint8Array | null): Proto {
  return requestProto(request) ?? answerProto(answer);
}

/**
 * {@link sniffProto}'s first half: the comparator a request names, or null when it names none
 * (tcpcopy sniffs each request once, while its bytes are fresh, and keeps the result).
 */
export function requestProto(request: Uint8Array | null): Proto | null {
  if (request && request.length > 0) {
    if (isHttpRequest(request)) return "http";
    if (isRespRequest(request)) return "resp";
    if (isPgRequest(request)) return "pg";
  }
  return null;
}

/** {@link sniffProto}'s second half: the comparator an answer's first bytes name. */
export function answerProto(answer: Uint8Array | null): Proto {
  if (answer && answer.length > 0) {
    if (isHttpAnswer(answer)) return "http";
    if (isPgAnswer(answer)) return "pg";
    if (isRespAnswer(answer)) return "resp";
  }
  return "bytes";
}

/** The digest mode an explicit comparator asks intercept for (`auto` sniffs each answer). */
export function digestModeFor(proto: CompareProto): DigestKind | "auto" {
  switch (proto) {
    case "http":
    case "pg":
    case "bytes":
      return proto;
    case "resp":
      return "bytes";
    case "auto":
      return "auto";
    default: {
      const never: never = proto;
      throw new Error(`unknown proto ${never}`);
    }
  }
}
