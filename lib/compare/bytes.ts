/**
 * The generic comparator (`--compare-proto bytes`): the exact first N bytes, then the total
 * length, then the digest of all bytes.
 *
 * @module
 */

import type { AnswerSummary } from "./answer.ts";
import { digestCheck, firstMismatch, type Partial, totalLengthCheck } from "./checks.ts";
import { bytesHint, firstDifference } from "./printable.ts";
import { type CompareResult, mismatch } from "./result.ts";

/** Compares two answers byte for byte (first bytes), by length and by digest. */
export function compareBytes(o: AnswerSummary, t: AnswerSummary): CompareResult {
  const p: Partial = { partial: false };
  return firstMismatch(
    p,
    () => firstBytesCheck(o.firstBytes, t.firstBytes),
    () => totalLengthCheck(o, t, p),
    () => digestCheck(o, t, p),
  );
}

/** The first difference within the common length of two byte strings, as a `body` mismatch. */
export function firstBytesCheck(a: Uint8Array, b: Uint8Array, what = "body"): CompareResult | null {
  const off = firstDifference(a, b);
  return off < 0 ? null : mismatch("body", bytesHint(what, a, b, off));
}
