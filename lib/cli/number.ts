/** Numeric flag values: decimal integers and decimals, checked against an allowed range. */
import { fail, ok, type Parsed } from "./result.ts";

/** Parses a decimal integer in [min, max]. */
export function parseIntInRange(text: string, min: number, max: number): Parsed<number> {
  if (!/^[0-9]+$/.test(text)) return fail(`expected a whole number in ${min}..${max}`);
  const n = Number(text);
  if (n < min || n > max) return fail(`expected a whole number in ${min}..${max}`);
  return ok(n);
}

/** Parses a plain decimal number (no exponent, no sign) in [min, max]; `minExclusive` excludes min. */
export function parseDecimalInRange(
  text: string,
  min: number,
  max: number,
  minExclusive = false,
): Parsed<number> {
  const range = `${minExclusive ? `> ${min}` : `${min}`}${minExclusive ? " and <= " : ".."}${max}`;
  if (!/^([0-9]+(\.[0-9]*)?|\.[0-9]+)$/.test(text)) return fail(`expected a number ${range}`);
  const n = Number(text);
  if (n > max || n < min || (minExclusive && n === min)) return fail(`expected a number ${range}`);
  return ok(n);
}
