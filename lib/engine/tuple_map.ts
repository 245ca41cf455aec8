/**
 * A map keyed by a TCP 4-tuple (near address, near port, far address, far port) of address
 * bytes, without a key string or an object per entry for IPv4.
 *
 * The hot path looks up one connection per packet, and a million entries may be held. IPv4
 * tuples live in one open-addressing table (linear probing, backward-shift deletion, no
 * tombstones): per slot three 32-bit numbers in an `Int32Array` (near address, far address,
 * both ports) and the value in a plain array, ~20 bytes a slot at a load of 13/32 to 13/16
 * (an object per entry and a `Map` entry took ~115). The slot is chosen by a hash of the whole
 * tuple mixed under a per-process secret, so peers cannot aim many tuples at one run of
 * slots. The table grows (×2) above 13/16 full and shrinks (÷2) below 1/8 full, never below
 * {@link MIN_SLOTS}: an emptied map gives its room back. (Growing at 3/4 put 100,000 sessions'
 * two tables at 262,144 slots each, 105 B per session; a lookup reads the same one or two cache
 * lines of keys and values at either load.)
 *
 * IPv6 tuples (rare, and tuples mixing the families) keep chains under a string of the near end
 * (16-bit address halves and the port, as lib/tunnel/route_key.ts builds route keys; V8 hashes
 * strings with a secret seed), compared byte by byte.
 *
 * Stored address bytes are referenced, not copied (IPv6): callers pass bytes they never change.
 */

import { sameAddr } from "./endpoint.ts";

interface Entry<V> {
  nearPort: number;
  far6: Uint8Array;
  farPort: number;
  value: V;
  next: Entry<V> | undefined;
}

/** Secret mixed into the IPv4 slots, drawn once per process. */
const SEED = crypto.getRandomValues(new Int32Array(3));

/** Smallest IPv4 table (slots, a power of two). */
const MIN_SLOTS = 16;

/** Four address bytes as a signed 32-bit number (a small integer in V8, not a heap number). */
function i32(a: Uint8Array): number {
  return (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3];
}

/** Hash of an IPv4 tuple (addresses from {@link i32}, ports packed by {@link ports}). */
function hash4(near: number, far: number, ports: number): number {
  let h = Math.imul(near ^ SEED[0], 0x9e3779b1) ^ Math.imul(far ^ SEED[1], 0x85ebca77) ^
    Math.imul(ports ^ SEED[2], 0xc2b2ae3d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 12);
}

/** Both ports in one 32-bit number. */
function ports(nearPort: number, farPort: number): number {
  return (nearPort << 16) | (farPort & 0xffff);
}

/** Key of a near end in the chains: its 16-bit address halves and the port. */
function nearKey6(a: Uint8Array, port: number): string {
  if (a.length !== 16) {
    let k = "";
    for (let i = 0; i + 1 < a.length; i += 2) k += String.fromCharCode((a[i] << 8) | a[i + 1]);
    return k + String.fromCharCode(port, a.length);
  }
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

/** See the module comment. */
export class TupleMap<V> {
  /** IPv4 keys, three numbers a slot: near address, far address, ports. */
  private keys = new Int32Array(MIN_SLOTS * 3);
  /** IPv4 values by slot; undefined: the slot is free. */
  private vals: (V | undefined)[] = new Array(MIN_SLOTS).fill(undefined);
  private mask = MIN_SLOTS - 1;
  private size4 = 0;
  private readonly v6 = new Map<string, Entry<V>>();
  /** Number of entries. */
  size = 0;
  /** The table never shrinks below this many slots (the constructor's `minSlots`). */
  private readonly floor: number;

  /**
   * `minSlots` (rounded up to a power of two): the table starts with that many slots and never
   * shrinks below them (the comparer's flows, forgotten ~100 at a time at each tick on short
   * connections, emptied and regrew a table of 16 slots per tick).
   */
  constructor(minSlots = MIN_SLOTS) {
    this.floor = Math.max(MIN_SLOTS, 2 ** Math.ceil(Math.log2(Math.max(1, minSlots))));
    if (this.floor !== MIN_SLOTS) this.resize(this.floor);
  }

  /** The value stored for the tuple, or undefined. */
  get(near: Uint8Array, nearPort: number, far: Uint8Array, farPort: number): V | undefined {
    if (near.length === 4 && far.length === 4) {
      const i = this.find(i32(near), i32(far), ports(nearPort, farPort));
      return i < 0 ? undefined : this.vals[i];
    }
    for (let e = this.v6.get(nearKey6(near, nearPort)); e !== undefined; e = e.next) {
      if (e.farPort === farPort && e.nearPort === nearPort && sameAddr(e.far6, far)) {
        return e.value;
      }
    }
    return undefined;
  }

  /**
   * Store `value` (not undefined) for the tuple, replacing any previous value; the bytes are
   * kept (IPv6).
   */
  set(near: Uint8Array, nearPort: number, far: Uint8Array, farPort: number, value: V): void {
    if (near.length === 4 && far.length === 4) {
      return this.set4(near, nearPort, far, farPort, value);
    }
    const k6 = nearKey6(near, nearPort);
    const head = this.v6.get(k6);
    for (let e = head; e !== undefined; e = e.next) {
      if (e.farPort === farPort && e.nearPort === nearPort && sameAddr(e.far6, far)) {
        e.value = value;
        return;
      }
    }
    this.v6.set(k6, { nearPort, far6: far, farPort, value, next: head });
    this.size++;
  }

  /** Remove the tuple; returns whether it was present. */
  delete(near: Uint8Array, nearPort: number, far: Uint8Array, farPort: number): boolean {
    if (near.length === 4 && far.length === 4) {
      const i = this.find(i32(near), i32(far), ports(nearPort, farPort));
      if (i < 0) return false;
      this.remove(i);
      this.size4--;
      this.size--;
      if (this.size4 * 8 < this.mask + 1 && this.mask + 1 > this.floor) {
        this.resize((this.mask + 1) >> 1);
      }
      return true;
    }
    const k6 = nearKey6(near, nearPort);
    let prev: Entry<V> | undefined;
    for (let e = this.v6.get(k6); e !== undefined; prev = e, e = e.next) {
      if (e.farPort !== farPort || e.nearPort !== nearPort || !sameAddr(e.far6, far)) continue;
      if (prev !== undefined) prev.next = e.next;
      else if (e.next !== undefined) this.v6.set(k6, e.next);
      else this.v6.delete(k6);
      this.size--;
      return true;
    }
    return false;
  }

  /** Every stored value (in no particular order; do not change the map while iterating). */
  *values(): IterableIterator<V> {
    const vals = this.vals;
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i];
      if (v !== undefined) yield v;
    }
    for (const head of this.v6.values()) {
      for (let e: Entry<V> | undefined = head; e !== undefined; e = e.next) yield e.value;
    }
  }

  /** Slot of an IPv4 tuple, or -1. */
  private find(n: number, f: number, p: number): number {
    const keys = this.keys, vals = this.vals, mask = this.mask;
    for (let i = hash4(n, f, p) & mask;; i = (i + 1) & mask) {
      if (vals[i] === undefined) return -1;
      const k = i * 3;
      if (keys[k] === n && keys[k + 1] === f && keys[k + 2] === p) return i;
    }
  }

  private set4(near: Uint8Array, nearPort: number, far: Uint8Array, farPort: number, value: V) {
    const n = i32(near), f = i32(far), p = ports(nearPort, farPort);
    const keys = this.keys, vals = this.vals, mask = this.mask;
    let i = hash4(n, f, p) & mask;
    for (; vals[i] !== undefined; i = (i + 1) & mask) {
      const k = i * 3;
      if (keys[k] === n && keys[k + 1] === f && keys[k + 2] === p) {
        vals[i] = value;
        return;
      }
    }
    const k = i * 3;
    keys[k] = n;
    keys[k + 1] = f;
    keys[k + 2] = p;
    vals[i] = value;
    this.size4++;
    this.size++;
    if (this.size4 * 16 > (mask + 1) * 13) this.resize((mask + 1) * 2);
  }

  /** Empty slot `i` and move later entries of its run back (linear probing, no tombstones). */
  private remove(i: number): void {
    const keys = this.keys, vals = this.vals, mask = this.mask;
    let hole = i;
    for (let j = (i + 1) & mask; vals[j] !== undefined; j = (j + 1) & mask) {
      const k = j * 3;
      const home = hash4(keys[k], keys[k + 1], keys[k + 2]) & mask;
      // Entry j may fill the hole when its home slot is not in (hole, j] (cyclically).
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        const h = hole * 3;
        keys[h] = keys[k];
        keys[h + 1] = keys[k + 1];
        keys[h + 2] = keys[k + 2];
        vals[hole] = vals[j];
        hole = j;
      }
    }
    vals[hole] = undefined;
  }

  /** Rebuild the IPv4 table with `slots` slots (a power of two). */
  private resize(slots: number): void {
    const oldKeys = this.keys, oldVals = this.vals;
    const keys = this.keys = new Int32Array(slots * 3);
    const vals = this.vals = new Array(slots).fill(undefined);
    const mask = this.mask = slots - 1;
    for (let j = 0; j < oldVals.length; j++) {
      const v = oldVals[j];
      if (v === undefined) continue;
      const k = j * 3, n = oldKeys[k], f = oldKeys[k + 1], p = oldKeys[k + 2];
      let i = hash4(n, f, p) & mask;
      while (vals[i] !== undefined) i = (i + 1) & mask;
      const d = i * 3;
      keys[d] = n;
      keys[d + 1] = f;
      keys[d + 2] = p;
      vals[i] = v;
    }
  }
}
