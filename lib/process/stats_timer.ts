/**
 * The periodic JSON stats line of both programs: every `--stats-interval` seconds from the
 * start, a missed slot skipped (a stalled process prints one line, not a burst; see
 * nextStatsDue), none with an interval of 0 (the final line at exit is the program's).
 */
import { nextStatsDue } from "../stats/json_lines.ts";

/** A running stats timer. */
export interface StatsTimer {
  /** Stops it (idempotent); no line is printed after this. */
  stop(): void;
}

/** Calls `print()` at every slot until stopped. `now` is the wall clock in ms. */
export function startStatsTimer(
  startMs: number,
  intervalS: number,
  print: () => void,
  now: () => number = Date.now,
): StatsTimer {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const schedule = () => {
    const due = nextStatsDue(startMs, now(), intervalS);
    if (due === null) return;
    timer = setTimeout(() => {
      if (stopped) return;
      print();
      schedule();
    }, Math.max(1, due - now()));
  };
  schedule();
  return {
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
