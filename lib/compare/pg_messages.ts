/**
 * PostgreSQL backend messages (protocol 3): framing (type byte, int32 length including
 * itself), what of each message is compared, and a streaming digest feeder.
 *
 * Two servers with the same data answer with the same messages except for values that are
 * per server or per run; those are left out of the comparison and of the digest:
 *
 * | messages                                    | compared                               |
 * | ------------------------------------------- | -------------------------------------- |
 * | DataRow `D`, CommandComplete `C`, `Z`, ...  | type and whole payload                 |
 * | RowDescription `T`                          | type, field count and names (not OIDs) |
 * | ErrorResponse `E`                           | type and SQLSTATE (field `C`)          |
 * | Authentication `R`                          | type and auth code (not salts, nonces) |
 * | BackendKeyData `K`, ParameterStatus `S`, `A`| type only                              |
 * | NoticeResponse `N`                          | nothing (notices vary)                 |
 *
 * A length under 4 or over {@link MAX_MESSAGE} makes the rest of the stream raw (hashed as
 * is): bounded and total, never thrown.
 *
 * @module
 */

/** How much of a message is compared. */
export type PgPolicy = "full" | "typeOnly" | "skip" | "error" | "rowDesc" | "auth";

/** Largest plausible message (1 GiB, PostgreSQL's own limit). */
export const MAX_MESSAGE = 1 << 30;
/** Payload bytes kept for `E` and `T` messages (the SQLSTATE, the field names). */
export const PG_KEEP = 8192;

/** The policy for message type `type` (a byte). */
export function pgPolicy(type: number): PgPolicy {
  switch (String.fromCharCode(type)) {
    case "T":
      return "rowDesc";
    case "E":
      return "error";
    case "R":
      return "auth";
    case "K":
    case "S":
    case "A":
      return "typeOnly";
    case "N":
      return "skip";
    default:
      return "full";
  }
}

/** SQLSTATE of an ErrorResponse payload `p[from, to)` (field `C`), or "" when absent. */
export function errorCode(p: Uint8Array, from: number, to: number): string {
  let i = from;
  while (i < to && p[i] !== 0) {
    const field = p[i++];
    const start = i;
    while (i < to && p[i] !== 0) i++;
    if (field === 0x43) return ascii(p, start, Math.min(i, start + 16));
    i++;
  }
  return "";
}

/** Field names of a RowDescription payload `p[from, to)`, bounded by the bytes given. */
export function rowNames(p: Uint8Array, from: number, to: number): string[] {
  const names: string[] = [];
  if (to - from < 2) return names;
  const count = (p[from] << 8) | p[from + 1];
  let i = from + 2;
  for (let f = 0; f < count && i < to; f++) {
    const start = i;
    while (i < to && p[i] !== 0) i++;
    names.push(ascii(p, start, Math.min(i, start + 64)));
    i += 1 + 18; // NUL, table OID, column, type OID, size, modifier, format
  }
  return names;
}

function ascii(p: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) s += String.fromCharCode(p[i]);
  return s;
}

/** Where digest bytes go (a {@link Digest64}). */
export interface DigestSink {
  update(bytes: Uint8Array, from: number, to: number): void;
  updateByte(value: number): void;
}

/** Feeds the compared parts of a backend message stream (pieces of any size) to a digest. */
export class PgDigestFeeder {
  #head = new Uint8Array(5);
  #headLen = 0;
  #policy: PgPolicy = "full";
  #remaining = 0; // payload bytes left in the current message
  #keep: Uint8Array | undefined;
  #kept = 0;
  #raw = false;
  /** True once a bad length turned the rest of the stream raw. */
  malformed = false;

  constructor(readonly sink: DigestSink) {}

  /** Back to the start of a stream (the kept-payload buffer is reused). */
  reset(): void {
    this.#headLen = this.#remaining = this.#kept = 0;
    this.#policy = "full";
    this.#raw = this.malformed = false;
  }

  /** Feeds `bytes[from, to)`. */
  push(bytes: Uint8Array, from = 0, to = bytes.length): void {
    let i = from;
    while (i < to) {
      if (this.#raw) {
        this.sink.update(bytes, i, to);
        return;
      }
      if (this.#headLen < 5) {
        this.#head[this.#headLen++] = bytes[i++];
        if (this.#headLen === 5) this.#startMessage();
        continue;
      }
      const take = Math.min(this.#remaining, to - i);
      this.#payload(bytes, i, i + take);
      i += take;
      this.#remaining -= take;
      if (this.#remaining === 0) this.#endMessage();
    }
  }

  #startMessage(): void {
    const h = this.#head;
    const len = ((h[1] << 24) | (h[2] << 16) | (h[3] << 8) | h[4]) >>> 0;
    if (len < 4 || len > MAX_MESSAGE) {
      this.malformed = this.#raw = true;
      this.sink.update(h, 0, 5);
      return;
    }
    this.#policy = pgPolicy(h[0]);
    this.#remaining = len - 4;
    this.#kept = 0;
    if (this.#policy === "full") this.sink.update(h, 0, 5);
    else if (this.#policy !== "skip") this.sink.updateByte(h[0]);
    if (this.#remaining === 0) this.#endMessage();
  }

  #payload(bytes: Uint8Array, from: number, to: number): void {
    switch (this.#policy) {
      case "full":
        return this.sink.update(bytes, from, to);
      case "error":
      case "rowDesc":
      case "auth": {
        const keep = this.#keep ??= new Uint8Array(PG_KEEP);
        const cap = this.#policy === "auth" ? 4 : PG_KEEP;
        for (let i = from; i < to && this.#kept < cap; i++) keep[this.#kept++] = bytes[i];
        return;
      }
      case "typeOnly":
      case "skip":
        return;
      default: {
        const never: never = this.#policy;
        throw new Error(`unknown policy ${never}`);
      }
    }
  }

  #endMessage(): void {
    this.#headLen = 0;
    const keep = this.#keep;
    if (!keep) return;
    if (this.#policy === "auth") this.sink.update(keep, 0, this.#kept);
    if (this.#policy === "error") this.#text(errorCode(keep, 0, this.#kept));
    if (this.#policy === "rowDesc") {
      for (const name of rowNames(keep, 0, this.#kept)) this.#text(name);
      this.sink.updateByte(0xff);
    }
  }

  /** A string and a NUL into the digest (one byte per UTF-16 unit: these are ASCII-ish). */
  #text(s: string): void {
    for (let i = 0; i < s.length; i++) this.sink.updateByte(s.charCodeAt(i) & 0xff);
    this.sink.updateByte(0);
  }
}

/** A complete message inside a byte string. */
export interface PgMessage {
  type: number;
  /** Offset of the type byte. */
  at: number;
  /** Payload `[from, to)` in the byte string. */
  from: number;
  to: number;
}

/**
 * The complete messages at the start of `bytes` (an answer's first bytes), at most `max`.
 * `rest` is the offset after the last complete one; `bad` when a length was impossible.
 */
export function pgMessages(
  bytes: Uint8Array,
  max = 4096,
): { messages: PgMessage[]; rest: number; bad: boolean } {
  const messages: PgMessage[] = [];
  let i = 0;
  while (i + 5 <= bytes.length && messages.length < max) {
    const len =
      ((bytes[i + 1] << 24) | (bytes[i + 2] << 16) | (bytes[i + 3] << 8) | bytes[i + 4]) >>>
      0;
    if (len < 4 || len > MAX_MESSAGE) return { messages, rest: i, bad: true };
    if (i + 1 + len > bytes.length) break;
    messages.push({ type: bytes[i], at: i, from: i + 5, to: i + 1 + len });
    i += 1 + len;
  }
  return { messages, rest: i, bad: false };
}
