/**
 * IP address text as users type it on the command line, on top of lib/wire/addr.ts (the one
 * parser and RFC 5952 formatter of the project): IPv4 as unsigned 32-bit numbers and IPv6 as
 * eight 16-bit groups, the shapes the range arithmetic of client_ip.ts works on, and one
 * canonical spelling so that equal addresses compare equal as strings.
 */
import { formatIpv6 as formatIpv6Bytes, ipv4ToU32, parseIp, u32ToIpv4 } from "../wire/addr.ts";

/** A parsed address: its family and canonical text. */
export interface IpAddress {
  family: 4 | 6;
  text: string;
}

/** Parses a dotted-quad IPv4 address into an unsigned 32-bit number, or null. */
export function parseIpv4(text: string): number | null {
  const a = parseIp(text);
  return typeof a !== "string" && a.family === 4 ? ipv4ToU32(a.bytes) : null;
}

/** Formats an unsigned 32-bit number as a dotted-quad IPv4 address. */
export function formatIpv4(value: number): string {
  return u32ToIpv4(value >>> 0);
}

/** Parses IPv6 text into its eight 16-bit groups, or null. */
export function parseIpv6(text: string): number[] | null {
  const a = parseIp(text);
  if (typeof a === "string" || a.family !== 6) return null;
  return Array.from({ length: 8 }, (_, i) => (a.bytes[2 * i] << 8) | a.bytes[2 * i + 1]);
}

/**
 * Formats eight 16-bit groups as RFC 5952 text (lowercase, longest zero run as `::`,
 * IPv4-mapped addresses as `::ffff:a.b.c.d`).
 */
export function formatIpv6(groups: readonly number[]): string {
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >>> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return formatIpv6Bytes(bytes);
}

/** Parses IPv4 or IPv6 text (no brackets) into its canonical form, or null. */
export function parseIpAddress(text: string): IpAddress | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) return { family: 4, text: formatIpv4(v4) };
  const v6 = parseIpv6(text);
  if (v6 !== null) return { family: 6, text: formatIpv6(v6) };
  return null;
}
