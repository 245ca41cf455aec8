/**
 * Comparison counters for the stats line's `compare` object, Prometheus and the exit
 * summary: turns compared, matched, mismatched by reason, skipped (over budget), latency
 * histograms online and target (first answer byte), their ratio, and the top mismatching
 * request keys. Fixed memory.
 *
 * @module
 */

import type { AnswerSummary } from "./answer.ts";
import { LatencyHistogram, type LatencySummary } from "./histogram.ts";
import { type CompareResult, MISMATCH_REASONS, type MismatchReason } from "./result.ts";
import { type TopEntry, TopK } from "./topk.ts";

/** Target/online latency ratios per percentile (null when a side has no data or 0). */
export interface LatencyRatio {
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

/** The stats line's `compare` object. */
export interface CompareSnapshot {
  compared: number;
  matched: number;
  /** Matches with checks left out (gaps, cut answers). */
  partial: number;
  mismatched: Record<MismatchReason, number>;
  /** Comparisons not made (over budget); replication went on. */
  skipped: number;
  latencyMs: { online: LatencySummary; target: LatencySummary };
  ratio: LatencyRatio;
}

/** Counters of one tcpcopy (mergeable through its histograms). */
export class CompareStats {
  compared = 0;
  matched = 0;
  partial = 0;
  skipped = 0;
  readonly mismatched = Object.fromEntries(MISMATCH_REASONS.map((r) => [r, 0])) as Record<
    MismatchReason,
    number
  >;
  readonly online = new LatencyHistogram();
  readonly target = new LatencyHistogram();
  readonly top: TopK;

  /** `topCapacity`: slots of the top-mismatches table (reports up to that many keys). */
  constructor(topCapacity = 64) {
    this.top = new TopK(topCapacity);
  }

  /** Counts one compared turn; `key` (the request key) feeds the top table on a mismatch. */
  add(
    result: CompareResult,
    online: AnswerSummary | null,
    target: AnswerSummary | null,
    key = "",
  ): void {
    this.compared++;
    if (result.match) {
      this.matched++;
      if (result.partial) this.partial++;
    } else {
      this.mismatched[result.reason]++;
      this.top.add(key);
    }
    if (online?.firstMs !== undefined) this.online.record(online.firstMs);
    if (target?.firstMs !== undefined) this.target.record(target.firstMs);
  }

  /** Counts `n` turns not compared (state over budget). */
  skip(n = 1): void {
    this.skipped += n;
  }

  /** Mismatches of every reason. */
  get mismatchedTotal(): number {
    let n = 0;
    for (const r of MISMATCH_REASONS) n += this.mismatched[r];
    return n;
  }

  /** Mismatched / compared (0 when nothing was compared): `--compare-fail-above`'s input. */
  get mismatchRatio(): number {
    return this.compared === 0 ? 0 : this.mismatchedTotal / this.compared;
  }

  /** The `compare` object of the stats line. */
  snapshot(): CompareSnapshot {
    const online = this.online.summary(), target = this.target.summary();
    return {
      compared: this.compared,
      matched: this.matched,
      partial: this.partial,
      mismatched: { ...this.mismatched },
      skipped: this.skipped,
      latencyMs: { online, target },
      ratio: {
        p50: ratio(online.p50, target.p50),
        p90: ratio(online.p90, target.p90),
        p99: ratio(online.p99, target.p99),
      },
    };
  }

  /** The `k` request keys with the most mismatches (exit summary). */
  topMismatches(k = 10): TopEntry[] {
    return this.top.top(k);
  }
}

function ratio(online: number | null, target: number | null): number | null {
  if (online === null || target === null || online === 0) return null;
  return Math.round((target / online) * 1000) / 1000;
}
