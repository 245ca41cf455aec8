/**
 * The captured client byte stream of one session, in the client's own sequence space.
 *
 * Segments are reassembled in order (retransmissions and overlaps trimmed, out-of-order
 * segments held until the hole is filled) and grouped into turns: a turn is a run of
 * client payload sent with the same online ACK value, i.e. without the client having
 * received anything new from the online server in between. A client FIN or RST closes the
 * stream as a zero-length turn of its own, so it is paced like a request.
 */

import { view } from "./slab.ts";
import { SEQ_FIELD_INIT, seqAdd, seqLe, seqLt, seqSub } from "../wire/seq.ts";

/** A piece of captured client payload, contiguous with its neighbours once in order. */
export interface Chunk {
  seq: number;
  data: Uint8Array;
  /** The client's ACK (online server sequence space) when it sent this. */
  ack: number;
  tsval?: number;
  ipId?: number;
}

/**
 * Kind of a turn. Numeric codes (turns are compared on every send), one table, one union:
 * a switch over {@link TurnKind} ends in a `never` check, so a new kind does not compile
 * until every switch handles it.
 */
export const TurnKind = { DATA: 0, CLOSE_FIN: 1, CLOSE_RST: 2 } as const;
/** One of the {@link TurnKind} codes. */
export type TurnKind = (typeof TurnKind)[keyof typeof TurnKind];
/** The turn kinds by name (`TurnKind.DATA` …). */
export const { DATA, CLOSE_FIN, CLOSE_RST } = TurnKind;

/**
 * A request (or the client's FIN/RST) and its pacing state. Kept small: an idle connection
 * holds its last turn. Sequence numbers are stored as their signed 32-bit pattern (a small
 * integer in V8, where a number above 2^31 in a field is a 16-byte heap number of its own) and
 * read back unsigned; the kind and the yes/no state share one number.
 */
export class Turn {
  #start: number;
  #end: number;
  #ack: number;
  /** Kind in bits 0-1, then released, sent, answered, now. */
  #bits: number;
  /** Target response bytes received when the turn was released, and when. */
  releaseRcv = 0;
  releaseAt = 0;

  constructor(kind: TurnKind, start: number, end: number, ack: number, now = false) {
    this.#start = start | 0;
    this.#end = end | 0;
    this.#ack = ack | 0;
    this.#bits = kind | (now ? NOW : 0);
  }

  /** Make this (dropped, pooled) turn a new one: every field as the constructor sets it. */
  reset(kind: TurnKind, start: number, end: number, ack: number, now: boolean): this {
    this.#start = start | 0;
    this.#end = end | 0;
    this.#ack = ack | 0;
    this.#bits = kind | (now ? NOW : 0);
    this.releaseRcv = 0;
    this.releaseAt = 0;
    return this;
  }

  get kind(): TurnKind {
    return (this.#bits & 3) as TurnKind;
  }
  /** First client sequence number of the turn's payload. */
  get start(): number {
    return this.#start >>> 0;
  }
  /** One past the last client sequence number of the turn's payload. */
  get end(): number {
    return this.#end >>> 0;
  }
  set end(v: number) {
    this.#end = v | 0;
  }
  /** Online response bytes the client had received (online ACK) when it sent this. */
  get ack(): number {
    return this.#ack >>> 0;
  }
  /** (A protocol module's held requests: the ACK of the first of them, module_bridge.ts.) */
  set ack(v: number) {
    this.#ack = v | 0;
  }
  get released(): boolean {
    return (this.#bits & RELEASED) !== 0;
  }
  set released(v: boolean) {
    this.#bits = v ? this.#bits | RELEASED : this.#bits & ~RELEASED;
  }
  get sent(): boolean {
    return (this.#bits & SENT) !== 0;
  }
  set sent(v: boolean) {
    this.#bits = v ? this.#bits | SENT : this.#bits & ~SENT;
  }
  get answered(): boolean {
    return (this.#bits & ANSWERED) !== 0;
  }
  set answered(v: boolean) {
    this.#bits = v ? this.#bits | ANSWERED : this.#bits & ~ANSWERED;
  }
  /** Released as soon as the turns before it are (a protocol module's `now`). */
  get now(): boolean {
    return (this.#bits & NOW) !== 0;
  }
  /** The kind and every yes/no state as one number (a turn stowed in a slab row, {@link restoreTurn}). */
  get flags(): number {
    return this.#bits;
  }
  /** Sets the kind and every yes/no state from {@link flags}. */
  set flags(v: number) {
    this.#bits = v;
  }
}
const RELEASED = 4, SENT = 8, ANSWERED = 16, NOW = 32;

/**
 * Dropped turns, reused by the next new turn of any stream (last dropped first). A keep-alive
 * request's turn lives until the connection's next request, so with many live sessions it
 * outlives a young-generation collection and is promoted: a new one per request made the old
 * generation (and each scavenge's old-to-new work) grow with the live sessions. Reused, a
 * request allocates no turn. Bounded: a burst of dropped turns beyond it is left to the GC.
 */
const turnPool: Turn[] = [];
/** At most this many dropped turns are kept for reuse. */
const TURN_POOL_MAX = 1024;

/** A new turn: a pooled one reset, or a fresh one. */
function makeTurn(kind: TurnKind, start: number, end: number, ack: number, now = false): Turn {
  const t = turnPool.pop();
  return t === undefined
    ? new Turn(kind, start, end, ack, now)
    : t.reset(kind, start, end, ack, now);
}

/** Result of adding a captured segment to the stream (numeric: once per captured segment). */
export const StreamAdd = { ADDED: 0, DUPLICATE: 1, OUT_OF_ORDER: 2 } as const;
/** One of the {@link StreamAdd} codes. */
export type StreamAdd = (typeof StreamAdd)[keyof typeof StreamAdd];
/** The add results by name (`StreamAdd.ADDED` …). */
export const { ADDED, DUPLICATE, OUT_OF_ORDER } = StreamAdd;

/**
 * Released slots tolerated at the front of `chunks` and `turns` before the arrays are cut down
 * (released entries are cleared at once; the slots cost 8 bytes each until then).
 */
const COMPACT_AFTER = 32;

/**
 * Moves `a[from..]` to the front and cuts the array after them, in place: no new array (V8
 * gives a backing store's unused half back when the length drops below it).
 */
function shiftDown<T>(a: T[], from: number): void {
  const n = a.length - from;
  for (let i = 0; i < n; i++) a[i] = a[from + i];
  a.length = n;
}

/** The shared empty out-of-order list (frozen: a session with no hole allocates none). */
const NO_CHUNKS: Chunk[] = Object.freeze([]) as unknown as Chunk[];
/** The shared empty turn list (frozen: turns are added through `pushTurn` only). */
const NO_TURNS: Turn[] = Object.freeze([]) as unknown as Turn[];

/**
 * A turn list holding `ts[from..]` in an array with room for two (a held keep-alive session's
 * last turn and its next request: a push onto an array with room for one grows it to 19).
 */
function twoRoom(ts: Turn[], from: number): Turn[] {
  const n = ts.length - from;
  if (n === 0) return NO_TURNS;
  const a = [ts[from], ts[ts.length - 1]];
  a.length = n; // 1 or 2: the room for two stays (V8 trims only far larger arrays)
  return a;
}

/**
 * What few streams have (see {@link ClientStream}): segments beyond a hole, the client's FIN / RST
 * as captured.
 */
interface StreamRare {
  ooo: Chunk[];
  finSeq: number | undefined;
  finAck: number;
  rstSeq: number | undefined;
  rstAck: number;
  closedTurnAdded: boolean;
}

/** Ordered client data plus its turns; see the module comment. */
export class ClientStream {
  /**
   * In-order chunks from `chunks[head]` on; earlier entries are released (read-only outside;
   * the shared empty list while an idle stream holds none).
   */
  chunks: Chunk[] = NO_CHUNKS;
  head = 0;
  /** One past the last in-order captured byte (its signed 32-bit pattern; see {@link Turn}). */
  #end: number;
  /** Turns from `turns[turnHead]` on (read-only outside; the shared empty list while none). */
  turns: Turn[] = NO_TURNS;
  turnHead = 0;
  /**
   * Segments beyond a hole and the client's FIN / RST, once either was captured: one record of
   * their own (most streams never have any; one field instead of two in every stream).
   */
  #close: StreamRare | undefined = undefined;
  /** Bytes held (in order and out of order). */
  bytes = 0;
  /** Number of data turns created (requests captured). */
  requests = 0;

  constructor(start: number) {
    this.#end = start | 0;
  }

  /** Segments beyond a hole, sorted by sequence number (read-only; shared while empty). */
  get ooo(): Chunk[] {
    return this.#close?.ooo ?? NO_CHUNKS;
  }
  private setOoo(v: Chunk[]): void {
    if (v !== NO_CHUNKS || this.#close !== undefined) this.closeRecord().ooo = v;
  }

  /** The client's FIN position once captured (the sequence number it occupies). */
  get finSeq(): number | undefined {
    return this.#close?.finSeq;
  }
  private set finSeq(v: number | undefined) {
    if (v !== undefined || this.#close !== undefined) this.closeRecord().finSeq = v;
  }
  private get finAck(): number {
    return this.#close?.finAck ?? 0;
  }
  private set finAck(v: number) {
    this.closeRecord().finAck = v;
  }
  /** The client's RST position once captured. */
  get rstSeq(): number | undefined {
    return this.#close?.rstSeq;
  }
  private set rstSeq(v: number | undefined) {
    if (v !== undefined || this.#close !== undefined) this.closeRecord().rstSeq = v;
  }
  private get rstAck(): number {
    return this.#close?.rstAck ?? 0;
  }
  private set rstAck(v: number) {
    this.closeRecord().rstAck = v;
  }
  /** The close turn (FIN or RST) is in {@link turns}. */
  private get closedTurnAdded(): boolean {
    return this.#close?.closedTurnAdded ?? false;
  }
  private set closedTurnAdded(v: boolean) {
    this.closeRecord().closedTurnAdded = v;
  }
  // A TS-private method, not `#closeRecord()`: a class with a JS private method stores a brand
  // in every instance (8 more bytes per stream).
  private closeRecord(): StreamRare {
    return this.#close ??= {
      ooo: NO_CHUNKS,
      finSeq: undefined,
      finAck: 0,
      rstSeq: undefined,
      rstAck: 0,
      closedTurnAdded: false,
    };
  }

  /** One past the last in-order captured byte. */
  get end(): number {
    return this.#end >>> 0;
  }
  set end(v: number) {
    this.#end = v | 0;
  }

  /** Add a payload segment (a copy the stream may keep). */
  add(c: Chunk): StreamAdd {
    const len = c.data.length;
    const cEnd = seqAdd(c.seq, len);
    if (seqLe(cEnd, this.end)) return DUPLICATE;
    if (seqLt(c.seq, this.end)) {
      c = { ...c, data: view(c.data, seqSub(this.end, c.seq), c.data.length), seq: this.end };
    }
    if (c.seq !== this.end) {
      this.insertOoo(c);
      return OUT_OF_ORDER;
    }
    this.append(c);
    this.pullOoo();
    this.maybeCloseTurn();
    return ADDED;
  }

  /** Note the client's FIN at `seq` (after any payload of the same segment). */
  fin(seq: number, ack: number): void {
    if (this.finSeq !== undefined || this.rstSeq !== undefined) return;
    this.finSeq = seq;
    this.finAck = ack;
    this.maybeCloseTurn();
  }

  /** Note the client's RST at `seq`. */
  rst(seq: number, ack: number): void {
    if (this.rstSeq !== undefined) return;
    // An RST after the FIN still aborts: it replaces a FIN turn that was not added yet.
    this.rstSeq = seqLt(seq, this.end) ? this.end : seq;
    this.rstAck = ack;
    if (!this.closedTurnAdded) this.finSeq = undefined;
    this.maybeCloseTurn();
  }

  /** The stream is complete up to the client's FIN or RST. */
  get closed(): boolean {
    return this.closedTurnAdded;
  }

  /** First hole position if segments are waiting beyond one. */
  get hasHole(): boolean {
    return this.ooo.length > 0 ||
      (this.finSeq !== undefined && !this.closedTurnAdded) ||
      (this.rstSeq !== undefined && !this.closedTurnAdded);
  }

  /** Drop in-order chunks wholly before `seq` (the target has them and no replay needs them). */
  releaseBefore(seq: number): number {
    let freed = 0;
    const cs = this.chunks;
    while (this.head < cs.length) {
      const c = cs[this.head];
      if (seqLe(seqAdd(c.seq, c.data.length), seq)) {
        freed += c.data.length;
        cs[this.head] = undefined as unknown as Chunk;
        this.head++;
      } else break;
    }
    if (this.head > COMPACT_AFTER && this.head * 2 > cs.length) this.compactChunks();
    this.bytes -= freed;
    return freed;
  }

  /** Cut the released chunks off the front of `chunks`. */
  private compactChunks(): void {
    shiftDown(this.chunks, this.head);
    this.head = 0;
  }

  /** Drop turns before index `i` (their bookkeeping is finished). Returns how many went. */
  dropTurns(i: number): number {
    const n = i - this.turnHead;
    if (n <= 0) return 0;
    const ts = this.turns;
    for (let k = this.turnHead; k < i; k++) {
      if (turnPool.length < TURN_POOL_MAX) turnPool.push(ts[k]);
      ts[k] = undefined as unknown as Turn;
    }
    this.turnHead = i;
    return n;
  }

  /**
   * Compact the turn array; returns the shift to subtract from stored indices. `idle`: the
   * session is idle, give every spare slot back (chunks too), however few.
   */
  compactTurns(idle = false): number {
    if (idle) {
      if (this.head === this.chunks.length) {
        this.chunks = NO_CHUNKS; // the shared empty list until the next payload
        this.head = 0;
      } else if (this.head > 0) this.compactChunks();
      // A new array of the live turns only (in place, the array would keep its room).
      const shift = this.turnHead, live = this.turns.length - shift;
      if (live < 4) {
        this.turns = live <= 2 ? twoRoom(this.turns, shift) : this.turns.slice(shift);
        this.turnHead = 0;
        return shift;
      }
    }
    if (this.turnHead === 0) return 0;
    // Few live turns (a keep-alive connection's last one): to the front at once, so the next
    // request finds its slot in the array's room instead of growing it.
    if (
      this.turns.length - this.turnHead > 2 &&
      (this.turnHead < COMPACT_AFTER || this.turnHead * 2 < this.turns.length)
    ) return 0;
    const shift = this.turnHead;
    shiftDown(this.turns, shift);
    this.turnHead = 0;
    return shift;
  }

  /** Index of the in-order chunk containing `seq`, from `hint` on, or -1. */
  chunkAt(seq: number, hint: number): number {
    const cs = this.chunks;
    let i = hint < this.head || hint >= cs.length ? this.head : hint;
    if (seqLt(seq, cs[i]?.seq ?? seq)) i = this.head;
    for (; i < cs.length; i++) {
      const c = cs[i];
      if (seqLe(c.seq, seq) && seqLt(seq, seqAdd(c.seq, c.data.length))) return i;
    }
    return -1;
  }

  /**
   * Start of the turn that contains `seq` (for replays that resend whole requests). Turns are
   * ordered by start, so the last turn starting at or before `seq` is found by binary search:
   * this runs on every ACK, and a lagging replay can hold thousands of turns.
   */
  turnStartOf(seq: number): number {
    const ts = this.turns;
    let lo = this.turnHead, hi = ts.length; // answer: the last i in [lo, hi) with start <= seq
    if (lo >= hi || !seqLe(ts[lo].start, seq)) return seq;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (seqLe(ts[mid].start, seq)) lo = mid;
      else hi = mid;
    }
    const t = ts[lo];
    return seqLt(seq, t.end) || t.start === t.end ? t.start : seq;
  }

  /**
   * Append bytes a protocol module produced at {@link end} (the replayed stream of a module
   * session): `newTurn` starts a turn even when the ACK did not move, `now` starts one that
   * is released without waiting for the target (see lib/engine/module_bridge.ts).
   */
  push(c: Chunk, newTurn: boolean, now: boolean): void {
    if (newTurn || now) {
      const last = this.turns.length > this.turnHead
        ? this.turns[this.turns.length - 1]
        : undefined;
      this.pushTurn(
        makeTurn(DATA, this.end, this.end, last && seqLt(c.ack, last.ack) ? last.ack : c.ack, now),
      );
      this.requests++;
    }
    this.append({ ...c, seq: this.end });
  }

  /**
   * Take out the stream's only turn (its session keeps the numbers in its slab row instead:
   * `Session.stow`); the turn goes back to the pool and the list keeps its room (its one slot
   * empty) for the turn's return ({@link dropStowedList} lets it go). The caller copies the
   * turn's numbers first and reads no turn until {@link restoreTurn}.
   */
  stowOnlyTurn(): void {
    const ts = this.turns;
    if (this.turnHead !== 0 || ts.length !== 1) throw new Error("stowOnlyTurn: not one turn");
    if (turnPool.length < TURN_POOL_MAX) turnPool.push(ts[0]);
    ts[0] = undefined as unknown as Turn;
  }

  /** A stowed turn's list goes too (the idle sweep: see {@link stowOnlyTurn}). */
  dropStowedList(): void {
    this.turns = NO_TURNS;
  }

  /**
   * Put a stowed turn back as the stream's only turn (index 0: in the list kept for it, or in a
   * new one with room for two), with its numbers exactly as {@link stowOnlyTurn}'s caller copied
   * them.
   */
  restoreTurn(
    flags: number,
    start: number,
    end: number,
    ack: number,
    releaseRcv: number,
    releaseAt: number,
  ): void {
    const t = makeTurn(DATA, start, end, ack);
    t.flags = flags;
    t.releaseRcv = releaseRcv;
    t.releaseAt = releaseAt;
    this.turnHead = 0;
    if (this.turns === NO_TURNS) this.pushTurn(t);
    else if (this.turns.length === 1 && this.turns[0] === undefined) this.turns[0] = t;
    else throw new Error("restoreTurn: the stream holds turns");
  }

  /** Append a turn (the first one gets an array with room for two, see {@link twoRoom}). */
  private pushTurn(t: Turn): void {
    if (this.turns === NO_TURNS) {
      const a = [t, t];
      a.length = 1;
      this.turns = a;
    } else this.turns.push(t);
  }

  private insertOoo(c: Chunk): void {
    if (this.ooo === NO_CHUNKS) this.setOoo([]);
    const o = this.ooo;
    let i = o.length;
    while (i > 0 && seqLt(c.seq, o[i - 1].seq)) i--;
    if (i > 0) {
      const p = o[i - 1];
      if (p.seq === c.seq && p.data.length >= c.data.length) return; // exact duplicate
    }
    o.splice(i, 0, c);
    this.bytes += c.data.length;
  }

  private pullOoo(): void {
    const o = this.ooo;
    while (o.length > 0) {
      const c = o[0];
      if (seqLt(this.end, c.seq)) break;
      o.shift();
      this.bytes -= c.data.length;
      const cEnd = seqAdd(c.seq, c.data.length);
      if (seqLe(cEnd, this.end)) continue;
      const trimmed = c.seq === this.end
        ? c
        : { ...c, data: view(c.data, seqSub(this.end, c.seq), c.data.length), seq: this.end };
      this.append(trimmed);
    }
    if (o.length === 0 && o !== NO_CHUNKS) this.setOoo(NO_CHUNKS);
  }

  private append(c: Chunk): void {
    const cs = this.chunks;
    if (cs === NO_CHUNKS) this.chunks = [c];
    else if (this.head === cs.length) {
      // Every chunk released (a keep-alive request after the previous one was acknowledged):
      // start again at the front, in the array's own room (a push would grow it by 16 slots).
      cs[0] = c;
      cs.length = 1;
      this.head = 0;
    } else cs.push(c);
    this.bytes += c.data.length;
    const newEnd = seqAdd(c.seq, c.data.length);
    const last = this.turns.length > this.turnHead ? this.turns[this.turns.length - 1] : undefined;
    if (last && last.kind === DATA && !seqLt(last.ack, c.ack)) {
      last.end = newEnd;
    } else {
      this.pushTurn(
        makeTurn(DATA, c.seq, newEnd, last && seqLt(c.ack, last.ack) ? last.ack : c.ack),
      );
      this.requests++;
    }
    this.end = newEnd;
  }

  private maybeCloseTurn(): void {
    if (this.closedTurnAdded) return;
    let kind: TurnKind, seq: number, ack: number;
    if (this.rstSeq !== undefined && seqLe(this.rstSeq, this.end)) {
      kind = CLOSE_RST;
      seq = this.end;
      ack = this.rstAck;
    } else if (this.finSeq !== undefined && this.finSeq === this.end) {
      kind = CLOSE_FIN;
      seq = this.finSeq;
      ack = this.finAck;
    } else return;
    const last = this.turns.length > this.turnHead ? this.turns[this.turns.length - 1] : undefined;
    this.pushTurn(makeTurn(kind, seq, seq, last && seqLt(ack, last.ack) ? last.ack : ack));
    this.closedTurnAdded = true;
  }
}

/**
 * One stream that never goes away, with a close record whose every field was written after its
 * creation with each kind of value it holds: the hidden classes of streams and close records
 * (and their fields' representation and mutability) stay what optimized code was compiled for.
 * Exported only so that it lives as long as the module (an unexported constant no function
 * reads is garbage once the module has run); nothing reads it.
 *
 * A hidden class lives only while an object has it (or for two more full collections; none with
 * tcpcopy's `--memory-saver-mode`, lib/process/v8_flags.ts). With one connection at a time (an
 * HTTP/2 client, a quiet service) no stream or close record may be alive during a collection;
 * the next connection's then got new classes, so every optimized function reading them was
 * thrown away ("embedded weak objects cleared", "wrong map", then "field constness changed" as
 * the new record's fields were first written) and compiled again, once per connection
 * (README.md, "CPU per wake-up"; tests/unit/engine_shape_keepsake.test.ts). A close record is
 * made once per connection, too rarely for V8 to keep a template of it; a class's instances
 * reach their hidden class through the same kind of weak transition.
 */
export const STREAM_SHAPES: ClientStream = new ClientStream(SEQ_FIELD_INIT);
{
  const r = (STREAM_SHAPES as unknown as { closeRecord(): StreamRare }).closeRecord();
  r.ooo = [];
  r.ooo = NO_CHUNKS;
  r.finSeq = SEQ_FIELD_INIT;
  r.finSeq = undefined;
  r.finAck = SEQ_FIELD_INIT;
  r.rstSeq = SEQ_FIELD_INIT;
  r.rstSeq = undefined;
  r.rstAck = SEQ_FIELD_INIT;
  // The close record's getters read one, every branch, before any connection closes: optimized
  // code that inlines them (a session's `transmit`, `onAck`, `onCaptured`...) was otherwise
  // compiled while no stream had a record, with no type feedback for the record's fields, and was
  // thrown away ("insufficient type feedback") at the first FIN or RST. 16 reads of each state:
  // V8 keeps feedback for a function only after its first few calls.
  for (const closed of [false, true]) {
    r.finSeq = r.rstSeq = SEQ_FIELD_INIT;
    r.closedTurnAdded = closed;
    for (let i = 0; i < 16; i++) readCloseRecord(STREAM_SHAPES);
  }
  r.finSeq = r.rstSeq = undefined;
  r.closedTurnAdded = false;
}

/** Reads every field of `s`'s close record through the stream's getters. */
function readCloseRecord(s: ClientStream): number {
  const p = s as unknown as { finAck: number; rstAck: number };
  return s.ooo.length + (s.finSeq ?? 0) + (s.rstSeq ?? 0) + p.finAck + p.rstAck +
    (s.closed ? 1 : 0) + (s.hasHole ? 1 : 0);
}
