/**
 * Copies of captured payloads, packed into per-connection slabs.
 *
 * The engine must copy every payload it keeps (the capture buffer is reused), and in Deno
 * each new `ArrayBuffer` above 64 bytes costs about a microsecond. A slab amortises that:
 * payloads are copied back to back into one buffer and handed out as views. Slabs belong to
 * one original connection, so a view only keeps its own connection's bytes alive; they
 * start small (a short connection pays for one small buffer) and double up to
 * {@link SLAB_MAX} as the connection keeps sending. A payload too large for a slab gets a
 * buffer of its own. The engine uses a slab only for a payload that arrives while the
 * connection still holds queued bytes (a burst; a lone request goes to {@link LoneArena}), trims
 * it whenever the connection holds no queued bytes (a buffer above {@link SLAB_MIN} goes) and
 * drops it when the connection has been idle for a while or its last replay ended. Forgetting
 * a buffer never invalidates the views handed out.
 *
 * Views are made with the `Uint8Array(buffer, offset, length)` constructor: in V8 it is
 * several times cheaper than `subarray`, which looks up the species constructor.
 */

/** First slab size of a connection. */
export const SLAB_MIN = 2048;
/** Largest slab; bigger payloads are copied alone. */
export const SLAB_MAX = 65536;

/** See the module comment. */
export class Slab {
  private buf: Uint8Array | undefined;
  private off = 0;
  private nextSize = SLAB_MIN;

  /** A stable copy of `src` (a view into the current slab, or a buffer of its own). */
  copy(src: Uint8Array): Uint8Array {
    const n = src.length;
    let buf = this.buf;
    if (buf === undefined || this.off + n > buf.length) {
      if (n > SLAB_MAX / 2) return src.slice();
      while (this.nextSize < n * 2 && this.nextSize < SLAB_MAX) this.nextSize *= 2;
      buf = this.buf = new Uint8Array(this.nextSize);
      this.off = 0;
      if (this.nextSize < SLAB_MAX) this.nextSize *= 2;
    }
    const at = this.off;
    buf.set(src, at);
    this.off = at + n;
    return new Uint8Array(buf.buffer, at, n);
  }

  /** Forget a current buffer larger than {@link SLAB_MIN}; the next slabs start small again. */
  trim(): void {
    if (this.buf !== undefined && this.buf.length > SLAB_MIN) this.buf = undefined;
    this.nextSize = SLAB_MIN;
  }

  /** Forget the current buffer. */
  release(): void {
    this.buf = undefined;
    this.nextSize = SLAB_MIN;
  }

  /** Bytes of the current buffer (0 when there is none). */
  get capacity(): number {
    return this.buf?.length ?? 0;
  }
}

/** `a.subarray(from, to)` without the species lookup (0 <= from <= to <= a.length). */
export function view(a: Uint8Array, from: number, to: number): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset + from, to - from);
}

/** Largest lone payload {@link LoneArena} takes; a bigger one gets a buffer of its own. */
export const LONE_MAX = 512;

/**
 * Lone payloads (a segment that arrives while its connection holds no queued bytes: a
 * keep-alive request, a short connection's request) of every connection, packed back to back
 * into shared blocks of {@link SLAB_MIN} bytes: one `ArrayBuffer` per block instead of one per
 * payload (`slice` cost ~1.6 µs per request, ~10 % of the engine's time per request). A block
 * is freed by the garbage collector once every view into it is gone (the requests were
 * acknowledged); a session that stalls with its lone payload queued pins at most one block,
 * {@link SLAB_MIN} bytes, the same as the first slab of a connection with queued bytes would.
 */
export class LoneArena {
  private buf = new Uint8Array(0);
  private off = 0;

  /** A stable copy of `src` (a view into the current block, or a buffer of its own). */
  copy(src: Uint8Array): Uint8Array {
    const n = src.length;
    if (n > LONE_MAX) return src.slice();
    let buf = this.buf;
    if (this.off + n > buf.length) {
      buf = this.buf = new Uint8Array(SLAB_MIN);
      this.off = 0;
    }
    const at = this.off;
    buf.set(src, at);
    this.off = at + n;
    return new Uint8Array(buf.buffer, at, n);
  }
}
