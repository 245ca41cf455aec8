/**
 * The event log of a program: stderr, or `-l FILE` (created 0640, a symlink refused, see
 * lib/stats/log_file.ts), reopened on SIGHUP; and the fatal-error path (one line in the log,
 * and on stderr too when the log goes to a file, so whoever started the program sees it).
 */
import { Logger } from "../stats/logger.ts";
import { fileSink, type LineSink, stdioSink } from "./output.ts";
import { EXIT_RUNTIME, EXIT_USAGE, oneLine } from "./exit.ts";

/** A program's log: the sink and the logger writing to it. */
export interface ProcessLog {
  /** `tcpcopy` or `intercept`: the prefix of lines on stderr. */
  readonly program: string;
  readonly sink: LineSink;
  readonly log: Logger;
  /** True when the log goes to a file (`-l`). */
  readonly toFile: boolean;
}

/**
 * Opens the log: `path` null = stderr. `beforeLine` runs before each line on stderr (tcpcopy
 * clears its progress line there). When the file cannot be opened, prints the reason on stderr
 * and returns the exit code: 2 for a symlink (a refused value of -l), 1 for an I/O failure.
 */
export function openProcessLog(
  program: string,
  path: string | null,
  beforeLine?: () => void,
): ProcessLog | number {
  let sink: LineSink;
  if (path === null) sink = stdioSink("stderr");
  else {
    const opened = fileSink(path);
    if ("kind" in opened) {
      console.error(`${program}: -l/--log: cannot open log file: ${opened.message}`);
      return opened.kind === "symlink" ? EXIT_USAGE : EXIT_RUNTIME;
    }
    sink = opened;
  }
  const toFile = path !== null;
  const log = new Logger((line) => {
    if (!toFile) beforeLine?.();
    sink.write(line);
  });
  return { program, sink, log, toFile };
}

/**
 * What SIGHUP does (logrotate): reopen the log file, keep the old one when that fails. Without
 * `-l` there is nothing to reopen: `stderrNote` is logged instead.
 */
export function reopenLog(p: ProcessLog, stderrNote: string): void {
  if (p.sink.reopen === undefined) {
    p.log.info(`SIGHUP: no log file to reopen (${stderrNote})`);
    return;
  }
  const err = p.sink.reopen();
  if (err) {
    p.log.error(`SIGHUP: cannot reopen the log file, still writing the old one: ${err.message}`);
  } else p.log.info("SIGHUP: log file reopened");
}

/**
 * The fatal path: one error line in the log, and `program: message` on stderr when the log is a
 * file. Returns `code` (the caller returns it as the exit code).
 */
export function fatal(p: ProcessLog, message: string, code: number = EXIT_RUNTIME): number {
  p.log.error(message);
  if (p.toFile) console.error(`${p.program}: ${oneLine(message)}`);
  return code;
}
