/**
 * The answer digest's fast path for HTTP (issue 15 cost): most answers are one whole response
 * with a Content-Length, all of it in the first bytes (often one packet). {@link wholeResponse}
 * reads such an answer in one pass over its head, without the streaming parser
 * (http_stream.ts): no line copies, no parser state, and none of the parser's code to compile
 * in a short-lived process. It returns where the body starts when the streaming parser would
 * find exactly one response ending exactly at the end of the bytes, with the same body (so the
 * same digest, body length and `atMessageEnd`); anything else (a cut head, 1xx/101, chunked or
 * any Transfer-Encoding, no Content-Length, a bad framing header, bytes after the response, a
 * head over the parser's limits) is -1 and the streaming parser runs as before.
 * tests/unit/compare_http_whole.test.ts holds it to the parser on many answers.
 *
 * @module
 */

import { MAX_HEAD_BYTES, MAX_HEAD_LINES, statusCode } from "./http_stream.ts";

const CR = 13, LF = 10, COLON = 0x3a;
/** The streaming parser's framing-line cap (longer Content-Length lines are errors there). */
const FRAMING_LINE = 256;

/**
 * Where the body of the one response in `b[0, n)` starts (its end is `n`), or -1 when the
 * streaming parser is needed (see the module comment).
 */
export function wholeResponse(b: Uint8Array, n: number): number {
  let i = 0, headBytes = 0, lines = 0, code = -1, length = -1;
  while (i < n) {
    let e = i;
    while (e < n && b[e] !== LF) e++;
    if (e === n) return -1; // the head is cut
    const len = e > i && b[e - 1] === CR ? e - i - 1 : e - i;
    headBytes += len + 2;
    lines++;
    if (headBytes > MAX_HEAD_BYTES || lines > MAX_HEAD_LINES) return -1;
    if (code < 0) {
      // the status line (no empty line before it: the parser tolerates them, this leaves them)
      if (len === 0) return -1;
      code = statusCode(b, Math.min(len, FRAMING_LINE));
      if (code < 0 || (code >= 100 && code < 200)) return -1;
    } else if (len === 0) {
      return bodyStart(code, length, e + 1, n);
    } else if (mayBeFraming(b[i])) {
      const v = framing(b, i, len);
      if (v === -2) return -1; // Transfer-Encoding or a bad framing line
      if (v >= 0) {
        if (length >= 0 && length !== v) return -1;
        length = v;
      }
    }
    i = e + 1;
  }
  return -1;
}

/** The body's start when the response ends at `n`, or -1 (see {@link wholeResponse}). */
function bodyStart(code: number, length: number, at: number, n: number): number {
  if (code === 204 || code === 304) return at === n ? at : -1;
  if (length < 0) return -1; // until the end of the stream: the parser's "raw"
  return at + length === n ? at : -1;
}

/** A header line starting with `c` may name Content-Length or Transfer-Encoding. */
function mayBeFraming(c: number): boolean {
  const l = c | 0x20;
  return l === 0x63 || l === 0x74;
}

/**
 * The header line `b[at, at + len)`: its Content-Length value, -1 when it is not a framing
 * header, -2 for Transfer-Encoding or a framing header the parser rejects.
 */
function framing(b: Uint8Array, at: number, len: number): number {
  const kept = Math.min(len, FRAMING_LINE);
  let colon = at;
  const end = at + kept;
  while (colon < end && b[colon] !== COLON) colon++;
  if (colon === end) return -1;
  const name = colon - at;
  if (name === 17 && nameIs(b, at, "transfer-encoding")) return -2;
  if (name !== 14 || !nameIs(b, at, "content-length")) return -1;
  if (len > FRAMING_LINE) return -2;
  let vs = colon + 1, ve = at + len;
  while (vs < ve && (b[vs] === 0x20 || b[vs] === 0x09)) vs++;
  while (ve > vs && (b[ve - 1] === 0x20 || b[ve - 1] === 0x09)) ve--;
  if (ve <= vs || ve - vs > 15) return -2;
  let v = 0;
  for (let k = vs; k < ve; k++) {
    const d = b[k] - 48;
    if (d < 0 || d > 9) return -2;
    v = v * 10 + d;
  }
  return v;
}

/** `b[at, at + name.length)` is `name` (lowercase ASCII), case-insensitively. */
function nameIs(b: Uint8Array, at: number, name: string): boolean {
  for (let k = 0; k < name.length; k++) if ((b[at + k] | 0x20) !== name.charCodeAt(k)) return false;
  return true;
}
