/**
 * Engine endpoints (address bytes + family) from the text tests write, and back.
 */
import { addrText, endpointOf } from "../../lib/engine/endpoint.ts";
import type { Endpoint } from "../../lib/engine/segment.ts";
import type { TextEndpoint } from "../../lib/engine/config.ts";

/** The engine endpoint of `{ addr: text, port }` (throws on text that is no address). */
export function ep(e: TextEndpoint): Endpoint {
  return endpointOf(e.addr, e.port);
}

/** `{ addr: text, port }` of an engine endpoint (for comparisons and keys in tests). */
export function textOf(e: Endpoint): TextEndpoint {
  return { addr: addrText(e), port: e.port };
}

/** The address bytes of address text. */
export function ip(text: string): Uint8Array {
  return endpointOf(text, 0).addr;
}
