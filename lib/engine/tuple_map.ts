/**
 * A map keyed by a TCP 4-tuple (near address, near port, far address, far port) of address
 * bytes, without a key string per lookup for IPv4.
 *
 * The hot path looks up one connection per packet. The near end selects a chain: for IPv4
 * a 32-bit number mixed from its address and port under a per-process secret (a small
 * integer key: nothing allocated, and peers cannot aim many tuples at one hash bucket), for
 * IPv6 a 9-code-unit string (address halves and port, as lib/tunnel/route_key.ts builds
 * route keys; V8 hashes strings with a secret seed). A chain holds the tuples whose near end
 * maps to its key, compared field by field: IPv4 addresses as numbers, IPv6 ones byte by
 * byte. It has one element unless one client port talks to several servers (or two IPv4
 * near ends share a mixed key, which the comparison tells apart).
 *
 * Stored address bytes are referenced, not copied: callers pass bytes they never change.
 */

import { sameAddr } from "./endpoint.ts";

interface Entry<V> {
  /** The near IPv4 address as a signed 32-bit number (0 for IPv6: the key is exact). */
  nearNum: number;
  nearPort: number;
  /** The far IPv4 address as a signed 32-bit number (0 for IPv6). */
  farNum: number;
  /** The far IPv6 address, undefined for IPv4. */
  far6: Uint8Array | undefined;
  farPort: number;
  value: V;
  next: Entry<V> | undefined;
}

/** Secret mixed into the IPv4 keys, drawn once per process. */
const SEED = crypto.getRandomValues(new Int32Array(2));

/** Four address bytes as a signed 32-bit number (a small integer in V8, not a heap number). */
function i32(a: Uint8Array): number {
  return (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3];
}

/** Key of an IPv4 near end (address as from {@link i32}): a signed 32-bit number. */
function nearKey4(addr: number, port: number): number {
  const h = Math.imul(addr ^ SEED[0], 0x9e3779b1) ^ Math.imul(port ^ SEED[1], 0x85ebca77);
  return h ^ (h >>> 15);
}

/** Key of an IPv6 near end: eight 16-bit address halves and the port. */
function nearKey6(a: Uint8Array, port: number): string {
  return String.fromCharCode(
    (a[0] << 8) | a[1],
    (a[2] << 8) | a[3],
    (a[4] << 8) | a[5],
    (a[6] << 8) | a[7],
    (a[8] << 8) | a[9],
    (a[10] << 8) | a[11],
    (a[12] << 8) | a[13],
    (a[14] << 8) | a[15],
    port,
  );
}

function matches<V>(
  e: Entry<V>,
  nearNum: number,
  nearPort: number,
  far: Uint8Array,
  farNum: number,
  farPort: number,
): boolean {
  if (e.farPort !== farPort || e.nearPort !== nearPort || e.nearNum !== nearNum) return false;
  if (e.farNum !== farNum) return false;
  const f6 = e.far6;
  return far.length === 4 ? f6 === undefined : f6 !== undefined && sameAddr(f6, far);
}

/** See the module comment. */
export class TupleMap<V> {
  private readonly v4 = new Map<number, Entry<V>>();
  private readonly v6 = new Map<string, Entry<V>>();
  /** Number of entries. */
  size = 0;

  /** The value stored for the tuple, or undefined. */
  get(near: Uint8Array, nearPort: number, far: Uint8Array, farPort: number): V | undefined {
    const n = near.length === 4 ? i32(near) : 0;
    const f = far.length === 4 ? i32(far) : 0;
    let e = near.length === 4
      ? this.v4.get(nearKey4(n, nearPort))
      : this.v6.get(nearKey6(near, nearPort));
    for (; e !== undefined; e = e.next) {
      if (matches(e, n, nearPort, far, f, farPort)) return e.value;
    }
    return undefined;
  }

  /** Store `value` for the tuple (replacing any previous value); the bytes are kept. */
  set(near: Uint8Array, nearPort: number, far: Uint8Array, farPort: number, value: V): void {
    const v4 = near.length === 4;
    const n = v4 ? i32(near) : 0;
    const f = far.length === 4 ? i32(far) : 0;
    const k4 = v4 ? nearKey4(n, nearPort) : 0;
    const k6 = v4 ? "" : nearKey6(near, nearPort);
    const head = v4 ? this.v4.get(k4) : this.v6.get(k6);
    for (let e = head; e !== undefined; e = e.next) {
      if (matches(e, n, nearPort, far, f, farPort)) {
        e.value = value;
        return;
      }
    }
    const far6 = far.length === 4 ? undefined : far;
    const e: Entry<V> = { nearNum: n, nearPort, farNum: f, far6, farPort, value, next: head };
    if (v4) this.v4.set(k4, e);
    else this.v6.set(k6, e);
    this.size++;
  }

  /** Remove the tuple; returns whether it was present. */
  delete(near: Uint8Array, nearPort: number, far: Uint8Array, farPort: number): boolean {
    const v4 = near.length === 4;
    const n = v4 ? i32(near) : 0;
    const f = far.length === 4 ? i32(far) : 0;
    const k4 = v4 ? nearKey4(n, nearPort) : 0;
    const k6 = v4 ? "" : nearKey6(near, nearPort);
    let prev: Entry<V> | undefined;
    for (let e = v4 ? this.v4.get(k4) : this.v6.get(k6); e !== undefined; prev = e, e = e.next) {
      if (!matches(e, n, nearPort, far, f, farPort)) continue;
      if (prev !== undefined) prev.next = e.next;
      else if (v4) {
        if (e.next !== undefined) this.v4.set(k4, e.next);
        else this.v4.delete(k4);
      } else if (e.next !== undefined) this.v6.set(k6, e.next);
      else this.v6.delete(k6);
      this.size--;
      return true;
    }
    return false;
  }

  /** Every stored value (in no particular order). */
  *values(): IterableIterator<V> {
    for (const head of this.v4.values()) {
      for (let e: Entry<V> | undefined = head; e !== undefined; e = e.next) yield e.value;
    }
    for (const head of this.v6.values()) {
      for (let e: Entry<V> | undefined = head; e !== undefined; e = e.next) yield e.value;
    }
  }
}
