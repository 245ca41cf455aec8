/**
 * Per-connection reply batching and the bounded outbound queue (intercept side, pure).
 *
 * Records are written straight into an open frame (v6 combined frame, or an extension
 * REPLIES frame). A frame is closed when it holds `maxRecords` records or when its first
 * record is `flushMs` old (checked by `flushDue`, which the server calls from a timer).
 * Closed frames are copied into one output buffer (no allocation per frame) and wait there
 * until the writer takes them; what is taken stays in place until `written()`. The queue
 * plus the open frame never exceed `maxQueuedBytes`. A record that would exceed it is dropped and counted, so a
 * slow or dead tcpcopy costs memory up to that bound and never stalls anybody else.
 */
import type { ReplyInfo } from "./reply_packet.ts";
import {
  EXT_HEADER_SIZE,
  extRecordLength,
  FrameKind,
  MAX_BATCH,
  MAX_EXT_BODY,
  RECORD_SIZE,
  writeRecordExt,
  writeRecordV6,
} from "./replies.ts";

/** Settings of one connection's batcher. */
export interface BatcherOptions {
  /** Extension framing (negotiated); false = C v6 combined frames. */
  ext: boolean;
  /** Payload prefix bytes per record (extension only). */
  prefix: number;
  /** Flush deadline of an open frame. */
  flushMs: number;
  /** Records per frame (1..16). */
  maxRecords: number;
  /** Bound of queued plus open bytes. */
  maxQueuedBytes: number;
}

/** Defaults: v6, 2 ms, 16 records, 1 MiB. */
export const DEFAULT_BATCHER: BatcherOptions = {
  ext: false,
  prefix: 0,
  flushMs: 2,
  maxRecords: MAX_BATCH,
  maxQueuedBytes: 1 << 20,
};

/** Outcome of adding a reply. */
export type AddResult = "queued" | "dropped-full" | "unsupported";

/** The batcher of one tunnel connection. */
export class ReplyBatcher {
  readonly opts: BatcherOptions;
  #frame: Uint8Array;
  #used = 0;
  #records = 0;
  #openedAt = 0;
  /** Output buffer: [#outStart, #takenEnd) taken by the writer, [#takenEnd, #outEnd) queued. */
  #out = new Uint8Array(16384);
  #outStart = 0;
  #takenEnd = 0;
  #outEnd = 0;
  /** Frames closed so far. */
  frames = 0;
  /** Records placed into frames. */
  records = 0;
  /** Records dropped because the queue was full. */
  droppedFull = 0;
  /** Ready-made frames (heartbeat answers) dropped because the queue was full. */
  framesDropped = 0;

  constructor(opts: Partial<BatcherOptions> = {}) {
    this.opts = { ...DEFAULT_BATCHER, ...opts };
    this.#frame = new Uint8Array(this.#capacity());
  }

  #capacity(): number {
    if (!this.opts.ext) return 2 + this.opts.maxRecords * RECORD_SIZE;
    return Math.min(
      EXT_HEADER_SIZE + MAX_EXT_BODY,
      EXT_HEADER_SIZE + this.opts.maxRecords * (2 + 120 + this.opts.prefix),
    );
  }

  /** Switches framing (used once, right after the extension ack was queued). */
  reconfigure(opts: Partial<BatcherOptions>): void {
    this.flush();
    Object.assign(this.opts, opts);
    this.#frame = new Uint8Array(this.#capacity());
  }

  /** Bytes not yet written: the write in flight, closed frames and the open one. */
  get queuedBytes(): number {
    return this.#outEnd - this.#outStart + this.#used;
  }

  /** Makes room for `len` more bytes at `#outEnd`, growing the output buffer when needed. */
  #room(len: number): void {
    const need = this.#outEnd + len;
    if (need <= this.#out.length) return;
    // the taken part keeps its old buffer (the writer may still hold a view of it)
    let size = this.#out.length;
    while (size < need - this.#outStart) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#out.subarray(this.#outStart, this.#outEnd));
    this.#outEnd -= this.#outStart;
    this.#takenEnd -= this.#outStart;
    this.#outStart = 0;
    this.#out = grown;
  }

  /** Appends closed-frame bytes to the output buffer, growing it when needed. */
  #append(bytes: Uint8Array): void {
    this.#room(bytes.length);
    this.#out.set(bytes, this.#outEnd);
    this.#outEnd += bytes.length;
  }

  /**
   * Room for one ready-made frame of `len` bytes written in place, without a copy (intercept's
   * ANSWER frames): closes the open frame like {@link addFrame} and returns the index in
   * {@link frameBuffer} where the frame goes, or -1 (counted like a dropped frame) when it
   * would exceed the queue bound. The frame is queued by {@link commitFrame}; nothing else may
   * touch the batcher in between.
   */
  reserveFrame(len: number): number {
    this.flush();
    if (this.queuedBytes + len > this.opts.maxQueuedBytes) {
      this.framesDropped++;
      return -1;
    }
    this.#room(len);
    return this.#outEnd;
  }

  /** The buffer a {@link reserveFrame} index points into (valid until the next batcher call). */
  get frameBuffer(): Uint8Array {
    return this.#out;
  }

  /** Queues the `len` bytes written at the index {@link reserveFrame} returned. */
  commitFrame(len: number): boolean {
    this.#outEnd += len;
    return true;
  }

  /** Adds one reply (`info` from inspectReply on `pkt`). */
  add(pkt: Uint8Array, info: ReplyInfo, now: number): AddResult {
    const ext = this.opts.ext;
    if (!ext && info.family !== 4) return "unsupported";
    const size = ext ? 2 + extRecordLength(info, this.opts.prefix) : RECORD_SIZE;
    const header = ext ? EXT_HEADER_SIZE : 2;
    if (this.#records > 0 && this.#used + size > this.#frame.length) this.flush();
    const grow = this.#records === 0 ? header + size : size;
    if (this.queuedBytes + grow > this.opts.maxQueuedBytes) {
      this.droppedFull++;
      return "dropped-full";
    }
    if (this.#records === 0) {
      this.#used = header;
      this.#openedAt = now;
    }
    if (ext) {
      this.#used += writeRecordExt(this.#frame, this.#used, pkt, info, this.opts.prefix);
    } else {
      writeRecordV6(this.#frame, this.#used, pkt, info);
      this.#used += RECORD_SIZE;
    }
    this.#records++;
    if (this.#records >= this.opts.maxRecords) this.flush();
    return "queued";
  }

  /**
   * Queues a ready-made frame (ack, heartbeat) after closing the open one; false (and
   * counted) when it would exceed the queue bound, like a record: a peer that sends
   * heartbeats and never reads must not grow the queue.
   */
  addFrame(frame: Uint8Array): boolean {
    this.flush();
    if (this.queuedBytes + frame.length > this.opts.maxQueuedBytes) {
      this.framesDropped++;
      return false;
    }
    this.#append(frame);
    return true;
  }

  /** Closes the open frame if its deadline has passed; true if something was closed. */
  flushDue(now: number): boolean {
    if (this.#records === 0 || now - this.#openedAt < this.opts.flushMs) return false;
    this.flush();
    return true;
  }

  /** Closes the open frame now. */
  flush(): void {
    if (this.#records === 0) return;
    const f = this.#frame;
    if (this.opts.ext) {
      const body = this.#used - EXT_HEADER_SIZE;
      f[0] = FrameKind.REPLIES;
      f[1] = 0;
      f[2] = body >> 8;
      f[3] = body & 0xff;
    } else {
      f[0] = this.#records >> 8;
      f[1] = this.#records & 0xff;
    }
    this.#append(f.subarray(0, this.#used));
    this.frames++;
    this.records += this.#records;
    this.#records = 0;
    this.#used = 0;
  }

  /** Records in the open (not yet closed) frame. */
  get openRecords(): number {
    return this.#records;
  }

  /** True when closed frames wait for the writer. */
  get hasOutput(): boolean {
    return this.#outEnd > this.#takenEnd;
  }

  /**
   * Takes every closed frame as one buffer for a single write (undefined if none). Its
   * bytes still count against the bound until `written()` is called.
   */
  takeOutput(): Uint8Array | undefined {
    if (this.#outEnd === this.#takenEnd) return undefined;
    const out = this.#out.subarray(this.#takenEnd, this.#outEnd);
    this.#takenEnd = this.#outEnd;
    return out;
  }

  /** Reports that `n` bytes taken with takeOutput reached the socket. */
  written(n: number): void {
    this.#outStart = Math.min(this.#takenEnd, this.#outStart + n);
    if (this.#outStart === this.#outEnd) this.#outStart = this.#takenEnd = this.#outEnd = 0;
  }
}
