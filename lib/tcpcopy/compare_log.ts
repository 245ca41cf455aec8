/**
 * `--compare-log`: where the comparer's records go, and what became of them. Each record is
 * one line written whole and synchronously (nothing buffered: a record given is on disk, or in
 * the pipe, when `write` returns). A record that cannot be written (disk full, EIO, a closed
 * pipe, the log closed already) is counted (`compare.log_errors` in the stats line) and
 * reported in the event log: the first at once, then at most one line per
 * {@link LOG_ERROR_EVERY_MS} with the count since. Replication and comparison go on. A file
 * log is reopened on SIGHUP (logrotate renamed it: the records go on into a new file, none into
 * a renamed one that logrotate compresses and deletes).
 */
import type { CompareRecord } from "../compare/record.ts";
import { jsonLine } from "../stats/json_lines.ts";

/** Least time between two event-log lines about records not written. */
export const LOG_ERROR_EVERY_MS = 60_000;

/** A line sink that says when a line was not written (lib/process/output.ts's `tryWrite`). */
export interface CheckedSink {
  tryWrite(line: string): Error | null;
  /** A file: open the path again; the reason when that failed (the old file kept). */
  reopen?(): { message: string } | undefined;
}

/** The records' writer with its counts; see the module comment. */
export class CompareLog {
  /** Records written whole. */
  written = 0;
  /** Records not written (each a lost line of the log). */
  errors = 0;
  #closed = false;
  #lastWarnAt = Number.NEGATIVE_INFINITY;
  #unreported = 0;

  /**
   * `name`: the log as the operator gave it (in the warning); `warn`: one event-log line;
   * `now`: ms (the rate limit's clock).
   */
  constructor(
    readonly name: string,
    private readonly sink: CheckedSink,
    private readonly warn: (line: string) => void,
    private readonly now: () => number,
  ) {}

  /** Writes one record (never throws). */
  write(record: CompareRecord): void {
    const err = this.#closed
      ? new Error("the log was closed already")
      : this.sink.tryWrite(jsonLine(record));
    if (err === null) {
      this.written++;
      return;
    }
    this.errors++;
    this.#unreported++;
    const t = this.now();
    if (t - this.#lastWarnAt < LOG_ERROR_EVERY_MS) return;
    this.#lastWarnAt = t;
    const n = this.#unreported;
    this.#unreported = 0;
    this.warn(
      `--compare-log ${this.name}: ${n} record${n === 1 ? "" : "s"} not written ` +
        `(${err.message}); ${this.errors} in all, counted in compare.log_errors; ` +
        `replication goes on`,
    );
  }

  /** The records lost since the last warning, as one last line (at shutdown), if any. */
  flushWarning(): void {
    if (this.#unreported === 0) return;
    const n = this.#unreported;
    this.#unreported = 0;
    this.warn(
      `--compare-log ${this.name}: ${n} more record${n === 1 ? "" : "s"} not written; ` +
        `${this.errors} in all`,
    );
  }

  /**
   * SIGHUP: a file log is opened again at its path. Returns what to log: null for stdout
   * (nothing to reopen), else the line (reopened, or why not: the old file is kept).
   */
  reopen(): { ok: boolean; line: string } | null {
    if (this.sink.reopen === undefined || this.#closed) return null;
    const err = this.sink.reopen();
    return err === undefined ? { ok: true, line: `SIGHUP: --compare-log ${this.name} reopened` } : {
      ok: false,
      line: `SIGHUP: cannot reopen --compare-log ${this.name}, still writing the old one: ` +
        err.message,
    };
  }

  /** From now on every record is counted as not written (the sink is closed by its owner). */
  close(): void {
    this.#closed = true;
  }
}
