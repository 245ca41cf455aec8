/**
 * A map keyed by a TCP 4-tuple (near address, near port, far address, far port) of address
 * bytes, without a key string per lookup for IPv4.
 *
 * The hot path looks up one connection per packet. The near end selects a chain: for IPv4
 * its address and port as one number (`address * 65536 + port`, below 2^48) in a map keyed
 * by numbers, nothing allocated; for IPv6 a 9-code-unit string (address halves and port, as
 * lib/tunnel/route_key.ts builds route keys) in a second map. A chain holds the (far address,
 * far port) pairs and has one element unless one client port talks to several servers; an
 * IPv4 far address is compared as a number, an IPv6 one byte by byte.
 *
 * Stored address bytes are referenced, not copied: callers pass bytes they never change.
 */

import { sameAddr } from "./endpoint.ts";

interface Entry<V> {
  /** The far address as a number (IPv4), or -1 (IPv6: compare `far`). */
  farKey: number;
  far: Uint8Array;
  farPort: number;
  value: V;
  next: Entry<V> | undefined;
}

function u32(a: Uint8Array): number {
  return ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) >>> 0;
}

/** Key of an IPv4 near end: address and port in one safe integer. */
function nearKey4(addr: Uint8Array, port: number): number {
  return u32(addr) * 65536 + port;
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

function farKeyOf(far: Uint8Array): number {
  return far.length === 4 ? u32(far) : -1;
}

function matches<V>(e: Entry<V>, farKey: number, far: Uint8Array, farPort: number): boolean {
  return e.farPort === farPort && e.farKey === farKey && (farKey !== -1 || sameAddr(e.far, far));
}

/** See the module comment. */
export class TupleMap<V> {
  private readonly v4 = new Map<number, Entry<V>>();
  private readonly v6 = new Map<string, Entry<V>>();
  /** Number of entries. */
  size = 0;

  private head(near: Uint8Array, nearPort: number): Entry<V> | undefined {
    return near.length === 4
      ? this.v4.get(nearKey4(near, nearPort))
      : this.v6.get(nearKey6(near, nearPort));
  }

  private setHead(near: Uint8Array, nearPort: number, e: Entry<V> | undefined): void {
    if (near.length === 4) {
      const k = nearKey4(near, nearPort);
      if (e === undefined) this.v4.delete(k);
      else this.v4.set(k, e);
    } else {
      const k = nearKey6(near, nearPort);
      if (e === undefined) this.v6.delete(k);
      else this.v6.set(k, e);
    }
  }

  /** The value stored for the tuple, or undefined. */
  get(near: Uint8Array, nearPort: number, far: Uint8Array, farPort: number): V | undefined {
    const fk = farKeyOf(far);
    for (let e = this.head(near, nearPort); e !== undefined; e = e.next) {
      if (matches(e, fk, far, farPort)) return e.value;
    }
    return undefined;
  }

  /** Store `value` for the tuple (replacing any previous value); the bytes are kept. */
  set(near: Uint8Array, nearPort: number, far: Uint8Array, farPort: number, value: V): void {
    const fk = farKeyOf(far);
    const head = this.head(near, nearPort);
    for (let e = head; e !== undefined; e = e.next) {
      if (matches(e, fk, far, farPort)) {
        e.value = value;
        return;
      }
    }
    this.setHead(near, nearPort, { farKey: fk, far, farPort, value, next: head });
    this.size++;
  }

  /** Remove the tuple; returns whether it was present. */
  delete(near: Uint8Array, nearPort: number, far: Uint8Array, farPort: number): boolean {
    const fk = farKeyOf(far);
    const head = this.head(near, nearPort);
    let prev: Entry<V> | undefined;
    for (let e = head; e !== undefined; prev = e, e = e.next) {
      if (!matches(e, fk, far, farPort)) continue;
      if (prev !== undefined) prev.next = e.next;
      else this.setHead(near, nearPort, e.next);
      this.size--;
      return true;
    }
    return false;
  }

  /** Every stored value (in no particular order). */
  *values(): IterableIterator<V> {
    for (const m of [this.v4, this.v6] as Map<unknown, Entry<V>>[]) {
      for (const head of m.values()) {
        for (let e: Entry<V> | undefined = head; e !== undefined; e = e.next) yield e.value;
      }
    }
  }
}
