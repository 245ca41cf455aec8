/**
 * Byte-range equality for the comparators and the turn pairing: by 32-bit words where both
 * ranges share an alignment (first bytes are compared on every turn of `--compare`).
 *
 * @module
 */

/** True when `a[af, at)` and `b[bf, bt)` hold the same bytes (by 32-bit words where it can). */
export function sameBytes(
  a: Uint8Array,
  af: number,
  at: number,
  b: Uint8Array,
  bf: number,
  bt: number,
): boolean {
  const n = at - af;
  if (n !== bt - bf) return false;
  let i = 0;
  if (n >= WORDS_FROM) {
    // 4 bytes at a time where both ranges share an alignment: read as 32-bit words through
    // one cached Int32Array per buffer (no view per call)
    const ao = a.byteOffset + af, bo = b.byteOffset + bf;
    const skew = (4 - (ao & 3)) & 3;
    if ((ao & 3) === (bo & 3)) {
      for (; i < skew; i++) if (a[af + i] !== b[bf + i]) return false;
      const wa = wordsOf(a.buffer), wb = wordsOf(b.buffer);
      if (wa !== null && wb !== null) {
        const w0 = (ao + i) >> 2, v0 = (bo + i) >> 2, words = (n - i) >> 2;
        for (let k = 0; k < words; k++) if (wa[w0 + k] !== wb[v0 + k]) return false;
        i += words << 2;
      }
    }
  }
  for (; i < n; i++) if (a[af + i] !== b[bf + i]) return false;
  return true;
}

/** Ranges this long or longer are compared by 32-bit words. */
const WORDS_FROM = 64;
/** A 32-bit view of each buffer compared (buffers are pooled slabs: few, long-lived). */
const wordViews = new WeakMap<ArrayBufferLike, Int32Array | null>();

/** A 32-bit view of the whole of `buf`; null when it cannot be made (resizable, tiny). */
function wordsOf(buf: ArrayBufferLike): Int32Array | null {
  let v = wordViews.get(buf);
  if (v === undefined) {
    v = buf.byteLength >= 4 && !("resizable" in buf && buf.resizable)
      ? new Int32Array(buf, 0, buf.byteLength >> 2)
      : null;
    wordViews.set(buf, v);
  }
  return v;
}
