/**
 * Deterministic 32-bit flow hashing (FNV-1a over the text, then a murmur3 finaliser), used
 * for sampling, fractional copies and client-address choice. Same input + seed, same result.
 */

/** Hash of `text` under `seed`, an unsigned 32-bit integer. */
export function hash32(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

/** Murmur3 finaliser: spreads every input bit over the output. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uniform value in [0, 1) derived from `h` and a salt (independent per salt). */
export function unit(h: number, salt: number): number {
  return mix32((h ^ Math.imul(salt + 1, 0x9e3779b9)) >>> 0) / 4294967296;
}
