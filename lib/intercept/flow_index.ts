/**
 * The answer tracker's flows by route key (issue 15 cost), pure: a `Map<string, T>` without
 * V8's string hashing. Every reply's route key is a new string (lib/tunnel/reply_packet.ts), so
 * a `Map` lookup computed its hash in the runtime (a call out of the compiled code) and compared
 * it with the stored key by content, once per reply packet; in intercept's CPU profile of the
 * `short1k` workload that call was the largest single native cost `--compare` added. Here the
 * keys' code units go into the route table's own index (lib/tunnel/key_index.ts, one per key
 * length: IPv4 and IPv6 route keys), hashed in JS, and each value has a slot: no string and no
 * `Map` entry is kept per flow, and a removed one leaves no garbage. The tables keep the size of
 * the most flows held at once until the index is empty again ({@link SHRINK_SLOTS}).
 *
 *   const ix = new FlowIndex<{ slot: number }>();
 *   ix.set("abcdef", v);  ix.get("abcdef") === v;  ix.delete("abcdef") === v;
 */

import { KeyIndex } from "../tunnel/key_index.ts";

/** A value of the index: its slot is the index's (-1 while not held). */
export interface Slotted {
  slot: number;
}

/** Longest key (route keys are 6 or 18 code units; KeyIndex takes any fixed width). */
const MAX_KEY = 255;
/**
 * Slots above which an index left empty starts over (its tables and slot arrays keep the
 * size of the most values held at once until then: ~20 bytes a slot for IPv4 keys).
 */
const SHRINK_SLOTS = 4096;

/** Values by string key of 1 to {@link MAX_KEY} code units. */
export class FlowIndex<T extends Slotted> {
  /** One key index per key length. */
  #indexes: (KeyIndex | undefined)[] = [];
  /** Values by slot (undefined: free) and the key length each was filed under. */
  #values: (T | undefined)[] = [];
  #widths: number[] = [];
  #free: number[] = [];
  #size = 0;

  /** Values held. */
  get size(): number {
    return this.#size;
  }

  /** Slots ever used (values are at slots below it: see {@link at}). */
  get slots(): number {
    return this.#values.length;
  }

  /** The value in `slot` (below {@link slots}), undefined when free. */
  at(slot: number): T | undefined {
    return this.#values[slot];
  }

  /** The value of `key`, undefined when absent. */
  get(key: string): T | undefined {
    const ix = this.#indexes[key.length];
    if (ix === undefined) return undefined;
    const slot = ix.find(key);
    return slot < 0 ? undefined : this.#values[slot];
  }

  /** Files `v` (held by no index: its slot is -1) under `key`, which must be absent. */
  set(key: string, v: T): void {
    const w = key.length;
    if (w < 1 || w > MAX_KEY) throw new RangeError(`flow key of ${w} code units`);
    if (v.slot >= 0) throw new Error("flow index: the value is held already");
    const slot = this.#free.pop() ?? this.#values.length;
    const ix = this.#indexes[w] ??= new KeyIndex(w, slot + 1);
    ix.grow(slot + 1);
    ix.insert(key, slot);
    this.#values[slot] = v;
    this.#widths[slot] = w;
    v.slot = slot;
    this.#size++;
  }

  /** Removes `v` (held by this index). */
  remove(v: T): void {
    const slot = v.slot;
    if (slot < 0 || this.#values[slot] !== v) throw new Error("flow index: value not held");
    this.#indexes[this.#widths[slot]]!.remove(slot);
    this.#values[slot] = undefined;
    this.#free.push(slot);
    v.slot = -1;
    if (--this.#size === 0 && this.#values.length > SHRINK_SLOTS) this.clear(); // (after a burst)
  }

  /** Removes the value of `key` and returns it (undefined when absent). */
  delete(key: string): T | undefined {
    const v = this.get(key);
    if (v !== undefined) this.remove(v);
    return v;
  }

  /** Removes every value. */
  clear(): void {
    for (const v of this.#values) if (v !== undefined) v.slot = -1;
    this.#indexes = [];
    this.#values = [];
    this.#widths = [];
    this.#free = [];
    this.#size = 0;
  }
}
