/**
 * IPv4 and IPv6 addresses.
 *
 * Packets carry addresses as bytes plus a family (`TcpRepr`, packet.ts); text is
 * for the edges (command lines, logs, the engine's map keys), always canonical:
 * dotted quad for IPv4 ("10.0.0.1") and RFC 5952 form for IPv6 ("2001:db8::1",
 * lower case, longest zero run compressed, IPv4-mapped addresses as
 * "::ffff:192.0.2.1"). Canonical strings compare with `===` and work as `Map`
 * keys for both families.
 *
 * @module
 */

import type { WireError } from "./error.ts";

/** An address in binary form: 4 bytes (IPv4) or 16 bytes (IPv6), network order. */
export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
}

/** Parse IPv4 dotted-quad text into its 4 bytes, or null. Leading zeros are rejected. */
function parseIpv4Bytes(text: string, out: Uint8Array, at: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // virtual final "."
    if (c === 46) {
      if (digits === 0 || part > 3) return false;
      out[at + part] = value;
      part++;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false; // leading zero
      value = value * 10 + (c - 48);
      digits++;
      if (value > 255) return false;
    } else {
      return false;
    }
  }
  return part === 4;
}

/** Parse up to 4 hex digits of one IPv6 group; -1 when invalid. */
function parseHexGroup(text: string): number {
  if (text.length === 0 || text.length > 4) return -1;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return -1;
    value = (value << 4) | d;
  }
  return value;
}

/** Parse colon-separated groups into words; a dotted quad may end the list when `last`. */
function parseGroups(text: string, last: boolean, words: number[]): boolean {
  if (text === "") return true;
  const parts = text.split(":");
  for (let i = 0; i < parts.length; i++) {
    const g = parts[i];
    if (last && i === parts.length - 1 && g.includes(".")) {
      const v4 = new Uint8Array(4);
      if (!parseIpv4Bytes(g, v4, 0)) return false;
      words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      continue;
    }
    const v = parseHexGroup(g);
    if (v < 0) return false;
    words.push(v);
  }
  return true;
}

/** Parse IPv6 text (with optional "::" and trailing dotted quad) into 16 bytes. */
function parseIpv6Bytes(text: string, out: Uint8Array): boolean {
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const head: number[] = [];
  const tail: number[] = [];
  if (!parseGroups(halves[0], halves.length === 1, head)) return false;
  if (halves.length === 2 && !parseGroups(halves[1], true, tail)) return false;
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return false;
  for (let i = 0; i < head.length; i++) {
    out[2 * i] = head[i] >>> 8;
    out[2 * i + 1] = head[i] & 0xff;
  }
  const tailStart = 8 - tail.length;
  for (let i = 0; i < tail.length; i++) {
    out[2 * (tailStart + i)] = tail[i] >>> 8;
    out[2 * (tailStart + i) + 1] = tail[i] & 0xff;
  }
  return true;
}

/**
 * Parse an IPv4 or IPv6 address from text. Returns the family and the
 * network-order bytes, or `"bad_address"`. Zone ids ("%eth0") and prefixes are rejected.
 */
export function parseIp(text: string): IpAddress | WireError {
  if (typeof text !== "string" || text.length === 0 || text.length > 45) return "bad_address";
  if (text.includes(":")) {
    const bytes = new Uint8Array(16);
    return parseIpv6Bytes(text, bytes) ? { family: 6, bytes } : "bad_address";
  }
  const bytes = new Uint8Array(4);
  return parseIpv4Bytes(text, bytes, 0) ? { family: 4, bytes } : "bad_address";
}

/** Canonical text of any address text, or null when it is not an address. */
export function canonicalIp(text: string): string | null {
  const parsed = parseIp(text);
  if (typeof parsed === "string") return null;
  return parsed.family === 4 ? formatIpv4(parsed.bytes, 0) : formatIpv6(parsed.bytes, 0);
}

/** True when `text` is a valid IPv4 dotted quad. */
export function isIpv4(text: string): boolean {
  return typeof text === "string" && text.length <= 15 && !text.includes(":") &&
    parseIpv4Bytes(text, new Uint8Array(4), 0);
}

/** True when `text` is a valid IPv6 address. */
export function isIpv6(text: string): boolean {
  return typeof text === "string" && text.includes(":") &&
    typeof parseIp(text) !== "string";
}

/** Whether two raw addresses are both IPv4 (4 bytes) or both IPv6 (16 bytes). */
export function sameFamily(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  return (n === 4 || n === 16) && b.length === n;
}

/** Four bytes at `bytes[offset..]` as a big-endian unsigned 32-bit integer. */
export function ipv4ToU32(bytes: Uint8Array, offset = 0): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3]) >>> 0;
}

/** Dotted-quad text of an unsigned 32-bit IPv4 address. */
export function u32ToIpv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${value & 0xff}`;
}

/** Write an unsigned 32-bit IPv4 address into `out[offset..offset+4]`. */
export function writeU32Ipv4(value: number, out: Uint8Array, offset = 0): void {
  out[offset] = value >>> 24;
  out[offset + 1] = value >>> 16;
  out[offset + 2] = value >>> 8;
  out[offset + 3] = value;
}

/*
 * Formatting caches. The hot path turns the same few addresses into strings for
 * every packet; a direct-mapped table (no Map hashing, no allocation on a hit)
 * returns the string built last time for the same bytes.
 */
const V4_SLOTS = 4096;
const v4Keys = new Int32Array(V4_SLOTS);
const v4Texts: string[] = new Array<string>(V4_SLOTS).fill("");

const V6_SLOTS = 1024;
const v6Keys = new Int32Array(V6_SLOTS * 4);
const v6Texts: string[] = new Array<string>(V6_SLOTS).fill("");

/**
 * Dotted-quad text of the 4 bytes at `bytes[offset..]`.
 * Recently formatted addresses are cached, so the hot path does not build strings.
 */
export function formatIpv4(bytes: Uint8Array, offset = 0): string {
  const key = (bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3];
  const slot = (key ^ (key >>> 12) ^ (key >>> 24)) & (V4_SLOTS - 1);
  const cached = v4Texts[slot];
  if (v4Keys[slot] === key && cached !== "") return cached;
  const text = u32ToIpv4(key >>> 0);
  v4Keys[slot] = key;
  v4Texts[slot] = text;
  return text;
}

/** RFC 5952 text of the 16 bytes at `bytes[offset..]`; cached like {@link formatIpv4}. */
export function formatIpv6(bytes: Uint8Array, offset = 0): string {
  const o = offset;
  const k0 = (bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3];
  const k1 = (bytes[o + 4] << 24) | (bytes[o + 5] << 16) | (bytes[o + 6] << 8) | bytes[o + 7];
  const k2 = (bytes[o + 8] << 24) | (bytes[o + 9] << 16) | (bytes[o + 10] << 8) | bytes[o + 11];
  const k3 = (bytes[o + 12] << 24) | (bytes[o + 13] << 16) | (bytes[o + 14] << 8) |
    bytes[o + 15];
  let h = k0 ^ Math.imul(k1, 0x9e3779b1) ^ Math.imul(k2, 0x85ebca77) ^ Math.imul(k3, 0xc2b2ae3d);
  h ^= h >>> 15;
  const slot = h & (V6_SLOTS - 1);
  const at = slot * 4;
  const cached = v6Texts[slot];
  if (
    cached !== "" && v6Keys[at] === k0 && v6Keys[at + 1] === k1 && v6Keys[at + 2] === k2 &&
    v6Keys[at + 3] === k3
  ) {
    return cached;
  }
  const text = ipv6Text(bytes, offset);
  v6Keys[at] = k0;
  v6Keys[at + 1] = k1;
  v6Keys[at + 2] = k2;
  v6Keys[at + 3] = k3;
  v6Texts[slot] = text;
  return text;
}

/** RFC 5952 text of the 16 bytes at `bytes[offset..]`, uncached. */
function ipv6Text(bytes: Uint8Array, offset: number): string {
  const words = new Array<number>(8);
  for (let i = 0; i < 8; i++) words[i] = (bytes[offset + 2 * i] << 8) | bytes[offset + 2 * i + 1];
  // IPv4-mapped (::ffff:0:0/96): mixed notation, RFC 5952 section 5.
  if (
    words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 &&
    words[5] === 0xffff
  ) {
    return `::ffff:${bytes[offset + 12]}.${bytes[offset + 13]}.${bytes[offset + 14]}.${
      bytes[offset + 15]
    }`;
  }
  // Longest run of two or more zero words; the first one wins a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let text = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += "::";
      i += bestLen - 1;
      continue;
    }
    if (text.length > 0 && !text.endsWith(":")) text += ":";
    text += words[i].toString(16);
  }
  return text;
}

/** "10.0.0.1:80", or "[2001:db8::1]:80" for an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Canonical text of an address in binary form (4 or 16 bytes). */
export function formatIp(bytes: Uint8Array, offset = 0, family: 4 | 6 = 4): string {
  return family === 4 ? formatIpv4(bytes, offset) : formatIpv6(bytes, offset);
}

/**
 * Write the binary form of address text into `out` at `offset`; returns the
 * number of bytes written (4 or 16), or 0 when the text is not an address.
 */
export function writeIp(text: string, out: Uint8Array, offset = 0): 0 | 4 | 16 {
  const parsed = parseIp(text);
  if (typeof parsed === "string") return 0;
  if (offset < 0 || offset + parsed.bytes.length > out.length) return 0;
  out.set(parsed.bytes, offset);
  return parsed.family === 4 ? 4 : 16;
}

/**
 * An Ethernet MAC address as written (`aa:bb:cc:dd:ee:ff` or with `-`; one or two hex digits
 * per byte) as its six bytes, or null.
 *
 * @example
 * ```ts
 * parseMac("02:AB:0c:d:ee:ff"); // Uint8Array [2, 171, 12, 13, 238, 255]
 * ```
 */
export function parseMac(text: string): Uint8Array | null {
  const parts = text.trim().split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) return null;
  return new Uint8Array(parts.map((p) => parseInt(p, 16)));
}

/** Six bytes as "aa:bb:cc:dd:ee:ff". */
export function formatMac(mac: Uint8Array): string {
  return [...mac.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
}
