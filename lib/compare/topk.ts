/**
 * The most frequent keys of a stream with a fixed table (Metwally et al.'s space-saving
 * algorithm): `capacity` slots; a new key when the table is full replaces the key with the
 * smallest count and inherits that count as its possible overestimate (`error`). Every key
 * seen more than total/capacity times is in the table, and for every key in it
 * `count - error ≤ true count ≤ count`. Used for the exit summary's top mismatching requests.
 *
 * @module
 */

/** Longest key kept (characters). */
export const TOPK_KEY_MAX = 256;

/** One row of {@link TopK.top}. */
export interface TopEntry {
  key: string;
  /** Upper bound of the key's count. */
  count: number;
  /** How much `count` may overestimate. */
  error: number;
}

/** A bounded heavy-hitters table. */
export class TopK {
  #keys: string[] = [];
  #counts: Float64Array;
  #errors: Float64Array;
  #index = new Map<string, number>();
  /** Everything added. */
  total = 0;

  constructor(readonly capacity = 64) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("capacity must be >= 1");
    this.#counts = new Float64Array(capacity);
    this.#errors = new Float64Array(capacity);
  }

  /** Counts `n` occurrences of `key`. */
  add(key: string, n = 1): void {
    if (key.length > TOPK_KEY_MAX) key = key.slice(0, TOPK_KEY_MAX);
    this.total += n;
    const at = this.#index.get(key);
    if (at !== undefined) {
      this.#counts[at] += n;
      return;
    }
    if (this.#keys.length < this.capacity) {
      this.#index.set(key, this.#keys.length);
      this.#counts[this.#keys.length] = n;
      this.#errors[this.#keys.length] = 0;
      this.#keys.push(key);
      return;
    }
    const min = this.#smallest();
    this.#index.delete(this.#keys[min]);
    this.#index.set(key, min);
    this.#keys[min] = key;
    this.#errors[min] = this.#counts[min];
    this.#counts[min] += n;
  }

  #smallest(): number {
    let min = 0;
    for (let i = 1; i < this.#keys.length; i++) if (this.#counts[i] < this.#counts[min]) min = i;
    return min;
  }

  /** The `k` keys with the largest counts, largest first (ties by key). */
  top(k = 10): TopEntry[] {
    return this.#keys
      .map((key, i) => ({ key, count: this.#counts[i], error: this.#errors[i] }))
      .sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .slice(0, k);
  }
}
