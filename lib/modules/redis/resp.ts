/**
 * RESP pieces the Redis module needs: the strict integer of `*N` / `$L` headers, Redis's
 * splitting of inline commands, and the encoding of a command as an array of bulk strings.
 *
 * @module
 */

/** Most digits an accepted header number has (Redis's string2ll bound). */
const MAX_DIGITS = 18;

/**
 * The integer in `b[start, end)` the way Redis reads a header (an optional `-`, then `0` or a
 * digit 1-9 and digits), or undefined when Redis would not accept it.
 */
export function parseHeaderNumber(b: Uint8Array, start: number, end: number): number | undefined {
  let i = start;
  let negative = false;
  if (i < end && b[i] === 45) {
    negative = true;
    i++;
  }
  const digits = end - i;
  if (digits < 1 || digits > MAX_DIGITS) return undefined;
  if (b[i] === 48) return digits === 1 && !negative ? 0 : undefined;
  let n = 0;
  for (; i < end; i++) {
    const d = b[i] - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return negative ? -n : n;
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13); // C isspace: space \t \n \v \f \r
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Splits an inline command line (without its line end) into arguments as Redis does
 * (sdssplitargs: blanks separate, `"..."` with `\n \r \t \b \a \xHH` escapes, `'...'` with
 * `\'`), or returns why Redis would refuse it (unbalanced quotes, a NUL byte).
 */
export function splitInline(line: Uint8Array): Uint8Array[] | string {
  if (line.indexOf(0) >= 0) return "NUL byte in an inline command";
  const args: Uint8Array[] = [];
  const n = line.length;
  let p = 0;
  const cur: number[] = [];
  for (;;) {
    while (p < n && isSpace(line[p])) p++;
    if (p >= n) return args;
    cur.length = 0;
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      const c = p < n ? line[p] : 0;
      if (inDouble) {
        if (
          c === 92 && p + 3 < n && line[p + 1] === 120 && hexValue(line[p + 2]) >= 0 &&
          hexValue(line[p + 3]) >= 0
        ) { // \xHH
          cur.push(hexValue(line[p + 2]) * 16 + hexValue(line[p + 3]));
          p += 3;
        } else if (c === 92 && p + 1 < n) {
          p++;
          cur.push(escaped(line[p]));
        } else if (c === 34) {
          if (p + 1 < n && !isSpace(line[p + 1])) {
            return "closing quote must be followed by a space";
          }
          done = true;
        } else if (p >= n) {
          return "unbalanced quotes in an inline command";
        } else {
          cur.push(c);
        }
      } else if (inSingle) {
        if (c === 92 && p + 1 < n && line[p + 1] === 39) {
          p++;
          cur.push(39);
        } else if (c === 39) {
          if (p + 1 < n && !isSpace(line[p + 1])) {
            return "closing quote must be followed by a space";
          }
          done = true;
        } else if (p >= n) {
          return "unbalanced quotes in an inline command";
        } else {
          cur.push(c);
        }
      } else if (p >= n || c === 32 || c === 10 || c === 13 || c === 9) {
        done = true;
      } else if (c === 34) {
        inDouble = true;
      } else if (c === 39) {
        inSingle = true;
      } else {
        cur.push(c);
      }
      if (p < n) p++;
    }
    args.push(Uint8Array.from(cur));
  }
}

function escaped(c: number): number {
  switch (c) {
    case 110:
      return 10; // \n
    case 114:
      return 13; // \r
    case 116:
      return 9; // \t
    case 98:
      return 8; // \b
    case 97:
      return 7; // \a
    default:
      return c;
  }
}

const encoder = new TextEncoder();

/** `args` as a RESP array of bulk strings (what redis-cli sends). */
export function encodeCommand(args: readonly Uint8Array[]): Uint8Array {
  const heads = args.map((a) => encoder.encode(`$${a.length}\r\n`));
  const top = encoder.encode(`*${args.length}\r\n`);
  let size = top.length;
  for (let i = 0; i < args.length; i++) size += heads[i].length + args[i].length + 2;
  const out = new Uint8Array(size);
  out.set(top, 0);
  let p = top.length;
  for (let i = 0; i < args.length; i++) {
    out.set(heads[i], p);
    p += heads[i].length;
    out.set(args[i], p);
    p += args[i].length;
    out[p++] = 13;
    out[p++] = 10;
  }
  return out;
}

/** The ASCII bytes `b` in lowercase, or "" when they are not printable ASCII. */
export function lowerAscii(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) {
    let c = b[i];
    if (c <= 32 || c >= 127) return "";
    if (c >= 65 && c <= 90) c += 32;
    s += String.fromCharCode(c);
  }
  return s;
}
