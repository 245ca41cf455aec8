/**
 * A flow's last-seen time as a small integer (V8 keeps it in the object, no heap number):
 * whole ms (rounded up) modulo 2^31, read back against the current clock. Ages are exact up to
 * 2^30 ms (~12.4 days; `--keepalive-timeout` is at most 7); a stamp "after" the clock (a clock
 * that stepped back) reads as now, never as an age of ~2^31 ms.
 *
 * @example
 * ```ts
 * const s = seenStamp(1_765_100_000_123.5);
 * seenAt(s, 1_765_100_010_000); // 1_765_100_000_124
 * seenAt(s, 1_765_099_999_000); // 1_765_099_999_000 (the clock went back: now)
 * ```
 *
 * @module
 */

const SEEN_MASK = 0x7fff_ffff;
/** Ages beyond this read as a stamp after the clock. */
const SEEN_HALF = 2 ** 30;

/** The stamp of a time (epoch or process ms, fractions allowed). */
export function seenStamp(now: number): number {
  return Math.ceil(now) & SEEN_MASK;
}

/** The time `stamp` stands for, read at `now` (no later than `ceil(now)`). */
export function seenAt(stamp: number, now: number): number {
  const t = Math.ceil(now);
  const age = (t - stamp) & SEEN_MASK;
  return age >= SEEN_HALF ? t : t - age;
}
