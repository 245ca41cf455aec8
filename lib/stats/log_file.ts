/**
 * Log files (`-l FILE` of both programs): appended to, created 0640 (the log may name client
 * addresses), never through a symlink (another user could point a root process's log at any
 * file), and reopened on SIGHUP so logrotate can rename the old file.
 */
import { LineWriter } from "./line_writer.ts";

/** Why a log file was not opened: `symlink` is a refused path, the rest are I/O errors. */
export interface LogOpenError {
  kind: "symlink" | "io";
  message: string;
}

/** Mode of a created log file: owner read/write, group read. */
export const LOG_FILE_MODE = 0o640;

/**
 * Opens `path` for appending (created with {@link LOG_FILE_MODE}). Refuses a symlink, both
 * before opening and after (the opened file must be the one the path names, so a link swapped
 * in between is caught too). Returns the file or why not.
 */
export function openLogFile(path: string): Deno.FsFile | LogOpenError {
  const refuse = (): LogOpenError => ({
    kind: "symlink",
    message: `${path} is a symbolic link; give the real path of the log file`,
  });
  try {
    if (Deno.lstatSync(path).isSymlink) return refuse();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return { kind: "io", message: (e as Error).message };
  }
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { append: true, create: true, mode: LOG_FILE_MODE });
  } catch (e) {
    return { kind: "io", message: (e as Error).message };
  }
  try {
    const opened = file.statSync();
    const named = Deno.lstatSync(path);
    if (named.isSymlink || named.ino !== opened.ino || named.dev !== opened.dev) {
      file.close();
      return refuse();
    }
    if (!opened.isFile) {
      file.close();
      return { kind: "io", message: `${path} is not a regular file` };
    }
  } catch (e) {
    file.close();
    return { kind: "io", message: (e as Error).message };
  }
  return file;
}

/** True when {@link openLogFile} failed. */
export function isLogOpenError(x: Deno.FsFile | LogOpenError): x is LogOpenError {
  return !(x instanceof Deno.FsFile);
}

/** A line sink on a log file that can be reopened (SIGHUP). */
export class LogFileSink {
  #file: Deno.FsFile | null;
  readonly #lines: LineWriter;

  private constructor(readonly path: string, file: Deno.FsFile) {
    this.#file = file;
    this.#lines = new LineWriter(file);
  }

  /** Opens `path` (see {@link openLogFile}). */
  static open(path: string): LogFileSink | LogOpenError {
    const f = openLogFile(path);
    return isLogOpenError(f) ? f : new LogFileSink(path, f);
  }

  /** Appends a line; errors (disk full) drop the line, never throw. */
  write(line: string): void {
    this.tryWrite(line);
  }

  /**
   * Appends a line; null when written whole, else why not (disk full, EIO, the sink closed).
   * A line cut short is ended by the next one (see line_writer.ts).
   */
  tryWrite(line: string): Error | null {
    if (this.#file === null) return new Error(`${this.path} is closed`);
    return this.#lines.write(line);
  }

  /**
   * Opens the path again and switches to it (after logrotate renamed the old file). When that
   * fails the old file is kept and the reason returned.
   */
  reopen(): LogOpenError | undefined {
    if (this.#file === null) return undefined;
    const f = openLogFile(this.path);
    if (isLogOpenError(f)) return f;
    const old = this.#file;
    this.#file = f;
    this.#lines.switchTo(f);
    try {
      old.close();
    } catch { /* already closed */ }
    return undefined;
  }

  /** Closes the file (idempotent). */
  close(): void {
    const f = this.#file;
    this.#file = null;
    try {
      f?.close();
    } catch { /* already closed */ }
  }
}
