/** Blocking line writers for stdout, stderr and log files (small lines, written whole). */
import { LineWriter } from "../stats/line_writer.ts";
import { LogFileSink, type LogOpenError } from "../stats/log_file.ts";

/** Something that takes whole lines. */
export interface LineSink {
  write(line: string): void;
  /**
   * Writes a line; null when written whole, else why not (disk full, EIO, closed): for output
   * whose losses are counted (`--compare-log`).
   */
  tryWrite(line: string): Error | null;
  close(): void;
  /** Log files: open the path again (SIGHUP); the reason when that failed. */
  reopen?(): LogOpenError | undefined;
}

/**
 * A sink for stdout or stderr; write errors (closed pipe) are never fatal: `write` ignores
 * them (reader gone: keep replicating), `tryWrite` returns them.
 */
export function stdioSink(stream: "stdout" | "stderr"): LineSink {
  const lines = new LineWriter(stream === "stdout" ? Deno.stdout : Deno.stderr);
  return {
    write: (line) => void lines.write(line),
    tryWrite: (line) => lines.write(line),
    close() {},
  };
}

/**
 * A sink appending to `path` (created 0640 if missing, a symlink refused; see
 * lib/stats/log_file.ts) that SIGHUP can reopen. Returns the sink or why it could not open.
 */
export function fileSink(path: string): LineSink | LogOpenError {
  const sink = LogFileSink.open(path);
  if (!(sink instanceof LogFileSink)) return sink;
  return {
    write: (line) => sink.write(line),
    tryWrite: (line) => sink.tryWrite(line),
    reopen: () => sink.reopen(),
    close: () => sink.close(),
  };
}
