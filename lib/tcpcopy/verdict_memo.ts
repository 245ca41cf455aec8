/**
 * The last verdict `--compare` computed with a comparator, kept with everything it was computed
 * from (issue 15 cost). A keep-alive load mostly repeats itself: the same resource answered with
 * the same bytes on each side until a `Date` header moves on a second, so consecutive turns bring
 * the same pair of answers that differ only in ignored headers, and every one of them ran the
 * comparator (both heads scanned), and the online answer held unparsed was parsed and digested.
 *
 * `compareTurn` is a pure function of the turn's protocol and the two summaries (not their
 * latencies); the summaries' compared fields are their first bytes, lengths, kind, digest, body
 * length and flags. {@link VerdictMemo.verdictFor} gives the kept verdict when all of them are
 * equal, and {@link VerdictMemo.completeHeld} an online answer held unparsed the kind, digest and
 * body length of the kept online answer when their first bytes are the same whole answer (the
 * same bytes through the same code give the same values: the argument `finishShared` rests on).
 * tests/unit/compare_verdict_memo.test.ts holds a comparer with the memo to one without on random
 * keep-alive exchanges.
 *
 * Memory: two buffers of `--compare-bytes`, allocated once; no allocation per turn. Answers
 * that never repeat cost a failed comparison per verdict (bench/compare_memo.ts); after
 * {@link MISSES_BEFORE_SPARING} of them in a row only every {@link KEEP_EVERY}th verdict is
 * kept (its copies spared), so a load that starts repeating is found again.
 *
 * @module
 */

import type { AnswerSummary } from "../compare/answer.ts";
import type { TurnVerdict } from "../compare/compare.ts";
import type { Proto } from "../compare/sniff.ts";
import type { DigestKind } from "../compare/sniff.ts";
import { sameBytes } from "../compare/same_bytes.ts";

/** One side's summary as far as a comparator reads it, with its first bytes copied. */
class KeptSide {
  readonly bytes: Uint8Array;
  length = 0;
  totalLength = 0;
  gapBytes = 0;
  kind: DigestKind = "bytes";
  digest: bigint | null = null;
  bodyLength: number | null = null;
  timedOut = false;
  complete = false;
  truncated = false;

  constructor(n: number) {
    this.bytes = new Uint8Array(n);
  }

  keep(s: AnswerSummary): void {
    const fb = s.firstBytes;
    this.bytes.set(fb);
    this.length = fb.length;
    this.totalLength = s.totalLength;
    this.gapBytes = s.gapBytes;
    this.kind = s.kind;
    this.digest = s.digest;
    this.bodyLength = s.bodyLength;
    this.timedOut = s.timedOut;
    this.complete = s.complete;
    this.truncated = s.truncated;
  }

  /** `s` has these first bytes and lengths (its kind, digest and body length aside). */
  sameBytesAs(s: AnswerSummary): boolean {
    const fb = s.firstBytes, n = this.length;
    // (the last byte first: answers that start alike mostly differ in their bodies)
    return s.totalLength === this.totalLength && s.gapBytes === this.gapBytes &&
      fb.length === n && (n === 0 || fb[n - 1] === this.bytes[n - 1]) &&
      sameBytes(this.bytes, 0, n, fb, 0, n);
  }

  /** `s` is this summary for every comparator. */
  same(s: AnswerSummary): boolean {
    return s.kind === this.kind && s.digest === this.digest && s.bodyLength === this.bodyLength &&
      s.timedOut === this.timedOut && s.complete === this.complete &&
      s.truncated === this.truncated && this.sameBytesAs(s);
  }
}

/**
 * Verdicts the memo did not hold in a row after which it keeps only every {@link KEEP_EVERY}th
 * (answers that never repeat: the copies of both first bytes would be spent for nothing).
 */
const MISSES_BEFORE_SPARING = 16;
const KEEP_EVERY = 16;

/** See the module comment. */
export class VerdictMemo {
  readonly #online: KeptSide;
  readonly #target: KeptSide;
  #proto: Proto | null = null;
  #verdict: TurnVerdict | null = null;
  /** Comparator verdicts since the memo last gave one. */
  #misses = 0;

  /** `firstBytes`: `--compare-bytes` (the longest first bytes a summary has). */
  constructor(firstBytes: number) {
    this.#online = new KeptSide(firstBytes);
    this.#target = new KeptSide(firstBytes);
  }

  /**
   * Fills in `s`, an online summary held unparsed (its first bytes are its whole answer, its
   * kind, digest and body length placeholders), from the kept online answer when that was the
   * same whole answer; false (nothing changed) otherwise.
   */
  completeHeld(s: AnswerSummary): boolean {
    const o = this.#online;
    if (
      this.#verdict === null || o.gapBytes !== 0 || o.totalLength !== o.length ||
      o.digest === null || !o.sameBytesAs(s)
    ) return false;
    s.kind = o.kind;
    s.digest = o.digest;
    s.bodyLength = o.bodyLength;
    return true;
  }

  /**
   * The kept verdict when `compareTurn` would give it for a turn of request protocol `proto`
   * (`PendingTurn.proto`) with these two answers, else null.
   */
  verdictFor(
    proto: Proto | null,
    online: AnswerSummary,
    target: AnswerSummary,
  ): TurnVerdict | null {
    const v = this.#verdict;
    if (
      v === null || proto !== this.#proto || !this.#online.same(online) ||
      !this.#target.same(target)
    ) {
      this.#misses++;
      return null;
    }
    this.#misses = 0;
    return v;
  }

  /** Keeps `verdict`, computed by `compareTurn` for these answers. */
  keep(
    proto: Proto | null,
    online: AnswerSummary,
    target: AnswerSummary,
    verdict: TurnVerdict,
  ): void {
    const m = this.#misses;
    if (m >= MISSES_BEFORE_SPARING && m % KEEP_EVERY !== 0) return; // (the kept one stays)
    this.#proto = proto;
    this.#online.keep(online);
    this.#target.keep(target);
    this.#verdict = verdict;
  }
}
