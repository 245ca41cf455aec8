/**
 * Writing whole lines to a file or pipe, reporting what failed. A write error (disk full, EIO,
 * a closed pipe) is returned, not thrown: the caller decides whether to count it (the compare
 * log does) or to drop the line (the event log). A line cut short by an error is ended by the
 * next line written: that one starts with a newline, so one torn line never swallows the
 * next whole one (a reader of NDJSON loses the torn line only).
 */

const encoder = new TextEncoder();

/** Something bytes can be written to (a Deno.FsFile, Deno.stdout, a test's fake). */
export interface SyncWriter {
  writeSync(p: Uint8Array): number;
}

const NEWLINE = new Uint8Array([0x0a]);

/** Whole lines to a {@link SyncWriter}; see the module comment. */
export class LineWriter {
  #torn = false;

  constructor(private w: SyncWriter) {}

  /** Writes `line` (which ends with its newline); null when written whole, else the error. */
  write(line: string): Error | null {
    if (this.#torn) {
      const e = this.#writeAll(NEWLINE);
      if (e !== null) return e;
      this.#torn = false;
    }
    return this.#writeAll(encoder.encode(line));
  }

  /** Writes to `w` from now on (a reopened file: no torn line there). */
  switchTo(w: SyncWriter): void {
    this.w = w;
    this.#torn = false;
  }

  #writeAll(bytes: Uint8Array): Error | null {
    let off = 0;
    try {
      while (off < bytes.length) {
        const n = this.w.writeSync(bytes.subarray(off));
        if (n <= 0) throw new Error("write made no progress");
        off += n;
      }
      return null;
    } catch (e) {
      if (off > 0) this.#torn = true;
      return e instanceof Error ? e : new Error(String(e));
    }
  }
}
