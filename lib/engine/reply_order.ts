/**
 * One direction of server payload put back in sequence order for a protocol module (the
 * target's reply prefixes, or the online server's captured replies): retransmitted bytes are
 * skipped, segments beyond a hole wait (at most {@link MAX_PENDING_SEGMENTS} segments /
 * {@link MAX_PENDING_BYTES} bytes; then the hole is given up as a gap), bytes a segment had
 * beyond what is known (a cut prefix) are a gap.
 *
 * @module
 */
import { view } from "./slab.ts";
import { seqAdd, seqLe, seqLt, seqSub } from "../wire/seq.ts";

/** Segments waiting beyond a hole before the hole is given up as a gap. */
export const MAX_PENDING_SEGMENTS = 16;
/** Known bytes waiting beyond a hole before the hole is given up as a gap. */
export const MAX_PENDING_BYTES = 64 * 1024;

interface Pending {
  seq: number;
  len: number;
  known: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/** Where in-order bytes go; `open()` false stops delivery (the module passed or failed). */
export interface OrderSink {
  data(bytes: Uint8Array): void;
  gap(n: number): void;
  open(): boolean;
}

/** See the module comment. */
export class ReplyOrder {
  #next = 0;
  #on = false;
  #pending: Pending[] = [];
  #pendingBytes = 0;

  constructor(private readonly sink: OrderSink) {}

  /** The first payload byte is `seq` (the server's ISN + 1). */
  start(seq: number): void {
    this.#next = seq;
    this.#on = true;
    this.clear();
  }

  /** The sequence number of the next in-order byte (after the last one delivered). */
  get next(): number {
    return this.#next;
  }

  /** The start is known. */
  get started(): boolean {
    return this.#on;
  }

  /** Known bytes waiting beyond a hole. */
  get bytes(): number {
    return this.#pendingBytes;
  }

  /** Forgets what waits. */
  clear(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  /** A segment with `len` payload bytes at `seq`, of which the first `known` bytes are known. */
  add(seq: number, len: number, prefix: Uint8Array | undefined): void {
    if (!this.#on || len <= 0 || !this.sink.open()) return;
    const known = prefix === undefined
      ? EMPTY
      : prefix.length > len
      ? view(prefix, 0, len)
      : prefix;
    if (seqLe(seqAdd(seq, len), this.#next)) return; // retransmitted
    if (seqLt(this.#next, seq)) {
      this.#hold(seq, len, known);
      if (
        this.#pending.length > MAX_PENDING_SEGMENTS || this.#pendingBytes > MAX_PENDING_BYTES
      ) {
        const p = this.#pending[0];
        this.#gap(seqSub(p.seq, this.#next));
        this.#next = p.seq;
      }
    } else this.#deliver(seq, len, known);
    this.#pull();
  }

  #hold(seq: number, len: number, known: Uint8Array): void {
    const ps = this.#pending;
    let i = ps.length;
    while (i > 0 && seqLt(seq, ps[i - 1].seq)) i--;
    if (i > 0 && ps[i - 1].seq === seq && ps[i - 1].len >= len) return; // duplicate
    ps.splice(i, 0, { seq, len, known: known.slice() });
    this.#pendingBytes += known.length;
  }

  #pull(): void {
    const ps = this.#pending;
    while (ps.length > 0 && this.sink.open() && seqLe(ps[0].seq, this.#next)) {
      const p = ps.shift()!;
      this.#pendingBytes -= p.known.length;
      if (seqLt(this.#next, seqAdd(p.seq, p.len))) this.#deliver(p.seq, p.len, p.known);
    }
    if (!this.sink.open()) this.clear();
  }

  /** In-order bytes (starting at or before the next expected byte) to the sink. */
  #deliver(seq: number, len: number, known: Uint8Array): void {
    const skip = seqSub(this.#next, seq);
    this.#next = seqAdd(seq, len);
    if (skip < known.length) this.sink.data(skip === 0 ? known : view(known, skip, known.length));
    this.#gap(len - Math.max(skip, known.length));
  }

  #gap(n: number): void {
    if (n > 0 && this.sink.open()) this.sink.gap(n);
  }
}
