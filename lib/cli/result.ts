/** The outcome of parsing one piece of user input: a value, or one line saying what is wrong. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** Wraps a successfully parsed value. */
export function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

/** Wraps a one-line description of what is wrong with the input. */
export function fail<T>(error: string): Parsed<T> {
  return { ok: false, error };
}
