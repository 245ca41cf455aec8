/**
 * Which connection of each intercept holds each live route of tcpcopy's tunnel client: one
 * row of `intercepts` bytes per route (the connection index, -1: none) in one shared table,
 * rows reused through a free list, the table doubled when full and rebuilt smaller once mostly
 * free. The route itself is its map key (route_key.ts: the key gives the endpoints back), so a
 * live route costs its key, a map entry and a row (77 B measured, bench/route_table_heap.ts)
 * instead of objects and typed arrays of its own (~800 B).
 *
 *   const h = new RouteHolders(2);
 *   const row = h.alloc();          // every holder -1
 *   h.set(row, 1, 0);  h.get(row, 1);  h.forget(1, 0);  h.free(row);
 */
export class RouteHolders {
  /** Rows × intercepts connection indexes; -1 where nobody holds it (free rows too). */
  #table: Int8Array;
  /** Free rows (a stack): `#free[0..#freeCount)`. */
  #free: Int32Array;
  #freeCount = 0;
  /** Rows ever handed out (rows at and above it were never used). */
  #used = 0;

  constructor(readonly intercepts: number, rows = 64) {
    if (!Number.isInteger(intercepts) || intercepts < 1) {
      throw new RangeError(`intercepts must be a whole number ≥ 1, got ${intercepts}`);
    }
    this.#table = new Int8Array(rows * intercepts).fill(-1);
    this.#free = new Int32Array(rows);
  }

  /** Rows the table has room for (grows by doubling). */
  get capacity(): number {
    return this.#free.length;
  }

  /** Rows handed out and not freed. */
  get live(): number {
    return this.#used - this.#freeCount;
  }

  /** A row for a new route, every holder -1. */
  alloc(): number {
    if (this.#freeCount > 0) return this.#free[--this.#freeCount];
    if (this.#used === this.capacity) this.#grow();
    return this.#used++;
  }

  /** Gives `row` back (its holders are reset to -1). */
  free(row: number): void {
    this.#table.fill(-1, row * this.intercepts, (row + 1) * this.intercepts);
    this.#free[this.#freeCount++] = row;
  }

  /** The connection index of intercept `s` holding `row`, -1 when none. */
  get(row: number, s: number): number {
    return this.#table[row * this.intercepts + s];
  }

  /** Notes that connection `index` (-1: none) of intercept `s` holds `row`. */
  set(row: number, s: number, index: number): void {
    this.#table[row * this.intercepts + s] = index;
  }

  /** Connection `index` of intercept `s` is gone: no route is held there any more. */
  forget(s: number, index: number): void {
    const t = this.#table, n = this.intercepts, end = this.#used * n;
    for (let i = s; i < end; i += n) if (t[i] === index) t[i] = -1;
  }

  /**
   * Mostly free rows (under an eighth of a capacity above 1,024 live): time for
   * {@link compacted}, so a table a burst grew does not stay that size.
   */
  get sparse(): boolean {
    return this.capacity > 1024 && this.live * 8 < this.capacity;
  }

  /**
   * A new table holding the given live rows renumbered 0, 1, 2, … in the order given, with
   * room for twice as many (the caller renumbers its references the same way).
   */
  compacted(rows: Iterable<number>): RouteHolders {
    let room = 64;
    while (room < 2 * this.live) room *= 2;
    const out = new RouteHolders(this.intercepts, room);
    const n = this.intercepts;
    for (const row of rows) {
      const to = out.alloc();
      out.#table.set(this.#table.subarray(row * n, (row + 1) * n), to * n);
    }
    return out;
  }

  #grow(): void {
    const rows = this.capacity * 2;
    const table = new Int8Array(rows * this.intercepts).fill(-1);
    table.set(this.#table);
    this.#table = table;
    const free = new Int32Array(rows);
    free.set(this.#free);
    this.#free = free;
  }
}
