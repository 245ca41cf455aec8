/**
 * One replayed session of an original connection as `--compare` follows it (issue 15): the
 * connection's turns, the online answer of each turn assembled from the captured server→client
 * packets, and what the replayed session tells about the target's answer (when the request went
 * out, when reply data came back). Each session of a connection (`-n` copies, other transfers)
 * has its own flow, all fed the same captured packets (chained by {@link FlowCompare.nextFlow}).
 *
 * Turns are cut exactly as the engine cuts them (lib/engine/stream.ts): a turn is a run of
 * in-order client payload sent with the same online ACK. The online answer of turn k is the
 * server's byte range [ack(k), ack(k+1)): what the client had received when it sent the next
 * request. Client sequence numbers are kept by the replay, so the target's answer to turn k
 * is the one whose reply ACK lies in (start(k), end(k)].
 *
 * A session of a protocol module is followed from its pass point on ({@link FlowCompare.passSeq}):
 * the replay is the captured stream from there, at a constant offset; the host translates the
 * target side's client sequence numbers (sent, reply ACKs, answers' ACKs) by it before they
 * reach the flow, which works in the captured client's numbers only.
 *
 * Pure: no I/O, no clock (times are arguments). Server→client packets only feed this
 * object; they never reach the engine.
 *
 * @module
 */

import { type AnswerAccumulator, type AnswerSummary, emptySummary } from "../compare/answer.ts";
import { seqAdd, seqLe, seqLt, seqSub } from "../wire/seq.ts";
import { prefixView } from "../compare/prefix_view.ts";
import { type Proto, requestProto } from "../compare/sniff.ts";
import type { Endpoint } from "../engine/segment.ts";
import { internAddr } from "../engine/endpoint.ts";
import type { LatencyHistogram } from "../compare/histogram.ts";

/** Request bytes kept per turn for the record's head and the `auto` sniffing. */
export const HEAD_KEEP = 256;
/** Out-of-order segments held per direction before the hole is given up as a gap. */
export const MAX_HELD = 32;
/** Out-of-order server payload bytes held per connection before the hole becomes a gap. */
export const MAX_HELD_BYTES = 65536;

/** A TCP segment as the comparison reads it (captured or recorded). */
export interface SegmentView {
  seq: number;
  ack: number;
  flags: number;
  /** The payload bytes (a view, valid during the call). */
  payload: Uint8Array;
  /**
   * Where the payload starts in `payload` and how long it is (default 0 and the rest of
   * `payload`): the replicator hands over the captured frame itself with its payload's place,
   * so an online answer packet costs no view (read by `FlowCompare.onServer` only).
   */
  payloadFrom?: number;
  payloadLength?: number;
}

/** One turn waiting for its verdict. */
export interface PendingTurn {
  /** 1-based turn number on its connection. */
  index: number;
  /** Client sequence range of the request. */
  start: number;
  end: number;
  /** The client's online ACK on the request: where its online answer starts. */
  ack: number;
  /**
   * How many of the request's first bytes `headBuf` holds (at most {@link HEAD_KEEP}); a view
   * of them ({@link turnHead}) is made only when a verdict needs it (a mismatch, a record): a
   * view per pending turn was a tenth of its heap (~110 of ~980 bytes) and lived as long.
   */
  headLen: number;
  /** The pooled {@link HEAD_KEEP}-byte buffer the request's first bytes live in (recycled). */
  headBuf: Uint8Array;
  /** `requestProto(head)`, sniffed while the head is fresh (for `auto` at the verdict). */
  proto: Proto | null;
  /**
   * The pooled buffer the online answer's first bytes live in (null: none, or they are the
   * target's: equal first bytes are shared, see `FlowCompare.finishOnline` and the comparer).
   */
  onlineBuf: Uint8Array | null;
  /** The pooled buffer the target answer's first bytes live in (null: none, or shared). */
  targetBuf: Uint8Array | null;
  /**
   * A later turn's online answer was given this turn's online first bytes (the same bytes: a
   * connection repeating an answer): when this turn leaves, the buffer they live in goes to
   * the first pending turn still showing them (`FlowCompare.#handOver`), not to the pool.
   */
  shared: boolean;
  /** Capture time (ms) of the request's last segment. */
  lastSegMs: number;
  /** The online answer: undefined while open, null when the online server sent nothing. */
  online: AnswerSummary | null | undefined;
  /**
   * The online answer's kind, digest and body length are not computed yet (held unparsed, its
   * first bytes are all of it): the host fills them in before the verdict (`completeHeld`).
   */
  onlineHeld: boolean;
  /**
   * Summary objects of an earlier turn that used this object (it is reused): filled again
   * instead of new ones (null: none yet).
   */
  spareOnline: AnswerSummary | null;
  spareTarget: AnswerSummary | null;
  /** Engine time the online answer was finished (NaN while open). */
  onlineAt: number;
  /** Engine time the request's last byte was first sent to the target (NaN: not yet). */
  sentMs: number;
  /** Engine times of the first and last new reply data for this turn (NaN: none). */
  replyFirstMs: number;
  replyLastMs: number;
  /** New reply payload bytes of this turn seen in reply headers. */
  replyBytes: number;
  /** The target's answer summary (parts merged), or null. */
  target: AnswerSummary | null;
  /** Engine time the last target answer part arrived. */
  targetAt: number;
  /** Bytes this turn counts against the comparison budget. */
  cost: number;
}

/** Verdicts given for the sessions of one target (the stats line's `compare.targets`). */
export interface TargetCounts {
  compared: number;
  matched: number;
  mismatched: number;
}

/**
 * A target's verdict counters and its answers' latencies (target side), behind the stats
 * line's `compare.targets` and the per-target Prometheus series (compare_output.ts).
 */
export interface TargetTally extends TargetCounts {
  /** Target latencies of this target's compared turns (ms), as `CompareStats.target`. */
  readonly latency: LatencyHistogram;
}

/** What a flow asks of the comparer that owns it. */
export interface FlowHost {
  /** Most pending turns per connection (`--compare-max-pending`, {@link MAX_PENDING_TURNS}). */
  readonly maxPendingTurns: number;
  /** A turn of `bytes` may be kept (false: over budget, the turn is skipped and counted). */
  reserve(bytes: number): boolean;
  /** `bytes` of the budget are free again. */
  free(bytes: number): void;
  /** An accumulator for this flow's online answers, or null (over budget). */
  acquire(): AnswerAccumulator | null;
  release(acc: AnswerAccumulator): void;
  /** A turn was not kept (over budget). */
  skipped(): void;
  /**
   * A turn's online answer equal to the connection's previous one (still pending) shares that
   * one's first bytes instead of keeping its own buffer (false: never; tests hold the two ways
   * to each other).
   */
  readonly shareOnline: boolean;
  /** A {@link HEAD_KEEP}-byte buffer for a request head (pooled). */
  headBuffer(): Uint8Array;
  /** A buffer of the accumulators' length for an online answer's first bytes (pooled). */
  firstBuffer(): Uint8Array;
  /** Fills in a held online summary's kind, digest and body length (`completeHeld`). */
  completeHeld(s: AnswerSummary, target: AnswerSummary | null): void;
  /**
   * `t`'s online answer was just finished by this flow's packets (the next request, a FIN or
   * RST): the host gives its verdict at once when nothing more can change it (see
   * `Comparer.#final`; `t` then leaves the pending turns during the call).
   */
  answered(flow: FlowCompare, t: PendingTurn, now: number): void;
  /**
   * The target acknowledged request bytes beyond what it had acknowledged before
   * ({@link FlowCompare.replyAck}): the turns before it may get their verdicts at once.
   */
  movedOn(flow: FlowCompare, now: number): void;
  /** A turn's buffers are free again (the turn is gone). */
  recycle(t: PendingTurn): void;
  /** A turn object no longer used by any flow, to fill again (undefined: none kept). */
  spareTurn(): PendingTurn | undefined;
  /** `t` is no longer used (its verdict was given): kept for {@link spareTurn} or dropped. */
  keepTurn(t: PendingTurn): void;
}

const NO_BYTES = new Uint8Array(0);
/** A summary no turn keeps: {@link newTurn}'s placeholder. */
const HELD_PLACEHOLDER: AnswerSummary = emptySummary();

/**
 * A turn object for {@link FlowCompare}'s `#openTurn` to fill. Its placeholders differ from
 * what the fill writes, and sequence numbers start as doubles (NaN): V8 then takes every field
 * as mutable, times and sequence numbers as doubles, at the first turn, while the code is still
 * interpreted, instead of deoptimizing compiled code when a later turn first writes a field
 * again or brings the first sequence number above 2^30.
 */
function newTurn(): PendingTurn {
  return {
    index: -1,
    start: Number.NaN,
    end: Number.NaN,
    ack: Number.NaN,
    headLen: -1,
    headBuf: NO_BYTES,
    proto: "bytes",
    onlineBuf: NO_BYTES,
    targetBuf: NO_BYTES,
    shared: true,
    lastSegMs: -1,
    online: null,
    onlineHeld: true,
    spareOnline: null,
    spareTarget: null,
    onlineAt: -1,
    sentMs: -1,
    replyFirstMs: -1,
    replyLastMs: -1,
    replyBytes: -1,
    target: HELD_PLACEHOLDER,
    targetAt: -1,
    cost: -1,
  };
}

/** The request's first bytes kept by turn `t` (a view of its pooled buffer, valid until it leaves). */
export function turnHead(t: PendingTurn): Uint8Array {
  return prefixView(t.headBuf, t.headLen);
}

/** `view` starts where `buf` starts (a prefix view of it). */
function sameStart(view: Uint8Array, buf: Uint8Array): boolean {
  return view.buffer === buf.buffer && view.byteOffset === buf.byteOffset;
}

/** `dst` = `src` with an address the flow may keep (`internAddr`: shared, never changed). */
export function ownInto(dst: Endpoint, src: Endpoint): void {
  dst.addr = internAddr(src.addr);
  dst.family = src.family;
  dst.port = src.port;
}

/** Cost of one pending turn besides its bytes (object, arrays, summary objects). */
export const TURN_COST = 320;
/**
 * Most pending turns per connection by default (`--compare-max-pending` sets it). Beyond it the
 * newest turn is skipped, not the oldest: a replay that lags production (keep-alive bursts run
 * seconds behind) answers the oldest pending turn next, so shedding the oldest would shed every
 * turn just before its answer. A keep-alive connection at full speed whose replay lags by
 * seconds holds more (ab -k -c 10, 20,000 requests: ~2,000 per connection; 2,893 of 20,000
 * compared at 256): a larger cap compares them all at the cost of the pending turns' memory
 * (within the byte budget, a share of `-m`) and CPU (README, "Comparing responses").
 */
export const MAX_PENDING_TURNS = 256;
/** The largest `--compare-max-pending`. */
export const MAX_PENDING_TURNS_LIMIT = 1_000_000;

interface Held {
  seq: number;
  ack: number;
  flags: number;
  atMs: number;
  data: Uint8Array;
}

/** See the module comment. */
export class FlowCompare {
  /** Turns waiting for their verdict, oldest first. */
  readonly pending: PendingTurn[] = [];
  /** The turn receiving online answer bytes (may be decided or skipped already). */
  open: PendingTurn | null = null;
  /** The open turn was skipped (over budget): its answer bytes go nowhere. */
  openSkipped = false;
  turns = 0;
  /**
   * The next flow following the same original connection (another replayed session of it: a
   * `-n` copy, another transfer of the port), or undefined: the comparer fans the connection's
   * captured segments out along this chain (one flow per session, nothing to walk for one).
   */
  nextFlow: FlowCompare | undefined = undefined;
  /** The compared session's copy index (`-n`: 0 for the first). */
  copy = 0;
  /** Counters of the compared session's target (per-target stats), or null. */
  counts: TargetTally | null = null;
  /** The compared session's number, its rewritten client and its target (null: none now). */
  sessionId = 0;
  session: { client: Endpoint; target: Endpoint } | null = null;
  /** The object `session` points to while one is live (the flow's own: filled per session). */
  readonly sessionEnds: { client: Endpoint; target: Endpoint } = {
    client: { addr: NO_BYTES, family: 4, port: 0 },
    target: { addr: NO_BYTES, family: 4, port: 0 },
  };
  /** Engine time the last compared session ended (NaN while one is live). */
  sessionEndedAt = Number.NaN;
  clientClosed = false;
  serverClosed = false;
  /** Engine time of the last packet of either direction. */
  lastSeen: number;
  /** Highest client sequence number sent to the target, and when (target side). */
  sentMax: number | undefined;
  /** One past the highest reply byte seen in reply headers (target sequence space). */
  replyMax: number | undefined;
  /**
   * The highest ACK number of the compared session's replies: the target had received the
   * request bytes before it. A turn that ends before it gets no new reply bytes any more (the
   * target sends later bytes with this ACK or a higher one).
   */
  replyAck: number | undefined;
  /**
   * The highest turn number decided before its tick since the last tick (0: none): that tick
   * counts it as an answered later turn, as when it was still pending (`Comparer.#decideFlow`).
   */
  earlyIndex = 0;
  /**
   * The compared session's replayed client sequence numbers minus the captured ones (mod
   * 2^32): 0 without a module; a module session's from its pass point on (the host subtracts
   * it from what the target side tells).
   */
  offset = 0;
  /**
   * A module session's pass point: the first captured client byte followed (the bytes before
   * it were the module's login and what it sent itself; no turn of them is kept), or -1: from
   * the connection's start (no module).
   */
  passSeq = -1;

  #cliNext: number | undefined;
  #lastAck = 0;
  #cliHeld: Held[] = [];
  #srvNext: number | undefined;
  #srvHeld: Held[] = [];
  #srvHeldBytes = 0;
  #acc: AnswerAccumulator | null = null;
  #accStarted = false;
  /**
   * The newest pending turn whose online answer has first bytes (its own buffer's or shared):
   * the next online answer with the same bytes shares them (null: none, or it left).
   */
  #lastOnline: PendingTurn | null = null;
  /** Engine time of the open answer's last byte (NaN: none yet). */
  lastAnswerAt = Number.NaN;

  /**
   * The original connection's client and server: the flow's own objects (addresses from
   * `internAddr`), filled again when the flow object is reused ({@link reuse}).
   */
  readonly client: Endpoint = { addr: NO_BYTES, family: 4, port: 0 };
  readonly server: Endpoint = { addr: NO_BYTES, family: 4, port: 0 };

  constructor(
    client: Endpoint,
    server: Endpoint,
    private readonly host: FlowHost,
    now: number,
  ) {
    this.lastSeen = now;
    ownInto(this.client, client);
    ownInto(this.server, server);
  }

  /**
   * Makes a forgotten flow ({@link dispose}d: nothing pending, no accumulator) the flow of
   * another connection, as the constructor would (the comparer pools flow objects: a short
   * connection allocates none).
   */
  reuse(client: Endpoint, server: Endpoint, now: number): void {
    ownInto(this.client, client);
    ownInto(this.server, server);
    this.open = null;
    this.openSkipped = false;
    this.turns = 0;
    this.nextFlow = undefined;
    this.copy = 0;
    this.counts = null;
    this.sessionId = 0;
    this.session = null;
    this.sessionEndedAt = Number.NaN;
    this.clientClosed = this.serverClosed = false;
    this.lastSeen = now;
    this.sentMax = this.replyMax = this.replyAck = undefined;
    this.earlyIndex = 0;
    this.offset = 0;
    this.passSeq = -1;
    this.#cliNext = this.#srvNext = undefined;
    this.#lastAck = 0;
    this.#srvHeldBytes = 0;
    this.#accStarted = false;
    this.#lastOnline = null;
    this.lastAnswerAt = Number.NaN;
  }

  // -----------------------------------------------------------------------------------------
  // Online side

  /** A captured client→server segment of this connection (after the engine took it). */
  onClient(s: SegmentView, atMs: number, now: number): void {
    this.lastSeen = now;
    if (s.flags & 0x02) { // the client's SYN: its first byte follows
      if (this.turns === 0) this.#cliNext = seqAdd(s.seq, 1);
      return;
    }
    const len = s.payload.length;
    if (len > 0) {
      if (this.#cliNext === undefined) this.#cliNext = this.#pickUp(s.seq); // mid-stream
      this.#clientData(s.seq, s.ack, s.flags, s.payload, atMs, now);
    }
    if (s.flags & (0x01 | 0x04)) { // FIN, RST
      this.clientClosed = true;
      const open = this.open;
      if (open !== null && open.online === undefined) {
        this.finishOnline(open, now, (s.flags & 0x10) !== 0 ? s.ack : undefined);
        this.host.answered(this, open, now);
      }
    }
  }

  /**
   * Where the turns start when the flow meets the client's stream past its SYN at `seq`: there,
   * or at the pass point when that is later (a module session: the bytes before it are the
   * login's, and never a turn).
   */
  #pickUp(seq: number): number {
    const from = this.passSeq;
    return from >= 0 && seqLt(seq, from) ? from : seq;
  }

  /**
   * A captured server→client segment of this connection: online answer bytes. Only SYN-ACKs,
   * payload, FIN and RST are read: the capture filter leaves the server's bare IPv4 ACKs out
   * (lib/cli/filter.ts `NO_SERVER_ACKS`), so a new use of them here must change it too.
   */
  onServer(s: SegmentView, atMs: number, now: number): void {
    this.lastSeen = now;
    if (s.flags & 0x02) { // SYN-ACK: the server's first byte follows
      if (this.#srvNext === undefined) this.#srvNext = seqAdd(s.seq, 1);
      return;
    }
    const from = s.payloadFrom ?? 0;
    const len = s.payloadLength ?? s.payload.length - from;
    if (len > 0 && this.#srvNext !== undefined) {
      this.#serverData(s.seq, s.ack, s.flags, s.payload, from, from + len, atMs, now);
    }
    if (s.flags & (0x01 | 0x04)) {
      this.serverClosed = true;
      const open = this.open;
      if (open !== null && open.online === undefined) {
        this.finishOnline(open, now);
        this.host.answered(this, open, now);
      }
    }
  }

  #clientData(
    seq: number,
    ack: number,
    flags: number,
    data: Uint8Array,
    atMs: number,
    now: number,
  ): void {
    const next = this.#cliNext!;
    const end = seqAdd(seq, data.length);
    if (seqLe(end, next)) return; // retransmission
    if (seqLt(next, seq)) {
      this.#hold(this.#cliHeld, { seq, ack, flags, atMs, data: data.slice(0, HEAD_KEEP) });
      if (this.#cliHeld.length > MAX_HELD) this.#resyncClient(now);
      return;
    }
    const from = seqSub(next, seq);
    this.#appendClient(next, end, ack, data, from, atMs, now);
    this.#pullClient(now);
  }

  /** In-order client bytes `[start, end)` (`data[from...]`): a new turn or more of the last. */
  #appendClient(
    start: number,
    end: number,
    ack: number,
    data: Uint8Array,
    from: number,
    atMs: number,
    now: number,
  ): void {
    this.#cliNext = end;
    const first = this.turns === 0;
    if (!first && !seqLt(this.#lastAck, ack)) {
      const t = this.open;
      if (t !== null && !this.openSkipped && t.online === undefined) {
        t.end = end;
        if (!(t.lastSegMs >= atMs)) t.lastSegMs = atMs; // a held segment may be older
        t.sentMs = this.sentMax !== undefined && seqLe(end, this.sentMax) ? now : Number.NaN;
        this.#extendHead(t, data, from);
      }
      return;
    }
    const prev = this.open;
    const done = prev !== null && prev.online === undefined && !this.openSkipped;
    if (done) this.finishOnline(prev, now, ack);
    if (this.#srvNext === undefined || first || seqLt(this.#srvNext, ack)) this.#srvNext = ack;
    this.#lastAck = ack;
    this.turns++;
    this.#openTurn(start, end, ack, data, from, atMs, now);
    // (once the new turn is open: a decided turn that is no longer the open one is reused)
    if (done) this.host.answered(this, prev, now);
  }

  /** The new turn is not followed (over budget, or too many pending): counted, its answer dropped. */
  #skipOpen(): void {
    this.open = null;
    this.openSkipped = true;
    this.host.skipped();
  }

  #openTurn(
    start: number,
    end: number,
    ack: number,
    data: Uint8Array,
    from: number,
    atMs: number,
    now: number,
  ): void {
    const headLen = Math.min(HEAD_KEEP, data.length - from);
    // (a turn pulled from held segments is stamped with the time it became complete)
    const cost = TURN_COST + HEAD_KEEP;
    if (this.pending.length >= this.host.maxPendingTurns) return this.#skipOpen();
    if (this.#acc === null) this.#acc = this.host.acquire();
    if (this.#acc === null || !this.host.reserve(cost)) return this.#skipOpen();
    const headBuf = this.host.headBuffer();
    const whole = from === 0 && headLen === data.length; // (the request's segment is its head)
    headBuf.set(whole ? data : data.subarray(from, from + headLen));
    const sentMs = this.sentMax !== undefined && seqLe(end, this.sentMax) ? now : Number.NaN;
    // a turn object whose verdict was given is reused (its number fields keep their boxes: a
    // fresh turn allocates one per NaN/fractional time); a new one is filled the same way
    const t = this.host.spareTurn() ?? newTurn();
    t.index = this.turns;
    t.start = start;
    t.end = end;
    t.ack = ack;
    t.headLen = headLen;
    t.headBuf = headBuf;
    t.proto = requestProto(whole ? data : prefixView(headBuf, headLen));
    t.onlineBuf = t.targetBuf = null;
    t.shared = false;
    t.lastSegMs = atMs;
    t.online = undefined;
    t.onlineHeld = false;
    t.onlineAt = Number.NaN;
    t.sentMs = sentMs;
    t.replyFirstMs = t.replyLastMs = Number.NaN;
    t.replyBytes = 0;
    t.target = null;
    t.targetAt = Number.NaN;
    t.cost = cost;
    this.#opened(t);
  }

  #opened(t: PendingTurn): void {
    this.open = t;
    this.openSkipped = false;
    this.#accStarted = false;
    this.lastAnswerAt = Number.NaN;
    this.pending.push(t);
  }

  #extendHead(t: PendingTurn, data: Uint8Array, from: number): void {
    const have = t.headLen;
    const room = t.headBuf.length - have; // 0 once the turn is gone (its buffer recycled)
    if (room <= 0) return;
    const more = data.subarray(from, from + room);
    t.headBuf.set(more, have);
    t.headLen = have + more.length;
    t.proto = requestProto(turnHead(t));
  }

  #pullClient(now: number): void {
    const held = this.#cliHeld;
    while (held.length > 0 && !seqLt(this.#cliNext!, held[0].seq)) {
      const h = held.shift()!;
      const end = seqAdd(h.seq, h.data.length);
      const next = this.#cliNext!;
      if (seqLe(end, next)) continue;
      this.#appendClient(next, end, h.ack, h.data, seqSub(next, h.seq), h.atMs, now);
    }
  }

  /** Too many client segments beyond a hole: start over at the next segment. */
  #resyncClient(now: number): void {
    this.#cliHeld.length = 0;
    this.#cliNext = undefined;
    const open = this.open;
    if (open !== null && open.online === undefined && !this.openSkipped) {
      this.finishOnline(open, now);
    }
  }

  #hold(list: Held[], h: Held): void {
    let i = list.length;
    while (i > 0 && seqLt(h.seq, list[i - 1].seq)) i--;
    if (i > 0 && list[i - 1].seq === h.seq) return; // the same segment again
    list.splice(i, 0, h);
  }

  /** Server payload `data[from, to)` at sequence number `seq`. */
  #serverData(
    seq: number,
    ack: number,
    flags: number,
    data: Uint8Array,
    from: number,
    to: number,
    atMs: number,
    now: number,
  ): void {
    const next = this.#srvNext!;
    const end = seqAdd(seq, to - from);
    if (seqLe(end, next)) return; // retransmission
    if (seqLt(next, seq)) {
      this.#holdServer(seq, ack, flags, data, from, to, atMs, now);
      return;
    }
    this.#answerBytes(data, from + seqSub(next, seq), to, atMs, now);
    this.#srvNext = end;
    this.#pullServer(now);
  }

  #holdServer(
    seq: number,
    ack: number,
    flags: number,
    data: Uint8Array,
    from: number,
    to: number,
    atMs: number,
    now: number,
  ): void {
    const len = to - from;
    if (this.#srvHeld.length >= MAX_HELD || this.#srvHeldBytes + len > MAX_HELD_BYTES) {
      // The hole will not fill in time: its bytes are a gap, the held ones follow it.
      const first = this.#srvHeld.length > 0 && seqLt(this.#srvHeld[0].seq, seq)
        ? this.#srvHeld[0].seq
        : seq;
      this.#answerGap(seqSub(first, this.#srvNext!), now);
      this.#srvNext = first;
      this.#pullServer(now);
      if (seqLt(this.#srvNext!, seq)) {
        this.#answerGap(seqSub(seq, this.#srvNext!), now);
        this.#srvNext = seq;
      }
      this.#serverData(seq, ack, flags, data, from, to, atMs, now);
      return;
    }
    this.#hold(this.#srvHeld, { seq, ack, flags, atMs, data: data.slice(from, to) });
    this.#srvHeldBytes += len;
  }

  #pullServer(now: number): void {
    const held = this.#srvHeld;
    while (held.length > 0 && !seqLt(this.#srvNext!, held[0].seq)) {
      const h = held.shift()!;
      this.#srvHeldBytes -= h.data.length;
      const end = seqAdd(h.seq, h.data.length);
      const next = this.#srvNext!;
      if (seqLe(end, next)) continue;
      this.#answerBytes(h.data, seqSub(next, h.seq), h.data.length, h.atMs, now);
      this.#srvNext = end;
    }
  }

  /** In-order answer bytes `data[from, to)` for the open turn (nothing before the first request). */
  #answerBytes(data: Uint8Array, from: number, to: number, atMs: number, now: number): void {
    const t = this.open;
    const acc = this.#acc;
    if (t === null || this.openSkipped || t.online !== undefined || acc === null) return;
    if (!this.#accStarted) {
      acc.reset(t.lastSegMs);
      this.#accStarted = true;
    }
    acc.push(data, atMs, from, to);
    this.lastAnswerAt = now;
  }

  #answerGap(n: number, now: number): void {
    const t = this.open;
    const acc = this.#acc;
    if (n <= 0 || t === null || this.openSkipped || t.online !== undefined || acc === null) return;
    if (!this.#accStarted) {
      acc.reset(t.lastSegMs);
      this.#accStarted = true;
    }
    acc.gap(n);
    this.lastAnswerAt = now;
  }

  /**
   * Ends the online answer of `t` (the open turn): at the next turn (`upTo` = its ACK, bytes
   * up to there not seen are a gap), at a FIN or RST, after a quiet period, or at a deadline
   * (`timedOut`).
   */
  finishOnline(t: PendingTurn, now: number, upTo?: number, timedOut = false): void {
    if (t.online !== undefined) return;
    const next = this.#srvNext;
    if (upTo !== undefined && next !== undefined && seqLt(next, upTo)) {
      if (t === this.open) this.#answerGap(seqSub(upTo, next), now);
      this.#srvNext = upTo;
    }
    const acc = this.#acc;
    if (t === this.open && this.#accStarted && acc !== null) {
      const target = t.target;
      if (
        target !== null && target.firstBytes.length > 0 && acc.sameFirstBytes(target.firstBytes)
      ) {
        // the target answered these very first bytes (the common case, compared while they
        // are fresh): the summaries share them, no buffer is handed over, and the verdict's
        // byte comparison is one identity test; a whole answer held unparsed (lazy) takes
        // the target's digest (the same bytes) and is never parsed here
        t.online = acc.finishShared(target, timedOut, t.spareOnline);
      } else if (this.#sameAsLast(acc)) {
        // the previous pending turn's online answer had these very bytes (a keep-alive load
        // repeating itself while the replay lags): shared, no buffer handed over; the first
        // one's buffer stays with whichever turn showing them is pending (#handOver)
        const last = this.#lastOnline!, prev = last.online!;
        last.shared = true;
        t.onlineHeld = acc.held;
        t.online = t.onlineHeld
          ? acc.finishHeldAs(prev.firstBytes, timedOut, t.spareOnline)
          : acc.finishShared(prev, timedOut, t.spareOnline);
      } else {
        // the accumulator's buffer goes with the turn, a pooled one takes its place (no copy);
        // a whole answer held unparsed stays so until its verdict (most turns of a replay
        // that lags are skipped before they get one: never parsed)
        const own = acc.buffer;
        const spare = this.host.firstBuffer();
        t.onlineHeld = acc.held;
        t.online = t.onlineHeld
          ? acc.finishSwapHeld(spare, timedOut, t.spareOnline)
          : acc.finishSwap(spare, timedOut, t.spareOnline);
        t.onlineBuf = own;
      }
      t.spareOnline = null;
    } else t.online = null;
    if (t === this.open) this.#accStarted = false;
    t.onlineAt = now;
    if (t.online !== null) {
      const extra = t.online.firstBytes.length;
      if (this.host.reserve(extra)) t.cost += extra;
      else {
        if (t.onlineHeld) this.host.completeHeld(t.online, null); // (from the bytes dropped now)
        t.onlineHeld = false;
        t.online.firstBytes = t.online.firstBytes.subarray(0, 0);
      }
      if (t.online.firstBytes.length > 0 && t.headBuf !== NO_BYTES) this.#lastOnline = t;
    }
  }

  /** The open answer has the first bytes of {@link #lastOnline}'s (and sharing is on). */
  #sameAsLast(acc: AnswerAccumulator): boolean {
    const last = this.#lastOnline;
    if (last === null || !this.host.shareOnline) return false;
    const prev = last.online;
    return prev !== null && prev !== undefined && prev.firstBytes.length > 0 &&
      acc.sameFirstBytes(prev.firstBytes);
  }

  /**
   * `t` leaves and a later turn was given its online first bytes: the buffer they live in (its
   * online or its target buffer) goes to the first pending turn still showing them.
   */
  #handOver(t: PendingTurn): void {
    const v = t.online?.firstBytes;
    if (v === undefined || v.length === 0) return;
    const p = this.pending;
    for (let i = 0; i < p.length; i++) {
      const u = p[i];
      if (u === t || u.online?.firstBytes !== v) continue;
      if (t.onlineBuf !== null && sameStart(v, t.onlineBuf)) {
        u.onlineBuf = t.onlineBuf;
        t.onlineBuf = null;
      } else if (t.targetBuf !== null && sameStart(v, t.targetBuf)) {
        u.onlineBuf = t.targetBuf;
        t.targetBuf = null;
      } // (else t showed another turn's bytes: that turn's buffer, handed over when it leaves)
      return;
    }
  }

  /** The server bytes held out of order (for tests and the budget). */
  get heldServerBytes(): number {
    return this.#srvHeldBytes;
  }

  // -----------------------------------------------------------------------------------------
  // Target side

  /** The replayed session sent client bytes up to `end` (first transmissions only matter). */
  onSent(end: number, now: number): void {
    if (this.sentMax !== undefined && !seqLt(this.sentMax, end)) return;
    this.sentMax = end;
    // Turns end in sequence order and the sent ones are those ending by sentMax: find the
    // first turn ending after `end`, stamp the unsent ones before it (a target that lags
    // leaves hundreds of turns unsent: no walk over them per segment).
    const p = this.pending;
    const n = p.length;
    if (n === 0 || !seqLe(p[0].end, end)) return; // (nothing sent yet: no turn to stamp)
    // (the newest turn, when the replay keeps up: no search through the others' objects)
    let lo = 1, hi = n;
    if (seqLe(p[n - 1].end, end)) lo = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLe(p[mid].end, end)) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo - 1; i >= 0 && Number.isNaN(p[i].sentMs); i--) p[i].sentMs = now;
  }

  /**
   * A reply header of the compared session: SYN-ACK (a new connection, a new sequence space)
   * or data; new data bytes are counted for the turn its ACK answers.
   */
  onReply(seq: number, ack: number, flags: number, len: number, now: number): void {
    if (flags & 0x02) {
      this.replyMax = seqAdd(seq, 1);
      return;
    }
    const moved = (flags & 0x10) !== 0 &&
      (this.replyAck === undefined || seqLt(this.replyAck, ack));
    if (moved) this.replyAck = ack;
    this.#replyData(seq, ack, len, now);
    if (moved) this.host.movedOn(this, now);
  }

  /** New reply data bytes are counted for the turn its ACK answers. */
  #replyData(seq: number, ack: number, len: number, now: number): void {
    if (len <= 0) return;
    const end = seqAdd(seq, len);
    const max = this.replyMax;
    if (max !== undefined && !seqLt(max, end)) return; // retransmission
    const fresh = max === undefined || seqLe(max, seq) ? len : seqSub(end, max);
    this.replyMax = end;
    const t = this.turnFor(ack);
    if (t === null) return;
    t.replyBytes += fresh;
    if (Number.isNaN(t.replyFirstMs)) t.replyFirstMs = now;
    t.replyLastMs = now;
  }

  /**
   * The pending turn whose request ends at `ack` (start < ack ≤ end), or null. The pending
   * turns are in sequence order: a binary search (a keep-alive flow may hold a few hundred
   * turns between two verdict ticks while the target is behind).
   */
  turnFor(ack: number): PendingTurn | null {
    const p = this.pending;
    const n = p.length;
    // the first turn that starts at or after ack is at lo; answers come in order, so it is
    // mostly the oldest turn's successor, or past the newest (a skipped turn's answer): both
    // are tried before a search through the turn objects (cold when thousands wait)
    if (n === 0 || !seqLt(p[0].start, ack)) return null;
    let lo = 1, hi = n;
    if (n === 1 || !seqLt(p[1].start, ack)) hi = 1;
    else if (seqLt(p[n - 1].start, ack)) lo = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLt(p[mid].start, ack)) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return null;
    const t = p[lo - 1];
    return seqLe(ack, t.end) ? t : null;
  }

  /**
   * Removes `t` from the pending turns (its verdict is given; its buffers go back to the
   * host: nothing of it may be read after this); returns its cost.
   */
  remove(t: PendingTurn): number {
    const p = this.pending;
    if (p.length === 1 && p[0] === t) p.pop(); // (a shift may drop the backing store)
    else if (p[0] === t) p.shift(); // verdicts come in order: the common case
    else {
      const i = p.indexOf(t);
      if (i < 0) return 0;
      p.splice(i, 1);
    }
    this.#recycle(t);
    return t.cost;
  }

  /** Gives `t`'s buffers back; a late write to the turn (none is expected) then goes nowhere. */
  #recycle(t: PendingTurn): void {
    if (t.shared) this.#handOver(t);
    if (t === this.#lastOnline) this.#lastOnline = null;
    this.host.recycle(t);
    t.headBuf = NO_BYTES;
    t.headLen = 0;
    t.onlineBuf = t.targetBuf = null;
    // reused for a later turn of this flow, unless it is still the open one (late bytes of
    // its request may still come and must go nowhere); its summaries (nobody keeps them
    // after the verdict) too
    if (t !== this.open) this.#keep(t);
  }

  /** `t` (recycled) to the host for a later turn, with its summaries. */
  #keep(t: PendingTurn): void {
    if (t.online) t.spareOnline = t.online;
    if (t.target !== null) t.spareTarget = t.target;
    t.online = t.target = null;
    this.host.keepTurn(t);
  }

  /** Takes every pending turn out (the flow is forgotten); returns their cost. */
  removeAll(): number {
    let cost = 0;
    const p = this.pending;
    for (let i = 0; i < p.length; i++) {
      cost += p[i].cost;
      this.#recycle(p[i]);
    }
    // (popped, not cut to length 0: that drops the backing store, which the flow object's
    // next use, pooled, would allocate again)
    while (p.length > 0) p.pop();
    return cost;
  }

  /** Gives the accumulator back (the flow is forgotten: {@link removeAll} first). */
  dispose(): void {
    if (this.#acc !== null) this.host.release(this.#acc);
    this.#acc = null;
    // the open turn, decided and recycled already (removeAll), was kept from reuse while it
    // could still get bytes of its request: nothing comes any more
    const open = this.open;
    this.open = null;
    if (open !== null && open.headBuf === NO_BYTES) this.#keep(open);
    this.#srvHeld.length = 0;
    this.#cliHeld.length = 0;
    this.#srvHeldBytes = 0;
    this.#lastOnline = null;
  }
}
