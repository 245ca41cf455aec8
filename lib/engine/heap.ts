/** A binary min-heap of (deadline, item) pairs, for the engine's timers. */
export class TimerHeap<T> {
  private at: number[] = [];
  private items: T[] = [];

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
    const n = a.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && a[c + 1] < a[c]) c++;
      if (a[c] >= lastAt) break;
      a[i] = a[c];
      it[i] = it[c];
      i = c;
    }
    a[i] = lastAt;
    it[i] = lastItem;
  }
}
