/**
 * `--compare` (issue 15): pairs every replayed turn's online answer (captured server→client
 * packets, see compare_flow.ts) with the target's answer (a {@link TargetAnswer} from the
 * intercept tunnel, timed by the reply headers tcpcopy receives), compares them with
 * `compareTurn`, and reports: NDJSON records, the stats line's `compare` object, Prometheus
 * histograms and the exit summary.
 *
 * Fed by the replicator: client segments after the engine took them, server segments instead
 * of the engine, the engine's output and reply headers, session open/close events, and the
 * tunnel's answers; `tick` at least every {@link TICK_MS}. Pure: times are arguments.
 *
 * Bounded: one accumulator per followed connection and a few hundred bytes plus the first
 * answer bytes per pending turn, all within a byte budget (a share of `-m`); over it, turns
 * are skipped and counted (`compare.skipped`), replication is never affected.
 *
 * Every replayed session of a connection is compared (`-n` copies, the transfers of one online
 * port to several targets): one {@link FlowCompare} per session, each with its own turns, online
 * answers, target answers and verdicts, and its own share of the budget; the connection's
 * captured segments go to each (a chain from the first: one call for one session). A session
 * of a protocol module is followed from the point its module passed it to the engine (engine
 * event `pass`): from there the replay is the captured stream at a constant sequence offset,
 * by which the target side's client sequence numbers are translated (32-bit wrap included).
 * Its login before that (other bytes on the two sides) counts nowhere: no turn, no skip, and
 * the target's answers to it are not `unpaired`. A session whose module never passes is not
 * compared (and its answers are not counted either).
 *
 * @module
 */

import {
  AnswerAccumulator,
  type AnswerSummary,
  completeHeld,
  type DigestMode,
  emptySummary,
} from "../compare/answer.ts";
import { type CompareOptions, compareTurn, identicalAnswers } from "../compare/compare.ts";
import { requestKey } from "../compare/head.ts";
import { sameBytes } from "../compare/same_bytes.ts";
import { prefixView } from "../compare/prefix_view.ts";
import { type CompareRecord, compareRecord } from "../compare/record.ts";
import { type CompareResult, matched } from "../compare/result.ts";
import { type CompareSnapshot, CompareStats } from "../compare/stats.ts";
import { LatencyHistogram } from "../compare/histogram.ts";
import type { TargetAnswer } from "../compare/target_answer.ts";
import { type CompareProto, digestModeFor } from "../compare/sniff.ts";
import type { TopEntry } from "../compare/topk.ts";
import { TupleMap } from "../engine/tuple_map.ts";
import { seqLe, seqLt } from "../wire/seq.ts";
import { BufferPool } from "./buffer_pool.ts";
import { VerdictMemo } from "./verdict_memo.ts";
import { addrText, internAddr } from "../engine/endpoint.ts";
import type { Endpoint } from "../engine/segment.ts";
import {
  FlowCompare,
  type FlowHost,
  HEAD_KEEP,
  MAX_PENDING_TURNS,
  ownInto,
  type PendingTurn,
  type SegmentView,
  type TargetCounts,
  type TargetTally,
  turnHead,
} from "./compare_flow.ts";

/** How often `tick` should run (ms). */
export const TICK_MS = 100;
/** An online answer with bytes is complete after this long without more (no next turn). */
export const ONLINE_QUIET_MS = 1000;
/** After the target's reply data stopped, how long its answer summary may take to arrive. */
export const ANSWER_WAIT_MS = 2000;
/** The target answered nothing this long after the request went out: `timeout`. */
export const TURN_TIMEOUT_MS = 10_000;
export { MAX_PENDING_TURNS, MAX_PENDING_TURNS_LIMIT } from "./compare_flow.ts";
/** A connection with nothing pending and no packet for this long is forgotten. */
export const FLOW_IDLE_MS = 60_000;
/** Budget cost of a followed connection (object, tuple-map entries) besides its accumulator. */
export const FLOW_COMPARE_COST = 640;
/** Budget cost of an accumulator besides its first-bytes buffer (parsers, digest). */
export const ACC_COST = 1024;
/** Turns not final yet that `movedOn` steps over before it leaves the rest to the tick. */
const EARLY_SCAN = 8;
/**
 * Free accumulators kept for reuse: as many as short connections are followed between two
 * ticks (1,000 connections/s: ~100 flows forgotten per tick; 64 made a third of them allocate
 * a new accumulator, a 1 KiB buffer with its own backing store).
 */
const POOL_MAX = 256;
/** Flow objects of forgotten connections kept for reuse (as many as accumulators). */
const SPARE_FLOWS = POOL_MAX;
/**
 * Slots the flow and session tables keep at least (~5 KiB each): the flows of short connections
 * are forgotten ~100 at a time at each tick, and smaller tables shrank and grew again each time.
 */
const FLOW_SLOTS = 512;
/**
 * Free first-bytes and head buffers kept for reuse (each pool): as many as a keep-alive load
 * has pending between two ticks (20,000 requests/s: 2,000), within a byte bound.
 */
const BUFFER_POOL_MAX = 4096;
const BUFFER_POOL_BYTES = 16 << 20;

/**
 * Turn objects kept for reuse at most: as many as buffers (the turns of one {@link TICK_MS} at
 * 20k requests/s; each about 0.5 KiB with its two summaries).
 */
const SPARE_TURNS = BUFFER_POOL_MAX;

/** Free buffers of `size` bytes kept. */
function poolMax(size: number): number {
  return Math.min(BUFFER_POOL_MAX, Math.floor(BUFFER_POOL_BYTES / size));
}

/**
 * Targets with their own counters in `compare.targets` (and Prometheus series) at most (the `-x`
 * targets: a few). Sessions of targets beyond it are counted in the totals only.
 */
export const MAX_TARGETS = 64;

/** The comparison settings of a run (from the command line). */
export interface ComparerOptions {
  /** `--compare-bytes`. */
  firstBytes: number;
  /** `--compare-proto`. */
  proto: CompareProto;
  /** `--compare-ignore-header` (besides the defaults). */
  ignoreHeaders: readonly string[];
  /** `--compare-all`: a record for every turn, not only mismatches. */
  all: boolean;
  /** Bytes of comparison state allowed (a share of `-m`). */
  budgetBytes: number;
  /** `--compare-max-pending`: most pending turns per connection (default {@link MAX_PENDING_TURNS}). */
  maxPendingTurns?: number;
  /** Where records go (one object per call), or null. */
  emit: ((record: CompareRecord) => void) | null;
  /** The tunnel's heartbeat round trip now (ms), or null when not measured. */
  tunnelRttMs?: () => number | null;
  /**
   * False: every verdict at a tick, none early (see `#final`; tests hold the early verdicts to
   * the tick's). Default true.
   */
  earlyVerdicts?: boolean;
  /**
   * False: every verdict from its comparator, none from the last one's (see verdict_memo.ts;
   * tests hold the two to each other). Default true.
   */
  verdictMemo?: boolean;
  /**
   * False: every online answer keeps its own first bytes, none shares the previous turn's
   * equal ones ({@link FlowHost.shareOnline}; tests hold the two ways to each other). Default true.
   */
  shareOnline?: boolean;
  /** Deadlines, for tests. */
  turnTimeoutMs?: number;
  onlineQuietMs?: number;
  answerWaitMs?: number;
}

/** The stats line's `compare` object: {@link CompareSnapshot} plus the pairing counters. */
export interface CompareLine extends CompareSnapshot {
  /** Target answers that matched no pending turn (a greeting, a decided turn, unknown tuple). */
  unpaired: number;
  /** Connections followed now, and turns waiting for a verdict. */
  flows: number;
  pending: number;
  /** Bytes of comparison state now, and the budget. */
  state_bytes: number;
  budget_bytes: number;
  /** The tunnel's heartbeat round trip (ms), beside the target latency; null: not measured. */
  tunnel_rtt_ms: number | null;
  /** Verdicts per target ("ip:port"; the totals above are over all of them). */
  targets: Record<string, TargetCounts>;
}

/** See the module comment. */
export class Comparer implements FlowHost {
  readonly stats = new CompareStats();
  /** Target answers for no pending turn. */
  unpaired = 0;
  /** The first flow of each original connection (the others chained: FlowCompare.nextFlow). */
  readonly #flows = new TupleMap<FlowCompare>(FLOW_SLOTS);
  /** Per-target counters, by target (a few: the `-x` targets; at most {@link MAX_TARGETS}). */
  readonly #targets: { target: Endpoint; text: string; counts: TargetTally }[] = [];
  readonly #sessions = new TupleMap<FlowCompare>(FLOW_SLOTS);
  /**
   * Module sessions (any copy or transfer) not followed (yet), by (rewritten client, target):
   * until their module passes, their target answers are the login's, counted nowhere.
   */
  readonly #modules = new TupleMap<true>();
  readonly #live = new Set<FlowCompare>();
  readonly #pool: AnswerAccumulator[] = [];
  /** Flows forgotten, filled again for later connections (FlowCompare.reuse). */
  readonly #spareFlows: FlowCompare[] = [];
  /** Turn objects (with their summaries) of given verdicts, filled again by later turns. */
  readonly #spareTurns: PendingTurn[] = [];
  /** Request-head and first-bytes buffers (a turn takes them, gives them back). */
  readonly #heads = new BufferPool(HEAD_KEEP, poolMax(HEAD_KEEP));
  readonly #firsts: BufferPool;
  readonly #mode: DigestMode;
  readonly #compare: CompareOptions;
  #used = 0;
  /** For the online summaries held unparsed until their verdict (completeHeld). */
  #scratch: AnswerAccumulator | null = null;
  #pendingTurns = 0;
  #nextSession = 1;
  readonly #early: boolean;
  /** The last comparator verdict and its inputs (null: `verdictMemo: false`). */
  readonly #memo: VerdictMemo | null;
  /** See {@link FlowHost.maxPendingTurns}. */
  readonly maxPendingTurns: number;
  /** See {@link FlowHost.shareOnline}. */
  readonly shareOnline: boolean;

  constructor(readonly opts: ComparerOptions) {
    this.maxPendingTurns = opts.maxPendingTurns ?? MAX_PENDING_TURNS;
    this.#mode = digestModeFor(opts.proto);
    this.#firsts = new BufferPool(opts.firstBytes, poolMax(opts.firstBytes));
    this.#compare = { proto: opts.proto, ignoreHeaders: opts.ignoreHeaders };
    this.#early = opts.earlyVerdicts ?? true;
    this.shareOnline = opts.shareOnline ?? true;
    this.#memo = (opts.verdictMemo ?? true) ? new VerdictMemo(opts.firstBytes) : null;
  }

  /** The digest mode and first-bytes count to ask intercept for (the tunnel option). */
  get wanted(): { bytes: number; mode: DigestMode } {
    return { bytes: this.opts.firstBytes, mode: this.#mode };
  }

  // FlowHost

  /** @internal */
  reserve(bytes: number): boolean {
    if (this.#used + bytes > this.opts.budgetBytes) return false;
    this.#used += bytes;
    return true;
  }

  /** @internal */
  free(bytes: number): void {
    this.#used -= bytes;
  }

  /** @internal */
  acquire(): AnswerAccumulator | null {
    const cost = ACC_COST + this.opts.firstBytes;
    if (!this.reserve(cost)) return null;
    return this.#pool.pop() ??
      new AnswerAccumulator({ firstBytes: this.opts.firstBytes, mode: this.#mode, lazy: true });
  }

  /** @internal */
  release(acc: AnswerAccumulator): void {
    this.free(ACC_COST + this.opts.firstBytes);
    if (this.#pool.length < POOL_MAX) this.#pool.push(acc);
  }

  /** @internal */
  skipped(): void {
    this.stats.skip();
  }

  /** @internal */
  headBuffer(): Uint8Array {
    return this.#heads.take();
  }

  /** @internal */
  firstBuffer(): Uint8Array {
    return this.#firsts.take();
  }

  /** @internal */
  spareTurn(): PendingTurn | undefined {
    return this.#spareTurns.pop();
  }

  /** @internal */
  keepTurn(t: PendingTurn): void {
    if (this.#spareTurns.length < SPARE_TURNS) this.#spareTurns.push(t);
  }

  /** @internal */
  completeHeld(s: AnswerSummary, target: AnswerSummary | null): void {
    this.#scratch ??= new AnswerAccumulator({ firstBytes: this.opts.firstBytes, mode: this.#mode });
    completeHeld(s, this.#scratch, target);
  }

  /** @internal */
  recycle(t: PendingTurn): void {
    this.#heads.give(t.headBuf);
    this.#firsts.give(t.onlineBuf);
    this.#firsts.give(t.targetBuf);
  }

  // -----------------------------------------------------------------------------------------
  // Inputs

  /**
   * A session opened: every session is compared (each `-n` copy, each transfer's), from its
   * start without a module, from {@link onSessionPass} with one. `original` is the captured
   * connection (client, server), `copy` the session's copy index.
   */
  onSessionOpen(
    client: Endpoint,
    target: Endpoint,
    original: { client: Endpoint; server: Endpoint },
    copy: number,
    module: boolean,
    now: number,
  ): void {
    if (module) {
      this.#modules.set(client.addr, client.port, internAddr(target.addr), target.port, true);
      return;
    }
    this.#follow(client, target, original, copy, 0, -1, now);
  }

  /**
   * A module session was handed to the engine: from captured client byte `seq` on, the replay
   * is the captured stream at `seq + offset` (mod 2^32). The session is compared from there.
   */
  onSessionPass(
    client: Endpoint,
    target: Endpoint,
    original: { client: Endpoint; server: Endpoint },
    copy: number,
    seq: number,
    offset: number,
    now: number,
  ): void {
    if (!this.#modules.delete(client.addr, client.port, target.addr, target.port)) return;
    this.#follow(client, target, original, copy, offset >>> 0, seq >>> 0, now);
  }

  /**
   * Follows the session (client, target) of `original`, copy `copy`; see
   * {@link FlowCompare.passSeq}. A flow of the connection whose session of the same copy and
   * target ended goes on with the new one (its turns continue); any other session gets a flow
   * of its own, chained to the connection's first.
   */
  #follow(
    client: Endpoint,
    target: Endpoint,
    original: { client: Endpoint; server: Endpoint },
    copy: number,
    offset: number,
    passSeq: number,
    now: number,
  ): void {
    const o = original;
    const head = this.#flows.get(o.client.addr, o.client.port, o.server.addr, o.server.port);
    let f = head;
    while (f !== undefined && !(f.session === null && f.copy === copy && sameEnd(f, target))) {
      f = f.nextFlow;
    }
    if (f === undefined) {
      if (!this.reserve(FLOW_COMPARE_COST)) {
        this.stats.skip();
        return;
      }
      const spare = this.#spareFlows.pop();
      if (spare !== undefined) spare.reuse(o.client, o.server, now);
      f = spare ?? new FlowCompare(o.client, o.server, this, now);
      if (head === undefined) {
        this.#flows.set(f.client.addr, f.client.port, f.server.addr, f.server.port, f);
      } else {
        // another session of the connection (a copy, another transfer): after the first
        f.nextFlow = head.nextFlow;
        head.nextFlow = f;
      }
      f.copy = copy;
      f.counts = this.#countsFor(target);
    }
    const ends = f.sessionEnds, c = ends.client, t = ends.target;
    ownInto(c, client);
    ownInto(t, target);
    f.session = ends;
    f.sessionId = this.#nextSession++;
    f.sessionEndedAt = Number.NaN;
    f.sentMax = undefined;
    f.replyMax = undefined;
    f.replyAck = undefined;
    f.offset = offset;
    f.passSeq = passSeq;
    this.#sessions.set(c.addr, c.port, t.addr, t.port, f);
    this.#live.add(f);
  }

  /** The counters of `target` (a new entry for a new target, null beyond {@link MAX_TARGETS}). */
  #countsFor(target: Endpoint): TargetTally | null {
    const ts = this.#targets;
    for (let i = 0; i < ts.length; i++) {
      const e = ts[i].target;
      if (e.port === target.port && sameAddr(e.addr, target.addr)) return ts[i].counts;
    }
    if (ts.length >= MAX_TARGETS) return null;
    const own: Endpoint = { addr: NO_BYTES, family: 4, port: 0 };
    ownInto(own, target);
    // (a latency histogram each: 5.4 KB, at most MAX_TARGETS of them)
    const counts = { compared: 0, matched: 0, mismatched: 0, latency: new LatencyHistogram() };
    ts.push({ target: own, text: endText(own), counts });
    return counts;
  }

  /** A session ended: its turns without an answer become `missing` after a grace period. */
  onSessionClose(client: Endpoint, target: Endpoint, now: number): void {
    const f = this.#sessions.get(client.addr, client.port, target.addr, target.port);
    if (f === undefined) {
      this.#modules.delete(client.addr, client.port, target.addr, target.port);
      return;
    }
    this.#sessions.delete(client.addr, client.port, target.addr, target.port);
    f.session = null;
    f.sessionEndedAt = now;
  }

  /** A captured client→server segment (original tuple), after the engine took it. */
  onClient(
    src: Endpoint,
    dst: Endpoint,
    s: SegmentView,
    atMs: number,
    now: number,
  ): void {
    // (each session of the connection: one call for the common one)
    let f = this.#flows.get(src.addr, src.port, dst.addr, dst.port);
    while (f !== undefined) {
      f.onClient(s, atMs, now);
      f = f.nextFlow;
    }
  }

  /** A captured server→client segment (src = the server): online answer bytes. */
  onServer(src: Endpoint, dst: Endpoint, s: SegmentView, atMs: number, now: number): void {
    let f = this.#flows.get(dst.addr, dst.port, src.addr, src.port);
    while (f !== undefined) {
      f.onServer(s, atMs, now);
      f = f.nextFlow;
    }
  }

  /** Engine output to the target (src = the rewritten client). */
  onSent(src: Endpoint, dst: Endpoint, seq: number, len: number, now: number): void {
    if (len === 0) return;
    const f = this.#sessions.get(src.addr, src.port, dst.addr, dst.port);
    if (f !== undefined) f.onSent((seq + len - f.offset) >>> 0, now);
  }

  /** A reply header from the target (dst = the rewritten client). */
  onReply(
    src: Endpoint,
    dst: Endpoint,
    seq: number,
    ack: number,
    flags: number,
    len: number,
    now: number,
  ): void {
    const f = this.#sessions.get(dst.addr, dst.port, src.addr, src.port);
    if (f !== undefined) f.onReply(seq, (ack - f.offset) >>> 0, flags, len, now);
  }

  /**
   * A target answer as far as its header goes (the tunnel has not decoded its summary yet):
   * true when a pending turn waits for it (its summary follows through {@link onAnswer}),
   * false when none does: counted as unpaired here, as {@link onAnswer} would, and its
   * summary is never decoded (a lagging replay over `--compare-max-pending` skips most turns:
   * `ka20k` ~17,000 of 20,000, each answer's digest `bigint` and first-bytes view spared).
   */
  answerWanted(a: Pick<TargetAnswer, "client" | "target" | "ack">): boolean {
    const c = a.client, t = a.target;
    const f = this.#sessions.get(c.addr, c.port, t.addr, t.port);
    if (f !== undefined && f.turnFor((a.ack - f.offset) >>> 0) !== null) return true;
    this.#unpaired(f, a);
    return false;
  }

  /** A target answer summary from the tunnel. */
  onAnswer(a: TargetAnswer, now: number): void {
    const c = a.client, t = a.target;
    const f = this.#sessions.get(c.addr, c.port, t.addr, t.port);
    const turn = f?.turnFor((a.ack - f.offset) >>> 0) ?? null;
    if (f === undefined || turn === null) {
      this.#unpaired(f, a);
      return;
    }
    this.#merge(turn, a);
    turn.targetAt = now;
    if (this.#final(f, turn)) this.#decideEarly(f, turn, now);
  }

  /**
   * A target answer no pending turn waits for: `unpaired`, unless it answers a module's login
   * (a module session not followed yet, or an ACK up to the followed one's pass point).
   */
  #unpaired(f: FlowCompare | undefined, a: Pick<TargetAnswer, "client" | "target" | "ack">): void {
    if (f === undefined) {
      const c = a.client, t = a.target;
      if (this.#modules.get(c.addr, c.port, t.addr, t.port) !== undefined) return;
    } else if (f.passSeq >= 0 && seqLe((a.ack - f.offset) >>> 0, f.passSeq)) return;
    this.unpaired++;
  }

  /**
   * Whether turn `t` can get its verdict now, before its tick, with the verdict that tick would
   * give: both answers are in (the online one finished, the target's summary covers every
   * reply byte seen) and the target has acknowledged request bytes beyond the turn, so no reply
   * byte of this turn can come any more (bytes the target sends later carry that ACK or a higher
   * one, and the tunnel forwards reply headers in capture order: a late tail's headers come
   * before the higher ACK's and keep `replyBytes` above the summary's length until the tail's
   * summary is merged). The turn's state is then fresh in the caches, and few turns wait for
   * the tick (20k requests/s: a few per connection instead of ~2,000 in all).
   */
  #final(f: FlowCompare, t: PendingTurn): boolean {
    const target = t.target, ack = f.replyAck;
    return this.#early && t.online !== undefined && target !== null &&
      target.totalLength >= t.replyBytes &&
      ack !== undefined && seqLt(t.end, ack);
  }

  #decideEarly(f: FlowCompare, t: PendingTurn, now: number): void {
    if (t.index > f.earlyIndex) f.earlyIndex = t.index;
    this.#decide(f, t, now, false);
  }

  /** @internal */
  answered(f: FlowCompare, t: PendingTurn, now: number): void {
    if (this.#final(f, t)) this.#decideEarly(f, t, now);
  }

  /** @internal */
  movedOn(f: FlowCompare, now: number): void {
    const p = f.pending, ack = f.replyAck!;
    // the oldest turns first (those ending before the ACK); a few that are not final yet
    // (waiting for a summary) are stepped over, the rest is left to the tick
    for (let i = 0, waiting = 0; i < p.length && waiting < EARLY_SCAN;) {
      const t = p[i];
      if (!seqLt(t.end, ack)) return;
      if (this.#final(f, t)) this.#decideEarly(f, t, now);
      else {
        i++;
        waiting++;
      }
    }
  }

  /**
   * Adds an answer (or a later part of it) to the turn's target summary. The answer's bytes
   * may be views of the tunnel's read buffer: what is kept is copied into a pooled buffer.
   */
  #merge(turn: PendingTurn, a: TargetAnswer): void {
    const s = a.summary;
    const prev = turn.target;
    if (prev === null) {
      const n = Math.min(s.firstBytes.length, this.opts.firstBytes);
      let firstBytes: Uint8Array = NO_BYTES;
      if (n > 0 && this.reserve(n)) {
        const fb = s.firstBytes;
        const online = turn.online;
        if (
          online && online.firstBytes.length === n && sameBytes(fb, 0, n, online.firstBytes, 0, n)
        ) {
          // the online answer's first bytes (the common case, compared while these are
          // fresh): shared, not copied; the budget counts them as before
          firstBytes = online.firstBytes;
        } else {
          const buf = turn.targetBuf ??= this.firstBuffer();
          buf.set(n === fb.length ? fb : fb.subarray(0, n)); // (no view when all of it fits)
          firstBytes = prefixView(buf, n);
        }
      }
      turn.cost += firstBytes.length;
      const late = a.part > 0;
      // a spare summary of the turn object's earlier use is filled again (else a new one of
      // the one shape every summary has)
      const t = turn.spareTarget ?? emptySummary();
      turn.spareTarget = null;
      t.firstBytes = firstBytes;
      t.totalLength = s.totalLength;
      t.gapBytes = s.gapBytes;
      t.kind = s.kind;
      t.digest = late ? null : s.digest;
      t.bodyLength = late ? null : s.bodyLength;
      t.firstMs = t.lastMs = undefined;
      t.timedOut = s.timedOut;
      t.complete = !late && s.complete;
      t.truncated = s.truncated;
      turn.target = t;
      return;
    }
    // A second answer for one turn (a late tail, or pipelined answers cut apart): the lengths
    // add up, the digest of the whole is unknown; its first bytes continue the first N bytes
    // when those held all of the answer before it (contiguous, no gap).
    turn.target = {
      firstBytes: this.#continued(turn, prev, s.firstBytes),
      totalLength: prev.totalLength + s.totalLength,
      gapBytes: prev.gapBytes + s.gapBytes,
      kind: prev.kind,
      digest: null,
      bodyLength: null,
      firstMs: prev.firstMs,
      lastMs: prev.lastMs,
      timedOut: prev.timedOut || s.timedOut,
      complete: false,
      truncated: true,
    };
  }

  /** `prev`'s first bytes followed by `more`, up to N, when `prev` kept its whole answer. */
  #continued(turn: PendingTurn, prev: AnswerSummary, more: Uint8Array): Uint8Array {
    const have = prev.firstBytes;
    const room = this.opts.firstBytes - have.length;
    if (room <= 0 || have.length !== prev.totalLength || prev.gapBytes > 0) return have;
    const n = Math.min(room, more.length);
    if (n === 0 || !this.reserve(n)) return have;
    // `have` is the start of the turn's target buffer, or (no buffer yet) empty or the
    // online answer's first bytes (shared when equal): copied into a new one first
    let buf = turn.targetBuf;
    if (buf === null) {
      buf = turn.targetBuf = this.firstBuffer();
      buf.set(have);
    }
    buf.set(more.subarray(0, n), have.length);
    turn.cost += n;
    return prefixView(buf, have.length + n);
  }

  // -----------------------------------------------------------------------------------------
  // Verdicts

  /** Finishes quiet online answers and gives the verdicts that are due (every {@link TICK_MS}). */
  tick(now: number): void {
    this.#pendingTurns = 0;
    for (const f of this.#live) {
      this.#finishQuiet(f, now);
      this.#decideFlow(f, now, false);
      this.#pendingTurns += f.pending.length;
      if (this.#forgettable(f, now)) this.#forget(f);
    }
  }

  /** Everything pending gets its verdict now (shutdown, end of an offline replay). */
  closeAll(now: number): void {
    for (const f of this.#live) {
      const open = f.open;
      if (open !== null && open.online === undefined) f.finishOnline(open, now);
      this.#decideFlow(f, now, true);
      this.#forget(f);
    }
    this.#pendingTurns = 0;
  }

  /** Turns waiting for a verdict (as of the last tick). */
  get pending(): number {
    return this.#pendingTurns;
  }

  /** True when no turn waits for its verdict (the offline replay may end). */
  settled(): boolean {
    for (const f of this.#live) if (f.pending.length > 0) return false;
    return true;
  }

  #finishQuiet(f: FlowCompare, now: number): void {
    const t = f.open;
    if (t === null || t.online !== undefined) return;
    const quiet = this.opts.onlineQuietMs ?? ONLINE_QUIET_MS;
    const timeout = this.opts.turnTimeoutMs ?? TURN_TIMEOUT_MS;
    if (!Number.isNaN(f.lastAnswerAt)) {
      if (now - f.lastAnswerAt >= quiet) f.finishOnline(t, now);
    } else if (now - f.lastSeen >= timeout) f.finishOnline(t, now);
  }

  #decideFlow(f: FlowCompare, now: number, final: boolean): void {
    const p = f.pending;
    // The last turn the target answered: the turns before it will get no answer of their own
    // (answers come in order). Turns are only taken out at the loop's position, so "a later
    // turn was answered" holds until the loop reaches it (one pass, not one scan per turn).
    // A turn decided early since the last tick (#final) counts as such a turn: this tick
    // would have found it pending and answered.
    let lastIndex = f.earlyIndex;
    f.earlyIndex = 0;
    for (let k = p.length - 1; k >= 0; k--) {
      if (p[k].replyBytes > 0 || p[k].target !== null) {
        if (p[k].index > lastIndex) lastIndex = p[k].index;
        break;
      }
    }
    for (let i = 0; i < p.length;) {
      const t = p[i];
      const movedOn = f.session === null || t.index < lastIndex;
      if (this.#ready(t, movedOn, now, final)) this.#decide(f, t, now, final);
      else i++;
    }
  }

  /**
   * Whether turn `t` can get its verdict now; `movedOn`: the target answered a later turn, or
   * the session ended (this turn's answer will not come).
   */
  #ready(t: PendingTurn, movedOn: boolean, now: number, final: boolean): boolean {
    if (t.online === undefined) return false;
    if (final) return true;
    const wait = this.opts.answerWaitMs ?? ANSWER_WAIT_MS;
    if (t.target !== null) {
      if (t.target.totalLength >= t.replyBytes) return true;
      return now - Math.max(t.targetAt, t.replyLastMs) >= wait; // parts still missing
    }
    if (t.replyBytes > 0) return now - t.replyLastMs >= wait; // answered, no summary yet
    const base = Number.isNaN(t.sentMs) ? t.onlineAt : t.sentMs;
    if (now - base >= (this.opts.turnTimeoutMs ?? TURN_TIMEOUT_MS)) return true;
    return movedOn && now - t.onlineAt >= wait;
  }

  #decide(f: FlowCompare, t: PendingTurn, now: number, final: boolean): void {
    const online = t.online ?? null;
    const target = t.target;
    if (target === null && t.replyBytes > 0) {
      this.#drop(f, t, true); // the target answered but its summary never came: not compared
      return;
    }
    if (online === null && target === null) {
      this.#drop(f, t, false); // neither side answered (a request body, a lone ACK): nothing
      return;
    }
    if (online !== null && t.onlineHeld) {
      // (held unparsed until now: the target's values when it shares the same whole answer,
      // else the last compared online answer's when it was the same bytes, else parsed here)
      t.onlineHeld = false;
      const memo = this.#memo;
      if (
        memo === null ||
        (target !== null && online.firstBytes === target.firstBytes) ||
        !memo.completeHeld(online)
      ) this.completeHeld(online, target);
    }
    if (target !== null) {
      // (the turn's own summary, made by #merge: completed in place)
      if (target.totalLength < t.replyBytes) target.complete = false;
      this.#targetTimes(t, target);
    }
    const emit = this.opts.emit;
    if (
      online !== null && target !== null && (emit === null || !this.opts.all) &&
      identicalAnswers(online, target)
    ) {
      // the same answer on both sides (the common case): the match compareTurn would give,
      // counted without running a comparator (no record to write for a match)
      this.#count(f, matched(), online, target, "");
      this.free(f.remove(t));
      return;
    }
    const timeout = this.opts.turnTimeoutMs ?? TURN_TIMEOUT_MS;
    const base = Number.isNaN(t.sentMs) ? t.onlineAt : t.sentMs;
    const targetTimedOut = target === null &&
      (now - base >= timeout || (final && !Number.isNaN(t.sentMs) && f.session !== null));
    // the last comparator verdict when this turn brings the same two answers (keep-alive loads
    // repeat themselves: answers that differ only in a Date header, turn after turn)
    const memo = this.#memo;
    let verdict = online !== null && target !== null && memo !== null
      ? memo.verdictFor(t.proto, online, target)
      : null;
    if (verdict === null) {
      verdict = compareTurn(
        // (the request's protocol was sniffed when the turn opened: its head is not read)
        { request: null, requestProto: t.proto, online, target, targetTimedOut },
        this.#compare,
      );
      if (online !== null && target !== null && memo !== null) {
        memo.keep(t.proto, online, target, verdict);
      }
    }
    // the request key names mismatches only (top list): not built for matches
    this.#count(
      f,
      verdict.result,
      online,
      target,
      verdict.result.match ? "" : requestKey(turnHead(t)),
    );
    if (emit !== null && (this.opts.all || !verdict.result.match)) {
      const rtt = this.opts.tunnelRttMs?.() ?? null;
      emit(compareRecord({
        client: endText(f.client),
        session: f.sessionId,
        targetAddr: endText(f.sessionEnds.target),
        copy: f.copy,
        turn: t.index,
        proto: verdict.proto,
        request: turnHead(t),
        online,
        target,
        result: verdict.result,
        atMs: now,
        ...(rtt !== null ? { tunnelRttMs: rtt } : {}),
      }));
    }
    this.free(f.remove(t));
  }

  /**
   * Counts one verdict, in the totals (`stats`: latencies, top mismatches by `key`) and in the
   * counters of `f`'s target (`compare.targets`, the per-target series).
   */
  #count(
    f: FlowCompare,
    result: CompareResult,
    online: AnswerSummary | null,
    target: AnswerSummary | null,
    key: string,
  ): void {
    this.stats.add(result, online, target, key);
    const counts = f.counts;
    if (counts === null) return;
    counts.compared++;
    if (result.match) counts.matched++;
    else counts.mismatched++;
    if (target?.firstMs !== undefined) counts.latency.record(target.firstMs);
  }

  /** Sets the target latencies from the reply headers (undefined when unknown). */
  #targetTimes(t: PendingTurn, target: AnswerSummary): void {
    if (Number.isNaN(t.sentMs) || Number.isNaN(t.replyFirstMs)) {
      target.firstMs = target.lastMs = undefined;
    } else {
      target.firstMs = Math.max(0, t.replyFirstMs - t.sentMs);
      target.lastMs = Math.max(0, t.replyLastMs - t.sentMs);
    }
  }

  /** A turn leaves without a verdict; `skip` counts it in `compare.skipped`. */
  #drop(f: FlowCompare, t: PendingTurn, skip: boolean): void {
    if (skip) this.stats.skip();
    this.free(f.remove(t));
  }

  #forgettable(f: FlowCompare, now: number): boolean {
    if (f.pending.length > 0 || (f.open !== null && f.open.online === undefined)) return false;
    if (f.session !== null) return now - f.lastSeen >= FLOW_IDLE_MS;
    return f.clientClosed || now - f.lastSeen >= FLOW_IDLE_MS ||
      now - f.sessionEndedAt >= (this.opts.answerWaitMs ?? ANSWER_WAIT_MS);
  }

  #forget(f: FlowCompare): void {
    this.free(f.removeAll());
    const s = f.session;
    if (s !== null) {
      this.#sessions.delete(s.client.addr, s.client.port, s.target.addr, s.target.port);
    }
    this.#unlink(f);
    this.#live.delete(f);
    f.dispose();
    this.free(FLOW_COMPARE_COST);
    if (this.#spareFlows.length < SPARE_FLOWS) this.#spareFlows.push(f);
  }

  /** Takes `f` out of its connection's chain (the next flow becomes the first when it was). */
  #unlink(f: FlowCompare): void {
    const c = f.client, s = f.server;
    const head = this.#flows.get(c.addr, c.port, s.addr, s.port);
    const next = f.nextFlow;
    f.nextFlow = undefined;
    if (head === f) {
      if (next === undefined) this.#flows.delete(c.addr, c.port, s.addr, s.port);
      else this.#flows.set(c.addr, c.port, s.addr, s.port, next);
      return;
    }
    for (let p = head; p !== undefined; p = p.nextFlow) {
      if (p.nextFlow === f) {
        p.nextFlow = next;
        return;
      }
    }
  }

  // -----------------------------------------------------------------------------------------
  // Output

  /** The stats line's `compare` object. */
  line(): CompareLine {
    return {
      ...this.stats.snapshot(),
      unpaired: this.unpaired,
      flows: this.#live.size,
      pending: this.#pendingTurns,
      state_bytes: this.#used,
      budget_bytes: this.opts.budgetBytes,
      tunnel_rtt_ms: this.opts.tunnelRttMs?.() ?? null,
      targets: this.#targetsLine(),
    };
  }

  #targetsLine(): Record<string, TargetCounts> {
    const out: Record<string, TargetCounts> = {};
    for (const { text, counts: c } of this.#targets) {
      out[text] = { compared: c.compared, matched: c.matched, mismatched: c.mismatched };
    }
    return out;
  }

  /**
   * Each target's counters and target latencies ("ip:port", "[ip6]:port"), in the order they
   * were first seen; at most {@link MAX_TARGETS} (Prometheus, compare_output.ts).
   */
  targetTallies(): readonly { readonly text: string; readonly tally: Readonly<TargetTally> }[] {
    return this.#targets.map((e) => ({ text: e.text, tally: e.counts }));
  }

  /** The request keys with the most mismatches (exit summary). */
  top(k = 10): TopEntry[] {
    return this.stats.topMismatches(k);
  }

  /** Bytes of comparison state now. */
  get stateBytes(): number {
    return this.#used;
  }
}

const NO_BYTES = new Uint8Array(0);

function hostText(e: Endpoint): string {
  return e.family === 6 ? `[${addrText(e)}]` : addrText(e);
}

/** "ip:port" ("[ip6]:port"). */
function endText(e: Endpoint): string {
  return `${hostText(e)}:${e.port}`;
}

/** The flow's session target (kept after its session ended) is `target`. */
function sameEnd(f: FlowCompare, target: Endpoint): boolean {
  const t = f.sessionEnds.target;
  return t.port === target.port && sameAddr(t.addr, target.addr);
}

function sameAddr(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
