/** Blocking line writers for stdout, stderr and log files (small lines, written whole). */

const encoder = new TextEncoder();

/** Something that takes whole lines. */
export interface LineSink {
  write(line: string): void;
  close(): void;
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

/** A sink appending to `path` (created if missing). Throws when the file cannot be opened. */
export function fileSink(path: string): LineSink {
  const file = Deno.openSync(path, { append: true, create: true });
  let open = true;
  return {
    write(line) {
      if (!open) return;
      try {
        writeAll(file, encoder.encode(line));
      } catch { /* disk full or similar: drop the line */ }
    },
    close() {
      if (open) file.close();
      open = false;
    },
  };
}
