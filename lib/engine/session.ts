/**
 * One emulated client connection to the target: the client half of TCP in user space.
 *
 * Client sequence numbers are kept (a synthesised SYN starts at first data - 1); the only
 * translation is the ACK space, learned from the target's reply headers. Requests are
 * released by turn: the client's online ACK tells how many response bytes it had received
 * before sending each request, and the next turn goes out once the target has sent as many
 * since the previous turn (with idle / no-answer fallbacks when the target's answer is
 * shorter or absent). Retransmission (RTO with back-off, fast retransmit), flow control,
 * reconnection after an early target close, and every teardown releasing the target's
 * socket are handled here. No I/O and no clock: the caller passes `now` and runs timers.
 */

import { tupleKey } from "./allocator.ts";
import { addrText } from "./endpoint.ts";
import type { ResolvedConfig } from "./config.ts";
import type {
  CapturedSegment,
  Endpoint,
  OutSegment,
  ReplySegment,
  SegmentOptions,
} from "./segment.ts";
import { ACK, FIN, PSH, RST, SYN } from "../wire/tcp.ts";
import { SEQ_FIELD_INIT, seqAdd, seqLe, seqLt, seqMax, seqSub } from "../wire/seq.ts";
import { ipv4ToU32, writeU32Ipv4 } from "../wire/addr.ts";
import { view } from "./slab.ts";
import { floatStart, SCRATCH, type SessionSlab, type SlabRow } from "./session_slab.ts";
import { type EndReason, type EngineStats, lossRule } from "./stats.ts";
import type { Chunk } from "./stream.ts";
import { ClientStream, CLOSE_FIN, CLOSE_RST, DATA, DUPLICATE, OUT_OF_ORDER } from "./stream.ts";
import type { ModuleBridge } from "./module_bridge.ts";

/** What a session needs from the engine that owns it. */
export interface SessionHost {
  readonly cfg: ResolvedConfig;
  /** Where the sessions' numbers live (one row each). */
  readonly slab: SessionSlab;
  readonly stats: EngineStats;
  /** A packet for the target; `seg` is valid during the call only (EngineOutput.send). */
  send(seg: OutSegment): void;
  /** The session is over; `lost` requests will never be answered. */
  ended(s: Session, reason: EndReason, lost: number, now: number): void;
  reconnected(s: Session, detail: string): void;
  /**
   * A capture gap was declared: `lost` requests vanished in it (besides the session's own
   * unanswered ones) and `resume` holds the captured segments from the next request on.
   */
  gap(s: Session, resume: Chunk[], lost: number, now: number): void;
  /** Queued byte count changed by `delta`. */
  queued(s: Session, delta: number): void;
  /**
   * Register the session's route again, right before a repeated SYN: a route lost or taken
   * over on the way (and a SYN-ACK parked in intercept's delay queue) is restored.
   */
  announce(s: Session): void;
}

/**
 * Where a session stands (see the state machine in README.md). Numeric codes from one table
 * (read on every segment); switches over it end in a `never` check. The state changes in
 * three places only: `connect()` (→ SYN_SENT), `onReplyInSynSent()` (→ ESTABLISHED) and
 * `end()` (→ ENDED); outside this file it is read-only ({@link Session.state}).
 */
export const SessionState = { CLOSED: 0, SYN_SENT: 1, ESTABLISHED: 2, ENDED: 3 } as const;
/** One of the {@link SessionState} codes. */
export type SessionState = (typeof SessionState)[keyof typeof SessionState];
const { CLOSED, SYN_SENT, ESTABLISHED, ENDED } = SessionState;
const NEVER = Number.POSITIVE_INFINITY;
/** Window we advertise at least (bytes), so the target is never stalled by a slow client. */
const MIN_ADVERTISED = 16384;
/** The endpoint of {@link OUT} between packets. */
const SCRATCH_ENDPOINT: Endpoint = { addr: new Uint8Array(4), family: 4, port: 0 };
/** The client endpoint of an IPv4 session's packet, refilled per packet (`Session.source`). */
const SRC4: Endpoint = { addr: new Uint8Array(4), family: 4, port: 0 };

/**
 * The engine, target and copy number a session replays its connection as (shared between
 * sessions).
 */
export interface SessionReplica {
  readonly host: SessionHost;
  readonly target: Endpoint;
  readonly copy: number;
}

/** See the module comment. */
export class Session implements SlabRow {
  /**
   * The state (bits 0-1, {@link phase}) and the reconnections so far (the bits above,
   * {@link reconnects}): one field for two small numbers, one of them rarely read.
   */
  private phaseBits: number = CLOSED;
  readonly stream: ClientStream;

  /** The client's SYN options (until the target's SYN-ACK: then the shared empty set). */
  private clientOpts: SegmentOptions = NO_OPTIONS;
  /** The client's last advertised window (raw field). */
  lastWindow = 65535;
  /** Bytes this session counts against the global budget. */
  queuedBytes = 0;
  /** Opaque owner data for the engine (the flow this session serves). */
  tag: unknown = undefined;
  /**
   * The protocol module's state (module_bridge.ts), only for transfers with a module: then
   * captured bytes go through it and {@link stream} is the replayed stream it feeds.
   */
  mod: ModuleBridge | undefined = undefined;

  // This session's numbers: a row of the engine's SessionSlab (session_slab.ts), the scratch
  // row once ended. Internal: read and written through the accessors below only.
  /** @internal The row's block of integer columns. */
  ints: Int32Array = SCRATCH.ints;
  /** @internal The row's block of float columns. */
  floats: Float64Array = SCRATCH.floats;
  /** @internal Start of the row's integer columns in {@link ints}. */
  ib = 0;
  /** Start of the row's float columns in {@link floats} (session_slab.ts `floatStart`). */
  private get fb(): number {
    return floatStart(this.ib);
  }

  /** Index in the stream's turns of the first turn not yet released. */
  private get relIdx(): number {
    return this.ints[this.ib + 0];
  }
  private set relIdx(v: number) {
    this.ints[this.ib + 0] = v;
  }
  private get sentIdx(): number {
    return this.ints[this.ib + 1];
  }
  private set sentIdx(v: number) {
    this.ints[this.ib + 1] = v;
  }
  private get ansIdx(): number {
    return this.ints[this.ib + 2];
  }
  private set ansIdx(v: number) {
    this.ints[this.ib + 2] = v;
  }
  /** Response bytes received when the target acknowledged the turn at ansIdx (-1: not yet). */
  private get ansAckRcv(): number {
    return this.ints[this.ib + 3];
  }
  private set ansAckRcv(v: number) {
    this.ints[this.ib + 3] = v;
  }
  private get chunkHint(): number {
    return this.ints[this.ib + 4];
  }
  private set chunkHint(v: number) {
    this.ints[this.ib + 4] = v;
  }
  private get synWindow(): number {
    return this.ints[this.ib + 5];
  }
  private set synWindow(v: number) {
    this.ints[this.ib + 5] = v;
  }
  private get targetWs(): number {
    return this.ints[this.ib + 6];
  }
  private set targetWs(v: number) {
    this.ints[this.ib + 6] = v;
  }
  private get effMss(): number {
    return this.ints[this.ib + 7];
  }
  private set effMss(v: number) {
    this.ints[this.ib + 7] = v;
  }
  private get synSends(): number {
    return this.ints[this.ib + 8];
  }
  private set synSends(v: number) {
    this.ints[this.ib + 8] = v;
  }
  private get retries(): number {
    return this.ints[this.ib + 9];
  }
  private set retries(v: number) {
    this.ints[this.ib + 9] = v;
  }
  private get dupAcks(): number {
    return this.ints[this.ib + 10];
  }
  private set dupAcks(v: number) {
    this.ints[this.ib + 10] = v;
  }
  private get unacked(): number {
    return this.ints[this.ib + 11];
  }
  private set unacked(v: number) {
    this.ints[this.ib + 11] = v;
  }
  /** The yes/no state, one bit each (accessors below); bits 8 and 9: onlineBase and rttSeq are set. */
  private get bits(): number {
    return this.ints[this.ib + 12];
  }
  private set bits(v: number) {
    this.ints[this.ib + 12] = v;
  }
  private get sndWnd(): number {
    return this.ints[this.ib + 13];
  }
  private set sndWnd(v: number) {
    this.ints[this.ib + 13] = v;
  }
  /** Window scale of the client's SYN (-1 stored: none). */
  private get clientWs(): number | undefined {
    const v = this.ints[this.ib + 14];
    return v < 0 ? undefined : v;
  }
  private set clientWs(v: number | undefined) {
    this.ints[this.ib + 14] = v === undefined ? -1 : v;
  }
  /** The client's last IP ID (-1 stored: none yet). */
  private get lastIpId(): number | undefined {
    const v = this.ints[this.ib + 15];
    return v < 0 ? undefined : v;
  }
  private set lastIpId(v: number | undefined) {
    this.ints[this.ib + 15] = v === undefined ? -1 : v;
  }
  /** What the client negotiated online (real SYN only). */
  private get clientIss(): number {
    return this.ints[this.ib + 16] >>> 0;
  }
  private set clientIss(v: number) {
    this.ints[this.ib + 16] = v;
  }
  /** Online server's ISN + 1 as seen in the client's ACKs. */
  private get onlineBase(): number | undefined {
    return (this.bits & 256) === 0 ? undefined : this.ints[this.ib + 17] >>> 0;
  }
  private set onlineBase(v: number | undefined) {
    if (v === undefined) this.bits &= ~256;
    else {
      this.ints[this.ib + 17] = v;
      this.bits |= 256;
    }
  }
  /** The connection to the target. */
  private get iss(): number {
    return this.ints[this.ib + 18] >>> 0;
  }
  private set iss(v: number) {
    this.ints[this.ib + 18] = v;
  }
  private get sndUna(): number {
    return this.ints[this.ib + 19] >>> 0;
  }
  private set sndUna(v: number) {
    this.ints[this.ib + 19] = v;
  }
  private get sndNxt(): number {
    return this.ints[this.ib + 20] >>> 0;
  }
  private set sndNxt(v: number) {
    this.ints[this.ib + 20] = v;
  }
  private get sndMax(): number {
    return this.ints[this.ib + 21] >>> 0;
  }
  private set sndMax(v: number) {
    this.ints[this.ib + 21] = v;
  }
  private get irs(): number {
    return this.ints[this.ib + 22] >>> 0;
  }
  private set irs(v: number) {
    this.ints[this.ib + 22] = v;
  }
  private get rcvNxt(): number {
    return this.ints[this.ib + 23] >>> 0;
  }
  private set rcvNxt(v: number) {
    this.ints[this.ib + 23] = v;
  }
  private get lastTargetTsval(): number {
    return this.ints[this.ib + 24] >>> 0;
  }
  private set lastTargetTsval(v: number) {
    this.ints[this.ib + 24] = v;
  }
  private get lastTsvalSent(): number {
    return this.ints[this.ib + 25] >>> 0;
  }
  private set lastTsvalSent(v: number) {
    this.ints[this.ib + 25] = v;
  }
  private get lastAckSent(): number {
    return this.ints[this.ib + 26] >>> 0;
  }
  private set lastAckSent(v: number) {
    this.ints[this.ib + 26] = v;
  }
  private get rttSeq(): number | undefined {
    return (this.bits & 512) === 0 ? undefined : this.ints[this.ib + 27] >>> 0;
  }
  private set rttSeq(v: number | undefined) {
    if (v === undefined) this.bits &= ~512;
    else {
      this.ints[this.ib + 27] = v;
      this.bits |= 512;
    }
  }
  private get synTimeMs(): number {
    return this.floats[this.fb + 0];
  }
  private set synTimeMs(v: number) {
    this.floats[this.fb + 0] = v;
  }
  private get lastTsAt(): number {
    return this.floats[this.fb + 1];
  }
  private set lastTsAt(v: number) {
    this.floats[this.fb + 1] = v;
  }
  private get rto(): number {
    return this.floats[this.fb + 2];
  }
  private set rto(v: number) {
    this.floats[this.fb + 2] = v;
  }
  private get rtoAt(): number {
    return this.floats[this.fb + 3];
  }
  private set rtoAt(v: number) {
    this.floats[this.fb + 3] = v;
  }
  private get persistAt(): number {
    return this.floats[this.fb + 4];
  }
  private set persistAt(v: number) {
    this.floats[this.fb + 4] = v;
  }
  private get delackAt(): number {
    return this.floats[this.fb + 5];
  }
  private set delackAt(v: number) {
    this.floats[this.fb + 5] = v;
  }
  private get gateAt(): number {
    return this.floats[this.fb + 6];
  }
  private set gateAt(v: number) {
    this.floats[this.fb + 6] = v;
  }
  private get gapAt(): number {
    return this.floats[this.fb + 7];
  }
  private set gapAt(v: number) {
    this.floats[this.fb + 7] = v;
  }
  private get srtt(): number {
    return this.floats[this.fb + 8];
  }
  private set srtt(v: number) {
    this.floats[this.fb + 8] = v;
  }
  private get rttvar(): number {
    return this.floats[this.fb + 9];
  }
  private set rttvar(v: number) {
    this.floats[this.fb + 9] = v;
  }
  private get rttSentAt(): number {
    return this.floats[this.fb + 10];
  }
  private set rttSentAt(v: number) {
    this.floats[this.fb + 10] = v;
  }
  private get lastReplyAt(): number {
    return this.floats[this.fb + 11];
  }
  private set lastReplyAt(v: number) {
    this.floats[this.fb + 11] = v;
  }
  private get lastReplyDataAt(): number {
    return this.floats[this.fb + 12];
  }
  private set lastReplyDataAt(v: number) {
    this.floats[this.fb + 12] = v;
  }
  private get lastAckAdvanceAt(): number {
    return this.floats[this.fb + 13];
  }
  private set lastAckAdvanceAt(v: number) {
    this.floats[this.fb + 13] = v;
  }
  private get lastClientAt(): number {
    return this.floats[this.fb + 14];
  }
  private set lastClientAt(v: number) {
    this.floats[this.fb + 14] = v;
  }
  private get establishedAt(): number {
    return this.floats[this.fb + 15];
  }
  private set establishedAt(v: number) {
    this.floats[this.fb + 15] = v;
  }
  /** Set by the engine's timers: the earliest deadline this session is filed under. */
  get scheduledAt(): number {
    return this.floats[this.fb + 16];
  }
  set scheduledAt(v: number) {
    this.floats[this.fb + 16] = v;
  }
  /**
   * Set by the engine's timers: a later deadline this session is still filed under (the one
   * an earlier deadline superseded, kept as a wake-up: see `Engine.schedule`), or NEVER.
   */
  get laterAt(): number {
    return this.floats[this.fb + 17];
  }
  set laterAt(v: number) {
    this.floats[this.fb + 17] = v;
  }
  // An idle session's only turn, stowed in the row (bit STOWED of `bits`; see `compact()`).
  private get stowStart(): number {
    return this.ints[this.ib + 28];
  }
  private set stowStart(v: number) {
    this.ints[this.ib + 28] = v;
  }
  private get stowEnd(): number {
    return this.ints[this.ib + 29];
  }
  private set stowEnd(v: number) {
    this.ints[this.ib + 29] = v;
  }
  private get stowAck(): number {
    return this.ints[this.ib + 30];
  }
  private set stowAck(v: number) {
    this.ints[this.ib + 30] = v;
  }
  private get stowFlags(): number {
    return this.ints[this.ib + 31];
  }
  private set stowFlags(v: number) {
    this.ints[this.ib + 31] = v;
  }
  private get stowRcv(): number {
    return this.ints[this.ib + 32];
  }
  private set stowRcv(v: number) {
    this.ints[this.ib + 32] = v;
  }
  private get stowAt(): number {
    return this.floats[this.fb + 18];
  }
  private set stowAt(v: number) {
    this.floats[this.fb + 18] = v;
  }
  /** The client's SYN was captured (a real handshake, its options known). */
  private get synCaptured(): boolean {
    return (this.bits & 1) !== 0;
  }
  private set synCaptured(v: boolean) {
    this.bits = v ? this.bits | 1 : this.bits & ~1;
  }
  /** The connection to the target was opened without the client's SYN. */
  private get synthesized(): boolean {
    return (this.bits & 2) !== 0;
  }
  private set synthesized(v: boolean) {
    this.bits = v ? this.bits | 2 : this.bits & ~2;
  }
  /** Window scaling is in effect with the target. */
  private get wsOk(): boolean {
    return (this.bits & 4) !== 0;
  }
  private set wsOk(v: boolean) {
    this.bits = v ? this.bits | 4 : this.bits & ~4;
  }
  /** Timestamps are in effect with the target. */
  private get tsOn(): boolean {
    return (this.bits & 8) !== 0;
  }
  private set tsOn(v: boolean) {
    this.bits = v ? this.bits | 8 : this.bits & ~8;
  }
  /** The client's FIN went to the target. */
  private get finSent(): boolean {
    return (this.bits & 16) !== 0;
  }
  private set finSent(v: boolean) {
    this.bits = v ? this.bits | 16 : this.bits & ~16;
  }
  /** The target acknowledged our FIN. */
  private get finAcked(): boolean {
    return (this.bits & 32) !== 0;
  }
  private set finAcked(v: boolean) {
    this.bits = v ? this.bits | 32 : this.bits & ~32;
  }
  /** The target sent its FIN. */
  private get targetFin(): boolean {
    return (this.bits & 64) !== 0;
  }
  private set targetFin(v: boolean) {
    this.bits = v ? this.bits | 64 : this.bits & ~64;
  }
  /** The target's socket is gone (we reset it, or it reset us). */
  private get rstSent(): boolean {
    return (this.bits & 128) !== 0;
  }
  private set rstSent(v: boolean) {
    this.bits = v ? this.bits | 128 : this.bits & ~128;
  }
  /** The stream's only turn is stowed in the row (see `stow()`). */
  private get stowed(): boolean {
    return (this.bits & 1024) !== 0;
  }
  private set stowed(v: boolean) {
    this.bits = v ? this.bits | 1024 : this.bits & ~1024;
  }

  constructor(
    readonly client: Endpoint,
    /**
     * Its engine, the target and the copy number this session replays its connection as: the
     * engine's shared (transfer, copy) record, one field instead of three per session (see
     * {@link host}, {@link target}, {@link copyIndex}).
     */
    readonly replica: SessionReplica,
    now: number,
  ) {
    const host = replica.host;
    host.slab.take(this);
    if (client.family === 4) {
      this.ints[this.ib + 33] = ipv4ToU32(client.addr);
      this.ints[this.ib + 34] = client.port + 1;
    }
    this.ansAckRcv = -1;
    this.synWindow = 65535;
    this.effMss = 536;
    this.clientWs = undefined;
    this.lastIpId = undefined;
    this.onlineBase = undefined;
    this.rttSeq = undefined;
    this.rtoAt = NEVER;
    this.persistAt = NEVER;
    this.delackAt = NEVER;
    this.gateAt = NEVER;
    this.gapAt = NEVER;
    this.scheduledAt = NEVER;
    this.laterAt = NEVER;
    this.rto = host.cfg.initialRtoMs;
    this.lastReplyAt = now;
    this.lastReplyDataAt = now;
    this.lastAckAdvanceAt = now;
    this.lastClientAt = now;
    this.stream = new ClientStream(0);
  }

  /** The engine this session works for. */
  get host(): SessionHost {
    return this.replica.host;
  }
  /** The current state; changed only in `connect()`, `onReplyInSynSent()` and `end()`. */
  private get phase(): SessionState {
    return (this.phaseBits & 3) as SessionState;
  }
  private set phase(v: SessionState) {
    this.phaseBits = (this.phaseBits & ~3) | v;
  }
  /** Reconnections so far. */
  get reconnects(): number {
    return this.phaseBits >>> 2;
  }
  /** Where this session sends its packets (the target's shared endpoint). */
  get target(): Endpoint {
    return this.replica.target;
  }
  /** Which copy of its connection this session is (`-n`: 0 for the first). */
  get copyIndex(): number {
    return this.replica.copy;
  }

  /** The rewritten tuple as text (`client|port|target|port`), for diagnostics: built on request. */
  get key(): string {
    const c = this.client, t = this.target;
    return tupleKey(addrText(c), c.port, addrText(t), t.port);
  }

  /** Captured client bytes in order (the stream itself without a module). */
  private get captured(): ClientStream {
    return this.mod === undefined ? this.stream : this.mod.cap;
  }

  /** Client bytes this session holds (captured and, with a module, replayed and replies). */
  private heldBytes(): number {
    return this.mod === undefined ? this.stream.bytes : this.mod.bytes;
  }

  /** Where the session stands (read-only: the session changes it itself). */
  get state(): SessionState {
    return this.phase;
  }

  /** The session is over (the engine forgets it). */
  get ended(): boolean {
    return this.phase === ENDED;
  }

  /** Last time the target acknowledged client data or sent response bytes. */
  get lastProgressAt(): number {
    return Math.max(this.lastAckAdvanceAt, this.lastReplyDataAt);
  }

  /** Bytes of response the target has sent on this connection (its FIN counts one). */
  get targetReceived(): number {
    return this.phase === ESTABLISHED ? seqSub(this.rcvNxt, seqAdd(this.irs, 1)) : 0;
  }

  // ---------------------------------------------------------------------------------------
  // Client side: captured segments

  /** A captured segment of this connection; `data` is the engine's copy of the payload. */
  onCaptured(seg: CapturedSegment, data: Uint8Array, now: number): void {
    if (this.phase === ENDED) return;
    this.unstow();
    const host = this.host;
    this.lastClientAt = now;
    this.lastWindow = seg.window;
    if (seg.ipId !== undefined) this.lastIpId = seg.ipId;
    const flags = seg.flags;
    if (flags & SYN) {
      if (!(flags & ACK) && this.phase === CLOSED && !this.synCaptured) this.startReal(seg, now);
      else host.stats.ignored.syn_retransmit++;
      return;
    }
    if (!this.synCaptured && this.phase === CLOSED && data.length === 0) {
      host.stats.ignored.unknown_flow++;
      return;
    }
    const hasAck = (flags & ACK) !== 0;
    if (this.onlineBase === undefined && hasAck) this.onlineBase = seg.ack;
    if (this.synCaptured && this.synTimeMs >= 0 && hasAck && seg.timeMs >= this.synTimeMs) {
      // The client's first ACK after its SYN: one online round trip (kept for logs/pacing).
      this.synTimeMs = -1;
    }
    const st = this.stream;
    const mod = this.mod;
    const sink = mod ?? st;
    if (mod !== undefined) mod.now = now;
    const ack = hasAck ? seg.ack : this.lastOnlineAck();
    if (data.length > 0) {
      if (!this.synCaptured && this.phase === CLOSED) this.startSynthesized(seg.seq, now);
      const before = this.heldBytes();
      const reqs = st.requests;
      const r = sink.add({
        seq: seg.seq,
        data,
        ack,
        tsval: seg.options.timestamp?.tsval,
        ipId: seg.ipId,
      });
      if (r === DUPLICATE) host.stats.ignored.duplicate++;
      host.stats.requests.captured += st.requests - reqs;
      this.account(this.heldBytes() - before);
      if (this.ended) return;
      if (mod?.failure !== undefined) return this.moduleFailed(now);
      if (r === OUT_OF_ORDER && this.gapAt === NEVER) this.gapAt = now + host.cfg.gapTimeoutMs;
    } else if (!(flags & (FIN | RST))) {
      host.stats.ignored.pure_ack++;
      return;
    }
    if (flags & (FIN | RST)) {
      const before = this.heldBytes();
      const reqs = st.requests;
      if (flags & FIN) sink.fin(seqAdd(seg.seq, data.length), ack);
      if (flags & RST) sink.rst(seg.seq, ack);
      if (mod !== undefined) {
        host.stats.requests.captured += st.requests - reqs;
        this.account(this.heldBytes() - before);
        if (this.ended) return;
        if (mod.failure !== undefined) return this.moduleFailed(now);
      }
    }
    if (!this.captured.hasHole) this.gapAt = NEVER;
    this.progress(now);
  }

  /** The module ended the session (`out.fail`): it already counted and logged why. */
  private moduleFailed(now: number): void {
    this.end("module", now);
  }

  /**
   * A captured segment of the online server to this session's client (production's replies):
   * for the module only (its verdict on a login), `len` payload bytes of which `payload` is
   * what the capture kept.
   */
  onOnline(seg: CapturedSegment, len: number, now: number): void {
    const mod = this.mod;
    if (mod === undefined || !mod.active || this.ended) return;
    mod.now = now;
    const st = this.stream;
    const before = this.heldBytes();
    const reqs = st.requests;
    mod.online(seg.seq, seg.flags, seg.payload, len);
    this.host.stats.requests.captured += st.requests - reqs;
    this.account(this.heldBytes() - before);
    if (this.ended) return;
    if (mod.failure !== undefined) return this.moduleFailed(now);
    this.progress(now);
  }

  /** Reply payload for the module (target sequence order is restored by the bridge). */
  private moduleReply(mod: ModuleBridge, r: ReplySegment, now: number): void {
    const st = this.stream;
    mod.now = now;
    const before = this.heldBytes();
    const reqs = st.requests;
    mod.target(r.seq, r.payloadLength, r.payloadPrefix);
    this.host.stats.requests.captured += st.requests - reqs;
    this.account(this.heldBytes() - before);
    if (!this.ended && mod.failure !== undefined) this.moduleFailed(now);
  }

  private lastOnlineAck(): number {
    const st = this.stream;
    return st.turns.length > st.turnHead ? st.turns[st.turns.length - 1].ack : this.onlineBase ?? 0;
  }

  private startReal(seg: CapturedSegment, now: number): void {
    this.synCaptured = true;
    this.clientIss = seg.seq;
    this.clientWs = seg.options.wscale;
    this.clientOpts = seg.options;
    this.synWindow = seg.window;
    this.synTimeMs = seg.timeMs;
    this.stream.end = seqAdd(seg.seq, 1);
    this.mod?.start(this.stream.end);
    this.connect(seg.seq, false, now);
  }

  private startSynthesized(firstSeq: number, now: number): void {
    this.synthesized = true;
    this.host.stats.handshakes.synthesized++;
    this.stream.end = firstSeq;
    this.mod?.start(firstSeq);
    this.connect(seqAdd(firstSeq, -1), true, now);
  }

  /** Open a (new) connection to the target with ISN `iss`. */
  private connect(iss: number, synthesized: boolean, now: number): void {
    this.synthesized = synthesized;
    this.iss = iss;
    this.sndUna = this.sndNxt = this.sndMax = seqAdd(iss, 1);
    this.phase = SYN_SENT;
    this.finSent =
      this.finAcked =
      this.targetFin =
      this.rstSent =
        false;
    this.tsOn = this.wsOk = false;
    this.synSends = 0;
    this.retries = 0;
    this.rto = this.host.cfg.initialRtoMs;
    this.dupAcks = 0;
    this.unacked = 0;
    this.rttSeq = undefined;
    this.delackAt = this.persistAt = this.gateAt = NEVER;
    this.sendSyn(now);
  }

  private sendSyn(now: number): void {
    const cfg = this.host.cfg;
    const ceiling = cfg.mtu - this.headerBytes();
    let options: SegmentOptions;
    let window: number;
    if (this.synthesized) {
      options = { mss: Math.min(cfg.mss, ceiling) };
      window = 65535;
    } else {
      const o = this.clientOpts;
      options = { mss: Math.min(o.mss ?? cfg.mss, ceiling) };
      if (o.wscale !== undefined) options.wscale = o.wscale;
      if (o.sackPermitted) options.sackPermitted = true;
      if (o.timestamp) {
        options.timestamp = { tsval: o.timestamp.tsval, tsecr: 0 };
        this.lastTsvalSent = o.timestamp.tsval;
        this.lastTsAt = now;
      }
      window = this.synWindow;
    }
    this.synSends++;
    if (this.synSends > 1) {
      this.host.stats.handshakes.syn_retransmits++;
      this.host.announce(this);
    } else this.host.stats.handshakes.sent++;
    KEPT.synOptions = options;
    this.emit(SYN, this.iss, 0, window, options, EMPTY);
    this.rtoAt = now + this.rto;
  }

  /** IP + TCP header bytes of this session's family (40 for IPv4, 60 for IPv6). */
  private headerBytes(): number {
    return this.client.family === 6 ? 60 : 40;
  }

  private account(delta: number): void {
    if (delta === 0) return;
    this.queuedBytes += delta;
    this.host.queued(this, delta);
    if (this.queuedBytes > this.host.cfg.maxSessionBytes && this.phase !== ENDED) {
      this.end("queue_overflow", this.lastClientAt);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Target side: reply headers

  /** A reply header from the target on this session's tuple. */
  onReply(r: ReplySegment, now: number): void {
    switch (this.phase) {
      case ENDED:
        return;
      case CLOSED:
        this.lastReplyAt = now;
        return;
      case SYN_SENT:
        this.lastReplyAt = now;
        this.onReplyInSynSent(r, now);
        return;
      case ESTABLISHED:
        break;
      default:
        return unreachable("session state", this.phase);
    }
    this.unstow();
    this.onReplyEstablished(r, now);
    this.stow(); // a finished last turn (only if the session is still established)
  }

  /** {@link onReply} of an established session (its turn put back). */
  private onReplyEstablished(r: ReplySegment, now: number): void {
    const flags = r.flags;
    this.lastReplyAt = now;
    if (flags & RST) {
      // Only a reset of this socket: one of an earlier connection on the tuple (a reply that
      // was on its way when this session took the tuple over) must not end or replay it.
      if (this.fromThisSocket(r.seq)) this.onTargetReset(now);
      return;
    }
    if (flags & SYN) {
      // SYN-ACK retransmission: our handshake ACK was lost.
      this.sendAck();
      return;
    }
    const ts = r.options.timestamp;
    if (this.tsOn && ts && seqLt(this.lastTargetTsval, ts.tsval)) this.lastTargetTsval = ts.tsval;
    const wnd = this.wsOk ? r.window * (1 << this.targetWs) : r.window;
    if (flags & ACK) this.onAck(r.ack, wnd, r.payloadLength === 0 && !(flags & FIN), now);
    if (this.phase !== ESTABLISHED) return;
    const len = r.payloadLength;
    let ackNow = false;
    let force = false;
    if (len > 0 || flags & FIN) {
      const end = seqAdd(r.seq, len);
      if (len > 0) {
        if (seqLt(this.rcvNxt, end) && this.fromThisSocket(r.seq)) {
          this.rcvNxt = end;
          this.lastReplyDataAt = now;
          this.unacked++;
          if (this.unacked >= 2) ackNow = true;
        } else force = true; // a retransmission: our ACK was lost
        const mod = this.mod;
        if (mod !== undefined && mod.active) {
          this.moduleReply(mod, r, now);
          if (this.phase !== ESTABLISHED) return;
        }
      }
      if (flags & FIN) {
        ackNow = true;
        if (!this.targetFin && end === this.rcvNxt) { // in order: an older FIN is not ours
          this.targetFin = true;
          this.rcvNxt = seqAdd(this.rcvNxt, 1);
          this.lastReplyDataAt = now;
        }
      }
    }
    this.progress(now);
    if (this.phase !== ESTABLISHED) return;
    if (force || (ackNow && this.lastAckSent !== this.rcvNxt)) this.sendAck();
    else if (this.unacked > 0 && this.delackAt === NEVER) {
      this.delackAt = now + this.host.cfg.delayedAckMs;
    }
  }

  /**
   * Whether a target segment at `seq` can come from this session's target socket: within its
   * sequence space (after the target's ISN) and at most our window ahead of what was received
   * (reply headers may have been lost). Target ISNs grow with time on a tuple, so a late
   * segment of an earlier socket on it (the tuple was reused) lies behind this one's ISN.
   */
  private fromThisSocket(seq: number): boolean {
    const ws = this.wsOk ? this.clientWs ?? 0 : 0;
    return seqLt(this.irs, seq) && seqSub(seq, this.rcvNxt) <= this.advertised() * (1 << ws);
  }

  private onReplyInSynSent(r: ReplySegment, now: number): void {
    const flags = r.flags;
    const expected = seqAdd(this.iss, 1);
    if (flags & ACK && r.ack !== expected) {
      // A segment of an older connection on this tuple (RFC 9293 §3.10.7.3): reset it so the
      // target frees that socket, then try the SYN again.
      if (!(flags & RST)) {
        this.emit(RST, r.ack, 0, 0, NO_OPTIONS, EMPTY);
        this.host.stats.resets++;
        this.sendSyn(now);
      }
      return;
    }
    if (flags & RST) {
      if (flags & ACK) this.fail("handshake_failure", now, "connection refused");
      return;
    }
    if (!(flags & SYN) || !(flags & ACK)) return;
    const cfg = this.host.cfg;
    this.irs = r.seq;
    this.rcvNxt = seqAdd(r.seq, 1);
    const o = r.options;
    this.wsOk = !this.synthesized && this.clientWs !== undefined && o.wscale !== undefined;
    this.targetWs = this.wsOk ? Math.min(o.wscale ?? 0, 14) : 0;
    this.tsOn = !this.synthesized && this.clientOpts.timestamp !== undefined &&
      o.timestamp !== undefined;
    if (this.tsOn && o.timestamp) this.lastTargetTsval = o.timestamp.tsval;
    this.clientOpts = NO_OPTIONS; // a reconnection synthesises its SYN: not needed any more
    // MSS counts payload only; options ride in it too (RFC 6691), so a segment with the
    // timestamp option (12 bytes with its NOPs) carries 12 bytes less.
    const optionBytes = this.tsOn ? 12 : 0;
    this.effMss = Math.max(
      64,
      Math.min(o.mss ?? 536, cfg.mtu - this.headerBytes(), this.synthesized ? cfg.mss : 65535) -
        optionBytes,
    );
    this.sndUna = this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
    this.sndWnd = r.window;
    this.mod?.targetStart(this.rcvNxt);
    this.phase = ESTABLISHED;
    this.establishedAt = now;
    this.lastReplyDataAt = now;
    this.lastAckAdvanceAt = now;
    this.rtoAt = NEVER;
    this.retries = 0;
    this.rto = cfg.initialRtoMs;
    if (this.synSends === 1) this.rttSample(now - (this.rttSentAt || now));
    this.host.stats.handshakes.established++;
    this.sendAck();
    this.progress(now);
  }

  private onAck(ack: number, wnd: number, pure: boolean, now: number): void {
    if (seqLt(this.sndMax, ack)) return; // acks something never sent: ignore
    if (seqLt(ack, this.sndUna)) return; // older than what was acknowledged: not a window update
    const oldWnd = this.sndWnd;
    this.sndWnd = wnd;
    if (seqLt(this.sndUna, ack)) {
      if (this.rttSeq !== undefined && seqLe(this.rttSeq, ack)) {
        this.rttSample(now - this.rttSentAt);
        this.rttSeq = undefined;
      }
      this.sndUna = ack;
      if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
      this.dupAcks = 0;
      this.retries = 0;
      this.rto = this.rtoEstimate();
      this.lastAckAdvanceAt = now;
      if (this.finSent && ack === seqAdd(this.stream.finSeq ?? 0, 1)) this.finAcked = true;
      this.rtoAt = this.sndUna === this.sndMax ? NEVER : now + this.rto;
      this.persistAt = NEVER;
      this.markAnswered();
      this.releaseAcked();
    } else if (
      ack === this.sndUna && pure && wnd === oldWnd && this.sndUna !== this.sndMax
    ) {
      this.dupAcks++;
      if (this.dupAcks === 3) {
        this.host.stats.fast_retransmits++;
        this.retransmitFirst(now);
      }
    }
    if (wnd > 0) this.persistAt = NEVER;
  }

  private rttSample(ms: number): void {
    if (ms < 0) return;
    if (this.srtt === 0) {
      this.srtt = ms;
      this.rttvar = ms / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
      this.srtt = 0.875 * this.srtt + 0.125 * ms;
    }
  }

  private rtoEstimate(): number {
    const cfg = this.host.cfg;
    if (this.srtt === 0) return cfg.initialRtoMs;
    return Math.min(cfg.maxRtoMs, Math.max(cfg.minRtoMs, this.srtt + 4 * this.rttvar));
  }

  /** Free client data no replay can need any more and count answered requests. */
  private releaseAcked(): void {
    const st = this.stream;
    const keepFrom = st.turnStartOf(this.sndUna);
    const freed = st.releaseBefore(keepFrom);
    if (freed > 0) this.account(-freed);
    // Turns entirely acked, released and accounted can go.
    let i = st.turnHead;
    while (
      i < this.relIdx && i < this.ansIdx && i < this.sentIdx &&
      seqLe(st.turns[i].end, this.sndUna) && i + 1 < st.turns.length
    ) i++;
    st.dropTurns(i);
    const shift = st.compactTurns();
    if (shift) {
      this.relIdx -= shift;
      this.sentIdx -= shift;
      this.ansIdx -= shift;
    }
  }

  /**
   * The session is idle (nothing queued; the engine's idle sweep): give the stream's spare
   * array room back, keeping only the turns still needed.
   */
  compact(): void {
    if (this.stowed) {
      this.stream.dropStowedList();
      this.chunkHint = 0;
      this.stream.compactTurns(true); // the chunk list (no turn: nothing to shift)
      return;
    }
    const shift = this.stream.compactTurns(true);
    if (shift) {
      this.relIdx -= shift;
      this.sentIdx -= shift;
      this.ansIdx -= shift;
    }
    this.chunkHint = 0;
    if (this.stow()) this.stream.dropStowedList();
  }

  /**
   * Between requests a keep-alive session holds one turn, its last request (finished: released,
   * sent, accounted, acknowledged), kept for the next request's release rule and in case the
   * client sends more with the same ACK. Its numbers go to the row and the Turn to the pool (at
   * the end of every reply that leaves it so, and by the idle sweep, which drops the list too):
   * a held session has no Turn (88 bytes of heap with its `releaseAt` heap number) and, after the
   * idle sweep, no list (64 more). {@link unstow} puts the turn back, exactly, before anything
   * reads the turns (every way in that can: `onCaptured`, `onReply`, `drain`, `progress`); the
   * rest (timers, `nextWake`, `end`) find no unreleased, unsent or unanswered turn either way: the
   * indices stay 1, past the empty slot or list. True when the turn was stowed.
   */
  private stow(): boolean {
    const st = this.stream;
    if (
      this.mod !== undefined || this.phase !== ESTABLISHED || st.turnHead !== 0 ||
      st.turns.length !== 1 || this.relIdx !== 1 || this.sentIdx !== 1 || this.ansIdx !== 1 ||
      this.sndUna !== this.sndMax || st.hasHole
    ) return false;
    const t = st.turns[0];
    if (t.kind !== DATA || !seqLe(t.end, this.sndUna)) return false;
    this.stowStart = t.start;
    this.stowEnd = t.end;
    this.stowAck = t.ack;
    this.stowFlags = t.flags;
    this.stowRcv = t.releaseRcv;
    this.stowAt = t.releaseAt;
    st.stowOnlyTurn();
    this.stowed = true;
    return true;
  }

  /** Put a turn {@link stow} took out back (no-op unless one is stowed). */
  private unstow(): void {
    if (!this.stowed || this.phase === ENDED) return;
    this.stowed = false;
    this.stream.restoreTurn(
      this.stowFlags,
      this.stowStart,
      this.stowEnd,
      this.stowAck,
      this.stowRcv,
      this.stowAt,
    );
  }

  /**
   * A released request is answered when the target acknowledged all of it and sent response
   * bytes after its release and before the next request's release.
   *
   * Turns released at once (a module's `now`) do not wait for the answer before them, so their
   * release times say nothing about which request an answer belongs to. For a turn released at
   * once, or followed by one, the window is the target's own: response bytes sent after the
   * target acknowledged all of the turn and before it acknowledged all of the next (the reply
   * segments are handled in order, their ACK before their payload). A request/response server
   * answers a request after receiving it, so such bytes answer this turn or an earlier one:
   * requests that reach the target together (a pipelined batch) share one window and count one.
   */
  private markAnswered(): void {
    const st = this.stream;
    const rcv = this.targetReceived;
    while (this.ansIdx < this.relIdx) {
      const t = st.turns[this.ansIdx];
      if (t.kind !== DATA) {
        this.ansIdx++;
        continue;
      }
      if (!seqLe(t.end, this.sndUna)) break;
      let j = this.ansIdx + 1;
      while (j < this.relIdx && st.turns[j].kind !== DATA) j++;
      const next = j < this.relIdx ? st.turns[j] : undefined;
      let answered: boolean;
      if (t.now === true || next?.now === true) {
        // Called on every advance of sndUna: this is the moment the target had all of `t`.
        if (this.ansAckRcv < 0) this.ansAckRcv = rcv;
        answered = rcv > this.ansAckRcv;
        if (!answered && next && !seqLe(next.end, this.sndUna)) break; // window still open
      } else answered = (next ? next.releaseRcv : rcv) > t.releaseRcv;
      if (answered) {
        t.answered = true;
        this.host.stats.requests.answered++;
      } else if (!next) break;
      this.ansIdx++;
      this.ansAckRcv = -1;
    }
  }

  private onTargetReset(now: number): void {
    this.rstSent = true; // the target's socket is gone already
    if (this.hasClientDataPending()) this.reconnect(now, "target reset");
    else this.finish(now);
  }

  /** Captured client payload the target has not acknowledged yet. */
  private hasClientDataPending(): boolean {
    const st = this.stream;
    return seqLt(this.sndUna, st.end) && seqSub(st.end, this.sndUna) > 0 &&
      this.hasDataAfter(this.sndUna);
  }

  private hasDataAfter(seq: number): boolean {
    const st = this.stream;
    for (let i = st.turns.length - 1; i >= st.turnHead; i--) {
      const t = st.turns[i];
      if (t.kind === DATA && seqLt(seq, t.end)) return true;
      if (seqLe(t.end, seq)) break;
    }
    return st.ooo.length > 0;
  }

  /** Replay the rest of the stream on a new connection (target RST or early FIN). */
  private reconnect(now: number, why: string): void {
    const host = this.host;
    if (this.mod !== undefined) {
      // A new connection would need a new login: the module's session cannot go on there.
      this.fail("target_reset", now, `${why}; a module session does not reconnect`);
      return;
    }
    if (this.reconnects >= host.cfg.maxReconnects) {
      this.fail("target_reset", now, `${why}; reconnect limit reached`);
      return;
    }
    this.phaseBits += 4; // reconnects + 1
    host.stats.reconnects++;
    if (!this.rstSent) this.resetTarget();
    const st = this.stream;
    const resume = st.turnStartOf(this.sndUna);
    // Turns wholly before the resume point are finished; the resumed turn goes first, at once.
    let i = st.turnHead;
    while (i < st.turns.length) {
      const t = st.turns[i];
      if (seqLt(resume, t.end) || (t.start === t.end && seqLe(resume, t.start))) break;
      i++;
    }
    for (let k = i; k < st.turns.length; k++) {
      const t = st.turns[k];
      t.released = k === i;
      t.releaseRcv = 0;
      t.releaseAt = now;
    }
    this.relIdx = i < st.turns.length ? i + 1 : i;
    this.sentIdx = Math.min(this.sentIdx, i);
    this.ansIdx = Math.max(Math.min(this.ansIdx, this.relIdx), i);
    this.ansAckRcv = -1;
    const freed = st.releaseBefore(resume);
    if (freed > 0) this.account(-freed);
    this.chunkHint = st.head;
    host.reconnected(this, why);
    this.connect(seqAdd(resume, -1), true, now);
  }

  // ---------------------------------------------------------------------------------------
  // Pacing and sending

  /** Release turns that are due and send what the window allows. */
  private progress(now: number): void {
    if (this.phase !== ESTABLISHED) return;
    this.unstow();
    this.release(now);
    this.markAnswered();
    if (this.phase !== ESTABLISHED) return;
    this.transmit(now);
    if (this.phase !== ESTABLISHED) return;
    this.checkClose(now);
  }

  /** The release rule; see the module comment. */
  private release(now: number): void {
    const st = this.stream;
    const cfg = this.host.cfg;
    const rcv = this.targetReceived;
    this.gateAt = NEVER;
    while (this.relIdx < st.turns.length) {
      const t = st.turns[this.relIdx];
      const prev = this.relIdx > st.turnHead ? st.turns[this.relIdx - 1] : undefined;
      const prevRcv = prev ? prev.releaseRcv : 0;
      const prevAck = prev ? prev.ack : (this.onlineBase ?? t.ack);
      const prevAt = prev ? prev.releaseAt : this.establishedAt;
      const need = prevRcv + Math.max(0, seqSub(t.ack, prevAck));
      let go = cfg.noWait || t.now === true || rcv >= need;
      if (!go) {
        // Fallbacks apply once the previous request is fully with the target.
        const prevDone = !prev || seqLe(prev.end, this.sndUna);
        if (prevDone) {
          const at = rcv > prevRcv
            ? this.lastReplyDataAt + cfg.responseIdleMs
            : Math.max(prevAt, this.lastAckAdvanceAt, this.lastReplyDataAt) + cfg.noAnswerMs;
          if (now >= at) go = true;
          else this.gateAt = at;
        }
      }
      if (!go) break;
      t.released = true;
      t.releaseRcv = rcv;
      t.releaseAt = now;
      this.relIdx++;
    }
  }

  /** Send released bytes within the target's window, then a due FIN or RST. */
  private transmit(now: number): void {
    const st = this.stream;
    if (this.targetFin && this.hasUnsentReleasedData()) {
      this.reconnect(now, "target closed early");
      return;
    }
    const limit = this.relIdx < st.turns.length ? st.turns[this.relIdx].start : st.end;
    let sent = false;
    while (seqLt(this.sndNxt, limit)) {
      const inFlight = seqSub(this.sndNxt, this.sndUna);
      const room = this.sndWnd - inFlight;
      if (room <= 0) {
        if (this.sndWnd === 0 && this.sndUna === this.sndMax && this.persistAt === NEVER) {
          this.persistAt = now + this.rto;
        }
        break;
      }
      const idx = st.chunkAt(this.sndNxt, this.chunkHint);
      if (idx < 0) break;
      this.chunkHint = idx;
      const c = st.chunks[idx];
      const off = seqSub(this.sndNxt, c.seq);
      const n = Math.min(c.data.length - off, this.effMss, room, seqSub(limit, this.sndNxt));
      this.sendData(c, off, n, now);
      sent = true;
    }
    // Requests whose first byte is out.
    while (this.sentIdx < this.relIdx) {
      const t = st.turns[this.sentIdx];
      if (t.kind === DATA && !seqLt(t.start, this.sndMax) && t.start !== t.end) break;
      if (t.kind === DATA && !t.sent) {
        t.sent = true;
        this.host.stats.requests.sent++;
      }
      this.sentIdx++;
    }
    if (sent && this.unacked === 0) this.delackAt = NEVER;
  }

  /** Send at most one segment from `sndNxt` (after a retransmission timeout). */
  private transmitOne(now: number): void {
    const st = this.stream;
    const limit = this.relIdx < st.turns.length ? st.turns[this.relIdx].start : st.end;
    if (!seqLt(this.sndNxt, limit)) return;
    const idx = st.chunkAt(this.sndNxt, st.head);
    if (idx < 0) return;
    const c = st.chunks[idx];
    const off = seqSub(this.sndNxt, c.seq);
    const n = Math.min(c.data.length - off, this.effMss, seqSub(limit, this.sndNxt));
    this.sendData(c, off, n, now);
  }

  private hasUnsentReleasedData(): boolean {
    const st = this.stream;
    const limit = this.relIdx < st.turns.length ? st.turns[this.relIdx].start : st.end;
    return seqLt(this.sndUna, limit) || (this.relIdx < st.turns.length &&
      st.turns[this.relIdx].kind === DATA);
  }

  private sendData(c: Chunk, off: number, n: number, now: number): void {
    const seq = seqAdd(c.seq, off);
    const retrans = seqLt(seq, this.sndMax);
    const last = off + n === c.data.length;
    this.emit(
      ACK | (last ? PSH : 0),
      seq,
      this.rcvNxt,
      this.advertised(),
      this.dataOptions(c.tsval, now),
      off === 0 && n === c.data.length ? c.data : view(c.data, off, off + n),
      c.ipId,
    );
    const end = seqAdd(seq, n);
    if (retrans) this.host.stats.retransmits++;
    else if (this.rttSeq === undefined) {
      this.rttSeq = end;
      this.rttSentAt = now;
    }
    if (retrans && this.rttSeq !== undefined && seqLe(seq, this.rttSeq)) this.rttSeq = undefined;
    this.sndNxt = end;
    if (seqLt(this.sndMax, end)) this.sndMax = end;
    if (this.rtoAt === NEVER) this.rtoAt = now + this.rto;
    this.unacked = 0;
    this.delackAt = NEVER;
  }

  /** Forward the client's FIN or RST once due; finish when both directions are done. */
  private checkClose(now: number): void {
    const st = this.stream;
    if (st.closed && this.relIdx === st.turns.length) {
      const last = st.turns[st.turns.length - 1];
      switch (last.kind) {
        case CLOSE_RST:
          if (this.sndUna === last.start) {
            this.emit(RST | ACK, last.start, this.rcvNxt, 0, NO_OPTIONS, EMPTY);
            this.rstSent = true;
            this.host.stats.resets++;
            this.end("client_reset", now, true);
          }
          return;
        case CLOSE_FIN:
          if (this.sndNxt === last.start) this.sendFin(last.start, now);
          break;
        case DATA:
          break; // not closed yet: the stream's close turn is always its last
        default:
          return unreachable("turn kind", last.kind);
      }
    }
    if (this.finAcked && this.targetFin) this.finish(now);
  }

  /** Send (or resend) the client's FIN at `seq`, after every byte of the stream. */
  private sendFin(seq: number, now: number): void {
    if (this.finSent) this.host.stats.retransmits++;
    this.emit(
      FIN | ACK,
      seq,
      this.rcvNxt,
      this.advertised(),
      this.dataOptions(undefined, now),
      EMPTY,
    );
    this.finSent = true;
    this.sndNxt = seqAdd(seq, 1);
    if (seqLt(this.sndMax, this.sndNxt)) this.sndMax = this.sndNxt;
    if (this.rtoAt === NEVER) this.rtoAt = now + this.rto;
    this.unacked = 0;
    this.delackAt = NEVER;
  }

  /** Window value for the target: the client's, unscaled when scaling is not in effect. */
  private advertised(): number {
    const raw = this.lastWindow;
    if (this.wsOk) {
      const ws = this.clientWs ?? 0;
      const floor = Math.ceil(MIN_ADVERTISED / (1 << ws));
      return Math.min(65535, Math.max(raw, floor));
    }
    if (this.synthesized || this.clientWs === undefined) {
      return this.synthesized ? 65535 : Math.max(raw, MIN_ADVERTISED);
    }
    return Math.min(65535, Math.max(raw * (1 << this.clientWs), MIN_ADVERTISED));
  }

  /** Options for a non-SYN segment: only timestamps, and only when negotiated. */
  private dataOptions(clientTsval: number | undefined, now: number): SegmentOptions {
    if (!this.tsOn) return NO_OPTIONS;
    let v = clientTsval ?? seqAdd(this.lastTsvalSent, Math.max(0, Math.floor(now - this.lastTsAt)));
    if (seqLt(v, this.lastTsvalSent)) v = this.lastTsvalSent;
    if (v !== this.lastTsvalSent) {
      this.lastTsvalSent = v;
      this.lastTsAt = now;
    }
    TS.tsval = v;
    TS.tsecr = this.lastTargetTsval;
    return TS_OPTIONS;
  }

  private sendAck(): void {
    if (this.phase !== ESTABLISHED) return;
    this.emit(
      ACK,
      this.sndNxt,
      this.rcvNxt,
      this.advertised(),
      this.dataOptions(
        undefined,
        this.lastReplyAt,
      ),
      EMPTY,
    );
    this.unacked = 0;
    this.delackAt = NEVER;
  }

  private emit(
    flags: number,
    seq: number,
    ack: number,
    window: number,
    options: SegmentOptions,
    payload: Uint8Array,
    ipId?: number,
  ): void {
    const seg = OUT;
    seg.src = this.source();
    seg.dst = this.target;
    seg.seq = seq;
    seg.ack = flags & ACK ? ack : 0;
    seg.flags = flags;
    seg.window = window;
    seg.options = options;
    seg.payload = payload;
    if (flags & ACK) this.lastAckSent = ack;
    if (ipId !== undefined) seg.ipId = ipId;
    else if (this.lastIpId !== undefined) {
      this.lastIpId = (this.lastIpId + 1) & 0xffff;
      seg.ipId = this.lastIpId;
    } else seg.ipId = undefined;
    this.host.send(seg);
    seg.payload = EMPTY; // the session's bytes are not kept alive by the scratch object
  }

  /**
   * The client endpoint for a packet: an IPv4 client's from the slab row (already in cache while
   * the session works) into one shared endpoint, instead of the session's own endpoint object
   * and its address bytes, two or three objects that are cold at every packet of a session that
   * was idle (with 100,000 sessions, nearly every one).
   */
  private source(): Endpoint {
    // The port + 1; 0 for an IPv6 client, and in the scratch row of an ended session.
    const port = this.ints[this.ib + 34] - 1;
    if (port < 0) return this.client;
    writeU32Ipv4(this.ints[this.ib + 33], SRC4.addr);
    SRC4.port = port;
    return SRC4;
  }

  private retransmitFirst(now: number): void {
    const st = this.stream;
    if (this.finSent && this.sndUna === st.finSeq) {
      this.emit(
        FIN | ACK,
        this.sndUna,
        this.rcvNxt,
        this.advertised(),
        this.dataOptions(
          undefined,
          now,
        ),
        EMPTY,
      );
      this.host.stats.retransmits++;
      return;
    }
    const idx = st.chunkAt(this.sndUna, st.head);
    if (idx < 0) return;
    const c = st.chunks[idx];
    const off = seqSub(this.sndUna, c.seq);
    const n = Math.min(c.data.length - off, this.effMss, Math.max(this.sndWnd, 1));
    const saved = this.sndNxt;
    this.sendData(c, off, n, now);
    this.sndNxt = seqMax(saved, this.sndNxt);
  }

  // ---------------------------------------------------------------------------------------
  // Timers

  /** Earliest timer of this session. */
  nextWake(): number {
    if (this.phase === ENDED) return NEVER;
    let t = this.rtoAt;
    if (this.persistAt < t) t = this.persistAt;
    if (this.delackAt < t) t = this.delackAt;
    if (this.gateAt < t) t = this.gateAt;
    if (this.gapAt < t) t = this.gapAt;
    const idle = this.idleDeadline();
    return idle < t ? idle : t;
  }

  private idleDeadline(): number {
    const cfg = this.host.cfg;
    if (this.hasWork()) {
      return Math.max(this.lastReplyDataAt, this.lastAckAdvanceAt, this.lastClientAt) +
        cfg.sessionTimeoutMs;
    }
    if (this.finAcked || this.targetFin) {
      return Math.max(this.lastReplyAt, this.lastClientAt) + cfg.noAnswerMs;
    }
    return Math.max(this.lastReplyAt, this.lastClientAt) + cfg.keepaliveTimeoutMs;
  }

  /** Something is still expected from the target. */
  private hasWork(): boolean {
    if (this.phase !== ESTABLISHED) return true;
    const st = this.stream;
    if (
      this.sndUna !== this.sndMax || this.relIdx < st.turns.length || st.ooo.length > 0 ||
      (this.mod !== undefined && this.mod.cap.ooo.length > 0)
    ) {
      return true;
    }
    return this.ansIdx < this.relIdx && st.turns[this.ansIdx]?.kind === DATA;
  }

  /** Run due timers. */
  onTimer(now: number): void {
    if (this.phase === ENDED) return;
    const cfg = this.host.cfg;
    if (now >= this.gapAt) {
      this.gapAt = NEVER;
      if (this.captured.hasHole) {
        this.captureGap(now);
        if (this.ended) return;
      }
    }
    if (now >= this.rtoAt) {
      this.rtoAt = NEVER;
      this.retries++;
      if (this.phase === SYN_SENT) {
        if (this.synSends >= cfg.synRetries) {
          this.fail("handshake_failure", now, "no SYN-ACK");
          return;
        }
        this.rto = Math.min(this.rto * 2, cfg.maxRtoMs);
        this.sendSyn(now);
      } else if (this.sndUna !== this.sndMax) {
        if (this.retries > cfg.dataRetries) {
          this.fail("timeout", now, "retransmission limit");
          return;
        }
        this.rto = Math.min(this.rto * 2, cfg.maxRtoMs);
        this.rttSeq = undefined;
        // Go back to the first unacknowledged byte; the rest is resent as ACKs arrive.
        this.sndNxt = this.sndUna;
        this.chunkHint = this.stream.head;
        const before = this.host.stats.retransmits;
        this.transmitOne(now);
        if (this.host.stats.retransmits === before) this.checkClose(now);
        this.rtoAt = now + this.rto;
      }
    }
    if (now >= this.persistAt) {
      this.persistAt = NEVER;
      if (this.phase === ESTABLISHED && this.sndWnd === 0) {
        // Zero-window probe: an old sequence number makes the target answer with its window.
        this.emit(
          ACK,
          seqAdd(this.sndUna, -1),
          this.rcvNxt,
          this.advertised(),
          this.dataOptions(
            undefined,
            now,
          ),
          EMPTY,
        );
        this.rto = Math.min(this.rto * 2, cfg.maxRtoMs);
        this.persistAt = now + this.rto;
      }
    }
    if (now >= this.delackAt) {
      this.delackAt = NEVER;
      if (this.unacked > 0) this.sendAck();
    }
    if (now >= this.gateAt) {
      this.gateAt = NEVER;
      this.progress(now);
      if (this.ended) return;
    }
    if (now >= this.idleDeadline()) {
      if (this.hasWork()) this.fail("timeout", now, "target silent");
      else this.finish(now);
    }
  }

  /**
   * A hole in the captured stream did not fill in time: the online server got bytes the
   * capture missed. Skipping them would corrupt the stream, so the session ends and the
   * engine resumes on a new connection at the first request boundary visible after the hole
   * (a segment whose online ACK moved on from its contiguous predecessor).
   */
  private captureGap(now: number): void {
    const st = this.captured;
    const o = st.ooo;
    let k = 1;
    while (
      k < o.length &&
      !(o[k].seq === seqAdd(o[k - 1].seq, o[k - 1].data.length) && seqLt(o[k - 1].ack, o[k].ack))
    ) k++;
    const resume = k < o.length ? o.slice(k) : [];
    let lost = o.length > 0 && o[0].ack !== this.lastOnlineAck() ? 1 : 0;
    for (let i = 1; i < Math.min(k, o.length); i++) if (o[i].ack !== o[i - 1].ack) lost++;
    this.host.gap(this, resume, lost, now);
  }

  // ---------------------------------------------------------------------------------------
  // Teardown

  /** Requests captured and not answered (lost if the session ends now). */
  unansweredTurns(): number {
    const st = this.stream;
    let n = 0;
    for (let i = Math.max(this.ansIdx, st.turnHead); i < st.turns.length; i++) {
      const t = st.turns[i];
      if (t.kind === DATA && !t.answered) n++;
    }
    return n;
  }

  /**
   * Requests not yet wholly sent to the target (never sent, or cut short): at a shutdown
   * these certainly never arrive. Requests sent but not answered yet may still have been
   * served; their answers can be on the way.
   */
  unsentTurns(): number {
    const st = this.stream;
    const sent = this.phase === ESTABLISHED ? this.sndMax : undefined;
    let n = 0;
    for (let i = Math.max(this.ansIdx, st.turnHead); i < st.turns.length; i++) {
      const t = st.turns[i];
      if (t.kind === DATA && !t.answered && (sent === undefined || !seqLe(t.end, sent))) n++;
    }
    return n;
  }

  private fail(reason: EndReason, now: number, _detail: string): void {
    this.end(reason, now);
  }

  private finish(now: number): void {
    this.end(this.stream.closed ? "closed" : "idle", now);
  }

  /** Send an RST so the target drops its socket (twice if it may expect either number). */
  private resetTarget(): void {
    switch (this.phase) {
      case CLOSED:
      case ENDED:
        return; // no socket on the target (any more)
      case SYN_SENT:
        if (this.synSends === 0) return;
        this.emit(RST | ACK, seqAdd(this.iss, 1), this.rcvNxt, 0, NO_OPTIONS, EMPTY);
        this.host.stats.resets++;
        return;
      case ESTABLISHED:
        this.emit(RST | ACK, this.sndUna, this.rcvNxt, 0, NO_OPTIONS, EMPTY);
        this.host.stats.resets++;
        if (this.sndNxt !== this.sndUna) {
          this.emit(RST | ACK, this.sndNxt, this.rcvNxt, 0, NO_OPTIONS, EMPTY);
          this.host.stats.resets++;
        }
        return;
      default:
        return unreachable("session state", this.phase);
    }
  }

  /** End the session: release the target's socket and let the engine forget it. */
  end(reason: EndReason, now: number, rstDone = false): void {
    if (this.phase === ENDED) return;
    if (!rstDone && !this.rstSent) this.resetTarget();
    // Closed, reset by the client or idle: every request reached the target. A shutdown
    // loses the requests not sent yet; any other end, the requests not answered yet.
    const rule = lossRule(reason);
    const loss = rule === "none"
      ? 0
      : rule === "unsent"
      ? this.unsentTurns()
      : this.unansweredTurns();
    this.phase = ENDED;
    if (this.queuedBytes > 0) {
      const q = this.queuedBytes;
      this.queuedBytes = 0;
      this.host.queued(this, -q);
    }
    this.host.ended(this, reason, loss, now);
    // The row goes back; a late write (a caller still on the stack) lands in the scratch row.
    this.host.slab.release(this);
  }

  /** Release every queued request now, ignoring the turn rule. */
  drain(now: number): void {
    this.unstow();
    const st = this.stream;
    for (let i = this.relIdx; i < st.turns.length; i++) {
      const t = st.turns[i];
      t.released = true;
      t.releaseRcv = this.targetReceived;
      t.releaseAt = now;
    }
    this.relIdx = st.turns.length;
    this.progress(now);
  }
}

/**
 * The `default` of a switch over a union: `value` is `never` once every case is handled, so a
 * new state or kind does not compile until each switch handles it. Kept out of line so the
 * hot switches stay small.
 */
function unreachable(what: string, value: never): never {
  throw new Error(`unknown ${what} ${value}`);
}

const EMPTY = new Uint8Array(0);
const NO_OPTIONS: SegmentOptions = Object.freeze({}) as SegmentOptions;
/**
 * The timestamp option of every non-SYN segment (`dataOptions`), refilled per packet: valid
 * until the next packet, like {@link OUT}. Created with numbers above 2^31 so its fields hold
 * doubles from the start (sequence numbers and timestamps use all 32 bits).
 */
const TS = { tsval: SEQ_FIELD_INIT, tsecr: SEQ_FIELD_INIT };
const TS_OPTIONS: SegmentOptions = { timestamp: TS };
/**
 * The last SYN's options object, kept: its hidden class (and those of the smaller option sets
 * it was built through) lives only while an object has it, and a SYN's options die with the
 * packet. With one connection at a time, a collection between two SYNs took the class away,
 * the next SYN's options got a new one, and the code that builds packets (`fillPacketRepr`, the
 * replicator's `send`) was thrown away ("wrong map", "embedded weak objects cleared") and
 * compiled again at every connection (see `KEEPSAKE` in stream.ts).
 */
const KEPT: { synOptions: SegmentOptions } = { synOptions: NO_OPTIONS };
/**
 * The segment every session hands to {@link SessionHost.send}, refilled per packet: the host
 * reads it during the call and keeps nothing (a copy if it must), and does not call back into
 * the engine from `send`. One object of one shape instead of a segment and an options object
 * per packet.
 */
const OUT: OutSegment = {
  src: SCRATCH_ENDPOINT,
  dst: SCRATCH_ENDPOINT,
  seq: SEQ_FIELD_INIT,
  ack: SEQ_FIELD_INIT,
  flags: 0,
  window: 0,
  options: NO_OPTIONS,
  payload: EMPTY,
  ipId: undefined,
};
