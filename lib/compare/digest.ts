/**
 * The answer digest: a fast, incremental, non-cryptographic 64-bit hash.
 *
 * It is XXH32 (Yann Collet's xxHash, 32-bit variant, as specified in xxHash's
 * `doc/xxhash_spec.md`) computed twice in one pass, with seed 0 and with seed `PRIME32_1`,
 * the two 32-bit results one after the other: a 64-bit value (a `bigint`, seed A's XXH32 in the
 * high half), written as 16 hex digits where it is shown. Both halves match the published XXH32
 * test vectors, so any implementation on either side of the tunnel can be checked against them.
 *
 * Why not a cryptographic hash: the digest only tells "these two answers are very probably
 * equal" (a wrong "equal" needs a 64-bit collision between two honest servers' answers). It
 * is compared, never trusted: nothing is authenticated or deduplicated with it, and a
 * malicious server that forges a collision only makes its own answer look unchanged. In
 * exchange it costs a few integer multiplications per 4 bytes, in plain TS, without WebCrypto's
 * asynchronous calls, and its state is a few numbers: nothing is allocated per chunk.
 *
 * @module
 */

const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;
const P4 = 0x27d4eb2f | 0;
const P5 = 0x165667b1 | 0;

/** The two seeds: the digest is XXH32(seed A) ‖ XXH32(seed B). */
export const DIGEST_SEEDS: readonly [number, number] = [0, 0x9e3779b1];

/** Scratch for {@link Digest64.value} (shared: a digest is read synchronously). */
const OUT = new DataView(new ArrayBuffer(8));

/** One XXH32 lane round. */
function round(acc: number, word: number): number {
  acc = (acc + Math.imul(word, P2)) | 0;
  return Math.imul((acc << 13) | (acc >>> 19), P1);
}

/** Little-endian 32-bit word at `i`. */
function word(b: Uint8Array, i: number): number {
  return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
}

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/**
 * Incremental 64-bit digest (two XXH32 in one pass). `update` any number of byte ranges,
 * then `hex()`; `reset()` to reuse the object (no allocation after construction).
 */
export class Digest64 {
  /** Lanes: 0-3 for seed A, 4-7 for seed B. */
  #lanes = new Int32Array(8);
  /** Bytes of an incomplete 16-byte stripe. */
  #pending = new Uint8Array(16);
  #pendingView = new DataView(this.#pending.buffer);
  #pendingLen = 0;
  #total = 0;
  /** A view of the last input's whole ArrayBuffer: made again only when the buffer changes. */
  #view: DataView | undefined;
  #viewBuffer: ArrayBufferLike | undefined;

  constructor() {
    this.reset();
  }

  /** Starts over (an empty input). */
  reset(): void {
    for (let s = 0; s < 2; s++) {
      const seed = DIGEST_SEEDS[s] | 0;
      this.#lanes[s * 4] = (seed + P1 + P2) | 0;
      this.#lanes[s * 4 + 1] = (seed + P2) | 0;
      this.#lanes[s * 4 + 2] = seed;
      this.#lanes[s * 4 + 3] = (seed - P1) | 0;
    }
    this.#pendingLen = 0;
    this.#total = 0;
  }

  /** Bytes hashed so far. */
  get length(): number {
    return this.#total;
  }

  /** Adds `bytes[from, to)`. */
  update(bytes: Uint8Array, from = 0, to = bytes.length): void {
    if (to <= from) return;
    this.#total += to - from;
    let i = from;
    if (this.#pendingLen > 0) {
      const take = Math.min(16 - this.#pendingLen, to - i);
      for (let k = 0; k < take; k++) this.#pending[this.#pendingLen++] = bytes[i++];
      if (this.#pendingLen < 16) return;
      this.#stripes(this.#pendingView, 0, 16);
      this.#pendingLen = 0;
    }
    const end = i + ((to - i) & ~15);
    if (end > i) this.#stripes(this.#viewOf(bytes), bytes.byteOffset + i, bytes.byteOffset + end);
    if (end < to) {
      for (let k = end; k < to; k++) this.#pending[this.#pendingLen++] = bytes[k];
    }
  }

  /** Adds one byte. */
  updateByte(value: number): void {
    this.#pending[this.#pendingLen++] = value;
    this.#total++;
    if (this.#pendingLen === 16) {
      this.#stripes(this.#pendingView, 0, 16);
      this.#pendingLen = 0;
    }
  }

  #viewOf(bytes: Uint8Array): DataView {
    if (bytes.buffer !== this.#viewBuffer || !this.#view) {
      this.#view = new DataView(bytes.buffer);
      this.#viewBuffer = bytes.buffer;
    }
    return this.#view;
  }

  /**
   * Runs the lane rounds over whole stripes of `v` from byte `from` to `to` (a multiple of 16
   * apart). DataView reads: about three times faster than assembling words from bytes.
   */
  #stripes(v: DataView, from: number, to: number): void {
    const l = this.#lanes;
    let a0 = l[0], a1 = l[1], a2 = l[2], a3 = l[3];
    let b0 = l[4], b1 = l[5], b2 = l[6], b3 = l[7];
    for (let i = from; i < to; i += 16) {
      const w0 = v.getInt32(i, true), w1 = v.getInt32(i + 4, true);
      const w2 = v.getInt32(i + 8, true), w3 = v.getInt32(i + 12, true);
      a0 = round(a0, w0);
      a1 = round(a1, w1);
      a2 = round(a2, w2);
      a3 = round(a3, w3);
      b0 = round(b0, w0);
      b1 = round(b1, w1);
      b2 = round(b2, w2);
      b3 = round(b3, w3);
    }
    l[0] = a0, l[1] = a1, l[2] = a2, l[3] = a3;
    l[4] = b0, l[5] = b1, l[6] = b2, l[7] = b3;
  }

  /** XXH32 of everything added so far under seed number `s` (0 or 1), unsigned. */
  value32(s: 0 | 1): number {
    this.#final(s, OUT, 0);
    return OUT.getUint32(0);
  }

  /**
   * Writes seed `s`'s XXH32 big-endian at `out[at]` (no number returned: an unsigned 32-bit
   * value would be boxed on the heap, per answer).
   */
  #final(s: 0 | 1, out: DataView, at: number): void {
    const l = this.#lanes;
    const k = s * 4;
    let h: number;
    if (this.#total >= 16) {
      h = (rotl(l[k], 1) + rotl(l[k + 1], 7) + rotl(l[k + 2], 12) + rotl(l[k + 3], 18)) | 0;
    } else {
      h = (DIGEST_SEEDS[s] + P5) | 0;
    }
    h = (h + (this.#total % 4294967296)) | 0;
    const p = this.#pending;
    let i = 0;
    for (; i + 4 <= this.#pendingLen; i += 4) {
      h = Math.imul(rotl((h + Math.imul(word(p, i), P3)) | 0, 17), P4);
    }
    for (; i < this.#pendingLen; i++) {
      h = Math.imul(rotl((h + Math.imul(p[i], P5)) | 0, 11), P1);
    }
    h ^= h >>> 15;
    h = Math.imul(h, P2);
    h ^= h >>> 13;
    h = Math.imul(h, P3);
    h ^= h >>> 16;
    out.setInt32(at, h);
  }

  /**
   * The 64-bit digest: seed A's XXH32 in the high 32 bits, seed B's in the low ones (one
   * `bigint`: compared with `===`, no string built per answer).
   */
  value(): bigint {
    this.writeTo(OUT, 0);
    return OUT.getBigUint64(0);
  }

  /**
   * Writes the 64-bit digest big-endian at `out[at, at + 8)`: the bytes of {@link value} (seed
   * A's XXH32, then seed B's), without a `bigint` (intercept writes them into its ANSWER frames:
   * no heap allocation per answer).
   */
  writeTo(out: DataView, at: number): void {
    this.#final(0, out, at);
    this.#final(1, out, at + 4);
  }

  /** The 64-bit digest as 16 lowercase hex digits (seed A's XXH32, then seed B's). */
  hex(): string {
    return hex32(this.value32(0)) + hex32(this.value32(1));
  }
}

function hex32(v: number): string {
  return v.toString(16).padStart(8, "0");
}

/** A digest value as 16 lowercase hex digits (hints, logs). */
export function digestText(digest: bigint): string {
  return digest.toString(16).padStart(16, "0");
}

/** One-shot digest of `bytes` as hex (tests, small inputs). */
export function digestHex(bytes: Uint8Array): string {
  const d = new Digest64();
  d.update(bytes);
  return d.hex();
}

/** One-shot digest of `bytes` (tests, small inputs). */
export function digestOf(bytes: Uint8Array): bigint {
  const d = new Digest64();
  d.update(bytes);
  return d.value();
}
