/**
 * Rate-limited log of tunnel peer events (connect, disconnect, refusal, failed
 * authentication): at most `burst` lines per interval; the rest are counted by kind and
 * summed up in one line when the interval ends. A flood of connections therefore costs a few
 * log lines per interval, not one per connection. Pure: the caller passes the clock.
 */

/** Settings of an EventLog. */
export interface EventLogOptions {
  /** Length of an interval. */
  intervalMs: number;
  /** Lines logged in full per interval. */
  burst: number;
}

/** Defaults: 10 lines per 10 s, then one summary line per 10 s. */
export const DEFAULT_EVENT_LOG: EventLogOptions = { intervalMs: 10_000, burst: 10 };

/** The rate-limited log; `K` names the event kinds (the server's `PeerEvent`). */
export class EventLog<K extends string = string> {
  readonly opts: EventLogOptions;
  #start = -Infinity;
  #lines = 0;
  #suppressed = new Map<K, number>();
  /** Lines not logged so far (all intervals). */
  suppressedTotal = 0;

  constructor(
    readonly sink: (line: string) => void,
    opts: Partial<EventLogOptions> = {},
  ) {
    this.opts = { ...DEFAULT_EVENT_LOG, ...opts };
  }

  /** One event of `kind`; `line` is logged unless this interval's burst is used up. */
  note(kind: K, line: string, now: number): void {
    this.tick(now);
    if (this.#lines < this.opts.burst) {
      this.#lines++;
      this.sink(line);
      return;
    }
    this.#suppressed.set(kind, (this.#suppressed.get(kind) ?? 0) + 1);
    this.suppressedTotal++;
  }

  /** Ends the interval when it is over: logs the summary of what was not logged. */
  tick(now: number): void {
    if (now - this.#start < this.opts.intervalMs) return;
    this.flush();
    this.#start = now;
    this.#lines = 0;
  }

  /** Logs the summary of the events not logged so far, if any. */
  flush(): void {
    if (this.#suppressed.size === 0) return;
    let total = 0;
    const parts: string[] = [];
    for (const [kind, n] of this.#suppressed) {
      total += n;
      parts.push(`${kind} ${n}`);
    }
    this.#suppressed.clear();
    this.sink(
      `tunnel: ${total} more peer events not logged one by one ` +
        `(rate limit ${this.opts.burst} lines per ${this.opts.intervalMs / 1000} s): ${
          parts.join(", ")
        }`,
    );
  }
}
