/**
 * Deterministic 32-bit flow hashing (FNV-1a over the text, then a murmur3 finaliser), used
 * for sampling, fractional copies and client-address choice. Same input + seed, same result.
 */

/** Hash of `text` under `seed`, an unsigned 32-bit integer. */
export function hash32(text: string, seed: number): number {
  return mix32(fnvText((0x811c9dc5 ^ seed) >>> 0, text));
}

/** FNV-1a step over the characters of `text`. */
function fnvText(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** FNV-1a step over the decimal digits of `n` (a non-negative integer), as `String(n)`. */
function fnvDecimal(h: number, n: number): number {
  let div = 1;
  while (div * 10 <= n) div *= 10;
  for (; div >= 1; div /= 10) {
    h ^= 48 + (Math.floor(n / div) % 10);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

const BAR = 124; // "|"

/**
 * Same value as `hash32(tupleKey(a, aPort, b, bPort), seed)` (a connection's flow hash),
 * without building the key string: one hash per new connection, nothing allocated.
 */
export function hashTuple(
  a: string,
  aPort: number,
  b: string,
  bPort: number,
  seed: number,
): number {
  let h = fnvText((0x811c9dc5 ^ seed) >>> 0, a);
  h = Math.imul(h ^ BAR, 0x01000193);
  h = fnvDecimal(h, aPort);
  h = Math.imul(h ^ BAR, 0x01000193);
  h = fnvText(h, b);
  h = Math.imul(h ^ BAR, 0x01000193);
  h = fnvDecimal(h, bPort);
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
