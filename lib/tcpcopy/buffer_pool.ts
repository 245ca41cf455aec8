/**
 * Fixed-size byte buffers for `--compare`'s per-turn state (request heads, first answer
 * bytes), handed out and taken back instead of allocated per turn: a typed array with its own
 * backing store costs microseconds to allocate in V8 (and drives garbage collections), a view
 * of a shared one a few dozen nanoseconds. New buffers are cut from slabs of
 * {@link SLAB_BYTES}; free ones are kept up to a count.
 *
 * @module
 */

/** Bytes of one slab (at least one buffer per slab). */
export const SLAB_BYTES = 64 << 10;

/** See the module comment. */
export class BufferPool {
  readonly #free: Uint8Array[] = [];
  #slab: Uint8Array = new Uint8Array(0);
  #slabAt = 0;

  /** `size`: bytes per buffer; `keep`: free buffers kept at most. */
  constructor(readonly size: number, readonly keep: number) {}

  /** A buffer of `size` bytes (its content is whatever the last user left). */
  take(): Uint8Array {
    const b = this.#free.pop();
    if (b !== undefined) return b;
    if (this.#slabAt + this.size > this.#slab.length) {
      this.#slab = new Uint8Array(Math.max(this.size, SLAB_BYTES - SLAB_BYTES % this.size));
      this.#slabAt = 0;
    }
    const out = this.#slab.subarray(this.#slabAt, this.#slabAt + this.size);
    this.#slabAt += this.size;
    return out;
  }

  /** Gives `b` back (ignored when it is not one of this pool's size or the pool is full). */
  give(b: Uint8Array | null): void {
    if (b !== null && b.length === this.size && this.#free.length < this.keep) this.#free.push(b);
  }

  /** Free buffers held now. */
  get free(): number {
    return this.#free.length;
  }
}
