/**
 * Endpoints as the engine carries them: address bytes plus a family (lib/wire's form) and a
 * port. Text is made only at the edges (logs, stats, events, tests) with {@link endpointText}.
 */
import { formatHostPort, formatIp, parseIp } from "../wire/addr.ts";
import type { Endpoint } from "./segment.ts";

/** The endpoint of address text (IPv4 or IPv6) and a port; throws on text that is no address. */
export function endpointOf(text: string, port: number): Endpoint {
  const ip = parseIp(text);
  if (typeof ip === "string") throw new Error(`'${text}' is not an IP address`);
  return { addr: ip.bytes, family: ip.family, port };
}

/** Canonical text of an endpoint's address (cached per address by lib/wire). */
export function addrText(e: Endpoint): string {
  return formatIp(e.addr, 0, e.family);
}

/** `addr:port` (`[addr]:port` for IPv6) of an endpoint, for logs. */
export function endpointText(e: Endpoint): string {
  return formatHostPort(addrText(e), e.port);
}

/** Whether two address byte strings are equal (same family and bytes). */
export function sameAddr(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const SLOTS = 4096; // a power of two
const slotKeys = new Int32Array(SLOTS * 4);
const slotAddrs: (Uint8Array | undefined)[] = new Array(SLOTS).fill(undefined);

function i32(a: Uint8Array, at: number): number {
  return (a[at] << 24) | (a[at + 1] << 16) | (a[at + 2] << 8) | a[at + 3];
}

/**
 * Stable bytes equal to `addr` (4 or 16 bytes): recently seen addresses share one array, so
 * a new connection from a known client allocates none. The result is shared: never change
 * it. Anything else (not 4 or 16 bytes) is copied.
 */
export function internAddr(addr: Uint8Array): Uint8Array {
  const n = addr.length;
  if (n !== 4 && n !== 16) return addr.slice();
  const k0 = i32(addr, 0);
  const k1 = n === 16 ? i32(addr, 4) : 0;
  const k2 = n === 16 ? i32(addr, 8) : 0;
  const k3 = n === 16 ? i32(addr, 12) : 0;
  let h = k0 ^ Math.imul(k1, 0x9e3779b1) ^ Math.imul(k2, 0x85ebca77) ^ Math.imul(k3, 0xc2b2ae3d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  const slot = h & (SLOTS - 1), at = slot * 4;
  const cached = slotAddrs[slot];
  if (
    cached !== undefined && cached.length === n && slotKeys[at] === k0 &&
    slotKeys[at + 1] === k1 && slotKeys[at + 2] === k2 && slotKeys[at + 3] === k3
  ) return cached;
  const own = addr.slice();
  slotKeys[at] = k0;
  slotKeys[at + 1] = k1;
  slotKeys[at + 2] = k2;
  slotKeys[at + 3] = k3;
  slotAddrs[slot] = own;
  return own;
}

/**
 * `e` with address bytes the caller may keep (segment endpoints may point into reused
 * buffers); the bytes come from {@link internAddr} and are shared: never change them.
 */
export function ownEndpoint(e: Endpoint): Endpoint {
  return { addr: internAddr(e.addr), family: e.family, port: e.port };
}
