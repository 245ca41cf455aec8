/**
 * The pure core of intercept: each captured reply goes to the batcher of the connection that
 * registered its exact 4-tuple; SYN/RST replies without a route wait in the delay queue until
 * the registration arrives; everything else without a route is counted and dropped.
 * No I/O and no timers: the server calls `tick(now)` every millisecond or so.
 */
import type { ReplyBatcher } from "./batcher.ts";
import type { ReplyInfo } from "./reply_packet.ts";
import { DEFAULT_DELAY_LIMITS, DelayQueue, type DelayQueueLimits } from "./delay_queue.ts";
import { inspectReply, newReplyInfo } from "./reply_packet.ts";
import { RST, SYN } from "../wire/tcp.ts";
import { DEFAULT_MAX_PEER_ROUTES, DEFAULT_MAX_ROUTES, RouteTable } from "./routing.ts";

/** A tunnel connection as the dispatcher sees it. */
export interface TunnelPeer {
  readonly batcher: ReplyBatcher;
  /** The peer deletes its routes when its sessions end (negotiated CLIENT_DEL). */
  readonly deletesRoutes?: boolean;
  /**
   * Who owns the routes this connection registers: the tcpcopy instance (authenticated
   * peers, several connections) or, when absent, the connection itself.
   */
  readonly owner?: unknown;
  /** The peer proved the shared secret: its registrations outrank unauthenticated ones. */
  readonly authenticated?: boolean;
  /** Answer summaries of its routes (Cap.ANSWERS, after its COMPARE message). */
  readonly answers?: AnswerSink;
}

/**
 * What the dispatcher tells a peer's answer tracker (lib/intercept/answers.ts). Route slots are
 * the route table's (lib/tunnel/routing.ts): the tracker files its flows by them, so it hears of
 * every slot of its own that goes or moves (`routeReleased`, `routesRenumbered`).
 */
export interface AnswerSink {
  /** Every reply routed to the peer, before its header is batched; `slot`: its route's. */
  reply(pkt: Uint8Array, info: ReplyInfo, now: number, slot: number): void;
  /** The route of `key`, in `slot`, is being deleted by the peer (CLIENT_DEL; still held). */
  routeDeleted(key: string, slot: number): void;
  /** The peer's route in `slot` went otherwise (expiry, eviction, quota) or moved away. */
  routeReleased(slot: number): void;
  /** The route table renumbered its slots: `renum[old]` is the new one (-1: none). */
  routesRenumbered(renum: Int32Array): void;
}

/** Counters of the dispatcher (monotonic). */
export interface DispatchCounters {
  seen: number;
  forwarded: number;
  droppedNoRoute: number;
  droppedQueueFull: number;
  droppedUnsupported: number;
  malformed: number;
  delayed: number;
  delayedFlushed: number;
  routesAdded: number;
  routesDeleted: number;
  /**
   * CLIENT_ADDs refused because another owner held the tuple's live route (a hijack
   * attempt, or two tcpcopy instances replaying onto the same client tuple at once).
   */
  routesContested: number;
  /**
   * CLIENT_ADDs of an authenticated peer that took a live route from an unauthenticated one
   * (a tuple pre-registered by a peer let in by the allow-list, or before a secret was set).
   */
  routesReclaimed: number;
}

/** Settings of the dispatcher. */
export interface DispatchOptions {
  routeTtlMs: number;
  /** Most routes held; a registration over it evicts an old unused route. */
  maxRoutes: number;
  /** Most routes of one owner; a registration over it evicts the owner's oldest. */
  maxPeerRoutes: number;
  delay: DelayQueueLimits;
  /** Payload bytes kept with a delayed reply (the largest prefix any peer may get). */
  delayPrefix: number;
}

/** Defaults: routes idle for 11 minutes expire (tcpcopy's session timeout is 10). */
export const DEFAULT_DISPATCH: DispatchOptions = {
  routeTtlMs: 660_000,
  maxRoutes: DEFAULT_MAX_ROUTES,
  maxPeerRoutes: DEFAULT_MAX_PEER_ROUTES,
  delay: DEFAULT_DELAY_LIMITS,
  delayPrefix: 0,
};

/** The reply dispatcher. */
export class Dispatcher<P extends TunnelPeer> {
  readonly routes: RouteTable<P>;
  readonly delay: DelayQueue;
  readonly counters: DispatchCounters = {
    seen: 0,
    forwarded: 0,
    droppedNoRoute: 0,
    droppedQueueFull: 0,
    droppedUnsupported: 0,
    malformed: 0,
    delayed: 0,
    delayedFlushed: 0,
    routesAdded: 0,
    routesDeleted: 0,
    routesContested: 0,
    routesReclaimed: 0,
  };
  readonly opts: DispatchOptions;
  readonly #info = newReplyInfo();
  #peers = new Set<P>();

  constructor(opts: Partial<DispatchOptions> = {}) {
    this.opts = { ...DEFAULT_DISPATCH, ...opts };
    this.routes = new RouteTable<P>(
      this.opts.routeTtlMs,
      this.opts.maxRoutes,
      this.opts.maxPeerRoutes,
      (p) => p.owner ?? p,
    );
    this.delay = new DelayQueue(this.opts.delay);
    this.routes.listener = {
      released: (slot, peer) => peer.answers?.routeReleased(slot),
      renumbered: (renum) => {
        for (const p of this.#peers) p.answers?.routesRenumbered(renum);
      },
    };
  }

  /** Connections currently known. */
  get peers(): ReadonlySet<P> {
    return this.#peers;
  }

  /** A connection finished its hello. */
  addPeer(peer: P): void {
    this.#peers.add(peer);
  }

  /** A connection closed: its routes go with it. */
  removePeer(peer: P): void {
    if (!this.#peers.delete(peer)) return;
    this.counters.routesDeleted += this.routes.deletePeer(peer);
  }

  /** One captured reply (bytes from the IP header). Returns the peer it was queued for. */
  reply(pkt: Uint8Array, now: number): P | undefined {
    const c = this.counters;
    c.seen++;
    const info = this.#info;
    if (inspectReply(pkt, info) !== undefined) {
      c.malformed++;
      return undefined;
    }
    const slot = this.routes.getSlot(info.key, now);
    const peer = slot < 0 ? undefined : this.routes.peerAt(slot);
    if (peer === undefined) {
      if (info.flags & (SYN | RST)) {
        const keep = info.l4 + info.tcpLen + Math.min(info.capturedPayload, this.opts.delayPrefix);
        if (this.delay.add(info.key, pkt.slice(0, keep), now)) {
          c.delayed++;
          return undefined;
        }
      }
      c.droppedNoRoute++;
      return undefined;
    }
    this.#enqueue(peer, pkt, now, slot);
    return peer;
  }

  #enqueue(peer: P, pkt: Uint8Array, now: number, slot: number): boolean {
    // the answer this reply ends is queued before the reply's header
    peer.answers?.reply(pkt, this.#info, now, slot);
    const r = peer.batcher.add(pkt, this.#info, now);
    switch (r) {
      case "queued":
        this.counters.forwarded++;
        return true;
      case "dropped-full":
        this.counters.droppedQueueFull++;
        return false;
      case "unsupported":
        this.counters.droppedUnsupported++;
        return false;
      default: {
        const never: never = r;
        throw new Error(`unknown batcher result ${never}`);
      }
    }
  }

  /**
   * CLIENT_ADD from `peer`: (re)route `key` to it and hand over delayed replies. A live route
   * of another owner is not taken (unlike the C intercept, where the last registration won):
   * the registration is refused, counted (`routesContested`) and the holder is returned.
   * The same owner may move its route to another of its connections, and an authenticated
   * peer takes a route from an unauthenticated one (counted as `routesReclaimed`).
   */
  addRoute(peer: P, key: string, now: number): P | undefined {
    const held = this.routes.peek(key, now);
    if (held !== undefined && (held.owner ?? held) !== (peer.owner ?? peer)) {
      if (!peer.authenticated || held.authenticated) {
        this.counters.routesContested++;
        return held;
      }
      this.counters.routesReclaimed++;
    }
    this.routes.set(key, peer, now);
    this.counters.routesAdded++;
    const delayed = this.delay.take(key, now);
    if (delayed.length === 0) return undefined;
    const slot = this.routes.slotOf(key);
    for (const pkt of delayed) {
      if (inspectReply(pkt, this.#info) === undefined && this.#enqueue(peer, pkt, now, slot)) {
        this.counters.delayedFlushed++;
      }
    }
    return undefined;
  }

  /** CLIENT_DEL from `peer` (only its own routes). */
  deleteRoute(peer: P, key: string): boolean {
    const slot = this.routes.slotOf(key);
    if (slot < 0 || this.routes.peerAt(slot) !== peer) return false;
    // (the tracker first: its flow goes with the route, not via routeReleased)
    peer.answers?.routeDeleted(key, slot);
    this.routes.deleteAt(slot);
    this.counters.routesDeleted++;
    return true;
  }

  /** Housekeeping: closes due batches, expires routes and delayed replies. */
  tick(now: number): P[] {
    const ready: P[] = [];
    for (const p of this.#peers) {
      p.batcher.flushDue(now);
      if (p.batcher.hasOutput) ready.push(p);
    }
    this.routes.expire(now);
    this.delay.expire(now);
    return ready;
  }
}
