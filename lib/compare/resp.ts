/**
 * The Redis RESP comparator (RESP2 and RESP3 replies): the reply type, then its first line
 * (a simple value, an error, an integer; a bulk string's length; an aggregate's count), then
 * the first bytes, the total length and the digest of all bytes (bulk strings longer than the
 * first bytes are compared by length and digest).
 *
 * @module
 */

import type { AnswerSummary } from "./answer.ts";
import { compareBytes } from "./bytes.ts";
import { lineExcerpt, printable } from "./printable.ts";
import { type CompareResult, mismatch } from "./result.ts";

/** Types whose first line is a length or a count rather than a value. */
const SIZED = "$!=*%~>|";

/** The reply's first line without its type byte (bounded by the first bytes), or null. */
function firstLine(b: Uint8Array): string | null {
  for (let i = 1; i < b.length; i++) {
    if (b[i] === 0x0d || b[i] === 0x0a) return printable(b, 1, Math.min(i, 65));
  }
  return null;
}

/** Compares two RESP replies; see the module comment. */
export function compareResp(o: AnswerSummary, t: AnswerSummary): CompareResult {
  const a = o.firstBytes, b = t.firstBytes;
  if (a.length > 0 && b.length > 0 && a[0] !== b[0]) {
    return mismatch("type", {
      offset: 0,
      what: "type",
      online: lineExcerpt(a, 0),
      target: lineExcerpt(b, 0),
    });
  }
  const la = firstLine(a), lb = firstLine(b);
  if (a.length > 0 && la !== null && lb !== null && la !== lb) {
    const sized = SIZED.indexOf(String.fromCharCode(a[0])) >= 0;
    return mismatch(sized ? "length" : "body", {
      offset: 1,
      what: sized ? (a[0] === 0x24 ? "bulk length" : "count") : "value",
      online: lineExcerpt(a, 0),
      target: lineExcerpt(b, 0),
    });
  }
  return compareBytes(o, t);
}

/** A short status for records: the reply's first line ("+OK", "-ERR ...", "$5"), or "". */
export function respStatus(s: AnswerSummary): string {
  return s.firstBytes.length === 0 ? "" : lineExcerpt(s.firstBytes, 0).slice(0, 32);
}
