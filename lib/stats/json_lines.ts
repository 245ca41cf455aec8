/** JSON-lines output: one compact JSON object per line, for `jq` and log shippers. */

/** Serialises a record as one line (no newline inside, newline at the end). */
export function jsonLine(record: unknown): string {
  return JSON.stringify(record) + "\n";
}

/**
 * Decides when the next periodic line is due: every `intervalS` seconds from `startMs`,
 * skipping slots that were missed (a stalled process prints one line, not a burst).
 * Returns null when periodic lines are off (`intervalS` 0).
 */
export function nextStatsDue(startMs: number, nowMs: number, intervalS: number): number | null {
  if (intervalS <= 0) return null;
  const step = intervalS * 1000;
  const slots = Math.floor((nowMs - startMs) / step) + 1;
  return startMs + slots * step;
}
