/**
 * A latency histogram with fixed log-linear buckets: each power of two of microseconds is
 * split into {@link SUB_BUCKETS} equal buckets, from 1 µs up to 2^41 µs (25 days), plus one
 * bucket under 1 µs. Fixed memory (a Float64Array of 673 counts), O(1) recording,
 * mergeable, and quantiles within one bucket: an estimate is never below the exact
 * nearest-rank value and at most 1/{@link SUB_BUCKETS} (6.25 %) above it (or 1 µs for values
 * under 1 µs). Also renders Prometheus-style cumulative buckets.
 *
 * @module
 */

/** Buckets per power of two. */
export const SUB_BUCKETS = 16;
/** Highest power of two (µs) with its own buckets; larger values land in the last bucket. */
const MAX_EXP = 41;
const BUCKETS = 1 + (MAX_EXP + 1) * SUB_BUCKETS;

/** Bucket index of a value in µs. */
export function bucketOf(us: number): number {
  if (!(us >= 1)) return 0;
  const e = exponentOf(us);
  if (e > MAX_EXP) return BUCKETS - 1;
  const pow = e < 30 ? 1 << e : 2 ** e; // (a shift where it fits: 2 ** e is a float power)
  const sub = Math.min(SUB_BUCKETS - 1, Math.floor((us / pow - 1) * SUB_BUCKETS));
  return 1 + e * SUB_BUCKETS + sub;
}

/** floor(log2(us)), exactly, for `us` ≥ 1. */
function exponentOf(us: number): number {
  // under 2^30 µs, every latency of a live run: from the integer part's top bit, without
  // Math.log2 (two of these per verdict)
  if (us < 0x40000000) return 31 - Math.clz32(us);
  let e = Math.floor(Math.log2(us));
  if (2 ** e > us) e--;
  else if (2 ** (e + 1) <= us) e++;
  return e;
}

/** Upper bound (exclusive) of bucket `i`, in µs. */
export function bucketUpper(i: number): number {
  if (i === 0) return 1;
  const e = Math.floor((i - 1) / SUB_BUCKETS), sub = (i - 1) % SUB_BUCKETS;
  return 2 ** e * (1 + (sub + 1) / SUB_BUCKETS);
}

/** Latency percentiles of a histogram (ms), null without data. */
export interface LatencySummary {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

/** A mergeable latency histogram; values in milliseconds. */
export class LatencyHistogram {
  readonly counts = new Float64Array(BUCKETS);
  count = 0;
  /** Sum of the values (ms), for Prometheus `_sum`. */
  sum = 0;
  /** Largest value (ms). */
  max = 0;

  /** Adds one latency in ms (negative or NaN counts as 0). */
  record(ms: number): void {
    const v = ms > 0 ? ms : 0;
    this.counts[bucketOf(v * 1000)]++;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  /** Adds every value of `other`. */
  merge(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  /** Nearest-rank quantile `q` (0 < q ≤ 1) in ms, within one bucket; null when empty. */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(bucketUpper(i) / 1000, this.max);
    }
    return this.max;
  }

  /** Values counted in buckets that end at or below `ms` (exact at bucket bounds). */
  countAtMost(ms: number): number {
    let n = 0;
    for (let i = 0; i < BUCKETS && bucketUpper(i) <= ms * 1000; i++) n += this.counts[i];
    return n;
  }

  /** p50, p90, p99, max. */
  summary(): LatencySummary {
    const r = (v: number | null) => v === null ? null : Math.round(v * 1000) / 1000;
    return {
      count: this.count,
      p50: r(this.quantile(0.5)),
      p90: r(this.quantile(0.9)),
      p99: r(this.quantile(0.99)),
      max: this.count === 0 ? null : r(this.max),
    };
  }
}

/** Default Prometheus `le` bounds in seconds for answer latencies. */
export const PROMETHEUS_BOUNDS_S: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Cumulative buckets (`le` in seconds) for a Prometheus histogram, then `+Inf`, sum, count. */
export function prometheusBuckets(
  h: LatencyHistogram,
  boundsS: readonly number[] = PROMETHEUS_BOUNDS_S,
): { buckets: [string, number][]; sumS: number; count: number } {
  const buckets: [string, number][] = boundsS.map((le) => [String(le), h.countAtMost(le * 1000)]);
  buckets.push(["+Inf", h.count]);
  return { buckets, sumS: h.sum / 1000, count: h.count };
}
