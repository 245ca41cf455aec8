/**
 * A streaming HTTP/1.x response parser: status lines, header lines and the decoded body
 * (chunked framing removed) of every response in a byte stream (keep-alive, pipelining,
 * 1xx interim responses), fed in pieces of any size.
 *
 * Used twice, with the same rules: by the answer accumulator (the body goes into the digest)
 * and by the HTTP comparator over an answer's first bytes (status, headers, body prefix).
 * Bounded and total: a head over {@link MAX_HEAD_BYTES} or {@link MAX_HEAD_LINES}, a bad
 * status line, a bad chunk size (not hex, over 13 hex digits) or a bad Content-Length makes
 * the rest of the stream "raw": passed to `body` as is, never thrown. A response without
 * Content-Length or chunked framing (or a 101) runs until the end of the stream.
 *
 * @module
 */

/** What the parser reports. `line` is only valid during the call. */
export interface HttpEvents {
  /** A status line with its code, at stream offset `at`. */
  status(code: number, at: number): void;
  /** A header line (without CRLF), its first `len` bytes in `line`, at stream offset `at`. */
  header(line: Uint8Array, len: number, at: number): void;
  /** Body bytes `bytes[from, to)`: decoded, or raw after a framing error. */
  body(bytes: Uint8Array, from: number, to: number): void;
}

/** Most bytes of one response head (status line, headers) or trailer. */
export const MAX_HEAD_BYTES = 65536;
/** Most lines of one response head or trailer. */
export const MAX_HEAD_LINES = 1000;
/** A framing header (Content-Length, Transfer-Encoding) line longer than this is an error. */
const FRAMING_LINE = 256;

type State =
  | "start"
  | "head"
  | "length"
  | "chunkSize"
  | "chunkData"
  | "chunkEnd"
  | "trailer"
  | "raw";

const CR = 13, LF = 10;

/** Incremental parser of a response stream; see the module comment. */
export class HttpResponseParser {
  #state: State = "start";
  #line: Uint8Array;
  #lineLen = 0; // full length of the current line (bytes before LF)
  #lineLast = 0; // last byte of the current line
  #lineAt = 0; // stream offset of the current line
  #pos = 0; // stream offset of the next byte
  #base = 0; // stream offset of index 0 of the bytes being pushed
  #headBytes = 0;
  #headLines = 0;
  #code = 0;
  #length = -1; // Content-Length of the current message, -1 none
  #chunked = false;
  #teSeen = false;
  #remaining = 0;
  /** Complete responses (final and interim) seen so far. */
  messages = 0;
  /** True once the stream turned raw after a framing error. */
  malformed = false;

  /**
   * `lineCap`: bytes of each line kept for `header` (at least {@link FRAMING_LINE}).
   * `headerEvents` false: `header` is never called (the answer digest needs framing only), and
   * a header line that cannot be a framing header (its first byte is not c, C, t or T) is
   * only counted, not copied.
   */
  constructor(
    readonly events: HttpEvents,
    lineCap = FRAMING_LINE,
    readonly headerEvents = true,
  ) {
    this.#line = new Uint8Array(Math.max(lineCap, FRAMING_LINE));
  }

  /** The current line is copied into #line (false: a header line only counted). */
  #copy = true;

  /** Back to the start of a stream (the line buffer is kept). */
  reset(): void {
    this.#state = "start";
    this.#lineLen =
      this.#lineLast =
      this.#lineAt =
      this.#pos =
      this.#base =
        0;
    this.#headBytes =
      this.#headLines =
      this.#code =
      this.#remaining =
        0;
    this.#length = -1;
    this.#chunked = this.#teSeen = this.malformed = false;
    this.messages = 0;
  }

  /**
   * True when the bytes so far end exactly where a response ended by its own framing
   * (Content-Length, chunked end, a bodiless status), at least one response was seen and the
   * stream is not raw (issue 15: intercept closes an answer there).
   */
  get atMessageEnd(): boolean {
    return this.#state === "start" && this.#lineLen === 0 && this.messages > 0;
  }

  /** True while the current response's head is not complete. */
  get inHead(): boolean {
    return this.#state === "start" || this.#state === "head";
  }

  /** Parses `bytes[from, to)`. */
  push(bytes: Uint8Array, from = 0, to = bytes.length): void {
    this.#base = this.#pos - from;
    let i = from;
    while (i < to) {
      const s = this.#state;
      if (s === "raw") {
        this.events.body(bytes, i, to);
        i = to;
      } else if (s === "length" || s === "chunkData") {
        const take = Math.min(this.#remaining, to - i);
        this.events.body(bytes, i, i + take);
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#afterData();
      } else {
        i = this.#scanLine(bytes, i, to);
      }
    }
    this.#pos += to - from;
  }

  /** Accumulates line bytes up to LF; returns where it stopped. */
  #scanLine(bytes: Uint8Array, i: number, to: number): number {
    const line = this.#line;
    const len = this.#lineLen;
    if (len === 0) {
      this.#lineAt = this.#base + i;
      this.#copy = this.headerEvents || this.#state !== "head" || mayBeFraming(bytes[i]);
    }
    // one pass: copy up to the cap (bytes past it only count), then only look for LF
    const stop = this.#copy ? Math.min(to, i + Math.max(0, line.length - len)) : i;
    let j = i, w = len;
    for (; j < stop; j++) {
      const c = bytes[j];
      if (c === LF) break;
      line[w++] = c;
    }
    if (j === stop) { while (j < to && bytes[j] !== LF) j++; }
    if (j > i) {
      this.#lineLen = len + (j - i);
      this.#lineLast = bytes[j - 1];
    }
    if (j === to) return j;
    this.#endLine();
    return j + 1;
  }

  #endLine(): void {
    let len = this.#lineLen;
    if (len > 0 && this.#lineLast === CR) len--;
    const kept = Math.min(len, this.#line.length);
    this.#lineLen = 0;
    this.#lineLast = 0;
    switch (this.#state) {
      case "start":
      case "head":
      case "trailer":
        return this.#headLine(len, kept);
      case "chunkSize":
        return this.#chunkSizeLine(len, kept);
      case "chunkEnd":
        if (len !== 0) return this.#fail();
        this.#state = "chunkSize";
        return;
      case "length":
      case "chunkData":
      case "raw":
        return; // not reached: these states take bytes in bulk
      default: {
        const never: never = this.#state;
        throw new Error(`unknown state ${never}`);
      }
    }
  }

  /** A line of a head (status, header, empty end) or of a trailer. */
  #headLine(len: number, kept: number): void {
    this.#headBytes += len + 2;
    this.#headLines++;
    if (this.#headBytes > MAX_HEAD_BYTES || this.#headLines > MAX_HEAD_LINES) return this.#fail();
    if (this.#state === "start") {
      if (len === 0) return; // empty lines before a response are tolerated
      const code = statusCode(this.#line, kept);
      if (code < 0) return this.#fail();
      this.#code = code;
      this.#state = "head";
      this.events.status(code, this.#lineAt);
      return;
    }
    if (len === 0) return this.#state === "head" ? this.#endHead() : this.#endMessage();
    if (this.#state === "trailer" || !this.#copy) return; // (not copied: not framing)
    if (this.headerEvents) this.events.header(this.#line, kept, this.#lineAt);
    if (!this.#framing(len, kept)) this.#fail();
  }

  /** Reads Content-Length / Transfer-Encoding; false on a bad value. */
  #framing(len: number, kept: number): boolean {
    const line = this.#line;
    const name = nameEnd(line, kept);
    if (name < 0) return true;
    const isLength = nameIs(line, name, "content-length");
    const isTe = !isLength && nameIs(line, name, "transfer-encoding");
    if (!isLength && !isTe) return true;
    if (len > FRAMING_LINE) return false;
    const [vs, ve] = trimRange(line, name + 1, kept);
    if (isTe) {
      this.#teSeen = true;
      this.#chunked = lastTokenIsChunked(line, vs, ve);
      return true;
    }
    const n = decimal(line, vs, ve);
    if (n < 0 || (this.#length >= 0 && this.#length !== n)) return false;
    this.#length = n;
    return true;
  }

  #endHead(): void {
    const code = this.#code;
    if (code >= 100 && code < 200 && code !== 101) return this.#endMessage();
    if (code === 101) return this.#toRaw();
    if (code === 204 || code === 304) return this.#endMessage();
    if (this.#teSeen) {
      if (!this.#chunked) return this.#toRaw();
      this.#state = "chunkSize";
      return;
    }
    if (this.#length < 0) return this.#toRaw();
    if (this.#length === 0) return this.#endMessage();
    this.#remaining = this.#length;
    this.#state = "length";
  }

  #chunkSizeLine(len: number, kept: number): void {
    if (len > 1024) return this.#fail();
    const size = chunkSize(this.#line, kept);
    if (size < 0) return this.#fail();
    if (size === 0) {
      this.#state = "trailer";
      this.#headBytes = 0;
      this.#headLines = 0;
      return;
    }
    this.#remaining = size;
    this.#state = "chunkData";
  }

  #afterData(): void {
    if (this.#state === "length") this.#endMessage();
    else this.#state = "chunkEnd";
  }

  #endMessage(): void {
    this.messages++;
    this.#state = "start";
    this.#headBytes = 0;
    this.#headLines = 0;
    this.#length = -1;
    this.#chunked = false;
    this.#teSeen = false;
  }

  /** Body until the end of the stream (no framing, or a 101). */
  #toRaw(): void {
    this.messages++;
    this.#state = "raw";
  }

  /** A framing error: the rest of the stream is raw. */
  #fail(): void {
    this.malformed = true;
    this.#state = "raw";
  }
}

/** A header line starting with `b` may name Content-Length or Transfer-Encoding. */
function mayBeFraming(b: number): boolean {
  const l = b | 0x20;
  return l === 0x63 || l === 0x74;
}

/** The status code of "HTTP/d.d ddd..." or -1. */
export function statusCode(line: Uint8Array, len: number): number {
  const prefix = "HTTP/";
  if (len < 12) return -1;
  for (let i = 0; i < 5; i++) if (line[i] !== prefix.charCodeAt(i)) return -1;
  if (!isDigit(line[5]) || line[6] !== 0x2e || !isDigit(line[7]) || line[8] !== 0x20) return -1;
  if (!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11])) return -1;
  if (len > 12 && line[12] !== 0x20) return -1;
  return (line[9] - 48) * 100 + (line[10] - 48) * 10 + (line[11] - 48);
}

function isDigit(b: number): boolean {
  return b >= 48 && b <= 57;
}

/** Index of the ':' ending a header name, or -1. */
export function nameEnd(line: Uint8Array, len: number): number {
  for (let i = 0; i < len; i++) if (line[i] === 0x3a) return i;
  return -1;
}

/** True when `line[0, end)` is `name` (lowercase ASCII), case-insensitively. */
function nameIs(line: Uint8Array, end: number, name: string): boolean {
  if (end !== name.length) return false;
  for (let i = 0; i < end; i++) if ((line[i] | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/** `[from, to)` without leading and trailing spaces and tabs. */
export function trimRange(line: Uint8Array, from: number, to: number): [number, number] {
  while (from < to && (line[from] === 0x20 || line[from] === 0x09)) from++;
  while (to > from && (line[to - 1] === 0x20 || line[to - 1] === 0x09)) to--;
  return [from, to];
}

/** Decimal value of `line[from, to)` (1 to 15 digits) or -1. */
function decimal(line: Uint8Array, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    if (!isDigit(line[i])) return -1;
    n = n * 10 + line[i] - 48;
  }
  return n;
}

/** True when the last comma-separated token of `line[from, to)` is "chunked". */
function lastTokenIsChunked(line: Uint8Array, from: number, to: number): boolean {
  let start = from;
  for (let i = from; i < to; i++) if (line[i] === 0x2c) start = i + 1;
  const [s, e] = trimRange(line, start, to);
  return nameIs(line.subarray(s, e), e - s, "chunked");
}

/** Size of a chunk-size line ("1a;ext" allowed), or -1 (no digits, over 13 digits, junk). */
function chunkSize(line: Uint8Array, len: number): number {
  let n = 0, i = 0;
  for (; i < len; i++) {
    const v = hexValue(line[i]);
    if (v < 0) break;
    if (i >= 13) return -1;
    n = n * 16 + v;
  }
  if (i === 0) return -1;
  for (; i < len; i++) {
    const b = line[i];
    if (b === 0x3b) return n;
    if (b !== 0x20 && b !== 0x09) return -1;
  }
  return n;
}

function hexValue(b: number): number {
  if (b >= 48 && b <= 57) return b - 48;
  const l = b | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}
