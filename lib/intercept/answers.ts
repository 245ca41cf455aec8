/**
 * Answer summaries for one tunnel peer (issue 15, intercept side), pure: the flows of the
 * peer's routes (answer_flow.ts), a pool of accumulators with a cap, and the ANSWER frames
 * handed to the peer's output. Created when the peer's COMPARE message arrives; the server
 * feeds it every reply routed to the peer (`reply`), ends capture cycles (`settle`), runs the
 * quiet period (`tick`) and the idle expiry (`sweep`), and tells it about deleted routes.
 *
 * Memory is bounded: an accumulator (N first bytes and a parser's small buffers) exists only
 * while an answer is open, and at most `maxLive` at once per peer; an answer that would need
 * one more is skipped and counted (`skipped`), its bytes still advance the sequence tracking.
 * A flow without an open answer is a few numbers; flows idle for `idleMs` are dropped, and a
 * flow goes with its route (CLIENT_DEL) or its peer.
 */
import { AnswerAccumulator, type AnswerSummary, type DigestMode } from "../compare/answer.ts";
import type { AnswerEndpoint } from "../compare/target_answer.ts";
import {
  ANSWER_HEADER_V6,
  type AnswerEnd,
  answerFrameLength,
  type TunnelAnswer,
  writeAnswerFrame,
} from "../tunnel/answer_frame.ts";
import type { ReplyInfo } from "../tunnel/reply_packet.ts";
import { AnswerFlow, type FlowHost, type ReplySegment } from "./answer_flow.ts";
import { FlowIndex } from "./flow_index.ts";
import { FIN, RST, SYN } from "../wire/tcp.ts";

/** An answer with no new reply bytes for this long is sent as it is (ms). */
export const ANSWER_QUIET_MS = 300;
/** A flow with no reply for this long is forgotten (ms). */
export const ANSWER_FLOW_IDLE_MS = 60_000;
/** Most live accumulators per peer, whatever N. */
export const MAX_LIVE_ANSWERS = 8192;
/** Forgotten flows kept for reuse per peer (a short connection then allocates no flow). */
export const FLOW_POOL = 1024;
/** Memory budget of one peer's live accumulators (bytes), which lowers the cap for big N. */
export const ANSWER_MEMORY_PER_PEER = 32 << 20;

/** Live accumulators allowed per peer for `bytes` first bytes (at least 16). */
export function maxLiveFor(bytes: number): number {
  return Math.max(
    16,
    Math.min(MAX_LIVE_ANSWERS, Math.floor(ANSWER_MEMORY_PER_PEER / (bytes + 1024))),
  );
}

/** Server-wide answer counters (monotonic), shared by every tracker. */
export interface AnswerCounters {
  /** ANSWER frames queued to peers. */
  sent: number;
  /** Answers not summarised: the peer's live accumulators were at the cap. */
  skipped: number;
  /** ANSWER frames dropped because the peer's output queue was full. */
  dropped: number;
  /** Tunnel bytes spent on ANSWER frames (headers included). */
  bytes: number;
  /** Retransmitted reply bytes that were not counted again. */
  duplicateBytes: number;
}

/** New zeroed counters. */
export function newAnswerCounters(): AnswerCounters {
  return { sent: 0, skipped: 0, dropped: 0, bytes: 0, duplicateBytes: 0 };
}

/** Settings of a tracker. */
export interface AnswerTrackerOptions {
  /** First bytes per answer (the peer's COMPARE message). */
  bytes: number;
  /** Digest mode (the peer's COMPARE message). */
  mode: DigestMode;
  /** Live accumulators at most (default {@link maxLiveFor}). */
  maxLive?: number;
  /** Idle flows are forgotten after this (default {@link ANSWER_FLOW_IDLE_MS}). */
  idleMs?: number;
}

/**
 * Where a tracker's ANSWER frames go: written in place into the peer's output (the tunnel
 * batcher implements it: no copy per answer). `reserveFrame(len)` returns the index in
 * `frameBuffer` to write one whole frame of `len` bytes at, or -1 when the output is full;
 * `commitFrame(len)` then queues it (false: dropped after all).
 */
export interface AnswerOutput {
  reserveFrame(len: number): number;
  readonly frameBuffer: Uint8Array;
  commitFrame(len: number): boolean;
}

/**
 * An {@link AnswerOutput} over a callback that takes each whole frame (a view of a reused
 * buffer, valid only during the call; false when its queue is full): tests, other sinks.
 */
export class CallbackAnswerOutput implements AnswerOutput {
  readonly frameBuffer: Uint8Array;
  constructor(bytes: number, readonly send: (frame: Uint8Array) => boolean) {
    this.frameBuffer = new Uint8Array(4 + ANSWER_HEADER_V6 + bytes);
  }

  reserveFrame(len: number): number {
    return len <= this.frameBuffer.length ? 0 : -1;
  }

  commitFrame(len: number): boolean {
    return this.send(this.frameBuffer.subarray(0, len));
  }
}

/** The answer state of one peer. */
export class AnswerTracker implements FlowHost {
  readonly bytes: number;
  readonly mode: DigestMode;
  readonly maxLive: number;
  readonly idleMs: number;
  /**
   * Flows by their route's slot in the route table (lib/tunnel/routing.ts; the dispatcher gives
   * each reply's): no second hash table beside the route table's, whose lookups and inserts
   * missed the caches once per reply end to end. A slot holds a flow of this peer's live route
   * only: the dispatcher reports every slot that goes or moves (`routeReleased`,
   * `routesRenumbered`), and its flow then moves to {@link #flows}.
   */
  #bySlot: (AnswerFlow | undefined)[] = [];
  /** Flows in {@link #bySlot}. */
  #filed = 0;
  /**
   * Flows by route key (flow_index.ts): those whose route went without CLIENT_DEL (kept under
   * their key, as they were before flows were filed by slot, until their route comes back or
   * they idle out), and every flow of a caller that gives no slots (tests, tools).
   */
  #flows = new FlowIndex<AnswerFlow>();
  /** Forgotten flows, reused for new connections (at most {@link FLOW_POOL}). */
  #spareFlows: AnswerFlow[] = [];
  #free: AnswerAccumulator[] = [];
  #made = 0;
  /** Flows with an open answer (unordered: a flow knows its index, removal swaps the last in). */
  #open: AnswerFlow[] = [];
  /** Flows that got bytes in this cycle: the first `#touchedN` slots (kept, not cleared). */
  #touched: (AnswerFlow | null)[] = [];
  #touchedN = 0;
  #seg: ReplySegment = {
    seq: 0,
    ack: 0,
    flags: 0,
    bytes: new Uint8Array(0),
    from: 0,
    to: 0,
    payloadLen: 0,
  };

  /** Where the frames go. */
  readonly output: AnswerOutput;

  /**
   * `output` takes the frames: the peer's batcher (written in place), or a callback that
   * queues one whole frame (a view of a reused buffer, valid only during the call; false when
   * its queue is full).
   */
  constructor(
    opts: AnswerTrackerOptions,
    readonly counters: AnswerCounters,
    output: AnswerOutput | ((frame: Uint8Array) => boolean),
  ) {
    this.bytes = opts.bytes;
    this.mode = opts.mode;
    this.maxLive = opts.maxLive ?? maxLiveFor(opts.bytes);
    this.idleMs = opts.idleMs ?? ANSWER_FLOW_IDLE_MS;
    this.output = typeof output === "function"
      ? new CallbackAnswerOutput(opts.bytes, output)
      : output;
  }

  /** Accumulators in use (open answers being summarised). */
  get live(): number {
    return this.#made - this.#free.length;
  }

  /** Open answers (summarised or skipped). */
  get openAnswers(): number {
    return this.#open.length;
  }

  /** Flows known. */
  get flows(): number {
    return this.#filed + this.#flows.size;
  }

  /**
   * One reply routed to this peer (`info` from inspectReply on `pkt`); `slot`: its route's
   * slot (the dispatcher's; -1 or absent: flows by key only).
   */
  reply(pkt: Uint8Array, info: ReplyInfo, now: number, slot = -1): void {
    let flow = slot < 0 ? this.#flows.get(info.key) : this.#bySlot[slot];
    if (flow === undefined) {
      // its route came back (or this is its first reply)
      if (slot >= 0 && this.#flows.size > 0) {
        flow = this.#flows.get(info.key);
        if (flow !== undefined) {
          this.#flows.remove(flow);
          this.#file(flow, slot);
        }
      }
      if (flow === undefined) {
        // a flow starts with its SYN-ACK or its first payload, not with a stray ACK/FIN/RST
        if (!(info.flags & SYN) && (info.payloadLen === 0 || info.flags & (FIN | RST))) return;
        flow = this.#newFlow(pkt, info);
        if (slot < 0) this.#flows.set(info.key, flow);
        else this.#file(flow, slot);
      }
    }
    const s = this.#seg;
    s.seq = info.seq;
    s.ack = info.ack;
    s.flags = info.flags;
    s.bytes = pkt;
    s.from = info.l4 + info.tcpLen;
    s.to = s.from + info.capturedPayload;
    s.payloadLen = info.payloadLen;
    const before = flow.duplicateBytes;
    if (flow.segment(this, s, now) && !flow.touched) {
      flow.touched = true;
      this.#touched[this.#touchedN++] = flow;
    }
    this.counters.duplicateBytes += flow.duplicateBytes - before;
    s.bytes = EMPTY; // keep no reference to the capture buffer
  }

  /**
   * End of a capture cycle: answers that got bytes in it and end at a message boundary by
   * their own framing are sent now (pipelined responses read in the same cycle stay one).
   */
  settle(): void {
    const t = this.#touched;
    const n = this.#touchedN;
    this.#touchedN = 0;
    for (let i = 0; i < n; i++) {
      const f = t[i]!;
      t[i] = null; // (the array keeps its slots: no new backing store per cycle)
      f.touched = false;
      if (f.atMessageEnd) f.cut(this, "framing");
    }
  }

  /** Sends the answers quiet for `quietMs` or more. */
  tick(now: number, quietMs = ANSWER_QUIET_MS): void {
    // backwards: a cut moves the last open flow (already looked at) into the cut one's slot
    const open = this.#open;
    for (let i = open.length - 1; i >= 0; i--) {
      const f = open[i];
      if (now - f.lastMs >= quietMs) f.cut(this, "quiet");
    }
  }

  /** Forgets flows idle for `idleMs` (an open answer is sent first). */
  sweep(now: number): void {
    const flows = this.#flows;
    for (let slot = 0; slot < flows.slots; slot++) {
      const f = flows.at(slot);
      if (f === undefined || now - f.seenMs < this.idleMs) continue;
      f.cut(this, "quiet");
      flows.remove(f);
      this.#forget(f);
    }
    const bySlot = this.#bySlot;
    for (let slot = 0; slot < bySlot.length; slot++) {
      const f = bySlot[slot];
      if (f === undefined || now - f.seenMs < this.idleMs) continue;
      f.cut(this, "quiet");
      this.#unfile(f);
      this.#forget(f);
    }
  }

  /**
   * The route of `key` is being deleted (CLIENT_DEL; `slot`: its slot, -1 or absent: by key):
   * its open answer is sent, its flow goes.
   */
  routeDeleted(key: string, slot = -1): void {
    let f = slot < 0 ? undefined : this.#bySlot[slot];
    if (f !== undefined) this.#unfile(f);
    else {
      f = this.#flows.get(key);
      if (f === undefined) return;
      this.#flows.remove(f);
    }
    f.cut(this, "route");
    this.#forget(f);
  }

  /**
   * This peer's route in `slot` went without CLIENT_DEL (expiry, eviction, quota) or moved to
   * another connection: its flow is kept by key, as if filed by key all along.
   */
  routeReleased(slot: number): void {
    const f = this.#bySlot[slot];
    if (f === undefined) return;
    this.#unfile(f);
    this.#flows.set(f.key, f);
  }

  /** The route table renumbered its slots (`renum[old]`: the new slot, -1: none). */
  routesRenumbered(renum: Int32Array): void {
    const old = this.#bySlot;
    if (this.#filed === 0) {
      old.length = 0;
      return;
    }
    this.#bySlot = [];
    this.#filed = 0;
    for (let slot = 0; slot < old.length; slot++) {
      const f = old[slot];
      if (f === undefined) continue;
      f.routeSlot = -1;
      const to = slot < renum.length ? renum[slot] : -1;
      if (to >= 0) this.#file(f, to);
      else this.#flows.set(f.key, f); // (not reported as released: kept by key)
    }
  }

  /** Files `f` (in neither place) under route slot `slot`. */
  #file(f: AnswerFlow, slot: number): void {
    this.#bySlot[slot] = f;
    f.routeSlot = slot;
    this.#filed++;
  }

  /** Takes `f` out of {@link #bySlot}. */
  #unfile(f: AnswerFlow): void {
    this.#bySlot[f.routeSlot] = undefined;
    f.routeSlot = -1;
    this.#filed--;
  }

  /** A flow for the reply's tuple: a forgotten one reused, or a new one. */
  #newFlow(pkt: Uint8Array, info: ReplyInfo): AnswerFlow {
    let f = this.#spareFlows.pop();
    if (f === undefined) f = new AnswerFlow(pkt, info.family === 4, info.l4);
    else f.reuse(pkt, info.family === 4, info.l4);
    f.key = info.key;
    return f;
  }

  /**
   * A flow no longer in the map (its answer cut): kept for reuse while the pool has room, but
   * not while this cycle's list of touched flows still holds it.
   */
  #forget(f: AnswerFlow): void {
    if (!f.touched && this.#spareFlows.length < FLOW_POOL) this.#spareFlows.push(f);
  }

  /** The peer is gone: everything is dropped unsent. */
  clear(): void {
    const flows = this.#flows;
    for (let slot = 0; slot < flows.slots; slot++) flows.at(slot)?.discard(this);
    flows.clear();
    for (const f of this.#bySlot) {
      if (f === undefined) continue;
      f.discard(this);
      f.routeSlot = -1;
    }
    this.#bySlot = [];
    this.#filed = 0;
    this.#touched.length = 0;
    this.#touchedN = 0;
  }

  // FlowHost

  acquire(): AnswerAccumulator | undefined {
    let acc = this.#free.pop();
    if (acc === undefined) {
      if (this.#made >= this.maxLive) {
        this.counters.skipped++;
        return undefined;
      }
      acc = new AnswerAccumulator({ firstBytes: this.bytes, mode: this.mode });
      this.#made++;
    }
    acc.reset();
    return acc;
  }

  release(acc: AnswerAccumulator): void {
    this.#free.push(acc);
  }

  opened(flow: AnswerFlow, open: boolean): void {
    const list = this.#open;
    if (open) {
      if (flow.openIndex >= 0) return;
      flow.openIndex = list.length;
      list.push(flow);
      return;
    }
    const i = flow.openIndex;
    if (i < 0) return;
    const last = list.pop()!;
    if (last !== flow) {
      list[i] = last;
      last.openIndex = i;
    }
    flow.openIndex = -1;
  }

  emit(flow: AnswerFlow, summary: AnswerSummary, end: AnswerEnd, digest: Uint8Array): void {
    const a = this.#answer;
    a.client = flow.client;
    a.target = flow.target;
    a.ack = flow.ack;
    a.seq = flow.startSeq;
    a.part = flow.part;
    a.summary = summary;
    a.end = end;
    const out = this.output;
    const n = answerFrameLength(a);
    const at = out.reserveFrame(n);
    if (at >= 0) writeAnswerFrame(a, out.frameBuffer, at, digest);
    a.summary = NO_SUMMARY; // keep no reference to the accumulator's buffer
    if (at >= 0 && out.commitFrame(n)) {
      this.counters.sent++;
      this.counters.bytes += n;
    } else this.counters.dropped++;
  }

  /** The summary of the answer being encoded (reused: filled by the accumulator). */
  readonly summary: AnswerSummary = { ...NO_SUMMARY, firstMs: undefined, lastMs: undefined };

  /** The answer being encoded (reused). */
  #answer: TunnelAnswer = {
    client: NO_END,
    target: NO_END,
    ack: 0,
    seq: 0,
    part: 0,
    summary: NO_SUMMARY,
    end: "ack",
  };
}

const EMPTY = new Uint8Array(0);
const NO_END: AnswerEndpoint = { addr: new Uint8Array(4), port: 0 };
const NO_SUMMARY: AnswerSummary = {
  firstBytes: EMPTY,
  totalLength: 0,
  gapBytes: 0,
  kind: "bytes",
  digest: null,
  bodyLength: 0,
  timedOut: false,
  complete: true,
  truncated: false,
};
