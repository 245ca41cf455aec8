/**
 * A hash index from fixed-length string keys to slot numbers, kept in typed arrays (issue 14):
 * the intercept route table's replacement for a `Map<string, number>` (~80 bytes a route with
 * its key string, measured in the heap). The key's UTF-16 code units are stored in
 * the slot's row of `units` (route keys are 6 code units for IPv4, 18 for IPv6: route_key.ts),
 * and an open-addressing table (linear probing, deletion by backward shift: no tombstones)
 * holds slot numbers. A held key costs its code units and two to four table entries, and a
 * deleted one leaves no garbage. The code units are kept in pages (slot_pages.ts). Slots are the
 * caller's (RouteTable's): it says how many there may be (`grow`) and renumbers them
 * (`renumber`, when it shrinks).
 *
 *   const ix = new KeyIndex(6, 64);
 *   ix.insert("abcdef", 3);  ix.find("abcdef") === 3;  ix.remove(3);  ix.find("abcdef") === -1;
 */

import { SlotPages } from "./slot_pages.ts";
import { mix32 } from "../engine/hash.ts";

/** No slot. */
const EMPTY = -1;

/** Index of keys of `width` code units to slots `0 .. slots-1`. */
export class KeyIndex {
  /** Code units of the key in each slot (`width` per slot). */
  #units: SlotPages<Uint16Array>;
  /** Open-addressing table of slots (EMPTY: free), a power of two long. */
  #table: Int32Array;
  #count = 0;

  constructor(readonly width: number, slots: number) {
    if (!Number.isInteger(width) || width < 1) {
      throw new RangeError(`key width must be a whole number ≥ 1, got ${width}`);
    }
    this.#units = new SlotPages(Uint16Array, width);
    this.#units.grow(slots);
    this.#table = new Int32Array(tableSizeFor(0)).fill(EMPTY);
  }

  /** Keys held. */
  get size(): number {
    return this.#count;
  }

  /** Bytes of the typed arrays (for the benchmarks). */
  get bytes(): number {
    return this.#units.bytes + this.#table.byteLength;
  }

  /** The slot of `key` (of `width` code units), -1 when absent. */
  find(key: string): number {
    const t = this.#table, mask = t.length - 1;
    for (let i = this.#hashOf(key) & mask;; i = (i + 1) & mask) {
      const slot = t[i];
      if (slot === EMPTY || this.#holds(slot, key)) return slot;
    }
  }

  /** Files `key` (absent, `width` code units) under `slot` (below the slot count). */
  insert(key: string, slot: number): void {
    const w = this.width, u = this.#units.page(slot), at = this.#units.at(slot);
    for (let i = 0; i < w; i++) u[at + i] = key.charCodeAt(i);
    if (2 * (this.#count + 1) > this.#table.length) this.#rehash(tableSizeFor(this.#count + 1));
    this.#place(slot);
    this.#count++;
  }

  /** Removes the key filed under `slot` (which must be held). */
  remove(slot: number): void {
    const t = this.#table, mask = t.length - 1;
    let i = this.#hashOfSlot(slot) & mask;
    while (t[i] !== slot) {
      if (t[i] === EMPTY) throw new Error(`key index: slot ${slot} not held`); // (a bug)
      i = (i + 1) & mask;
    }
    // backward shift: move later entries of the probe run into the hole when their home
    // position allows it, so lookups never need tombstones
    for (let j = (i + 1) & mask;; j = (j + 1) & mask) {
      const s = t[j];
      if (s === EMPTY) break;
      const home = this.#hashOfSlot(s) & mask;
      // s may move to i if i lies cyclically within [home, j)
      if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
        t[i] = s;
        i = j;
      }
    }
    t[i] = EMPTY;
    this.#count--;
  }

  /** Room for `slots` slots (pages added: no copy). */
  grow(slots: number): void {
    this.#units.grow(slots);
  }

  /**
   * Slots renumbered (`renum[old]`, -1: not held any more) into `slots` slots; the table is
   * rebuilt for the keys left (smaller after many removals).
   */
  renumber(renum: Int32Array, slots: number): void {
    const w = this.width, old = this.#units, u = new SlotPages(Uint16Array, w);
    u.grow(slots);
    const held: number[] = [];
    for (const s of this.#table) {
      if (s === EMPTY || renum[s] === EMPTY) continue;
      const to = renum[s];
      u.page(to).set(old.page(s).subarray(old.at(s), old.at(s) + w), u.at(to));
      held.push(to);
    }
    this.#units = u;
    this.#table = new Int32Array(tableSizeFor(held.length)).fill(EMPTY);
    for (const s of held) this.#place(s);
    this.#count = held.length;
  }

  /** Puts `slot` (its units written) into the table. */
  #place(slot: number): void {
    const t = this.#table, mask = t.length - 1;
    let i = this.#hashOfSlot(slot) & mask;
    while (t[i] !== EMPTY) i = (i + 1) & mask;
    t[i] = slot;
  }

  /** A table of `size` entries holding the same slots. */
  #rehash(size: number): void {
    const old = this.#table;
    this.#table = new Int32Array(size).fill(EMPTY);
    for (const s of old) if (s !== EMPTY) this.#place(s);
  }

  /** The key in `slot` is `key`. */
  #holds(slot: number, key: string): boolean {
    const w = this.width, u = this.#units.page(slot), at = this.#units.at(slot);
    for (let i = 0; i < w; i++) if (u[at + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  #hashOf(key: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < this.width; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return mix32(h); // (the low bits pick the table entry)
  }

  #hashOfSlot(slot: number): number {
    const w = this.width, u = this.#units.page(slot), at = this.#units.at(slot);
    let h = 0x811c9dc5;
    for (let i = 0; i < w; i++) h = Math.imul(h ^ u[at + i], 0x01000193);
    return mix32(h); // (the low bits pick the table entry)
  }
}

/** Table entries for `count` keys: a power of two, at most half full, at least 16. */
function tableSizeFor(count: number): number {
  let size = 16;
  while (size < 2 * count) size *= 2;
  return size;
}
