/**
 * TCP sequence-number arithmetic modulo 2^32 (RFC 793 section 3.3, RFC 1982).
 *
 * Every value accepted and returned is an unsigned 32-bit integer (0 .. 2^32-1).
 * Comparisons are defined through the signed distance `seqSub(a, b)`, so they stay
 * correct across wrap-around as long as the two numbers are less than 2^31 apart.
 *
 * @module
 */

/**
 * The first value of a sequence-number (or TCP timestamp) field in an object reused packet
 * after packet: 2^31. V8 keeps a field that held only small integers in a representation of its
 * own; the first number at or above 2^31 (half of real sequence numbers and timestamps) turns
 * it into a double field, which gives the object a new hidden class, and every optimized
 * function that handled the object is thrown away ("wrong map") and compiled again. Starting
 * above 2^31 makes the field a double one from the start, whatever the first connection's
 * numbers (README.md, "CPU per wake-up").
 */
export const SEQ_FIELD_INIT = 0x80000000;

/** `a + n` modulo 2^32. `n` may be negative. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** Signed distance `a - b` modulo 2^32, in [-2^31, 2^31). */
export function seqSub(a: number, b: number): number {
  return (a - b) | 0;
}

/** `a` comes strictly before `b`. */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** `a` comes before or equals `b`. */
export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

/** `a` comes strictly after `b`. */
export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/** `a` comes after or equals `b`. */
export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/** Alias of {@link seqGt}: `a` is after `b`. */
export const seqAfter = seqGt;

/** Alias of {@link seqLt}: `a` is before `b`. */
export const seqBefore = seqLt;

/** The later of two sequence numbers. */
export function seqMax(a: number, b: number): number {
  return ((a - b) | 0) >= 0 ? a >>> 0 : b >>> 0;
}

/** The earlier of two sequence numbers. */
export function seqMin(a: number, b: number): number {
  return ((a - b) | 0) <= 0 ? a >>> 0 : b >>> 0;
}

/**
 * `start <= x < end` in sequence space (half-open window, as for a receive window).
 * An empty window (`start == end`) contains nothing.
 */
export function seqInRange(x: number, start: number, end: number): boolean {
  return ((x - start) >>> 0) < ((end - start) >>> 0);
}
