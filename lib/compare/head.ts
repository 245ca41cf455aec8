/**
 * A request's head as text: what records show (`requestHead`) and what the top-mismatches
 * table groups by (`requestKey`). Bounded and escaped: request bytes are hostile.
 *
 * @module
 */

import { printable } from "./printable.ts";
import { isHttpRequest, isRespRequest } from "./sniff.ts";

/** Most source bytes of a head. */
export const HEAD_MAX = 200;
/** Most source bytes of a key. */
export const KEY_MAX = 96;

/** End of the first line of `b` (CR or LF), at most `max`. */
function lineEnd(b: Uint8Array, max: number): number {
  let i = 0;
  while (i < b.length && i < max && b[i] !== 0x0d && b[i] !== 0x0a) i++;
  return i;
}

/** A RESP command's words ("GET key"), at most `words`, or null when it is not one. */
function respWords(b: Uint8Array, words: number, max: number): string | null {
  const out: string[] = [];
  let i = lineEnd(b, 32) + 2; // after "*N\r\n"
  while (out.length < words && i < b.length && b[i] === 0x24) {
    const e = i + lineEnd(b.subarray(i), 16);
    const n = Number(printable(b, i + 1, e));
    if (!Number.isInteger(n) || n < 0) break;
    out.push(printable(b, e + 2, Math.min(e + 2 + n, e + 2 + max, b.length)));
    i = e + 2 + n + 2;
  }
  return out.length > 0 ? out.join(" ") : null;
}

/** A pg simple query's text (`Q`), or null. */
function pgQuery(b: Uint8Array, max: number): string | null {
  if (b.length < 6 || b[0] !== 0x51 || b[1] !== 0) return null;
  let e = 5;
  while (e < b.length && e < 5 + max && b[e] !== 0) e++;
  return printable(b, 5, e);
}

/** The request as one printable line: HTTP request line, RESP words, pg query, or bytes. */
export function requestHead(b: Uint8Array | null): string {
  if (!b || b.length === 0) return "";
  if (isHttpRequest(b)) return printable(b, 0, lineEnd(b, HEAD_MAX));
  if (isRespRequest(b)) return respWords(b, 8, HEAD_MAX) ?? printable(b, 0, 32);
  return pgQuery(b, HEAD_MAX) ?? printable(b, 0, lineEnd(b, 64));
}

/** The group a request belongs to: "GET /path" (no query), the RESP command, the pg query. */
export function requestKey(b: Uint8Array | null): string {
  if (!b || b.length === 0) return "";
  if (isHttpRequest(b)) {
    const end = lineEnd(b, KEY_MAX);
    let sp = 0;
    while (b[sp] !== 0x20) sp++;
    let q = sp + 1;
    while (q < end && b[q] !== 0x3f && b[q] !== 0x20) q++;
    return printable(b, 0, q);
  }
  if (isRespRequest(b)) return (respWords(b, 1, 32) ?? "").toUpperCase();
  return pgQuery(b, KEY_MAX) ?? printable(b, 0, lineEnd(b, 16));
}
