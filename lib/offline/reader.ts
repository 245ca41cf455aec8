/**
 * Reading a capture file for replay: {@link PcapFile} (lib/io, libpcap) plus the checks and
 * bookkeeping that turn every problem into one line with the byte offset: missing, unreadable,
 * empty or foreign files are refused at open; a truncated last record is counted and skipped;
 * a corrupt record ends the pass with {@link ReplayReader.error} set. Never throws after open.
 *
 * @module
 */
import { PcapFile, type PcapRecord } from "../io/pcap_file.ts";
import {
  checkLinkType,
  type SavefileFormat,
  SavefilePosition,
  SNIFF_BYTES,
  sniffSavefile,
} from "./savefile.ts";

function describe(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  return e instanceof Error ? e.message : String(e);
}

/** Reads the first bytes of `path` and its size; a reason when it cannot. */
function head(path: string): { bytes: Uint8Array; size: number } | string {
  let file: Deno.FsFile | undefined;
  try {
    const info = Deno.statSync(path);
    if (info.isDirectory) return "is a directory";
    file = Deno.openSync(path, { read: true });
    const bytes = new Uint8Array(SNIFF_BYTES);
    let got = 0;
    while (got < bytes.length) {
      const n = file.readSync(bytes.subarray(got));
      if (n === null || n === 0) break;
      got += n;
    }
    return { bytes: bytes.subarray(0, got), size: info.size };
  } catch (e) {
    return describe(e);
  } finally {
    file?.close();
  }
}

/** One pass over a capture file. */
export class ReplayReader {
  /** Records whose end was cut off by the end of the file (counted, skipped). */
  truncatedRecords = 0;
  /** Why the pass ended early (a corrupt record), or null. */
  error: string | null = null;
  /** A truncated last record, described (null when none). */
  warning: string | null = null;
  readonly #file: PcapFile;
  readonly #pos: SavefilePosition;

  private constructor(
    readonly path: string,
    readonly size: number,
    readonly format: SavefileFormat,
    file: PcapFile,
  ) {
    this.#file = file;
    this.#pos = new SavefilePosition(format);
  }

  /** Opens `path` for one pass; a one-line reason (naming the file) when it cannot. */
  static open(path: string): ReplayReader | string {
    const h = head(path);
    if (typeof h === "string") return `cannot read ${path}: ${h}`;
    const format = sniffSavefile(h.bytes, h.size);
    if (format !== "pcap" && format !== "pcapng") return `${path}: ${format}`;
    let file: PcapFile;
    try {
      file = PcapFile.open(path);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      return `${path}: ${msg.replace(/^cannot read savefile "[^"]*": /, "")} (at byte 0)`;
    }
    const link = checkLinkType(file.linkType);
    if (link !== null) {
      file.close();
      return `${path}: ${link}`;
    }
    return new ReplayReader(path, h.size, format, file);
  }

  /** libpcap link type of every record. */
  get linkType(): number {
    return this.#file.linkType;
  }

  /** Records read so far. */
  get records(): number {
    return this.#pos.records;
  }

  /** Share of the file read so far, 0..1 (an estimate for pcapng). */
  get fraction(): number {
    return this.size > 0 ? Math.min(1, this.#pos.offset / this.size) : 1;
  }

  /** The next record, or null at the end of the pass (end of file, truncation or corruption). */
  next(): PcapRecord | null {
    if (this.error !== null) return null;
    try {
      const r = this.#file.next();
      if (r === null) {
        this.#pos.offset = this.size;
        return null;
      }
      this.#pos.advance(r.data.length);
      return r;
    } catch (e) {
      const msg = (e instanceof Error ? e.message : String(e))
        .replace(/^corrupt savefile "[^"]*": /, "");
      const f = this.#pos.failure(msg);
      switch (f.kind) {
        case "truncated":
          this.truncatedRecords++;
          this.warning = `${this.path}: ${f.message} (skipped)`;
          break;
        case "corrupt":
          this.error = `${this.path}: ${f.message}`;
          break;
        default: {
          const never: never = f.kind;
          this.error = `${this.path}: ${never}`;
        }
      }
      this.#pos.offset = this.size;
      this.#file.close();
      return null;
    }
  }

  /** Releases the file. Idempotent. */
  close(): void {
    this.#file.close();
  }
}
