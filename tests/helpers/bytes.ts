/**
 * Byte-building shorthands for tests that write packets and messages by hand.
 *
 * @module
 */

/** The parts one after another in a fresh array (number arrays are taken as bytes). */
export function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
