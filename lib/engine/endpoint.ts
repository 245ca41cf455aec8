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

/** A copy of `e` that owns its address bytes (segment endpoints may be reused buffers). */
export function ownEndpoint(e: Endpoint): Endpoint {
  return { addr: e.addr.slice(), family: e.family, port: e.port };
}
