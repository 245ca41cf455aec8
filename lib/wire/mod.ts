/**
 * lib/wire: pure bytes <-> fields for link, IPv4, IPv6 and TCP. No I/O.
 *
 * Import single modules on hot paths; this file re-exports them all.
 *
 * @module
 */

export * from "./error.ts";
export * from "./seq.ts";
export * from "./addr.ts";
export * from "./checksum.ts";
export * from "./link.ts";
export * from "./ipv4.ts";
export * from "./ipv6.ts";
export * from "./tcp.ts";
export * from "./tcp_options.ts";
export * from "./packet.ts";
export * from "./build.ts";
