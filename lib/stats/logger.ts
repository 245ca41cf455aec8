/**
 * The event log: one line per event, `2025-01-31T12:00:00.000Z [level] message`, to stderr or
 * a file (`-l`). Pure core: the clock and the line sink are injected. Repeated messages with
 * the same key are rate-limited so a storm of per-packet problems cannot flood the disk.
 */

/** Severity, most severe first. */
export type LogLevel = "error" | "warn" | "info" | "debug";

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** Formats one log line (with trailing newline). */
export function formatLogLine(nowMs: number, level: LogLevel, message: string): string {
  const oneLine = message.replace(/[\r\n]+/g, " ");
  return `${new Date(nowMs).toISOString()} [${level}] ${oneLine}\n`;
}

/** A levelled, rate-limited line logger. */
export class Logger {
  #suppressed = new Map<string, { windowStart: number; count: number; dropped: number }>();

  /**
   * @param write receives each finished line
   * @param now clock in ms since the epoch
   * @param level lines less severe than this are skipped
   * @param perKeyPerMinute most lines per rate-limit key per minute
   */
  constructor(
    private readonly write: (line: string) => void,
    private readonly now: () => number = Date.now,
    private readonly level: LogLevel = "info",
    private readonly perKeyPerMinute = 10,
  ) {}

  /** Logs a message at the given level. */
  log(level: LogLevel, message: string): void {
    if (RANK[level] > RANK[this.level]) return;
    this.write(formatLogLine(this.now(), level, message));
  }

  error(message: string): void {
    this.log("error", message);
  }
  warn(message: string): void {
    this.log("warn", message);
  }
  info(message: string): void {
    this.log("info", message);
  }
  debug(message: string): void {
    this.log("debug", message);
  }

  /**
   * Logs at most `perKeyPerMinute` lines per key per minute; when a new minute starts the
   * number of suppressed lines is reported once.
   */
  limited(key: string, level: LogLevel, message: string): void {
    const now = this.now();
    let slot = this.#suppressed.get(key);
    if (slot === undefined || now - slot.windowStart >= 60_000) {
      if (slot !== undefined && slot.dropped > 0) {
        this.log(level, `${slot.dropped} more '${key}' messages suppressed`);
      }
      slot = { windowStart: now, count: 0, dropped: 0 };
      this.#suppressed.set(key, slot);
    }
    if (slot.count < this.perKeyPerMinute) {
      slot.count++;
      this.log(level, message);
    } else {
      slot.dropped++;
    }
  }
}
