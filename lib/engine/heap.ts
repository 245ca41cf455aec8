/**
 * Entries a heap must have held before it gives room back: below this its arrays keep their
 * room (a few KiB at most).
 */
export const SHRINK_MIN = 4096;

/**
 * An empty array for deadlines whose elements are doubles from the start (the engine's times are
 * milliseconds with a fraction). An empty `[]` holds small integers; the first deadline pushed
 * changes its elements kind, and code optimized while it was empty (a queue that fills only when
 * connections close, a new far bucket) was thrown away ("wrong map" in `peek`,
 * `Engine.nextDeadline`) and compiled again (README.md, "CPU per wake-up").
 */
export function emptyDeadlines(): number[] {
  const a = [0.5];
  a.pop();
  return a;
}

/**
 * A binary min-heap of (deadline, item) pairs, for the engine's timers.
 *
 * A JS array keeps its room when entries are popped: the heap of 100,000 sessions' timers filled
 * while they opened kept ~1.8 MB (18 B per held session) with a few hundred entries left. Once
 * the entries fall below a quarter of the most held since the arrays were last made, they are
 * copied into arrays of their own size (amortised O(1) per pop: at least 3/4 of that many pops
 * came before).
 */
export class TimerHeap<T> {
  private at: number[] = emptyDeadlines();
  private items: T[] = [];
  /** Most entries held since the arrays were made. */
  private peak = 0;

  /** Number of entries (including stale ones the caller skips). */
  get size(): number {
    return this.at.length;
  }

  /** Earliest deadline, or undefined. */
  peek(): number | undefined {
    return this.at[0];
  }

  /** Item of the earliest entry. */
  peekItem(): T | undefined {
    return this.items[0];
  }

  push(at: number, item: T): void {
    const a = this.at, it = this.items;
    let i = a.length;
    a.push(at);
    it.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= at) break;
      a[i] = a[p];
      it[i] = it[p];
      i = p;
    }
    a[i] = at;
    it[i] = item;
    if (a.length > this.peak) this.peak = a.length;
  }

  /** Room the arrays keep beyond their entries (for tests): the most held since they were made. */
  get room(): number {
    return this.peak;
  }

  /**
   * Keep only the entries `keep` accepts (drops stale ones in one pass), then restore the
   * heap order. O(n); the caller runs it rarely enough to make it O(1) per push.
   */
  retain(keep: (at: number, item: T) => boolean): void {
    const a = this.at, it = this.items;
    let n = 0;
    for (let i = 0; i < a.length; i++) {
      if (!keep(a[i], it[i])) continue;
      a[n] = a[i];
      it[n] = it[i];
      n++;
    }
    a.length = n;
    it.length = n;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
    this.fit();
  }

  /** New arrays of the entries' own size once they fill less than a quarter of the peak. */
  private fit(): void {
    const n = this.at.length;
    if (this.peak < SHRINK_MIN || n * 4 >= this.peak) return;
    // slice(): arrays of exactly n entries (setting `length` would keep the room).
    this.at = this.at.slice();
    this.items = this.items.slice();
    this.peak = n;
  }

  private siftDown(i: number): void {
    const a = this.at, it = this.items, n = a.length;
    const at = a[i], item = it[i];
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && a[c + 1] < a[c]) c++;
      if (a[c] >= at) break;
      a[i] = a[c];
      it[i] = it[c];
      i = c;
    }
    a[i] = at;
    it[i] = item;
  }

  /** Remove the earliest entry. */
  pop(): void {
    const a = this.at, it = this.items;
    const lastAt = a.pop()!;
    const lastItem = it.pop()!;
    if (a.length > 0) {
      a[0] = lastAt;
      it[0] = lastItem;
      this.siftDown(0);
    }
    this.fit();
  }
}
