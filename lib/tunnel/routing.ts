/**
 * Route table of intercept: exact 4-tuple key (see route_key.ts) -> the tunnel connection
 * that registered it. Every route also has an owner (`ownerOf(connection)`: the tcpcopy
 * instance, see dispatch.ts); the dispatcher refuses a live route to another owner. Routes
 * expire after `ttlMs` without a registration or a reply; they are deleted on CLIENT_DEL
 * (only by the connection that holds them) and when their connection closes. Pure: the
 * caller passes the current time.
 *
 * Each owner holds at most `maxPerOwner` routes: a new route over its quota evicts that
 * owner's own oldest registration (`overQuota`), never another owner's route.
 *
 * Expiry is amortised O(1): a queue of (key, ticket) pairs is kept sorted by `placed`, a
 * lookup only stamps `seen`, and the sweep stops at the first entry placed within the TTL.
 * Entries of deleted or re-placed routes go stale (their ticket no longer matches) and are
 * skipped; the queue is compacted when they dominate. (Not the Map's own order: after many
 * deletions at a Map's front, reaching its first entry costs a scan of the holes, which made
 * evictions at the cap quadratic: 800,000 registrations over a 200,000 cap took 55 s, 2.7 s
 * with the queue.)
 *
 * The table holds at most `maxRoutes` routes, whatever peers register (a C tcpcopy never
 * deletes its routes; a broken or hostile peer may register millions). A new route over the
 * cap evicts the oldest registration that no reply used since it was placed (looking at a
 * few of the oldest; a used one moves to the back, as the sweep would move it).
 */
import { DEFAULT_MAX_PEER_ROUTES } from "./defaults.ts";

/** Default cap of the route table (about 200 bytes a route: some 200 MB when full). */
export const DEFAULT_MAX_ROUTES = 1_000_000;
/** Oldest routes looked at for one eviction before the oldest is taken regardless. */
const EVICT_LOOKS = 16;

interface Route<P> {
  peer: P;
  placed: number;
  seen: number;
  /** Ticket of its current queue entry. */
  ticket: number;
}

/**
 * The keys of one owner, and their registration order for the quota: `order[head..]` holds
 * keys oldest first, with stale entries (deleted keys) skipped lazily. A Set's first entry
 * is not used for this: after many deletions at its front, reaching it costs a scan of the
 * holes (measured: 1M registrations over a 250,000 quota took 94 s that way, 1 s this way).
 */
class OwnerKeys {
  readonly keys = new Set<string>();
  order: string[] = [];
  head = 0;

  add(key: string): void {
    this.keys.add(key);
    this.order.push(key);
    // deleted and re-added keys leave stale entries: rebuild before they dominate
    if (this.order.length - this.head > 2 * this.keys.size + 1024) {
      this.order = [...this.keys];
      this.head = 0;
    }
  }

  /** The oldest key still held (approximately: a re-added key keeps its old place). */
  oldest(): string | undefined {
    const order = this.order;
    while (this.head < order.length && !this.keys.has(order[this.head])) this.head++;
    if (this.head > 1024 && this.head * 2 > order.length) {
      this.order = order.slice(this.head);
      this.head = 0;
    }
    return this.order[this.head];
  }
}

/** Default quota of routes per owner (a tcpcopy instance, or one C tcpcopy connection). */
export { DEFAULT_MAX_PEER_ROUTES };

/** The route table. `P` is the connection type (compared by identity). */
export class RouteTable<P> {
  #routes = new Map<string, Route<P>>();
  /** The placement queue: keys and tickets, oldest first from `#qHead`. */
  #qKeys: string[] = [];
  #qTickets: number[] = [];
  #qHead = 0;
  #ticket = 0;
  /** Keys of each owner, oldest registration first. */
  #byOwner = new Map<unknown, OwnerKeys>();
  /** Routes removed by idle expiry so far. */
  expired = 0;
  /** Routes removed to make room for a new one (table full). */
  evicted = 0;
  /** Routes an owner lost to its own newer ones (over its quota). */
  overQuota = 0;

  constructor(
    readonly ttlMs: number,
    readonly maxRoutes = DEFAULT_MAX_ROUTES,
    readonly maxPerOwner = DEFAULT_MAX_PEER_ROUTES,
    readonly ownerOf: (peer: P) => unknown = (p) => p,
  ) {}

  /** Number of routes. */
  get size(): number {
    return this.#routes.size;
  }

  /**
   * Registers (or moves) `key` to `peer`; returns the connection that held it before when it
   * was another. The caller decides whether another owner's route may be taken (see peek).
   */
  set(key: string, peer: P, now: number): P | undefined {
    const old = this.#routes.get(key);
    if (old) {
      this.#unindex(key, old.peer);
      this.#routes.delete(key);
    } else if (this.#routes.size >= this.maxRoutes) this.#evictOne(now);
    const owner = this.ownerOf(peer);
    let ok = this.#byOwner.get(owner);
    if (!ok) this.#byOwner.set(owner, ok = new OwnerKeys());
    else if ((!old || this.ownerOf(old.peer) !== owner) && ok.keys.size >= this.maxPerOwner) {
      const oldest = ok.oldest()!;
      const r = this.#routes.get(oldest);
      if (r) this.#remove(oldest, r);
      else ok.keys.delete(oldest);
      this.overQuota++;
      if (ok.keys.size === 0) this.#byOwner.set(owner, ok);
    }
    const r: Route<P> = { peer, placed: now, seen: now, ticket: 0 };
    this.#routes.set(key, r);
    this.#enqueue(key, r);
    ok.add(key);
    return old && old.peer !== peer ? old.peer : undefined;
  }

  /** The connection holding a live (unexpired) `key`, without refreshing it. */
  peek(key: string, now: number): P | undefined {
    const r = this.#routes.get(key);
    if (!r || now - r.seen >= this.ttlMs) return undefined;
    return r.peer;
  }

  /** The connection for `key`, refreshing its idle timer; undefined when unrouted. */
  get(key: string, now: number): P | undefined {
    const r = this.#routes.get(key);
    if (!r) return undefined;
    if (now - r.seen >= this.ttlMs) {
      this.#remove(key, r);
      this.expired++;
      return undefined;
    }
    r.seen = now;
    return r.peer;
  }

  /** Deletes `key` if `peer` owns it (a connection cannot delete another's route). */
  delete(key: string, peer: P): boolean {
    const r = this.#routes.get(key);
    if (!r || r.peer !== peer) return false;
    this.#remove(key, r);
    return true;
  }

  /** Deletes every route `peer` holds (its connection closed); returns how many. */
  deletePeer(peer: P): number {
    const owner = this.ownerOf(peer);
    const keys = this.#byOwner.get(owner)?.keys;
    if (!keys) return 0;
    if (owner === peer) {
      for (const k of keys) this.#routes.delete(k);
      this.#byOwner.delete(owner);
      return keys.size;
    }
    let n = 0;
    for (const k of keys) {
      const r = this.#routes.get(k);
      if (r && r.peer !== peer) continue;
      this.#routes.delete(k);
      keys.delete(k);
      n++;
    }
    if (keys.size === 0) this.#byOwner.delete(owner);
    return n;
  }

  /** Number of routes of the owner of `peer`. */
  countOf(peer: P): number {
    return this.#byOwner.get(this.ownerOf(peer))?.keys.size ?? 0;
  }

  /** Removes routes idle for `ttlMs` or longer; returns how many. */
  expire(now: number): number {
    let n = 0;
    for (let key = this.#front(); key !== undefined; key = this.#front()) {
      const r = this.#routes.get(key)!;
      if (now - r.placed < this.ttlMs) break;
      this.#qHead++;
      if (now - r.seen >= this.ttlMs) {
        this.#remove(key, r);
        n++;
      } else {
        r.placed = now;
        this.#enqueue(key, r);
      }
    }
    this.expired += n;
    return n;
  }

  /** Makes room for one route: see the module comment. */
  #evictOne(now: number): void {
    for (let tries = 0;; tries++) {
      const key = this.#front();
      if (key === undefined) return;
      const r = this.#routes.get(key)!;
      this.#qHead++;
      if (tries < EVICT_LOOKS && r.seen > r.placed) {
        r.placed = now;
        this.#enqueue(key, r);
        continue;
      }
      this.#remove(key, r);
      this.evicted++;
      return;
    }
  }

  /** Queues `key` (placed now) with a fresh ticket; its older entry, if any, goes stale. */
  #enqueue(key: string, r: Route<P>): void {
    r.ticket = ++this.#ticket;
    this.#qKeys.push(key);
    this.#qTickets.push(r.ticket);
    const live = this.#qKeys.length - this.#qHead;
    if (live > 2 * this.#routes.size + 1024) this.#compact(true);
  }

  /** The key of the oldest live queue entry (stale entries before it are dropped). */
  #front(): string | undefined {
    const keys = this.#qKeys, tickets = this.#qTickets;
    while (this.#qHead < keys.length) {
      const r = this.#routes.get(keys[this.#qHead]);
      if (r !== undefined && r.ticket === tickets[this.#qHead]) break;
      this.#qHead++;
    }
    if (this.#qHead > 1024 && this.#qHead * 2 > keys.length) this.#compact(false);
    return this.#qHead < this.#qKeys.length ? this.#qKeys[this.#qHead] : undefined;
  }

  /** Drops the consumed head, and with `stale` every stale entry, keeping the order. */
  #compact(stale: boolean): void {
    const keys: string[] = [], tickets: number[] = [];
    for (let i = this.#qHead; i < this.#qKeys.length; i++) {
      if (stale) {
        const r = this.#routes.get(this.#qKeys[i]);
        if (r === undefined || r.ticket !== this.#qTickets[i]) continue;
      }
      keys.push(this.#qKeys[i]);
      tickets.push(this.#qTickets[i]);
    }
    this.#qKeys = keys;
    this.#qTickets = tickets;
    this.#qHead = 0;
  }

  #remove(key: string, r: Route<P>): void {
    this.#routes.delete(key);
    this.#unindex(key, r.peer);
  }

  #unindex(key: string, peer: P): void {
    const owner = this.ownerOf(peer);
    const ok = this.#byOwner.get(owner);
    if (!ok) return;
    ok.keys.delete(key);
    if (ok.keys.size === 0) this.#byOwner.delete(owner);
  }
}
