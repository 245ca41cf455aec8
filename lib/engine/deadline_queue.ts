/**
 * A FIFO of (deadline, item) pairs for deadlines that are `now + a fixed delay`: with a
 * steady clock they arrive in order, so the due ones are always at the head. The engine
 * keeps one per delay (tombstone, keep-alive): mixing delays in one FIFO would make short
 * deadlines wait behind long ones.
 */
export class DeadlineQueue<T> {
  private q: { at: number; item: T }[] = [];
  private head = 0;

  /** Entries waiting. */
  get size(): number {
    return this.q.length - this.head;
  }

  /** Deadline of the head entry, or undefined. */
  peek(): number | undefined {
    return this.head < this.q.length ? this.q[this.head].at : undefined;
  }

  push(at: number, item: T): void {
    this.q.push({ at, item });
  }

  /** Remove and return the head item if its deadline is at or before `now`. */
  popDue(now: number): T | undefined {
    if (this.head >= this.q.length || this.q[this.head].at > now) return undefined;
    const e = this.q[this.head];
    this.q[this.head++] = undefined as unknown as { at: number; item: T };
    if (this.head > 1024 && this.head * 2 > this.q.length) {
      this.q = this.q.slice(this.head);
      this.head = 0;
    }
    return e.item;
  }
}
