/**
 * Numbers per slot in fixed pages of typed arrays (issue 14): the route table's columns
 * (routing.ts, key_index.ts). A table that grows adds a page instead of copying its arrays
 * into ones twice the size, so growing leaves no old arrays behind: their backing stores are
 * malloc'd and were freed only at the next full GC, which held the route table's memory twice
 * over in RSS while routes piled up. `width` numbers per slot (a route key's code units).
 *
 *   const p = new SlotPages(Int32Array, 1);
 *   p.grow(3000);  p.set(2500, 7);  p.get(2500) === 7;
 */

/** Slots per page (a power of two). */
export const PAGE_SLOTS = 1024;
const PAGE_BITS = 10;
const PAGE_MASK = PAGE_SLOTS - 1;

/** The typed arrays a column may use. */
type Column = Int32Array | Float64Array | Uint8Array | Uint16Array;

/** One column: `width` numbers per slot, in pages of {@link PAGE_SLOTS} slots. */
export class SlotPages<A extends Column> {
  readonly pages: A[] = [];

  constructor(readonly make: new (length: number) => A, readonly width = 1) {}

  /** Slots the pages hold. */
  get capacity(): number {
    return this.pages.length * PAGE_SLOTS;
  }

  /** Bytes of the pages. */
  get bytes(): number {
    return this.pages.length * PAGE_SLOTS * this.width * (this.pages[0]?.BYTES_PER_ELEMENT ?? 0);
  }

  /** Adds pages (zeroed) until `slots` slots fit. */
  grow(slots: number): void {
    while (this.capacity < slots) this.pages.push(new this.make(PAGE_SLOTS * this.width));
  }

  /** Number `i` of `slot`. */
  get(slot: number, i = 0): number {
    return this.pages[slot >> PAGE_BITS][(slot & PAGE_MASK) * this.width + i];
  }

  /** Sets number `i` of `slot`. */
  set(slot: number, value: number, i = 0): void {
    this.pages[slot >> PAGE_BITS][(slot & PAGE_MASK) * this.width + i] = value;
  }

  /** The page holding `slot` and the index of its first number there (for loops). */
  page(slot: number): A {
    return this.pages[slot >> PAGE_BITS];
  }

  /** Index of the first number of `slot` in its {@link page}. */
  at(slot: number): number {
    return (slot & PAGE_MASK) * this.width;
  }
}

/** Pages for `slots` slots: whole pages, at least one. */
export function pagesFor(slots: number): number {
  return Math.max(1, Math.ceil(slots / PAGE_SLOTS));
}
