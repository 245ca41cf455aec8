/**
 * The engine's timers: a small min-heap for the near deadlines and coarse buckets for the far
 * ones (issue 14). Most of a held session's deadlines are far (the keep-alive or idle timeout,
 * seconds ahead) and few of them ever fire early; in one binary heap of 100,000 sessions every
 * new near deadline (a delayed ACK, a retransmission timer) sifted up past ~17 levels of far ones
 * and every pop sifted down as many, each level a cache miss. Here a deadline at or after the
 * horizon `H` (a multiple of `GRAIN_MS`) is appended to its bucket (`⌊at / GRAIN_MS⌋`, O(1));
 * only deadlines before `H` are in the heap. A bucket keeps its earliest deadline, so `peek`
 * needs no heap entry for it. Only when an entry is to be taken (`peekItem`, `pop`) while the
 * heap is empty, i.e. when the earliest bucket's time has come, is that bucket moved into the
 * heap and `H` moved to its end: the heap holds at most one grain of far deadlines plus the
 * near ones, and every entry moves from its bucket to the heap at most once.
 *
 * Invariant: every heap entry is before `H`, every bucket entry at or after it, so the heap's
 * minimum (when there is one) is the earliest deadline of all, else the first bucket's.
 */
import { emptyDeadlines, TimerHeap } from "./heap.ts";

/** Width of a bucket of far deadlines (ms). */
export const GRAIN_MS = 1024;

/** One bucket: deadlines and items in parallel arrays. */
interface Bucket<T> {
  at: number[];
  items: T[];
  /** The earliest of `at`. */
  min: number;
}

/** Timers by deadline; see the module comment. */
export class TimerQueue<T> {
  private readonly near = new TimerHeap<T>();
  /** Far buckets by index, and their indices in ascending order. */
  private readonly buckets = new Map<number, Bucket<T>>();
  private readonly order: number[] = [];
  private farCount = 0;
  /** The horizon: heap entries are before it, bucket entries at or after it. */
  private horizon = -Infinity;

  /** Number of entries (including stale ones the caller skips). */
  get size(): number {
    return this.near.size + this.farCount;
  }

  /** Entries in the far buckets (for tests). */
  get farSize(): number {
    return this.farCount;
  }

  /** Earliest deadline, or undefined. Moves nothing. */
  peek(): number | undefined {
    if (this.near.size > 0) return this.near.peek();
    return this.order.length > 0 ? this.buckets.get(this.order[0])!.min : undefined;
  }

  /**
   * Earliest deadline whose entry `isCurrent` accepts, dropping the stale ones before it from
   * the heap; a bucket's earliest deadline is taken as it is (it may be stale: the caller wakes
   * early and finds nothing due). Moves no bucket into the heap.
   */
  peekCurrent(isCurrent: (at: number, item: T) => boolean): number | undefined {
    const h = this.near;
    while (h.size > 0) {
      const at = h.peek()!;
      if (isCurrent(at, h.peekItem()!)) return at;
      h.pop();
    }
    return this.peek();
  }

  /** Item of the earliest entry. */
  peekItem(): T | undefined {
    if (this.near.size === 0) this.load();
    return this.near.peekItem();
  }

  push(at: number, item: T): void {
    if (at < this.horizon) {
      this.near.push(at, item);
      return;
    }
    const k = Math.floor(at / GRAIN_MS);
    let b = this.buckets.get(k);
    if (b === undefined) {
      b = { at: emptyDeadlines(), items: [], min: at };
      this.buckets.set(k, b);
      this.insertIndex(k);
    }
    b.at.push(at);
    b.items.push(item);
    if (at < b.min) b.min = at;
    this.farCount++;
  }

  /** Remove the earliest entry. */
  pop(): void {
    if (this.near.size === 0) this.load();
    this.near.pop();
  }

  /** Keep only the entries `keep` accepts (drops stale ones), in the heap and the buckets. */
  retain(keep: (at: number, item: T) => boolean): void {
    this.near.retain(keep);
    let far = 0, w = 0;
    const order = this.order;
    for (let r = 0; r < order.length; r++) {
      const k = order[r], b = this.buckets.get(k)!;
      let n = 0, min = Infinity;
      for (let i = 0; i < b.at.length; i++) {
        if (!keep(b.at[i], b.items[i])) continue;
        if (b.at[i] < min) min = b.at[i];
        b.at[n] = b.at[i];
        b.items[n] = b.items[i];
        n++;
      }
      b.at.length = b.items.length = n;
      if (n === 0) {
        this.buckets.delete(k);
        continue;
      }
      b.min = min;
      far += n;
      order[w++] = k;
    }
    order.length = w;
    this.farCount = far;
  }

  /** Moves the earliest bucket into the empty heap and the horizon to its end. */
  private load(): void {
    if (this.order.length === 0) return;
    const k = this.order.shift()!;
    const b = this.buckets.get(k)!;
    this.buckets.delete(k);
    this.horizon = (k + 1) * GRAIN_MS;
    this.farCount -= b.at.length;
    for (let i = 0; i < b.at.length; i++) this.near.push(b.at[i], b.items[i]);
  }

  /** Files a new bucket index in `order` (ascending; new buckets are rare: one per grain). */
  private insertIndex(k: number): void {
    const o = this.order;
    let lo = 0, hi = o.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (o[mid] < k) lo = mid + 1;
      else hi = mid;
    }
    o.splice(lo, 0, k);
  }
}
