/**
 * The numbers of an engine's sessions in typed arrays (struct of arrays, one row per session):
 * 32-bit integers (indices, windows, counters, flag bits, and sequence numbers and timestamps
 * stored as their 32-bit pattern) and 64-bit floats (times in ms, RTT estimates).
 *
 * As fields of the Session object each number took an 8-byte slot, and every number that is not
 * a small integer (a sequence number above 2^31, as half of real ones are; a time with a
 * fraction) a 16-byte heap number of its own besides. In a row an integer takes 4 bytes and a
 * float 8, nothing else, and the garbage collector never looks at them.
 *
 * Rows come in blocks of {@link BLOCK_ROWS}: a session keeps its block's two arrays and the
 * offset of its row in them, so the tables grow a block at a time (nothing copied, at most one
 * block unused) and a lookup is one array access. Freed rows are reused, last freed first. A
 * session that ended points to the shared scratch row ({@link SCRATCH}), so a late write from a
 * caller still on the stack cannot touch the row's next owner.
 */

/**
 * Integer columns per row: the session's (see `session.ts`; 33 and 34 its IPv4 client address
 * and port + 1, read for every packet sent), then the row's own number.
 */
export const INT_COLUMNS = 36;
/** The integer column holding the row's number in the slab. */
const ROW_NUMBER = INT_COLUMNS - 1;
/** Float columns per row. */
export const FLOAT_COLUMNS = 19;
/** Rows per block (a power of two). */
export const BLOCK_ROWS = 1024;

/** A session's row: its block's arrays and the row's first column in each. */
export interface SlabRow {
  ints: Int32Array;
  floats: Float64Array;
  /** Index of the row's first integer column in `ints`. */
  ib: number;
  /** Index of the row's first float column in `floats`. */
  fb: number;
}

/** The scratch row of ended sessions (shared by every slab; never read for a live session). */
export const SCRATCH: Readonly<SlabRow> = Object.freeze({
  ints: new Int32Array(INT_COLUMNS),
  floats: new Float64Array(FLOAT_COLUMNS),
  ib: 0,
  fb: 0,
});

/** See the module comment. */
export class SessionSlab {
  private blocks: { ints: Int32Array; floats: Float64Array }[] = [];
  /** Rows handed out so far. */
  private used = 0;
  /** Freed rows (numbers), reused last freed first. */
  private free: number[] = [];

  /** A row for a new session (its columns zeroed); fills `row` in. */
  take(row: SlabRow): void {
    const r = this.free.length > 0 ? this.free.pop()! : this.used++;
    const b = r >> 10, at = r & (BLOCK_ROWS - 1);
    if (b === this.blocks.length) {
      this.blocks.push({
        ints: new Int32Array(BLOCK_ROWS * INT_COLUMNS),
        floats: new Float64Array(BLOCK_ROWS * FLOAT_COLUMNS),
      });
    }
    const block = this.blocks[b];
    row.ints = block.ints;
    row.floats = block.floats;
    row.ib = at * INT_COLUMNS;
    row.fb = at * FLOAT_COLUMNS;
    block.ints.fill(0, row.ib, row.ib + ROW_NUMBER);
    block.ints[row.ib + ROW_NUMBER] = r;
    block.floats.fill(0, row.fb, row.fb + FLOAT_COLUMNS);
  }

  /** Give `row` back (its session ended) and point it at the scratch row. */
  release(row: SlabRow): void {
    if (row.ints === SCRATCH.ints) return;
    this.free.push(row.ints[row.ib + ROW_NUMBER]);
    row.ints = SCRATCH.ints;
    row.floats = SCRATCH.floats;
    row.ib = row.fb = 0;
  }

  /** Rows in use. */
  get live(): number {
    return this.used - this.free.length;
  }

  /** Bytes of the blocks. */
  get bytes(): number {
    return this.blocks.length * BLOCK_ROWS * (INT_COLUMNS * 4 + FLOAT_COLUMNS * 8);
  }
}
