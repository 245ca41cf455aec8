/**
 * A growable byte queue for one direction of a PostgreSQL session: bytes are appended at the
 * end and consumed from the front; the storage is reused (compacted), not reallocated per chunk.
 *
 * @module
 */

/** Bytes appended by `push`, read with `view`/`u8`/`u32` and dropped with `consume`. */
export class ByteQueue {
  #buf: Uint8Array;
  #start = 0;
  #end = 0;

  /** A queue with `initial` bytes of storage (grows on demand). */
  constructor(initial = 256) {
    this.#buf = new Uint8Array(initial);
  }

  /** Bytes available. */
  get length(): number {
    return this.#end - this.#start;
  }

  /** Appends a copy of `data`. */
  push(data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end + data.length > this.#buf.length) this.#make(data.length);
    this.#buf.set(data, this.#end);
    this.#end += data.length;
  }

  /** The byte at offset `i` from the front (caller checks `i < length`). */
  u8(i: number): number {
    return this.#buf[this.#start + i];
  }

  /** The big-endian unsigned 32-bit value at offset `i` (caller checks `i + 4 <= length`). */
  u32(i: number): number {
    const b = this.#buf, p = this.#start + i;
    return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  }

  /** A view of `n` bytes at offset `i` (valid until the next push/consume). */
  view(i: number, n: number): Uint8Array {
    return this.#buf.subarray(this.#start + i, this.#start + i + n);
  }

  /** Drops `n` bytes from the front (at most `length`). */
  consume(n: number): void {
    this.#start = Math.min(this.#end, this.#start + n);
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  /** Drops everything. */
  clear(): void {
    this.#start = this.#end = 0;
  }

  #make(extra: number): void {
    const used = this.#end - this.#start;
    const need = used + extra;
    if (need <= this.#buf.length && this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      let size = this.#buf.length * 2;
      while (size < need) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
    }
    this.#start = 0;
    this.#end = used;
  }
}
