import { emptyDeadlines } from "./heap.ts";

/**
 * A FIFO of (deadline, item) pairs for deadlines that are `now + a fixed delay`: with a
 * steady clock they arrive in order, so the due ones are always at the head. The engine
 * keeps one per delay (tombstone, keep-alive): mixing delays in one FIFO would make short
 * deadlines wait behind long ones. Deadlines and items sit in two parallel arrays (16 bytes an
 * entry; an object per entry took 48).
 */
export class DeadlineQueue<T> {
  private at: number[] = emptyDeadlines();
  private items: T[] = [];
  private head = 0;

  /** Entries waiting. */
  get size(): number {
    return this.at.length - this.head;
  }

  /** Deadline of the head entry, or undefined. */
  peek(): number | undefined {
    return this.head < this.at.length ? this.at[this.head] : undefined;
  }

  push(at: number, item: T): void {
    this.at.push(at);
    this.items.push(item);
  }

  /** Remove and return the head item if its deadline is at or before `now`. */
  popDue(now: number): T | undefined {
    const h = this.head;
    if (h >= this.at.length || this.at[h] > now) return undefined;
    const item = this.items[h];
    this.items[h] = undefined as T;
    this.head = h + 1;
    if (this.head === this.at.length) {
      this.at.length = this.items.length = this.head = 0; // empty: its room goes back
    } else if (this.head > 1024 && this.head * 2 > this.at.length) {
      this.at = this.at.slice(this.head);
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
