/** Blocking line writers for stdout, stderr and log files (small lines, written whole). */
import { LogFileSink, type LogOpenError } from "../stats/log_file.ts";

const encoder = new TextEncoder();

/** Something that takes whole lines. */
export interface LineSink {
  write(line: string): void;
  close(): void;
  /** Log files: open the path again (SIGHUP); the reason when that failed. */
  reopen?(): LogOpenError | undefined;
}

function writeAll(w: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += w.writeSync(bytes.subarray(off));
}

/** A sink for stdout or stderr; write errors (closed pipe) are ignored, never fatal. */
export function stdioSink(stream: "stdout" | "stderr"): LineSink {
  const w = stream === "stdout" ? Deno.stdout : Deno.stderr;
  return {
    write(line) {
      try {
        writeAll(w, encoder.encode(line));
      } catch { /* reader gone: keep replicating */ }
    },
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
    reopen: () => sink.reopen(),
    close: () => sink.close(),
  };
}
