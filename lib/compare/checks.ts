/**
 * Checks every comparator ends with: lengths and digests of two answer summaries. Each
 * returns a mismatch, or null when equal or when it cannot tell (then `partial` is set on
 * the {@link Partial} flag object).
 *
 * @module
 */

import type { AnswerSummary } from "./answer.ts";
import { digestText } from "./digest.ts";
import { bytesHint, valueHint } from "./printable.ts";
import { type CompareResult, matched, mismatch } from "./result.ts";

/** Set when a check could not be made (gaps, a cut answer, different digest kinds). */
export interface Partial {
  partial: boolean;
}

/** Total lengths (gaps included), unless a side ran out of time. */
export function totalLengthCheck(
  o: AnswerSummary,
  t: AnswerSummary,
  p: Partial,
): CompareResult | null {
  if (o.timedOut || t.timedOut) {
    p.partial = true;
    return null;
  }
  if (o.totalLength === t.totalLength) return null;
  const short = Math.min(o.firstBytes.length, t.firstBytes.length);
  const located = short === Math.min(o.totalLength, t.totalLength);
  const hint = located
    ? bytesHint("length", o.firstBytes, t.firstBytes, short)
    : valueHint("length", String(o.totalLength), String(t.totalLength));
  return mismatch("length", hint);
}

/** Content lengths (HTTP: decoded bodies), when both are known. */
export function bodyLengthCheck(
  o: AnswerSummary,
  t: AnswerSummary,
  p: Partial,
): CompareResult | null {
  if (!o.complete || !t.complete || o.bodyLength === null || t.bodyLength === null) {
    p.partial = true;
    return null;
  }
  if (o.bodyLength === t.bodyLength) return null;
  return mismatch("length", valueHint("length", String(o.bodyLength), String(t.bodyLength)));
}

/** Digests, when both are known and of the same kind. */
export function digestCheck(
  o: AnswerSummary,
  t: AnswerSummary,
  p: Partial,
): CompareResult | null {
  if (!o.complete || !t.complete || o.digest === null || t.digest === null || o.kind !== t.kind) {
    p.partial = true;
    return null;
  }
  if (o.digest === t.digest) return null;
  return mismatch("body", valueHint("digest", digestText(o.digest), digestText(t.digest)));
}

/** Runs `checks` in order: the first mismatch, else a match (partial if any check was). */
export function firstMismatch(
  p: Partial,
  ...checks: (() => CompareResult | null)[]
): CompareResult {
  for (const check of checks) {
    const r = check();
    if (r) return r;
  }
  return matched(p.partial);
}
