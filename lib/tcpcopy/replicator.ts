/**
 * The data path of tcpcopy, free of I/O: captured frames -> lib/wire -> engine, engine
 * output -> packets built in place in the sender's arena, routes -> the intercept tunnel,
 * reply headers from the tunnel -> engine. The process edge (run.ts) owns the sockets, the
 * capture handles and the event loop; everything here is driven by calls and testable with
 * fakes.
 */
import type { EngineOutput } from "../engine/engine.ts";
import type { Endpoint, OutSegment } from "../engine/segment.ts";
import type { EngineStats, SessionEvent } from "../engine/stats.ts";
import type { CapturedSegment, ReplySegment } from "../engine/segment.ts";
import { ParsedTcp, parseIpTcp, parseTcpPacket } from "../wire/packet.ts";
import { buildTcpPacket, tcpPacketLength, type TcpPacketRepr } from "../wire/build.ts";
import { addrText } from "../engine/endpoint.ts";
import type { Logger } from "../stats/logger.ts";
import { FIN, PSH } from "../wire/tcp.ts";
import { SEQ_FIELD_INIT } from "../wire/seq.ts";

const EMPTY: Uint8Array = new Uint8Array(0);
import type { Comparer } from "./comparer.ts";
import type { OnlineMatcher } from "./online_match.ts";
import type { SegmentView } from "./compare_flow.ts";
import type { TargetAnswer } from "../compare/target_answer.ts";
import {
  emptyCapturedSegment,
  emptyPacketRepr,
  emptyReplySegment,
  emptyTimestamps,
  fillPacketRepr,
  readCapturedSegment,
  readEndpoints,
  readReplySegment,
} from "./convert.ts";

/** What the replicator needs of the session engine. */
export interface EngineLike {
  readonly stats: EngineStats;
  onCaptured(seg: CapturedSegment, nowMs: number): void;
  onReply(reply: ReplySegment, nowMs: number): void;
  /** A captured online server→client segment for module sessions (production's replies). */
  onOnline?(seg: CapturedSegment, nowMs: number, len?: number): void;
  tick(nowMs: number): void;
  nextDeadline(): number | undefined;
  closeAll(reason?: string, nowMs?: number): void;
}

/** What the replicator needs of a packet sender (lib/io PacketSender). */
export interface SenderLike {
  slot(len: number): Uint8Array;
  flush(): number;
  readonly pending: number;
  /** Packets a batch holds (the sender flushes by itself at the next slot); absent: no limit. */
  readonly capacity?: number;
}

/** A route endpoint as the tunnel encodes it. */
export interface RouteEndpoint {
  addr: Uint8Array;
  port: number;
}

/** What the replicator needs of the tunnel client. */
export interface RouteSink {
  addRoute(client: RouteEndpoint, target: RouteEndpoint): boolean;
  delRoute(client: RouteEndpoint, target: RouteEndpoint): boolean;
  /** Whether a route of this family can be registered now (absent: always). */
  canRoute?(v6: boolean): boolean;
  /** Writes the queued route messages now (absent: they go out by themselves). */
  flush?(): void;
}

/** Counters of the glue itself (the engine, capture and senders keep their own). */
export interface ReplicatorCounters {
  /** Frames handed in by the capture. */
  frames: number;
  /** Frames that were not TCP over IPv4/IPv6, or malformed. */
  parseErrors: number;
  /** Frames whose payload was cut by the snap length (skipped: replaying them would corrupt). */
  truncated: number;
  /** Reply headers handed in by the tunnel. */
  replies: number;
  /** Reply headers that did not parse. */
  replyErrors: number;
  /** Engine output the builder refused (bad addresses, options too long). */
  buildErrors: number;
  /** Engine output for an address family with no sender. */
  noSender: number;
  /** Engine segments larger than the MTU that were split before sending. */
  split: number;
  /** Server→client packets captured for `--compare` (never given to the engine). */
  answers: number;
  /** Server→client packets of transfers with a module (production's login verdicts). */
  moduleAnswers: number;
  /** Routes no intercept accepted (none connected, or its queue full). */
  routeFailures: number;
}

/** The replicator's collaborators. */
export interface ReplicatorOptions {
  /** Sender for IPv4 packets (null: IPv4 output is counted in noSender). */
  v4: SenderLike | null;
  /** Sender for IPv6 packets. */
  v6: SenderLike | null;
  /** Route registrations; may be set later with {@link Replicator.setRoutes}. */
  routes?: RouteSink | null;
  log: Logger;
  /** Wall clock in ms since the epoch. */
  now: () => number;
  /** Largest IP packet to send (-M); larger engine output is split into several segments. */
  mtu?: number;
  /**
   * `--compare`: the comparer and which packets are the online server's answers (those go to
   * the comparer only, never to the engine).
   */
  compare?: { comparer: Comparer; online: OnlineMatcher } | null;
  /**
   * Protocol modules: `modules` matches the online endpoints of transfers with a module (their
   * server→client packets go to the engine's `onOnline`: production's verdict on logins),
   * `all` those of every transfer (server→client packets are never replayed as clients').
   */
  moduleOnline?: { modules: OnlineMatcher; all: OnlineMatcher } | null;
}

/** Wires capture, engine, senders and tunnel together. */
export class Replicator implements EngineOutput {
  readonly counters: ReplicatorCounters = {
    frames: 0,
    parseErrors: 0,
    truncated: 0,
    replies: 0,
    replyErrors: 0,
    buildErrors: 0,
    noSender: 0,
    split: 0,
    routeFailures: 0,
    answers: 0,
    moduleAnswers: 0,
  };
  #engine: EngineLike | null = null;
  #routes: RouteSink | null;
  readonly #parsed = new ParsedTcp();
  readonly #reply = new ParsedTcp();
  // Reused for every reply and every packet built: the engine keeps nothing of a reply, and
  // lib/wire keeps nothing of a packet description (fewer objects per packet, one shape each).
  readonly #replySeg = emptyReplySegment();
  readonly #replyTs = emptyTimestamps();
  readonly #repr = emptyPacketRepr();
  readonly #cmp: Comparer | null;
  readonly #online: OnlineMatcher | null;
  readonly #modOnline: { modules: OnlineMatcher; all: OnlineMatcher } | null;
  /** The time of the last input (engine output and events are stamped with it). */
  #now = 0;
  // Reused for every captured client packet (the engine copies what it keeps; a SYN's options
  // are its own: see readCapturedSegment).
  readonly #capSeg: CapturedSegment = emptyCapturedSegment();
  readonly #capOptions = this.#capSeg.options;
  readonly #capTs = emptyTimestamps();
  // Reused for every answer packet handed to the comparer.
  readonly #ansSrc: Endpoint = { addr: EMPTY, family: 4, port: 0 };
  readonly #ansDst: Endpoint = { addr: EMPTY, family: 4, port: 0 };
  readonly #ansSeg: SegmentView = {
    seq: SEQ_FIELD_INIT,
    ack: SEQ_FIELD_INIT,
    flags: 0,
    payload: EMPTY,
    payloadFrom: 0,
    payloadLength: 0,
  };
  // Reused for every server packet handed to module sessions.
  readonly #modSeg: CapturedSegment = emptyCapturedSegment();

  constructor(private readonly opts: ReplicatorOptions) {
    this.#routes = opts.routes ?? null;
    this.#cmp = opts.compare?.comparer ?? null;
    this.#online = opts.compare?.online ?? null;
    this.#modOnline = opts.moduleOnline ?? null;
  }

  /** The comparer (`--compare`), or null. */
  get comparer(): Comparer | null {
    return this.#cmp;
  }

  /** Connects the engine (it is built with this object as its output). */
  attach(engine: EngineLike): void {
    this.#engine = engine;
  }

  /** Sets (or replaces) the tunnel that receives route registrations. */
  setRoutes(routes: RouteSink | null): void {
    this.#routes = routes;
  }

  get engine(): EngineLike {
    if (this.#engine === null) throw new Error("replicator: no engine attached");
    return this.#engine;
  }

  /** One captured frame of link type `linkType`; `tsMicros` is its capture time. */
  onFrame(frame: Uint8Array, linkType: number, tsMicros: number, nowMs: number): void {
    this.counters.frames++;
    const p = this.#parsed;
    if (parseTcpPacket(frame, linkType, p) !== null) {
      this.counters.parseErrors++;
      return;
    }
    this.#onTcp(p, tsMicros, nowMs);
  }

  /**
   * One packet parsed by the caller (the offline source, which parses to filter and rewrite
   * before replaying); `tsMicros` is its (scheduled) capture time.
   */
  onParsed(p: ParsedTcp, tsMicros: number, nowMs: number, recordedMicros = tsMicros): void {
    this.counters.frames++;
    this.#onTcp(p, tsMicros, nowMs, recordedMicros);
  }

  /**
   * `recordedMicros`: the packet's own capture time (an offline replay schedules packets at
   * other times; the online latencies come from the recording).
   */
  #onTcp(p: ParsedTcp, tsMicros: number, nowMs: number, recordedMicros = tsMicros): void {
    this.#now = nowMs;
    const cmp = this.#cmp;
    const mo = this.#modOnline;
    const answer = mo !== null && mo.all.isAnswer(p.srcAddr, p.srcPort, p.dstAddr, p.dstPort);
    if (answer && mo.modules.isAnswer(p.srcAddr, p.srcPort, p.dstAddr, p.dstPort)) {
      this.#onModuleAnswer(p, tsMicros, nowMs);
    }
    if (cmp !== null && this.#online!.isAnswer(p.srcAddr, p.srcPort, p.dstAddr, p.dstPort)) {
      this.#onAnswerPacket(cmp, p, recordedMicros / 1000, nowMs);
      return;
    }
    if (answer) return; // a server's packet: never replayed as a client's
    if (p.payloadTruncated) {
      this.counters.truncated++;
      return;
    }
    const seg = this.#capSeg;
    if (!readCapturedSegment(p, tsMicros / 1000, seg, this.#capOptions, this.#capTs)) {
      this.counters.parseErrors++;
      return;
    }
    this.engine.onCaptured(seg, nowMs);
    if (cmp !== null) cmp.onClient(seg.src, seg.dst, seg, recordedMicros / 1000, nowMs);
  }

  /**
   * A server→client packet of a transfer with a module: to the engine's module sessions (one
   * reused segment: the engine keeps nothing of it; options are not read).
   */
  #onModuleAnswer(p: ParsedTcp, tsMicros: number, nowMs: number): void {
    this.counters.moduleAnswers++;
    const s = this.#modSeg;
    readEndpoints(p, s.src, s.dst);
    s.seq = p.seq;
    s.ack = p.ack;
    s.flags = p.flags;
    s.window = p.window;
    s.payload = p.payload();
    s.timeMs = tsMicros / 1000;
    this.engine.onOnline?.(s, nowMs, p.payloadLength);
  }

  /** A server→client packet: to the comparer only (a cut payload is left to its gap logic). */
  #onAnswerPacket(cmp: Comparer, p: ParsedTcp, atMs: number, nowMs: number): void {
    this.counters.answers++;
    const src = this.#ansSrc, dst = this.#ansDst, s = this.#ansSeg;
    readEndpoints(p, src, dst);
    s.seq = p.seq;
    s.ack = p.ack;
    s.flags = p.flags;
    // the captured bytes themselves with the payload's place: no view per answer packet (a
    // cut payload is left to the comparer's gap logic)
    s.payload = p.bytes;
    s.payloadFrom = p.payloadOffset;
    s.payloadLength = p.payloadTruncated ? 0 : p.capturedPayloadLength;
    cmp.onServer(src, dst, s, atMs, nowMs);
  }

  /**
   * A target answer's header from the tunnel (`--compare`): false when no turn waits for it
   * (counted as unpaired; its summary is not decoded and {@link onAnswer} not called).
   */
  answerWanted(a: Pick<TargetAnswer, "client" | "target" | "ack">): boolean {
    return this.#cmp?.answerWanted(a) ?? false;
  }

  /** A target answer summary from the tunnel (`--compare`). */
  onAnswer(a: TargetAnswer, nowMs: number): void {
    this.#now = nowMs;
    this.#cmp?.onAnswer(a, nowMs);
  }

  /**
   * One reply header from the tunnel: bytes from the IP header on, with up to `prefix` bytes
   * of its payload (the prefix granted on its connection; 0: none, whatever follows).
   */
  onReplyBytes(bytes: Uint8Array, nowMs: number, prefix = 0): void {
    this.counters.replies++;
    const p = this.#reply;
    if (parseIpTcp(bytes, 0, p) !== null) {
      this.counters.replyErrors++;
      return;
    }
    const seg = this.#replySeg;
    if (!readReplySegment(p, seg, this.#replyTs, prefix)) {
      this.counters.replyErrors++;
      return;
    }
    this.#now = nowMs;
    this.#cmp?.onReply(seg.src, seg.dst, seg.seq, seg.ack, seg.flags, seg.payloadLength, nowMs);
    this.engine.onReply(seg, nowMs);
  }

  /** Runs the engine's due timers. */
  tick(nowMs: number): void {
    this.#now = nowMs;
    this.engine.tick(nowMs);
  }

  /** Gives the comparisons that are due their verdicts (`--compare`; every TICK_MS). */
  compareTick(nowMs: number): void {
    this.#cmp?.tick(nowMs);
  }

  /**
   * Sends everything the engine produced since the last flush, the routes first: intercept
   * must read a session's CLIENT_ADD before the target's SYN-ACK reaches it, or the reply waits
   * in its delay queue (1–4 ms, up to 40 ms, for two thirds of new connections when a full
   * batch went out in the middle of a capture drain, before the drain's routes).
   */
  flush(): void {
    const { v4, v6 } = this.opts;
    const v4Due = v4 !== null && v4.pending > 0, v6Due = v6 !== null && v6.pending > 0;
    if (v4Due || v6Due) this.#routes?.flush?.();
    if (v4Due) v4.flush();
    if (v6Due) v6.flush();
  }

  // EngineOutput

  log(line: string): void {
    this.opts.log.warn(line);
  }

  send(seg: OutSegment): void {
    const src = seg.src, dst = seg.dst;
    this.#cmp?.onSent(src, dst, seg.seq, seg.payload.length, this.#now);
    if (src.family !== dst.family || src.addr.length !== dst.addr.length) {
      this.counters.buildErrors++;
      return;
    }
    const sender = dst.family === 6 ? this.opts.v6 : this.opts.v4;
    if (sender === null) {
      this.counters.noSender++;
      return;
    }
    const repr = fillPacketRepr(seg, this.#repr);
    const len = tcpPacketLength(repr);
    if (len < 0) {
      this.counters.buildErrors++;
      return;
    }
    const mtu = this.opts.mtu ?? 65535;
    const payload = seg.payload;
    const room = mtu - (len - payload.length);
    if (len <= mtu || room <= 0) {
      this.#emit(sender, repr, len);
      return;
    }
    // Too big for the path (TCP options on top of a full MSS, or a coalesced capture): cut
    // the payload into MTU-sized segments; FIN and PSH stay on the last one.
    this.counters.split++;
    const last = Math.ceil(payload.length / room) - 1;
    for (let i = 0; i <= last; i++) {
      const part = payload.subarray(i * room, Math.min(payload.length, (i + 1) * room));
      const flags = i === last ? seg.flags : seg.flags & ~(FIN | PSH);
      const piece = {
        ...repr,
        seq: (seg.seq + i * room) >>> 0,
        flags,
        ipId: seg.ipId === undefined ? undefined : (seg.ipId + i) & 0xffff,
        payload: part,
      };
      this.#emit(sender, piece, len - payload.length + part.length);
    }
  }

  #emit(sender: SenderLike, repr: TcpPacketRepr, len: number): void {
    // a full batch goes out here, not inside slot(): after the routes queued so far
    if (sender.capacity !== undefined && sender.pending >= sender.capacity) {
      this.#routes?.flush?.();
      sender.flush();
    }
    let slot: Uint8Array;
    try {
      slot = sender.slot(len);
    } catch {
      this.counters.buildErrors++; // larger than the sender's slots
      return;
    }
    if (buildTcpPacket(repr, slot) !== len) {
      slot.fill(0); // the sender refuses a zero IP version: the slot is skipped, not sent
      this.counters.buildErrors++;
    }
  }

  routeAdd(client: Endpoint, target: Endpoint): void {
    const r = this.#routes;
    if (r === null || !r.addRoute(client, target)) {
      this.counters.routeFailures++;
      this.opts.log.limited(
        "route",
        "warn",
        `no intercept took the route for ${addrText(client)}:${client.port}; ` +
          `its replies cannot be seen`,
      );
    }
  }

  /**
   * No new session while no intercept could route its replies (they would reach the real
   * client addresses instead). Without a tunnel set (tests of the glue alone) always true.
   */
  canRoute(target: Endpoint): boolean {
    const r = this.#routes;
    return r === null || r.canRoute === undefined ||
      r.canRoute(target.family === 6);
  }

  routeDel(client: Endpoint, target: Endpoint): void {
    if (this.#routes !== null) this.#routes.delRoute(client, target);
  }

  event(e: SessionEvent): void {
    const cmp = this.#cmp;
    if (cmp !== null) {
      if (e.type === "open" && e.original !== undefined) {
        cmp.onSessionOpen(
          e.client,
          e.target,
          e.original,
          e.copy ?? 0,
          e.module ?? false,
          this.#now,
        );
      } else if (e.type === "pass" && e.original !== undefined) {
        cmp.onSessionPass(
          e.client,
          e.target,
          e.original,
          e.copy ?? 0,
          e.seq ?? 0,
          e.offset ?? 0,
          this.#now,
        );
      } else if (e.type === "close") cmp.onSessionClose(e.client, e.target, this.#now);
    }
    if (e.type !== "lost") return;
    this.opts.log.limited(
      `lost-${e.reason ?? "unknown"}`,
      "info",
      `session ${addrText(e.client)}:${e.client.port} -> ${addrText(e.target)}:${e.target.port} ` +
        `lost ` +
        `${e.requests ?? 0} request(s): ${e.reason ?? "unknown"}${
          e.detail ? ` (${e.detail})` : ""
        }`,
    );
  }
}
