/**
 * The tests' one seeded PRNG: mulberry32 (Tommy Ettinger's 32-bit generator), small, fast and
 * deterministic, so a failing fuzz or model test is replayed by its seed. Not for anything secret.
 *
 * @module
 */

/** A generator of floats in [0, 1) that yields the same sequence for the same `seed`. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generator of integers in [0, n) drawn from `rnd` (a {@link mulberry32} by default). */
export function randomInt(rnd: () => number): (n: number) => number {
  return (n) => Math.floor(rnd() * n);
}
