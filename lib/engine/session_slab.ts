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
 * Rows come in blocks of {@link BLOCK_ROWS}, one `ArrayBuffer` per block seen as an `Int32Array`
 * and a `Float64Array`: a row is {@link ROW_BYTES} contiguous bytes, its integer columns then its
 * float columns (a session's numbers in 5 neighbouring cache lines, not in two arrays far apart).
 * A session keeps its block's two views and the index of its row's first integer in `ints`; its
 * first float is {@link floatStart} of that (one field per session less than an index of its
 * own). The tables grow a block at a time (nothing copied, at most one block unused) and a lookup
 * is one array access. Freed rows are reused, last freed first. A session that ended points to
 * the shared scratch row ({@link SCRATCH}), so a late write from a caller still on the stack
 * cannot touch the row's next owner.
 */

/**
 * Integer columns per row: the session's (see `session.ts`; 33 and 34 its IPv4 client address
 * and port + 1, read for every packet sent), then the row's own number. Even, so that the float
 * columns after them start on an 8-byte boundary.
 */
export const INT_COLUMNS = 36;
/** The integer column holding the row's number in the slab. */
const ROW_NUMBER = INT_COLUMNS - 1;
/** Float columns per row. */
export const FLOAT_COLUMNS = 19;
/** Bytes per row. */
export const ROW_BYTES = INT_COLUMNS * 4 + FLOAT_COLUMNS * 8;
/** Int32 slots per row. */
const ROW_INTS = ROW_BYTES / 4;
/** Rows per block (a power of two). */
export const BLOCK_ROWS = 1024;

/** Index in `floats` of the first float column of the row whose first integer is `ints[ib]`. */
export function floatStart(ib: number): number {
  return (ib >> 1) + (INT_COLUMNS >> 1);
}

/** A session's row: its block's views and the index of the row's first integer column. */
export interface SlabRow {
  ints: Int32Array;
  floats: Float64Array;
  /** Index of the row's first integer column in `ints` (its floats: {@link floatStart}). */
  ib: number;
}

const SCRATCH_BUFFER = new ArrayBuffer(ROW_BYTES);
/** The scratch row of ended sessions (shared by every slab; never read for a live session). */
export const SCRATCH: Readonly<SlabRow> = Object.freeze({
  ints: new Int32Array(SCRATCH_BUFFER),
  floats: new Float64Array(SCRATCH_BUFFER),
  ib: 0,
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
      const buf = new ArrayBuffer(BLOCK_ROWS * ROW_BYTES);
      this.blocks.push({ ints: new Int32Array(buf), floats: new Float64Array(buf) });
    }
    const block = this.blocks[b];
    row.ints = block.ints;
    row.floats = block.floats;
    const ib = row.ib = at * ROW_INTS;
    block.ints.fill(0, ib, ib + ROW_INTS); // its floats too (0.0 is all zero bits)
    block.ints[ib + ROW_NUMBER] = r;
  }

  /** Give `row` back (its session ended) and point it at the scratch row. */
  release(row: SlabRow): void {
    if (row.ints === SCRATCH.ints) return;
    this.free.push(row.ints[row.ib + ROW_NUMBER]);
    row.ints = SCRATCH.ints;
    row.floats = SCRATCH.floats;
    row.ib = 0;
  }

  /** Rows in use. */
  get live(): number {
    return this.used - this.free.length;
  }

  /** Bytes of the blocks. */
  get bytes(): number {
    return this.blocks.length * BLOCK_ROWS * ROW_BYTES;
  }
}
