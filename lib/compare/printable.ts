/**
 * Bytes as bounded printable text (diff hints, request heads): printable ASCII as is, `\\`,
 * `\r`, `\n`, `\t` escaped, everything else `\xNN`. Pure; every input byte is hostile.
 *
 * @module
 */

import { type DiffHint, EXCERPT_AFTER, EXCERPT_BEFORE } from "./result.ts";

const HEX = "0123456789abcdef";

/** `bytes[from, to)` as escaped printable text (at most 4 characters per byte). */
export function printable(bytes: Uint8Array, from = 0, to = bytes.length): string {
  let s = "";
  const end = Math.min(to, bytes.length);
  let i = Math.max(0, from);
  while (i < end) {
    // a run of plain characters in one call, the escaped byte after it on its own
    let j = i;
    while (j < end && plain(bytes[j])) j++;
    if (j > i) s += latin1(bytes, i, j);
    if (j < end) s += escapeByte(bytes[j]);
    i = j + 1;
  }
  return s;
}

/** Printable ASCII other than the backslash: kept as is. */
function plain(b: number): boolean {
  return b >= 0x20 && b < 0x7f && b !== 0x5c;
}

/** Bytes `[from, to)` as one char code each, in pieces small enough for an argument list. */
function latin1(bytes: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(to, i + 4096)) as never);
  }
  return s;
}

function escapeByte(b: number): string {
  switch (b) {
    case 0x5c:
      return "\\\\";
    case 0x0d:
      return "\\r";
    case 0x0a:
      return "\\n";
    case 0x09:
      return "\\t";
  }
  if (b >= 0x20 && b < 0x7f) return String.fromCharCode(b);
  return "\\x" + HEX[b >> 4] + HEX[b & 15];
}

/** Index of the first byte where `a` and `b` differ within their common length, or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** The excerpt of `bytes` around `offset` used by diff hints. */
export function excerpt(bytes: Uint8Array, offset: number): string {
  const at = Math.max(0, offset);
  return printable(bytes, at - EXCERPT_BEFORE, at + EXCERPT_AFTER);
}

/** A hint for two byte strings that differ at `offset` (excerpts of both around it). */
export function bytesHint(what: string, a: Uint8Array, b: Uint8Array, offset: number): DiffHint {
  return { offset, what, online: excerpt(a, offset), target: excerpt(b, offset) };
}

/** A hint that only names values (lengths, digests): no offset in the first bytes. */
export function valueHint(what: string, online: string, target: string): DiffHint {
  return { offset: -1, what, online: clip(online), target: clip(target) };
}

/** `text` cut to the excerpt size (values from the network may be long). */
export function clip(text: string): string {
  const max = 4 * (EXCERPT_BEFORE + EXCERPT_AFTER);
  return text.length <= max ? text : text.slice(0, max) + "...";
}

/** The line starting at `at` (up to CR, LF or {@link EXCERPT_MAX} bytes), escaped. */
export function lineExcerpt(bytes: Uint8Array, at: number): string {
  let end = at;
  const max = Math.min(bytes.length, at + EXCERPT_BEFORE + EXCERPT_AFTER);
  while (end < max && bytes[end] !== 0x0d && bytes[end] !== 0x0a) end++;
  return printable(bytes, at, end);
}
