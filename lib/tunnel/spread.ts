/**
 * Which of an intercept's tunnel connections (`-C N`) a new route starts its search at.
 *
 * FNV-1a over the tuple's bytes, then the murmur3 finaliser (`mix32`). FNV-1a alone is not
 * enough here: its multiplier is odd, so the hash's low k bits depend only on the low k bits of
 * each byte, and `hash % 2` is the parity of the bytes' low bits. Linux gives `connect()` even
 * ephemeral ports first (since 4.6), so with `-C 2` every connection of a client would have
 * landed on the same tunnel connection.
 *
 * @example
 * ```ts
 * const first = spread(client, target) % links.length;
 * ```
 */
import { mix32 } from "../engine/hash.ts";

/** A tuple side: address bytes (4 or 16) and port. */
export interface SpreadEndpoint {
  readonly addr: Uint8Array;
  readonly port: number;
}

/** Connection index seed for a tuple: an unsigned 32-bit hash of addresses and ports. */
export function spread(client: SpreadEndpoint, target: SpreadEndpoint): number {
  let h = 0x811c9dc5;
  h = fnvBytes(h, client.addr);
  h = fnvBytes(h, target.addr);
  h = fnvByte(h, client.port >> 8);
  h = fnvByte(h, client.port & 0xff);
  h = fnvByte(h, target.port >> 8);
  h = fnvByte(h, target.port & 0xff);
  return mix32(h);
}

function fnvByte(h: number, b: number): number {
  return Math.imul(h ^ b, 0x01000193);
}

function fnvBytes(h: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) h = fnvByte(h, bytes[i]);
  return h;
}
