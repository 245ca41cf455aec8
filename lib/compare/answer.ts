/**
 * One answer (the reply bytes of one turn) summarised with bounded memory: its first N bytes,
 * its total length, a digest of its content and its latency.
 *
 * The same {@link AnswerAccumulator} runs on both sides so that the digests are comparable:
 * tcpcopy over the captured online answer, intercept over the target's answer. What the
 * digest covers depends on the digest mode:
 *
 * - `http`: the decoded bodies of the responses (chunked framing removed), not the heads, so a
 *   different `Date` header or different chunk boundaries do not change it;
 * - `pg`: the compared parts of the backend messages (see pg_messages.ts);
 * - `bytes`: every byte;
 * - `auto`: one of the three, chosen from the answer's first {@link SNIFF_BYTES} bytes (so two
 *   answers that start alike are digested alike).
 *
 * Memory: the first-bytes buffer, a digest state, and a parser's small line or message
 * buffer, all allocated once per accumulator and reused through {@link AnswerAccumulator.reset}.
 *
 * @module
 */

import { Digest64 } from "./digest.ts";
import { HttpResponseParser } from "./http_stream.ts";
import { sameBytes } from "./same_bytes.ts";
import { prefixView } from "./prefix_view.ts";
import { PgDigestFeeder } from "./pg_messages.ts";
import { wholeResponse } from "./http_whole.ts";
import { type DigestKind, digestKindOf, SNIFF_BYTES } from "./sniff.ts";

/** `--compare-bytes` default: first answer bytes kept per turn. */
export const DEFAULT_COMPARE_BYTES = 1024;
/** Smallest `--compare-bytes` (enough for the digest-mode decision and a status line). */
export const MIN_COMPARE_BYTES = SNIFF_BYTES;
/** Largest `--compare-bytes`. */
export const MAX_COMPARE_BYTES = 65536;

/** The digest mode asked for: a kind, or `auto` (sniffed per answer). */
export type DigestMode = DigestKind | "auto";

/** One side's answer of one turn, as compared. Plain data (it crosses the tunnel). */
export interface AnswerSummary {
  /** The first bytes (at most N), up to the first gap. */
  firstBytes: Uint8Array;
  /** Every byte of the answer, gaps included (known from sequence numbers). */
  totalLength: number;
  /** Bytes known only by their length (capture loss); 0 when every byte was seen. */
  gapBytes: number;
  /** The digest kind used (after `auto`). */
  kind: DigestKind;
  /** The 64-bit {@link Digest64} value; null when bytes were missing (gaps). */
  digest: bigint | null;
  /** Content bytes: the decoded body for `http`, all bytes otherwise; null with gaps. */
  bodyLength: number | null;
  /** Ms from the request's last segment to the answer's first byte (absent: unknown). */
  firstMs?: number;
  /** Ms from the request's last segment to the answer's last byte. */
  lastMs?: number;
  /** The answer was still open when the turn's deadline passed. */
  timedOut: boolean;
  /** No gaps and not timed out: the digest and the lengths can be compared. */
  complete: boolean;
  /** `firstBytes` is shorter than the answer. */
  truncated: boolean;
}

/** Options of an {@link AnswerAccumulator}. */
export interface AnswerOptions {
  /** First bytes kept (`--compare-bytes`), {@link MIN_COMPARE_BYTES} to {@link MAX_COMPARE_BYTES}. */
  firstBytes?: number;
  /** Digest mode (default `auto`). */
  mode?: DigestMode;
  /**
   * Parse and digest only once the first bytes cannot hold the whole answer, or at the
   * finish (tcpcopy's online answers): an answer equal to the target's whole answer then takes
   * the target's kind, digest and body length ({@link AnswerAccumulator.finishShared}) and is
   * never parsed here. `atMessageEnd` is false while the bytes are held (intercept, which
   * needs it, is eager: the default).
   */
  lazy?: boolean;
}

/**
 * Takes one answer's bytes in order (with gaps of known length) and produces its
 * {@link AnswerSummary}. Reusable: `reset()` before each answer. No allocation per push.
 */
export class AnswerAccumulator {
  readonly mode: DigestMode;
  #first: Uint8Array;
  #firstLen = 0;
  #contiguous = true;
  #total = 0;
  #gaps = 0;
  #kind: DigestKind | undefined;
  #digest = new Digest64();
  #body = 0;
  #http: HttpResponseParser | undefined;
  #pg: PgDigestFeeder | undefined;
  /**
   * Start of the body of a whole HTTP response held in #first (http_whole.ts), whose bytes
   * were not fed to the parser and the digest (-1: none, the usual path).
   */
  #whole = -1;
  #requestMs = NaN;
  #firstMs = NaN;
  #lastMs = NaN;
  /** Bytes held in #first before the kind is decided and they are fed. */
  readonly #hold: number;

  constructor(opts: AnswerOptions = {}) {
    const n = opts.firstBytes ?? DEFAULT_COMPARE_BYTES;
    if (!Number.isInteger(n) || n < MIN_COMPARE_BYTES || n > MAX_COMPARE_BYTES) {
      throw new RangeError(
        `first bytes must be an integer from ${MIN_COMPARE_BYTES} to ${MAX_COMPARE_BYTES}, got ${n}`,
      );
    }
    this.#first = new Uint8Array(n);
    this.mode = opts.mode ?? "auto";
    this.#hold = opts.lazy ? n : SNIFF_BYTES;
  }

  /** Starts a new answer; `requestMs` is when the request's last segment was seen/sent. */
  reset(requestMs = NaN): void {
    this.#firstLen =
      this.#total =
      this.#gaps =
      this.#body =
        0;
    this.#contiguous = true;
    this.#kind = undefined;
    this.#whole = -1;
    this.#digest.reset();
    this.#http?.reset();
    this.#pg?.reset();
    this.#requestMs = requestMs;
    this.#firstMs = this.#lastMs = NaN;
  }

  /** Bytes seen so far (gaps included). */
  get totalLength(): number {
    return this.#total;
  }

  /**
   * The answer is complete by its own framing so far: an `http` answer without gaps whose
   * bytes end exactly at the end of a response. False whenever it cannot tell (other kinds,
   * gaps, no framing, kind not decided yet).
   */
  get atMessageEnd(): boolean {
    return this.#kind === "http" && this.#gaps === 0 &&
      (this.#whole >= 0 || (this.#http !== undefined && this.#http.atMessageEnd));
  }

  /** Adds answer bytes `bytes[from, to)` that arrived at `atMs` (optional). */
  push(bytes: Uint8Array, atMs = NaN, from = 0, to = bytes.length): void {
    if (to <= from) return;
    if (this.#whole >= 0) this.#unhold();
    this.#stamp(atMs);
    this.#total += to - from;
    let copied = 0;
    if (this.#contiguous) {
      copied = Math.min(to - from, this.#first.length - this.#firstLen);
      copyInto(this.#first, this.#firstLen, bytes, from, copied);
      this.#firstLen += copied;
    }
    if (this.#kind === undefined) {
      if (this.#firstLen < this.#hold) return; // all of it is in #first
      this.#decide();
      this.#feed(bytes, from + copied, to);
    } else if (this.#contiguous) {
      this.#feed(bytes, from, to);
    }
  }

  /** `n` answer bytes that were not seen (capture loss): the digest becomes unknown. */
  gap(n: number, atMs = NaN): void {
    if (n <= 0) return;
    if (this.#whole >= 0) this.#unhold();
    this.#stamp(atMs);
    if (this.#kind === undefined) this.#decide();
    this.#total += n;
    this.#gaps += n;
    this.#contiguous = false;
  }

  /** The summary of the answer so far; `timedOut` when the turn's deadline cut it. */
  finish(timedOut = false): AnswerSummary {
    return this.#summary(this.#first.slice(0, this.#firstLen), timedOut);
  }

  /**
   * Like {@link finish}, but the summary's first bytes are a view of the accumulator's own
   * buffer: valid until the next `reset` (intercept encodes them into a frame at once).
   * `into`: a summary object to fill and return instead of a new one.
   */
  finishView(timedOut = false, into?: AnswerSummary): AnswerSummary {
    return this.#summary(this.#head(this.#firstLen), timedOut, into);
  }

  /**
   * Like {@link finishView}, without a `bigint` per answer (V8 allocates one per digest value:
   * the only heap allocation of intercept's answer path): a known digest is
   * {@link DIGEST_IN_BYTES} in the summary and its 64 bits are in {@link digestBytes} until the
   * next summary (intercept encodes them into the ANSWER frame at once).
   */
  finishViewBytes(timedOut: boolean, into: AnswerSummary): AnswerSummary {
    return this.#summary(this.#head(this.#firstLen), timedOut, into, null, true);
  }

  /**
   * The digest of the last {@link finishViewBytes} summary, big-endian (seed A's XXH32 then seed
   * B's: the value's bytes, as the ANSWER frame carries them); meaningless when its digest was
   * null.
   */
  readonly digestBytes: Uint8Array = new Uint8Array(8);
  readonly #digestOut = new DataView(this.digestBytes.buffer);

  /**
   * `#first[0, n)`: a view kept while answers of the same length follow (no view per answer
   * in a steady workload), one kept for the sniffed head ({@link SNIFF_BYTES}), else a new one.
   */
  #head(n: number): Uint8Array {
    const first = this.#first;
    if (n === SNIFF_BYTES) {
      if (this.#sniffOf !== first) {
        this.#sniffView = first.subarray(0, n);
        this.#sniffOf = first;
      }
      return this.#sniffView;
    }
    if (this.#lastOf !== first || this.#lastView.length !== n) {
      this.#lastView = n === first.length ? first : first.subarray(0, n);
      this.#lastOf = first;
    }
    return this.#lastView;
  }

  // (each view with the buffer it is of: #first changes in finishSwap)
  #sniffView: Uint8Array = EMPTY;
  #sniffOf: Uint8Array = EMPTY;
  #lastView: Uint8Array = EMPTY;
  #lastOf: Uint8Array = EMPTY;

  /**
   * Like {@link finish}, without a copy: the summary keeps the accumulator's first-bytes
   * buffer (its first bytes are a view of it: {@link buffer} before the call) and `spare`, an
   * array of the same length, becomes the accumulator's buffer (tcpcopy hands buffers around
   * a pool instead of allocating one per answer). `into`: a summary no longer used, filled
   * and returned instead of a new object.
   */
  finishSwap(
    spare: Uint8Array,
    timedOut = false,
    into?: AnswerSummary | null,
    held = false,
  ): AnswerSummary {
    if (spare.length !== this.#first.length) {
      throw new RangeError(`spare buffer of ${spare.length} bytes, ${this.#first.length} needed`);
    }
    // (the buffer goes from turn to turn through tcpcopy's pool: one view per length)
    const first = prefixView(this.#first, this.#firstLen);
    const s = this.#summary(first, timedOut, into ?? undefined, held ? HELD : null);
    this.#first = spare;
    return s;
  }

  /**
   * Like {@link finish}, with `other`'s first bytes as the summary's first bytes (no copy; the
   * accumulator keeps its buffer). They must be equal to this answer's first bytes
   * ({@link sameFirstBytes}). `other` is the target's summary of the same turn, made by this
   * same code (intercept's accumulator, the same mode and N). When `other` holds its whole
   * answer (no gap, all of it in its first bytes, digest known) and this one was held
   * unparsed (`lazy`, all of it in the first bytes), the two answers are the same bytes: their
   * kind, digest and body length are `other`'s, taken without parsing or digesting here.
   * `into` as for {@link finishSwap}.
   */
  finishShared(other: AnswerSummary, timedOut = false, into?: AnswerSummary | null): AnswerSummary {
    const whole = this.held && sameWholeAnswer(other, this.#firstLen, this.mode);
    return this.#summary(other.firstBytes, timedOut, into ?? undefined, whole ? other : null);
  }

  /**
   * The answer so far is held unparsed: its kind is not decided and its first bytes hold all
   * of it (a `lazy` accumulator's answer that fits in N bytes, without gaps).
   */
  get held(): boolean {
    return this.#kind === undefined && this.#contiguous && this.#total === this.#firstLen;
  }

  /**
   * Like {@link finishSwap} for an answer {@link held} unparsed, without parsing or digesting
   * it: the summary's kind, digest and body length are placeholders ("bytes", null, null)
   * until {@link completeHeld} fills them in from its first bytes (tcpcopy does so only for
   * turns that get a verdict).
   */
  finishSwapHeld(spare: Uint8Array, timedOut = false, into?: AnswerSummary | null): AnswerSummary {
    if (!this.held) throw new Error("finishSwapHeld: the answer is not held unparsed");
    return this.finishSwap(spare, timedOut, into, true);
  }

  /**
   * Like {@link finishSwapHeld}, without a swap: the summary's first bytes are `view`, bytes
   * equal to this answer's ({@link sameFirstBytes}) kept elsewhere (tcpcopy: an earlier turn's
   * online answer on the same connection, the same bytes again); the accumulator keeps its
   * buffer. `into` as for {@link finishSwap}.
   */
  finishHeldAs(view: Uint8Array, timedOut = false, into?: AnswerSummary | null): AnswerSummary {
    if (!this.held) throw new Error("finishHeldAs: the answer is not held unparsed");
    return this.#summary(view, timedOut, into ?? undefined, HELD);
  }

  /** True when `b` holds exactly this answer's first bytes so far. */
  sameFirstBytes(b: Uint8Array): boolean {
    return sameBytes(this.#first, 0, this.#firstLen, b, 0, b.length);
  }

  /** The first-bytes buffer now (N bytes; {@link finishSwap} hands it over). */
  get buffer(): Uint8Array {
    return this.#first;
  }

  /**
   * `same`: a summary of the same bytes whose kind, digest and body length are taken ({@link
   * HELD}: placeholders, nothing decided).
   */
  #summary(
    firstBytes: Uint8Array,
    timedOut: boolean,
    into?: AnswerSummary,
    same: AnswerSummary | null = null,
    inBytes = false,
  ): AnswerSummary {
    if (same === null && this.#kind === undefined) this.#decide();
    const kind = same?.kind ?? this.#kind ?? "bytes";
    const valid = this.#gaps === 0;
    const s = into ?? emptySummary();
    s.firstBytes = firstBytes;
    s.totalLength = this.#total;
    s.gapBytes = this.#gaps;
    s.kind = kind;
    if (same !== null) {
      s.digest = same.digest;
      s.bodyLength = same.bodyLength;
    } else if (this.#whole >= 0) {
      // (valid: a gap would have ended the fast path)
      const d = this.#digest;
      d.update(this.#first, this.#whole, this.#firstLen);
      s.digest = this.#digestValue(inBytes);
      d.reset(); // (nothing was fed: more bytes may still come, see #unhold)
      s.bodyLength = this.#firstLen - this.#whole;
    } else {
      s.digest = valid ? this.#digestValue(inBytes) : null;
      s.bodyLength = valid ? (kind === "http" ? this.#body : this.#total) : null;
    }
    s.firstMs = Number.isNaN(this.#firstMs) ? undefined : this.#firstMs;
    s.lastMs = Number.isNaN(this.#lastMs) ? undefined : this.#lastMs;
    s.timedOut = timedOut;
    s.complete = valid && !timedOut;
    s.truncated = this.#total > this.#firstLen;
    return s;
  }

  /** The digest's value, or its bytes into {@link digestBytes} and the placeholder. */
  #digestValue(inBytes: boolean): bigint {
    if (!inBytes) return this.#digest.value();
    this.#digest.writeTo(this.#digestOut, 0);
    return DIGEST_IN_BYTES;
  }

  #stamp(atMs: number): void {
    if (Number.isNaN(atMs) || Number.isNaN(this.#requestMs)) return;
    const ms = atMs - this.#requestMs;
    if (Number.isNaN(this.#firstMs)) this.#firstMs = ms;
    this.#lastMs = ms;
  }

  /** Chooses the digest kind and feeds the bytes held so far. */
  #decide(): void {
    // (the kind judges the first SNIFF_BYTES only)
    if (this.mode === "auto") {
      this.#kind = digestKindOf(this.#head(Math.min(this.#firstLen, SNIFF_BYTES)));
    } else this.#kind = this.mode;
    if (!this.#contiguous) return;
    if (this.#kind === "http" && this.#total === this.#firstLen) {
      // one whole response in the first bytes: no parser (the digest waits for the summary)
      this.#whole = wholeResponse(this.#first, this.#firstLen);
      if (this.#whole >= 0) return;
    }
    this.#feed(this.#first, 0, this.#firstLen);
  }

  /** More bytes after a whole response (or a gap): the parser takes the bytes held so far. */
  #unhold(): void {
    this.#whole = -1;
    this.#feed(this.#first, 0, this.#firstLen);
  }

  #feed(bytes: Uint8Array, from: number, to: number): void {
    if (to <= from) return;
    switch (this.#kind) {
      case "http":
        return (this.#http ??= this.#newHttp()).push(bytes, from, to);
      case "pg":
        return (this.#pg ??= new PgDigestFeeder(this.#digest)).push(bytes, from, to);
      case "bytes":
        return this.#digest.update(bytes, from, to);
      case undefined:
        return;
      default: {
        const never: never = this.#kind;
        throw new Error(`unknown digest kind ${never}`);
      }
    }
  }

  #newHttp(): HttpResponseParser {
    return new HttpResponseParser(
      {
        status: () => {},
        header: () => {},
        body: (b, from, to) => {
          this.#digest.update(b, from, to);
          this.#body += to - from;
        },
      },
      undefined,
      false, // the digest needs the framing headers only
    );
  }
}

const EMPTY = new Uint8Array(0);

/**
 * The digest of a {@link AnswerAccumulator.finishViewBytes} summary whose digest is known: its
 * value is in the accumulator's {@link AnswerAccumulator.digestBytes} (not a digest value).
 */
export const DIGEST_IN_BYTES = 0n;

/** Below this many bytes a loop copies: no view of the packet per answer (set() needs one). */
const LOOP_COPY = 512;

/** `dst[at, at + n)` = `src[from, from + n)`. */
function copyInto(dst: Uint8Array, at: number, src: Uint8Array, from: number, n: number): void {
  if (n > LOOP_COPY) {
    // (a whole array needs no view: a captured payload of its own)
    dst.set(from === 0 && n === src.length ? src : src.subarray(from, from + n), at);
    return;
  }
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i];
}

/**
 * A summary with every field written (latencies undefined, nothing known): one object shape
 * for all summaries, whoever fills them in.
 */
export function emptySummary(firstBytes: Uint8Array = EMPTY): AnswerSummary {
  return {
    firstBytes,
    totalLength: 0,
    gapBytes: 0,
    kind: "bytes",
    digest: null,
    bodyLength: null,
    firstMs: undefined,
    lastMs: undefined,
    timedOut: false,
    complete: false,
    truncated: false,
  };
}

/** Placeholder kind, digest and body length of a summary held unparsed. */
const HELD: AnswerSummary = emptySummary();

/**
 * True when `other` holds a whole answer of `n` bytes in its first bytes (no gap, digest and
 * body length known) whose kind is the one digest mode `mode` gives those bytes: an answer
 * with the same first bytes has its kind, digest and body length.
 */
function sameWholeAnswer(other: AnswerSummary, n: number, mode: DigestMode): boolean {
  return other.totalLength === n && other.firstBytes.length === n && other.gapBytes === 0 &&
    other.digest !== null && other.bodyLength !== null &&
    other.kind === (mode === "auto" ? digestKindOf(other.firstBytes) : mode);
}

/**
 * Fills in the kind, digest and body length of `s`, a summary made by
 * {@link AnswerAccumulator.finishSwapHeld} (its first bytes are the whole answer): `same`'s
 * when it holds the same whole answer (its first bytes are the same view), else computed with
 * `scratch` (an accumulator of the same mode and N; reset and used here).
 */
export function completeHeld(
  s: AnswerSummary,
  scratch: AnswerAccumulator,
  same: AnswerSummary | null,
): void {
  if (
    same !== null && same.firstBytes === s.firstBytes &&
    sameWholeAnswer(same, s.firstBytes.length, scratch.mode)
  ) {
    s.kind = same.kind;
    s.digest = same.digest;
    s.bodyLength = same.bodyLength;
    return;
  }
  scratch.reset();
  scratch.push(s.firstBytes);
  const full = scratch.finishView();
  s.kind = full.kind;
  s.digest = full.digest;
  s.bodyLength = full.bodyLength;
}

/** The summary of a whole answer given at once (tests, offline tools). */
export function summarize(
  answer: Uint8Array,
  opts: AnswerOptions = {},
): AnswerSummary {
  const acc = new AnswerAccumulator(opts);
  acc.reset();
  acc.push(answer);
  return acc.finish();
}
