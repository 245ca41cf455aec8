/**
 * The HTTP comparator's fast path (issue 15 cost): most answer pairs are equal but for ignored
 * headers (`Date`, `Server` ...), and telling so needs no strings, no parser object and no
 * body copy. {@link sameHttpHeads} scans both answers' first bytes once and says `true` only
 * when the full checks (status, headers minus the ignore list, body first bytes, http.ts)
 * would all find nothing; anything unusual (several responses, 1xx/204/304, chunked or no
 * Content-Length, a cut head, bare LF, odd header names, fields in another order) is `false`
 * and the full checks run. Pure; bounded by the first bytes' length.
 *
 * @module
 */

import { MAX_HEAD_LINES, statusCode } from "./http_stream.ts";
import { sameBytes } from "./same_bytes.ts";

/** One side's scan: status code and the non-ignored fields as byte ranges. */
class Head {
  code = -1;
  /** Per field: name start, name end, value start, value end (trimmed). */
  ranges = new Int32Array(4 * 64);
  fields = 0;
  /** Where the body starts and how many body bytes the first bytes may hold. */
  bodyAt = 0;
  bodyEnd = 0;

  push(ns: number, ne: number, vs: number, ve: number): void {
    if (4 * this.fields + 4 > this.ranges.length) {
      const r = new Int32Array(this.ranges.length * 2);
      r.set(this.ranges);
      this.ranges = r;
    }
    const r = this.ranges, k = 4 * this.fields++;
    r[k] = ns, r[k + 1] = ne, r[k + 2] = vs, r[k + 3] = ve;
  }
}

// Scratch heads, reused (the comparator runs synchronously, one pair at a time).
const A = new Head(), B = new Head();

/** True when `b[from, to)` is `name` (lowercase ASCII) as the parser's framing test says. */
function nameIs(b: Uint8Array, from: number, to: number, name: string): boolean {
  if (to - from !== name.length) return false;
  for (let i = 0; i < name.length; i++) {
    if ((b[from + i] | 0x20) !== name.charCodeAt(i)) return false;
  }
  return true;
}

/** Like `String.prototype.toLowerCase` on an ASCII byte: letters only. */
function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/** The name `b[from, to)` lowercased is one of `ignore` (what http.ts's Set lookup says). */
function ignored(b: Uint8Array, from: number, to: number, ignore: readonly string[]): boolean {
  for (let k = 0; k < ignore.length; k++) {
    const name = ignore[k];
    if (to - from !== name.length) continue;
    let i = 0;
    while (i < name.length && lower(b[from + i]) === name.charCodeAt(i)) i++;
    if (i === name.length) return true;
  }
  return false;
}

/** A header name the full path turns into the same lowercase string: plain ASCII, no `\`. */
function plainName(b: Uint8Array, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = b[i];
    if (c <= 0x20 || c >= 0x7f || c === 0x5c) return false;
  }
  return true;
}

/** Decimal `b[from, to)` (1 to 15 digits) or -1. */
function decimal(b: Uint8Array, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = b[i];
    if (c < 48 || c > 57) return -1;
    n = n * 10 + c - 48;
  }
  return n;
}

/** Is `c` a space or a tab (what the parser's trimRange removes)? */
function blank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Scans one simple response (CRLF lines, one Content-Length, no Transfer-Encoding, a 2xx-5xx
 * status other than 204/304, the head complete and nothing after the first response) into
 * `h`; false for anything else. Offsets only: no view, no array per line.
 */
function scan(b: Uint8Array, h: Head, ignore: readonly string[], framing: readonly string[]) {
  h.fields = 0;
  let at = 0, lines = 0, length = -1;
  for (;;) {
    let lf = at;
    while (lf < b.length && b[lf] !== 0x0a) lf++;
    if (lf >= b.length || lf === at || b[lf - 1] !== 0x0d) return false; // cut head, bare LF
    const end = lf - 1;
    if (++lines > MAX_HEAD_LINES) return false;
    if (lines === 1) {
      const code = statusCode(b, end); // the first line starts at 0
      if (code < 200 || code === 204 || code === 304) return false;
      h.code = code;
    } else if (end === at) {
      h.bodyAt = lf + 1;
      break;
    } else {
      let colon = at;
      while (colon < end && b[colon] !== 0x3a) colon++;
      if (colon === end) return false;
      // a plain name has no space or tab: the parser's trimmed name is the same bytes
      // (the parser reads framing from the untrimmed name)
      if (!plainName(b, at, colon)) return false;
      let vs = colon + 1, ve = end;
      while (vs < ve && blank(b[vs])) vs++;
      while (ve > vs && blank(b[ve - 1])) ve--;
      if (nameIs(b, at, colon, "transfer-encoding")) return false;
      if (nameIs(b, at, colon, "content-length")) {
        const n = end - at > 256 ? -1 : decimal(b, vs, ve);
        if (n < 0 || (length >= 0 && n !== length)) return false;
        length = n;
      }
      if (!ignored(b, at, colon, ignore) && !ignored(b, at, colon, framing)) {
        h.push(at, colon, vs, ve);
      }
    }
    at = lf + 1;
  }
  if (length < 0 || b.length - h.bodyAt > length) return false; // no framing, or more answers
  h.bodyEnd = b.length;
  return true;
}

function sameNames(a: Uint8Array, af: number, at: number, b: Uint8Array, bf: number, bt: number) {
  if (at - af !== bt - bf) return false;
  for (let i = 0; i < at - af; i++) {
    if (lower(a[af + i]) !== lower(b[bf + i])) return false;
  }
  return true;
}

/**
 * True when two answers' first bytes are simple responses with the same status, the same
 * non-ignored fields in the same order and equal body bytes in their common length: then
 * the status, header and body-bytes checks of the full comparator all pass. False: run them.
 * `ignore` and `framing`: lowercase header names left out.
 */
export function sameHttpHeads(
  ob: Uint8Array,
  tb: Uint8Array,
  ignore: readonly string[],
  framing: readonly string[],
): boolean {
  if (!scan(ob, A, ignore, framing) || !scan(tb, B, ignore, framing)) return false;
  if (A.code !== B.code || A.fields !== B.fields) return false;
  const ra = A.ranges, rb = B.ranges;
  for (let k = 0; k < 4 * A.fields; k += 4) {
    if (!sameNames(ob, ra[k], ra[k + 1], tb, rb[k], rb[k + 1])) return false;
    if (!sameBytes(ob, ra[k + 2], ra[k + 3], tb, rb[k + 2], rb[k + 3])) return false;
  }
  const n = Math.min(A.bodyEnd - A.bodyAt, B.bodyEnd - B.bodyAt);
  return sameBytes(ob, A.bodyAt, A.bodyAt + n, tb, B.bodyAt, B.bodyAt + n);
}

/**
 * True when `a` and `b` hold the same bytes (at once for one view: tcpcopy lets both sides of
 * a turn share their first bytes when they are equal).
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a === b || sameBytes(a, 0, a.length, b, 0, b.length);
}
