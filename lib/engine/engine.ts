/**
 * The session engine: turns captured client connections into emulated client sessions
 * against the target.
 *
 * Per captured segment: match a transfer (-x), look up the original connection (flow),
 * decide once per connection whether it is sampled (-r, -g) and how many copies it gets
 * (-n, fractions by flow hash), allocate a collision-free rewritten client tuple per copy
 * (-c, -f), then hand the segment to every copy's {@link Session}. Replies are matched on
 * the exact rewritten 4-tuple. Pure and deterministic: time is always an argument, and the
 * caller runs {@link Engine.tick} at {@link Engine.nextDeadline}.
 */

import { lanePort, PORT_LANES, PORT_MIN, TupleAllocator, wrapPort } from "./allocator.ts";
import type { EngineConfig, ResolvedConfig } from "./config.ts";
import { defaultConfig } from "./config.ts";
import { DeadlineQueue } from "./deadline_queue.ts";
import { hash32, hashTuple, unit } from "./hash.ts";
import { addrText, endpointOf, internAddr, ownEndpoint, sameAddr } from "./endpoint.ts";
import { TimerQueue } from "./timer_queue.ts";
import type { CapturedSegment, Endpoint, OutSegment, ReplySegment } from "./segment.ts";
import { ACK, FIN, RST, SYN } from "../wire/tcp.ts";
import { seqAdd, seqLe, seqLt } from "../wire/seq.ts";
import type { SessionHost } from "./session.ts";
import { Session } from "./session.ts";
import type { EndReason, EngineStats, SessionEvent } from "./stats.ts";
import { emptyStats, isLossReason } from "./stats.ts";
import type { Chunk } from "./stream.ts";
import { LoneArena, Slab } from "./slab.ts";
import { SessionSlab } from "./session_slab.ts";
import { TupleMap } from "./tuple_map.ts";
import { FLOW_COST, footprintOf, OpenOrder, SESSION_COST } from "./budget.ts";
import { EgressLimit } from "./rate_limit.ts";
import { ModuleHost } from "./module_bridge.ts";
import { seenAt, seenStamp } from "./seen_clock.ts";

/** Where the engine's decisions go. */
export interface EngineOutput {
  /**
   * A packet for the target. `seg` (and its options) is one object the engine refills for
   * every packet: read it during the call, keep a copy of what must outlive it, and do not
   * call back into the engine from here.
   */
  send(seg: OutSegment): void;
  /** Register a rewritten client with intercept(s); always called before its SYN. */
  routeAdd(client: Endpoint, target: Endpoint): void;
  /** The client's session ended; intercept may forget the route. */
  routeDel(client: Endpoint, target: Endpoint): void;
  /** Optional per-session events (open, close with reason, losses). */
  event?(e: SessionEvent): void;
  /**
   * Whether a route to `target` can be registered now (an intercept is connected that takes
   * it). When false no new session is opened (`lost.no_intercept`): its replies would reach
   * nobody. Absent: always.
   */
  canRoute?(target: Endpoint): boolean;
  /** Optional operator log lines (protocol modules' failures; already rate-limited). */
  log?(line: string): void;
}

/**
 * One original client connection (before rewriting) and the sessions replaying it. Kept small:
 * one is held per live connection, and a million may be remembered. The sequence numbers are
 * stored as their signed 32-bit pattern (a small integer in V8, no heap number) and the yes/no
 * state in one number.
 */
class Flow implements Endpoint {
  /**
   * Its live sessions: none, the one itself (almost every flow), or an array of its own only
   * while it has two or more (`-n` copies, a gap's new session beside a live one). No array
   * per connection: a one-element array cost ~56 B per held session.
   */
  #ss: Session | Session[] | undefined = undefined;
  /** (transfer, copy) pairs this connection is replayed as (shared, read-only). */
  replicas: readonly Replica[] = NO_REPLICAS;
  /** Where this connection's payload copies live (none while it holds none). */
  slab: Slab | undefined = undefined;
  /**
   * Replicas whose module ended the replay (`out.fail`): later data of the connection is not
   * picked up for them. Absent while none (the replica lists are shared between flows).
   */
  declare moduleFailed?: Replica[];
  /**
   * The previous connection on the same client tuple (source-port reuse), while this one is
   * the table's record: its late segments (a retransmission, its FIN, the client's RST for the
   * old socket that met the new SYN) are told apart by sequence number and go to its sessions,
   * not to this connection's. Only one level is kept (set when a new SYN replaces the record).
   * A field of every flow (8 B), not a property added on reuse: the first reused port gave
   * flows a second hidden class, and every optimized function reading flows was thrown away
   * ("wrong map") and compiled again polymorphic (README.md, "Short connections").
   */
  prev: Flow | undefined = undefined;
  #syn = 0;
  #high = 0;
  /**
   * When it last captured a segment: a small integer stamp (`seen_clock.ts`: whole ms modulo
   * 2^31). The time itself (epoch ms with a fraction) was a 16-byte heap number per flow.
   */
  #seen = 0;
  /** HAS_SYN, HAS_HIGH, SAMPLED_OUT, CLIENT_CLOSED, IDLE_ARMED. */
  #bits = 0;

  /** How many live sessions replay this connection. */
  get sessionCount(): number {
    const ss = this.#ss;
    return ss === undefined ? 0 : ss instanceof Session ? 1 : ss.length;
  }
  /** Its live session number `i` (below {@link sessionCount}), in the order they opened. */
  sessionAt(i: number): Session {
    const ss = this.#ss as Session | Session[];
    return ss instanceof Session ? ss : ss[i];
  }
  /** Its live sessions in a new array: to walk while some may end. */
  sessionsCopy(): Session[] {
    const ss = this.#ss;
    return ss === undefined ? [] : ss instanceof Session ? [ss] : [...ss];
  }
  /** `s` opened for this connection (after the ones it has). */
  addSession(s: Session): void {
    const ss = this.#ss;
    if (ss === undefined) this.#ss = s;
    else if (ss instanceof Session) this.#ss = [ss, s];
    else ss.push(s);
  }
  /** `s` ended: it leaves the list (the others keep their order). */
  removeSession(s: Session): void {
    const ss = this.#ss;
    if (ss === s) this.#ss = undefined;
    else if (Array.isArray(ss)) {
      const i = ss.indexOf(s);
      if (i >= 0) ss.splice(i, 1);
      if (ss.length <= 1) this.#ss = ss.length === 1 ? ss[0] : undefined;
    }
  }

  // The original client endpoint is the flow itself (`src`): its address bytes (interned, see
  // `ownEndpoint`) and port as fields of the record, the family read from the bytes. An endpoint
  // object of its own (shared with the session replaying the client's own tuple) cost 48 B per
  // held session; the two fields cost 8 more in the flow than the one reference did.
  /** The client's address bytes (shared: never change them). */
  readonly addr: Uint8Array;
  /** The client's port. */
  readonly port: number;

  constructor(
    src: Endpoint,
    /** Shared by the flows to one server address and port (see `serverOf`). */
    readonly dst: Endpoint,
    now: number,
  ) {
    this.addr = internAddr(src.addr);
    this.port = src.port;
    this.touch(now);
  }

  /** The client's address family (16 address bytes: IPv6). */
  get family(): 4 | 6 {
    return this.addr.length === 16 ? 6 : 4;
  }

  /**
   * The original client endpoint: the flow itself (an {@link Endpoint}; the sessions replaying
   * the client's own tuple name it as their `client` too).
   */
  get src(): Endpoint {
    return this;
  }

  /** It captured a segment at `now`. */
  touch(now: number): void {
    this.#seen = seenStamp(now);
  }
  /**
   * When it last captured a segment, rounded up to a whole ms, read at `now` (no earlier than
   * that, and at most 2^30 ms ≈ 12 days earlier: `--keepalive-timeout` is at most 7 days; a time
   * after `now`, from a clock that stepped back, reads as `now`).
   */
  lastSeenAt(now: number): number {
    return seenAt(this.#seen, now);
  }

  /** The client's SYN's sequence number, once captured. */
  get synSeq(): number | undefined {
    return this.#bits & HAS_SYN ? this.#syn >>> 0 : undefined;
  }
  set synSeq(v: number | undefined) {
    if (v === undefined) this.#bits &= ~HAS_SYN;
    else {
      this.#syn = v | 0;
      this.#bits |= HAS_SYN;
    }
  }
  /** One past the highest client payload byte captured (undefined: no payload yet). */
  get highSeq(): number | undefined {
    return this.#bits & HAS_HIGH ? this.#high >>> 0 : undefined;
  }
  set highSeq(v: number | undefined) {
    if (v === undefined) this.#bits &= ~HAS_HIGH;
    else {
      this.#high = v | 0;
      this.#bits |= HAS_HIGH;
    }
  }
  /**
   * It captured payload (`highSeq` is set), read without making the number (a sequence number
   * at or above 2^31 is a new heap number each time: the eviction queue asks this often).
   */
  get carriedData(): boolean {
    return (this.#bits & HAS_HIGH) !== 0;
  }
  /** Not replayed (`-r`, `-g`, `-n` below 1, or no session could open). */
  get sampledOut(): boolean {
    return (this.#bits & SAMPLED_OUT) !== 0;
  }
  set sampledOut(v: boolean) {
    this.#bits = v ? this.#bits | SAMPLED_OUT : this.#bits & ~SAMPLED_OUT;
  }
  /** The client sent its FIN or RST. */
  get clientClosed(): boolean {
    return (this.#bits & CLIENT_CLOSED) !== 0;
  }
  set clientClosed(v: boolean) {
    this.#bits = v ? this.#bits | CLIENT_CLOSED : this.#bits & ~CLIENT_CLOSED;
  }
  /** The flow waits in the engine's idle queue (see `sweepIdle`). */
  get idleArmed(): boolean {
    return (this.#bits & IDLE_ARMED) !== 0;
  }
  set idleArmed(v: boolean) {
    this.#bits = v ? this.#bits | IDLE_ARMED : this.#bits & ~IDLE_ARMED;
  }
}

/**
 * Which incarnation on a reused client tuple a non-SYN segment at `seq` belongs to: `flow`
 * (the table's record), its previous connection, or none (older still: ignored). A segment in
 * the range the previous connection used (its first byte to one past its last byte and FIN)
 * is its; a segment before the SYN of `flow` belongs to no later connection.
 */
function incarnationOf(flow: Flow, seq: number): Flow | undefined {
  const old = flow.prev;
  if (old !== undefined && usedRange(old, seq)) return old;
  const syn = flow.synSeq;
  if (syn === undefined || seqLt(syn, seq)) return flow;
  return undefined;
}

/** `seq` lies in what `flow` used: after its SYN and at most one past its last byte (FIN). */
function usedRange(flow: Flow, seq: number): boolean {
  const syn = flow.synSeq;
  if (syn === undefined) return false;
  return seqLt(syn, seq) && seqLe(seq, seqAdd(flow.highSeq ?? seqAdd(syn, 1), 1));
}
const HAS_SYN = 1, HAS_HIGH = 2, SAMPLED_OUT = 4, CLIENT_CLOSED = 8, IDLE_ARMED = 16;

/** Session `s` of `flow` was ended by its module: its replica is not replayed again. */
function markModuleFailed(flow: Flow, s: Session): void {
  const r = flow.replicas.find((r) => r.target === s.target && r.copy === s.copyIndex);
  if (r === undefined) return;
  (flow.moduleFailed ??= []).push(r);
}

interface Replica {
  /** The engine (sessions reach it through their replica: see `SessionReplica`). */
  host: Engine;
  target: Endpoint;
  copy: number;
  /** The transfer's protocol module, if it has one. */
  module: ModuleHost | undefined;
}

/** A `-x` entry with its addresses in bytes (resolved once, at start). */
interface Route {
  /** Empty: any local address ("", "0.0.0.0", "::"). */
  online: Uint8Array;
  onlinePort: number;
  target: Endpoint;
  module: ModuleHost | undefined;
}

const ANY = new Uint8Array(0);
/** The replicas of a flow that is not replayed. */
const NO_REPLICAS: readonly Replica[] = Object.freeze([]);

/** The bytes an online address matches: ANY for the wildcards. */
function onlineAddrOf(text: string): Uint8Array {
  return text === "" || text === "0.0.0.0" || text === "::" ? ANY : endpointOf(text, 0).addr;
}

/** The flow a session replays (its `tag`). */
function flowOf(s: Session): Flow {
  return s.tag as Flow;
}

/** Server endpoints shared between flows, at most this many (beyond, each flow has its own). */
const MAX_SERVERS = 1024;

/** How long a closed connection's record keeps late client packets from reopening it. */
const TOMBSTONE_MS = 10_000;
const NEVER = Number.POSITIVE_INFINITY;
/**
 * A connection whose sessions have held no queued bytes and which captured nothing for this
 * long gives back its slab and its sessions' spare array room (`sweepIdle`). Long enough that
 * a connection with a request every few seconds keeps its slab: a released one costs the next
 * payload a buffer of its own and a new slab after it (at 100,000 sessions with 1 s between
 * requests, a 1 s idle time cost ~5 µs per request in bench/engine_scale.ts).
 */
const IDLE_MS = 10_000;
/** Idle checks are due on multiples of this (ms), so they come in batches, not one wake-up each. */
const IDLE_GRAIN_MS = 1000;
/** Stale timer entries tolerated beyond three per live session before the timers are swept. */
const STALE_TIMERS = 1024;
/**
 * Ended sessions that may still have timer entries filed, tolerated beyond one per live session
 * before the timers are swept: a stale entry keeps its ended session (stream, turns, flow) alive
 * until its deadline, seconds away for the far ones. With only {@link STALE_TIMERS} a burst of
 * short connections kept up to two per live session + 1,024 ended sessions that way
 * (bench/burst_heap.ts: 2,000 right after the burst, 1,200 live at its height).
 */
const ENDED_TIMERS = 256;
const EMPTY = new Uint8Array(0);

/** Bytes of IP and TCP headers counted per packet against `--max-mbps`. */
const HEADER_ESTIMATE = 52;

/** A live session whose connection never carried a byte of payload (may be evicted). */
function isEvictable(s: Session): boolean {
  return !s.ended && !flowOf(s).carriedData;
}

/** `client:port -> target:port` of a session, for log lines. */
function sessionLabel(s: Session): string {
  const c = s.client, t = s.target;
  const host = (e: Endpoint) => e.family === 6 ? `[${addrText(e)}]` : addrText(e);
  return `${host(c)}:${c.port} -> ${host(t)}:${t.port}`;
}

/** A timer entry that is still one of a session's two filed deadlines (see `schedule`). */
function isCurrentTimer(at: number, s: Session): boolean {
  return !s.ended && (s.scheduledAt === at || s.laterAt === at);
}

/** Replays captured client connections against the target; see the module comment. */
export class Engine implements SessionHost {
  readonly config: ResolvedConfig;
  readonly stats: EngineStats = emptyStats();
  /** The live sessions' numbers, one row each (see session_slab.ts). */
  readonly slab = new SessionSlab();
  /** Original connections by (client, server). */
  private readonly flows = new TupleMap<Flow>();
  /** Rewritten (client, target) tuples: held ones by their live session, quarantined ones. */
  private readonly allocator: TupleAllocator<Session>;
  private readonly timers = new TimerQueue<Session>();
  /** Sessions that ended with timer entries filed since the last sweep (`sweepTimers`). */
  private endedFiled = 0;
  /** Flows without sessions, by when to look at them again: closed ones, and the others. */
  private readonly tombstones = new DeadlineQueue<Flow>();
  private readonly idleFlows = new DeadlineQueue<Flow>();
  /** Live flows whose sessions hold no queued bytes, by when to look at them (`sweepIdle`). */
  private readonly idleSlabs = new DeadlineQueue<Flow>();
  /** Engine time (ms): the caller's clock plus `skew`, never decreasing. */
  private now: number;
  /** Backward steps of the caller's clock absorbed so far (see `clock`). */
  private skew = 0;
  /** Sessions by opening time; the oldest that never carried data is evicted first. */
  private readonly openOrder = new OpenOrder<Session>(isEvictable);
  private readonly egress: EgressLimit;
  /** The -c pool split by family, in the configured order (for the client-address choice). */
  private readonly clientPool4: readonly Uint8Array[];
  private readonly clientPool6: readonly Uint8Array[];
  /** The transfers (-x) with address bytes. */
  private readonly routes: readonly Route[];
  /** Replica lists by the transfers they use and the number of copies (see `replicasFor`). */
  private readonly replicaSets = new Map<number, readonly Replica[]>();
  /** Server endpoints by address and port (see `serverOf`). */
  private readonly servers = new TupleMap<Endpoint>();
  /** Copies of lone payloads, shared blocks (see `copyOf`). */
  private readonly lone = new LoneArena();

  constructor(config: EngineConfig, readonly out: EngineOutput, readonly startMs: number) {
    this.config = defaultConfig(config);
    const ips = this.config.clientIps.map((ip) => endpointOf(ip, 0));
    this.clientPool4 = ips.filter((e) => e.family === 4).map((e) => e.addr);
    this.clientPool6 = ips.filter((e) => e.family === 6).map((e) => e.addr);
    const hosts = new Map<string, ModuleHost>();
    const hostOf = (t: (typeof this.config.transfers)[number]) => {
      const m = t.module;
      if (m === undefined) return undefined;
      let h = hosts.get(m.name);
      if (h === undefined) {
        const st = this.stats.modules[m.name] = {};
        h = new ModuleHost(m, this.config.modules, st, (line) => this.out.log?.(line));
        hosts.set(m.name, h);
      }
      return h;
    };
    this.routes = this.config.transfers.map((t) => ({
      online: onlineAddrOf(t.online.addr),
      onlinePort: t.online.port,
      target: endpointOf(t.target.addr, t.target.port),
      module: hostOf(t),
    }));
    this.allocator = new TupleAllocator(this.config.tupleQuarantineMs);
    this.now = startMs;
    this.egress = new EgressLimit(this.config.maxPps, this.config.maxMbps, startMs);
  }

  /** Recomputes `stats.footprint_bytes` (after any change of sessions, records, queued bytes). */
  private account(): number {
    const st = this.stats;
    return st.footprint_bytes = footprintOf(this.allocator.size, this.flows.size, st.queued_bytes);
  }

  /** Whether `extra` more bytes of structures fit in the memory budget. */
  private fits(extra: number): boolean {
    return this.stats.footprint_bytes + extra <= this.config.memoryBudgetBytes;
  }

  /** Ends the oldest session that never carried data, to make room; false if there is none. */
  private evictOne(): boolean {
    const s = this.openOrder.take();
    if (s === undefined) return false;
    this.stats.sessions.evicted++;
    s.end("evicted", this.now);
    return true;
  }

  /** Same as {@link config} (the name sessions use). */
  get cfg(): ResolvedConfig {
    return this.config;
  }

  /** Live sessions by key (a snapshot, for tests and diagnostics). */
  get liveSessions(): ReadonlyMap<string, Session> {
    const m = new Map<string, Session>();
    for (const s of this.allocator.holders()) m.set(s.key, s);
    return m;
  }

  /** Original connections remembered (live, sampled out, or tombstones), for diagnostics. */
  get flowCount(): number {
    return this.flows.size;
  }

  /** Entries in the timer heap, stale ones included (for diagnostics and tests). */
  get timerEntries(): number {
    return this.timers.size;
  }

  /** Sessions the eviction queue holds, ended ones included (for diagnostics and tests). */
  get evictionQueued(): number {
    return this.openOrder.size;
  }

  /** Tuples the allocator tracks (held or quarantined), for diagnostics and tests. */
  get tuplesTracked(): number {
    return this.allocator.tracked;
  }

  // ---------------------------------------------------------------------------------------
  // Inputs

  /** A captured client->server segment (original addresses). */
  onCaptured(seg: CapturedSegment, nowMs: number): void {
    nowMs = this.clock(nowMs);
    const st = this.stats;
    st.captured++;
    const len = seg.payload.length;
    st.bytes.captured += len;
    const src = seg.src, dst = seg.dst;
    let flow = this.flows.get(src.addr, src.port, dst.addr, dst.port);
    const flags = seg.flags;
    if ((flags & SYN) && !(flags & ACK)) {
      // A repeated SYN, of this connection or of the one before it on this tuple.
      if (flow && (flow.synSeq === seg.seq || flow.prev?.synSeq === seg.seq)) {
        st.ignored.syn_retransmit++;
        return;
      }
      const old = flow;
      if (old) this.forget(old); // source-port reuse: the old incarnation drains alone
      flow = this.newFlow(seg, nowMs);
      if (!flow) return;
      flow.synSeq = seg.seq;
      if (old) {
        old.prev = undefined; // one level: the connection before it is over
        flow.prev = old;
      }
    } else if (!flow) {
      if (len === 0) {
        if (flags & (FIN | RST)) st.ignored.unknown_flow++;
        else st.ignored.pure_ack++;
        return;
      }
      if (this.config.onlyComplete) {
        st.ignored.only_complete++;
        return;
      }
      flow = this.newFlow(seg, nowMs);
      if (!flow) return;
    } else if (flow.prev !== undefined || flow.synSeq !== undefined) {
      const owner = incarnationOf(flow, seg.seq);
      if (owner !== flow) {
        // A late segment of an earlier connection on this tuple: never this one's bytes.
        this.toEarlier(owner, seg, nowMs);
        return;
      }
    }
    flow.touch(nowMs);
    if (flow.sampledOut) {
      if (flags & (FIN | RST)) this.forget(flow);
      return;
    }
    if (flow.sessionCount === 0) {
      // Every replay of this connection ended earlier (timeout, gap, ...): pick it up again
      // with new client data, ignore anything else.
      const end = seqAdd(seg.seq, len);
      if (
        flow.clientClosed || len === 0 ||
        (flow.highSeq !== undefined && seqLe(end, flow.highSeq))
      ) {
        if (len === 0) st.ignored.pure_ack++;
        else st.ignored.duplicate++;
        return;
      }
      if (this.config.onlyComplete) {
        st.ignored.only_complete++;
        return;
      }
      for (const r of flow.replicas) {
        if (!flow.moduleFailed?.includes(r)) this.openSession(flow, r, nowMs);
      }
      if (flow.sessionCount === 0) return; // port conflict again: nothing takes the bytes
    }
    if (len > 0) {
      const end = seqAdd(seg.seq, len);
      if (flow.highSeq === undefined || seqLe(flow.highSeq, end)) flow.highSeq = end;
    }
    if (flags & (FIN | RST)) flow.clientClosed = true;
    const data = len === 0 ? EMPTY : this.copyOf(flow, seg.payload);
    this.deliver(flow, seg, data, nowMs);
  }

  /**
   * `seg` (its payload copied as `data`) to every live session of `flow`. A session may end
   * (and leave the flow) while another one takes the segment: two or more are walked in a copy.
   */
  private deliver(flow: Flow, seg: CapturedSegment, data: Uint8Array, nowMs: number): void {
    if (flow.sessionCount === 1) {
      const s = flow.sessionAt(0);
      s.onCaptured(seg, data, nowMs);
      this.schedule(s);
      return;
    }
    const ss = flow.sessionsCopy();
    for (let i = 0; i < ss.length; i++) {
      const s = ss[i];
      s.onCaptured(seg, data, nowMs);
      this.schedule(s);
    }
  }

  /**
   * A late segment of an earlier connection on a reused tuple (`old`, or none left to know):
   * to the earlier connection's live sessions, else ignored. It never opens a session.
   */
  private toEarlier(old: Flow | undefined, seg: CapturedSegment, nowMs: number): void {
    const st = this.stats;
    const len = seg.payload.length;
    if (old === undefined || old.sessionCount === 0 || old.sampledOut) {
      if (len === 0 && !(seg.flags & (FIN | RST))) st.ignored.pure_ack++;
      else st.ignored.duplicate++;
      return;
    }
    old.touch(nowMs);
    if (len > 0) {
      const end = seqAdd(seg.seq, len);
      if (old.highSeq === undefined || seqLe(old.highSeq, end)) old.highSeq = end;
    }
    if (seg.flags & (FIN | RST)) old.clientClosed = true;
    const data = len === 0 ? EMPTY : this.copyOf(old, seg.payload);
    this.deliver(old, seg, data, nowMs);
  }

  /**
   * A captured segment from an online server to a client (transfers with a module; the
   * capture takes both directions for them): production's replies, which a module reads for
   * its verdict on a login. `len` is the payload length on the wire (more than
   * `seg.payload.length` when the snap length cut it). Never replayed.
   */
  onOnline(seg: CapturedSegment, nowMs: number, len = seg.payload.length): void {
    nowMs = this.clock(nowMs);
    const c = seg.dst, srv = seg.src;
    const flow = this.flows.get(c.addr, c.port, srv.addr, srv.port);
    if (flow === undefined || flow.sessionCount === 0) return;
    // A session may end (and leave the flow) on the way: two or more are walked in a copy.
    const n = flow.sessionCount;
    const ss = n === 1 ? undefined : flow.sessionsCopy();
    for (let i = 0; i < n; i++) {
      const s = ss === undefined ? flow.sessionAt(0) : ss[i];
      if (s.mod === undefined) continue;
      s.onOnline(seg, len, nowMs);
      this.schedule(s);
    }
  }

  /** A reply header from the target, as intercept saw it. */
  onReply(reply: ReplySegment, nowMs: number): void {
    nowMs = this.clock(nowMs);
    this.stats.replies++;
    const c = reply.dst, t = reply.src;
    const s = this.allocator.holder(c.addr, c.port, t.addr, t.port);
    if (!s) {
      this.stats.replies_unmatched++;
      return;
    }
    s.onReply(reply, nowMs);
    this.schedule(s);
  }

  /** Run the timers that are due. */
  tick(nowMs: number): void {
    nowMs = this.clock(nowMs);
    const h = this.timers;
    for (;;) {
      const at = h.peek();
      if (at === undefined || at > nowMs) break;
      const s = h.peekItem()!;
      h.pop();
      if (s.ended) continue;
      if (s.scheduledAt === at) {
        s.scheduledAt = s.laterAt; // filed and still to come, or NEVER
        s.laterAt = NEVER;
      } else if (s.laterAt === at) s.laterAt = NEVER;
      else continue; // stale
      s.onTimer(nowMs);
      this.schedule(s);
    }
    this.sweepFlows(nowMs);
    this.sweepIdle(nowMs);
  }

  /** Earliest pending timer, or undefined when none. */
  nextDeadline(): number | undefined {
    let t = this.timers.peekCurrent(isCurrentTimer) ?? NEVER;
    t = Math.min(
      t,
      this.tombstones.peek() ?? NEVER,
      this.idleFlows.peek() ?? NEVER,
      this.idleSlabs.peek() ?? NEVER,
    );
    return t === NEVER ? undefined : t - this.skew; // on the caller's clock
  }

  /** Release every queued request now, ignoring turn-taking (end of an offline replay). */
  drainAll(nowMs: number): void {
    nowMs = this.clock(nowMs);
    for (const s of [...this.allocator.holders()]) {
      s.drain(nowMs);
      this.schedule(s);
    }
  }

  /**
   * Reset every live session (shutdown). Requests not sent by then are counted as lost
   * (`lost.shutdown`); requests sent and not answered yet are not (the target may have
   * served them, their answers still on the way).
   */
  closeAll(reason: EndReason = "shutdown", nowMs?: number): void {
    nowMs = nowMs === undefined ? this.now : this.clock(nowMs);
    for (const s of [...this.allocator.holders()]) s.end(reason, nowMs);
  }

  /**
   * Adopt the caller's time as engine time. A non-finite value (NaN from a broken
   * timestamp, Infinity) would give sessions deadlines that never fire: the last good time
   * is used instead. Engine time never runs backwards: when the caller's clock steps back
   * (a wall clock set back by NTP or by hand), the step is absorbed into an offset, so
   * timers keep their distances instead of stalling for the size of the step.
   */
  private clock(nowMs: number): number {
    if (!Number.isFinite(nowMs)) return this.now;
    let t = nowMs + this.skew;
    if (t < this.now) {
      this.skew += this.now - t;
      t = this.now;
    }
    this.now = t;
    return t;
  }

  // ---------------------------------------------------------------------------------------
  // Flows, sampling, copies, allocation

  private transfersFor(dst: Endpoint): Route[] {
    const out: Route[] = [];
    for (const t of this.routes) {
      if (t.onlinePort !== dst.port) continue;
      // a connection is replayed within its address family (no IPv4 client to an IPv6 target)
      if (t.target.family !== dst.family) continue;
      if (t.online.length === 0 || sameAddr(t.online, dst.addr)) out.push(t);
    }
    return out;
  }

  /** Share of connections replayed at `now` (percent), after --sample and --gradual. */
  samplePercentAt(nowMs: number): number {
    let pct = this.config.samplePercent;
    if (this.config.gradual) pct = Math.min(pct, Math.floor((nowMs - this.startMs) / 1000) + 1);
    return pct;
  }

  private newFlow(seg: CapturedSegment, now: number): Flow | undefined {
    const transfers = this.transfersFor(seg.dst);
    if (transfers.length === 0) {
      this.stats.ignored.no_transfer++;
      return undefined;
    }
    const cfg = this.config;
    while (this.flows.size >= cfg.maxFlows || !this.fits(FLOW_COST)) {
      if (this.forgetOldest() || (!this.fits(FLOW_COST) && this.evictOne())) continue;
      this.stats.lost.session_limit++;
      return undefined;
    }
    // The flow hash of the address text (cached per address by lib/wire), as before.
    const src = seg.src, dst = seg.dst;
    const h = hashTuple(addrText(src), src.port, addrText(dst), dst.port, cfg.seed);
    const flow = new Flow(src, this.serverOf(dst), now);
    this.flows.set(flow.src.addr, flow.src.port, flow.dst.addr, flow.dst.port, flow);
    this.account();
    if (unit(h, 1) * 100 >= this.samplePercentAt(now)) {
      flow.sampledOut = true;
      this.stats.sampled_out++;
      this.retire(flow, now);
      return flow;
    }
    const whole = Math.floor(cfg.copies);
    const n = whole + (unit(h, 2) < cfg.copies - whole ? 1 : 0);
    if (n === 0) {
      // -n below 1: this connection gets no copy, like a sampled-out one.
      flow.sampledOut = true;
      this.stats.sampled_out++;
      this.retire(flow, now);
      return flow;
    }
    flow.replicas = this.replicasFor(transfers, n);
    for (const r of flow.replicas) this.openSession(flow, r, now);
    // No session could be opened (port conflict, session limit), counted once above: the
    // connection is left alone like a sampled-out one, and its record still expires.
    if (flow.sessionCount === 0) {
      flow.sampledOut = true;
      this.retire(flow, now);
    }
    return flow;
  }

  /** The shared endpoint of server `dst` (its own copy once {@link MAX_SERVERS} are known). */
  private serverOf(dst: Endpoint): Endpoint {
    const m = this.servers;
    let e = m.get(dst.addr, dst.port, dst.addr, dst.port);
    if (e === undefined) {
      e = ownEndpoint(dst);
      if (m.size < MAX_SERVERS) m.set(e.addr, e.port, e.addr, e.port, e);
    }
    return e;
  }

  /**
   * The (transfer, copy) pairs of a connection matching `transfers` with `n` copies: one
   * shared list per combination (a flow does not carry a list of its own).
   */
  private replicasFor(transfers: readonly Route[], n: number): readonly Replica[] {
    let key = n;
    for (const t of transfers) {
      const i = this.routes.indexOf(t);
      key = i < 20 && n < 1024 ? key + (1 << i) * 1024 : -1;
      if (key < 0) break;
    }
    const known = key < 0 ? undefined : this.replicaSets.get(key);
    if (known !== undefined) return known;
    const list: Replica[] = [];
    for (const t of transfers) {
      for (let i = 0; i < n; i++) {
        list.push({ host: this, target: t.target, copy: i, module: t.module });
      }
    }
    Object.freeze(list);
    if (key >= 0) this.replicaSets.set(key, list);
    return list;
  }

  /** Client address for copy `copy` of a connection from `addr` (-c, same family only). */
  private clientAddr(src: Endpoint, copy: number): Uint8Array {
    const same = src.family === 6 ? this.clientPool6 : this.clientPool4;
    if (same.length === 0) return src.addr;
    return same[(hash32(addrText(src), this.config.seed) + copy) % same.length];
  }

  private openSession(flow: Flow, r: Replica, now: number): Session | undefined {
    const cfg = this.config;
    const addr = this.clientAddr(flow.src, r.copy);
    const family = flow.src.family;
    const base = flow.src.port;
    // A port shift confines this instance to its port lane (see allocator.ts); copies of an
    // unshifted instance spread over the whole range.
    let preferred = base, step = 1;
    if (cfg.portShift !== 0) {
      preferred = lanePort(base, cfg.portShift, r.copy);
      step = PORT_LANES;
    } else if (r.copy !== 0) preferred = wrapPort(Math.max(base, PORT_MIN) + r.copy * 1031);
    const refused = this.refusal(r.target, now);
    if (refused !== undefined) {
      this.stats.lost[refused]++;
      this.emitEvent({
        type: "lost",
        client: { addr, family, port: preferred },
        target: r.target,
        reason: refused,
        requests: 1,
      });
      return undefined;
    }
    const port = this.allocator.take(addr, preferred, r.target.addr, r.target.port, now, step);
    if (port === undefined) {
      this.stats.lost.port_conflict++;
      this.emitEvent({
        type: "lost",
        client: { addr, family, port: preferred },
        target: r.target,
        reason: "port_conflict",
        requests: 1,
      });
      return undefined;
    }
    // The original client endpoint when the tuple is the client's own (no -c, no shift).
    const src = flow.src;
    const client: Endpoint = addr === src.addr && port === src.port ? src : { addr, family, port };
    const s = new Session(client, r, now);
    if (r.module !== undefined) {
      // (told when the module's pass makes the replay the captured stream at an offset)
      const passed = this.out.event === undefined
        ? undefined
        : (seq: number, offset: number) =>
          this.emitEvent({
            type: "pass",
            client: s.client,
            target: s.target,
            original: { client: flow.src, server: flow.dst },
            copy: r.copy,
            seq,
            offset,
          });
      s.mod = r.module.open(s.stream, () => `${sessionLabel(s)}`, now, passed);
    }
    s.tag = flow;
    this.allocator.hold(addr, port, s.target.addr, s.target.port, s);
    flow.addSession(s);
    this.openOrder.push(s, this.allocator.size);
    this.stats.sessions.created++;
    this.stats.sessions.active++;
    this.account();
    this.out.routeAdd(client, s.target);
    if (this.out.event) {
      const original = { client: flow.src, server: flow.dst };
      this.emitEvent({
        type: "open",
        client,
        target: s.target,
        original,
        copy: r.copy,
        module: !!r.module,
      });
    }
    return s;
  }

  /**
   * Why a new session to `target` may not open now, or undefined when it may: no intercept
   * to route its replies, the egress limit spent, or no room (at the session cap or over the
   * budget, after evicting sessions that never carried data).
   */
  private refusal(
    target: Endpoint,
    now: number,
  ): "no_intercept" | "rate_limited" | "session_limit" | undefined {
    if (this.out.canRoute !== undefined && !this.out.canRoute(target)) return "no_intercept";
    if (this.egress.active && !this.egress.hasRoom(now)) return "rate_limited";
    while (this.allocator.size >= this.config.maxSessions || !this.fits(SESSION_COST)) {
      if (!this.evictOne()) return "session_limit";
    }
    return undefined;
  }

  /** Look at `flow` again once its record may go (its sessions all ended at `now`). */
  private retire(flow: Flow, now: number): void {
    if (flow.clientClosed) this.tombstones.push(now + TOMBSTONE_MS, flow);
    else this.idleFlows.push(now + this.config.keepaliveTimeoutMs, flow);
  }

  private sweepFlows(now: number): void {
    for (const q of [this.tombstones, this.idleFlows]) {
      for (let flow = q.popDue(now); flow !== undefined; flow = q.popDue(now)) {
        if (!this.isCurrent(flow) || flow.sessionCount > 0) continue;
        const ttl = flow.clientClosed ? TOMBSTONE_MS : this.config.keepaliveTimeoutMs;
        const seen = flow.lastSeenAt(now);
        if (seen + ttl > now) this.retire(flow, seen);
        else this.forget(flow);
      }
    }
  }

  /**
   * The engine's copy of a payload of `flow`: while none of the flow's sessions holds queued
   * bytes (a one-segment request of a keep-alive connection) a view into the engine's shared
   * block of lone payloads (`LoneArena`: no slab room held for the connection, none left behind
   * when it goes idle, one `ArrayBuffer` per block of requests instead of one per request),
   * else a view into the flow's slab (a burst: one slab for many segments).
   */
  private copyOf(flow: Flow, payload: Uint8Array): Uint8Array {
    for (let i = 0, n = flow.sessionCount; i < n; i++) {
      if (flow.sessionAt(i).queuedBytes > 0) return (flow.slab ??= new Slab()).copy(payload);
    }
    return this.lone.copy(payload);
  }

  /** Look at live `flow` again once it may have been idle for {@link IDLE_MS}. */
  private armIdle(flow: Flow, from: number): void {
    flow.idleArmed = true;
    this.idleSlabs.push(Math.ceil((from + IDLE_MS) / IDLE_GRAIN_MS) * IDLE_GRAIN_MS, flow);
  }

  /**
   * Idle connections give their memory back: a live flow whose sessions hold no queued bytes
   * and that captured nothing for {@link IDLE_MS} drops its slab (the next payload starts a
   * small one) and its sessions' spare stream room. Runs on the timer, not on every drained
   * request: a busy keep-alive connection keeps its slab between requests.
   */
  private sweepIdle(now: number): void {
    const q = this.idleSlabs;
    for (let flow = q.popDue(now); flow !== undefined; flow = q.popDue(now)) {
      flow.idleArmed = false;
      const n = flow.sessionCount;
      if (n === 0) continue; // ended: its slab went with its last session
      let busy = false;
      for (let i = 0; i < n; i++) if (flow.sessionAt(i).queuedBytes > 0) busy = true;
      if (busy) continue; // armed again when the queue drains
      const seen = flow.lastSeenAt(now);
      if (seen + IDLE_MS > now) {
        this.armIdle(flow, seen);
        continue;
      }
      flow.slab = undefined;
      for (let i = 0; i < n; i++) flow.sessionAt(i).compact();
    }
  }

  /**
   * The flow table is full: forget the remembered connection (no live session) due soonest,
   * closed ones first. False when every record has live sessions.
   */
  private forgetOldest(): boolean {
    for (const q of [this.tombstones, this.idleFlows]) {
      for (let flow = q.popDue(NEVER); flow !== undefined; flow = q.popDue(NEVER)) {
        if (!this.isCurrent(flow) || flow.sessionCount > 0) continue;
        this.forget(flow);
        return true;
      }
    }
    return false;
  }

  /** `flow` is the table's record for its connection (not an older incarnation). */
  private isCurrent(flow: Flow): boolean {
    return this.flows.get(flow.src.addr, flow.src.port, flow.dst.addr, flow.dst.port) === flow;
  }

  /** Drop the table's record of `flow`'s connection. */
  private forget(flow: Flow): void {
    this.flows.delete(flow.src.addr, flow.src.port, flow.dst.addr, flow.dst.port);
    this.account();
  }

  /**
   * File `s`'s next wake-up unless an entry at or before it is filed already (that one wakes
   * the session early: it finds nothing due and is filed again then). A session has at most two
   * live entries: its earliest (`scheduledAt`) and the latest one an earlier deadline superseded
   * (`laterAt`), which stays filed: a keep-alive request files a near deadline (its
   * retransmission timer, then its delayed ACK) in front of the session's far one (the
   * keep-alive timeout) and, once those fired, finds the far one still filed and files nothing.
   * Refiling the far deadline after every request put an entry per request in the far buckets
   * and left the old one stale, so the stale sweep (`retain`, a pass over every session) came
   * every ~2 × live sessions requests.
   */
  private schedule(s: Session): void {
    if (s.ended) return;
    const w = s.nextWake();
    if (w < s.scheduledAt) {
      if (s.laterAt === NEVER) s.laterAt = s.scheduledAt; // else the one in between goes stale
      s.scheduledAt = w;
      const h = this.timers;
      h.push(w, s);
      this.sweepTimers();
    }
  }

  /**
   * Entries of ended or rescheduled sessions stay until their deadline; far ones (the keep-alive
   * timeout) would keep thousands of dead sessions alive. Drops them when they outnumber the
   * live sessions (each of which may hold two current ones), or when more than
   * {@link ENDED_TIMERS} + one per live session ended with entries filed (each sweep costs
   * O(entries), so at least as many session ends pay for it as there are live sessions).
   */
  private sweepTimers(): void {
    const h = this.timers, live = this.allocator.size;
    if (h.size > 3 * live + STALE_TIMERS || this.endedFiled > ENDED_TIMERS + live) {
      h.retain(isCurrentTimer);
      this.endedFiled = 0;
    }
  }

  private emitEvent(e: SessionEvent): void {
    this.out.event?.(e);
  }

  // ---------------------------------------------------------------------------------------
  // SessionHost

  /** @internal */
  send(seg: OutSegment): void {
    if (this.egress.active) {
      const bytes = seg.payload.length + HEADER_ESTIMATE;
      if (seg.flags & RST) this.egress.force(bytes, this.now);
      else if (!this.egress.take(bytes, this.now)) {
        this.stats.rate_limited_packets++;
        return;
      }
    }
    this.stats.packets_sent++;
    this.stats.bytes.sent += seg.payload.length;
    this.out.send(seg);
  }

  /** @internal */
  ended(s: Session, reason: EndReason, lost: number, now: number): void {
    const st = this.stats;
    this.allocator.release(s.client.addr, s.client.port, s.target.addr, s.target.port, now);
    st.sessions.active--;
    st.sessions.closed++;
    this.account();
    if (reason === "handshake_failure") st.handshakes.failed++;
    if (lost > 0 && isLossReason(reason)) st.lost[reason] += lost;
    this.out.routeDel(s.client, s.target);
    if (this.out.event) {
      this.emitEvent({ type: "close", client: s.client, target: s.target, reason, requests: lost });
    }
    if (s.scheduledAt !== NEVER || s.laterAt !== NEVER) {
      this.endedFiled++; // its entries went stale: swept soon (sweepTimers)
      this.sweepTimers();
    }
    const flow = flowOf(s);
    if (reason === "module") markModuleFailed(flow, s);
    flow.removeSession(s);
    if (flow.sessionCount === 0) {
      flow.slab = undefined;
      if (this.isCurrent(flow)) this.retire(flow, now);
    }
  }

  /** @internal */
  announce(s: Session): void {
    this.out.routeAdd(s.client, s.target);
  }

  /** @internal */
  reconnected(s: Session, detail: string): void {
    this.emitEvent({ type: "reconnect", client: s.client, target: s.target, detail });
  }

  /** @internal */
  gap(s: Session, resume: Chunk[], lost: number, now: number): void {
    this.stats.lost.capture_gap += lost;
    const flow = flowOf(s);
    const window = s.lastWindow;
    s.end("capture_gap", now);
    if (resume.length === 0) return;
    const replica = flow.replicas.find((r) => r.copy === s.copyIndex && r.target === s.target) ??
      { host: this, target: s.target, copy: s.copyIndex, module: undefined };
    const r = this.openSession(flow, replica, now);
    if (!r) return;
    for (const c of resume) {
      r.onCaptured(
        {
          src: flow.src,
          dst: flow.dst,
          seq: c.seq,
          ack: c.ack,
          flags: ACK,
          window,
          options: c.tsval !== undefined ? { timestamp: { tsval: c.tsval, tsecr: 0 } } : {},
          payload: c.data,
          ipId: c.ipId,
          timeMs: now,
        },
        c.data,
        now,
      );
    }
    this.schedule(r);
  }

  /** @internal */
  queued(s: Session, delta: number): void {
    this.stats.queued_bytes += delta;
    this.account();
    if (delta > 0) {
      if (this.overBudget()) this.shed();
    } else if (s.queuedBytes === 0) {
      const flow = flowOf(s);
      flow.slab?.trim();
      if (!flow.idleArmed) this.armIdle(flow, this.now);
    }
  }

  private overBudget(): boolean {
    return this.stats.queued_bytes > this.config.maxMemoryBytes ||
      this.stats.footprint_bytes > this.config.memoryBudgetBytes;
  }

  /**
   * Over the global budget: end sessions (reason "memory") until the queued bytes fit again,
   * always the one holding the most bytes, and among equals the one whose target has made
   * no progress for the longest time. The session that happens to be growing is not
   * singled out. One scan of the live sessions per victim; it only runs over the budget.
   */
  private shed(): void {
    while (this.overBudget()) {
      // Sessions that never carried data go first: they cost room and hold no request.
      if (this.stats.footprint_bytes > this.config.memoryBudgetBytes && this.evictOne()) continue;
      let victim: Session | undefined;
      for (const s of this.allocator.holders()) {
        if (s.ended || s.queuedBytes === 0) continue;
        if (
          victim === undefined || s.queuedBytes > victim.queuedBytes ||
          (s.queuedBytes === victim.queuedBytes && s.lastProgressAt < victim.lastProgressAt)
        ) victim = s;
      }
      if (victim === undefined) return;
      victim.end("memory", this.now);
    }
  }
}
