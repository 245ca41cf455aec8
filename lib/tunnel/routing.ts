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
 * Memory (issue 14): a route is one slot of a set of columns (struct of arrays, in pages of
 * typed arrays: slot_pages.ts): its key's code units in a hash index (key_index.ts, one per key
 * length: IPv4 and IPv6 keys), its connection, owner, times, place in the expiry queue and in
 * its owner's list. No object, no string and no Map entry per route: a held IPv4 route costs
 * ~95-115 bytes instead of ~210 (bench/intercept_route_heap.ts), and a route that ends leaves
 * no garbage (the old design's five objects per route were promoted to the old generation and
 * piled up there until the next full GC). Slots are reused through a free list; the columns
 * grow by a page (no copy, so no old arrays waiting for a GC) and are rebuilt smaller once
 * mostly free (`compact`).
 *
 * Expiry is amortised O(1): a queue of slots is kept in `placed` order, a lookup only stamps
 * `seen`, and the sweep stops at the first entry placed within the TTL. A slot remembers the
 * queue index of its current entry; entries of deleted or re-placed routes go stale and are
 * skipped, and dropped when the queue is compacted (when it is full). (Not the Map's own order: after many
 * deletions at a Map's front, reaching its first entry costs a scan of the holes, which made
 * evictions at the cap quadratic: 800,000 registrations over a 200,000 cap took 55 s, 2.7 s
 * with the queue.)
 *
 * An owner's routes form a doubly linked list through their slots, oldest registration first
 * (a registration again moves a route to the back), so the quota's eviction and a closing
 * connection's routes cost no scan of other owners' routes.
 *
 * The table holds at most `maxRoutes` routes, whatever peers register (a C tcpcopy never
 * deletes its routes; a broken or hostile peer may register millions). A new route over the
 * cap evicts the oldest registration that no reply used since it was placed (looking at a
 * few of the oldest; a used one moves to the back, as the sweep would move it).
 */
import { DEFAULT_MAX_PEER_ROUTES } from "./defaults.ts";
import { KeyIndex } from "./key_index.ts";
import { PAGE_SLOTS, pagesFor, SlotPages } from "./slot_pages.ts";

/** Default cap of the route table (about 100 bytes a route: some 100 MB when full). */
export const DEFAULT_MAX_ROUTES = 1_000_000;
/** Oldest routes looked at for one eviction before the oldest is taken regardless. */
const EVICT_LOOKS = 16;
/** Entries of a new expiry queue (it grows by doubling). */
const INITIAL_SLOTS = 64;
/** No slot / no owner. */
const NONE = -1;

/** Default quota of routes per owner (a tcpcopy instance, or one C tcpcopy connection). */
export { DEFAULT_MAX_PEER_ROUTES };

/** One owner's routes: a list through the slots, oldest registration first. */
interface OwnerList {
  readonly owner: unknown;
  head: number;
  tail: number;
  count: number;
}

/**
 * Told when a slot's route changes under its holder (intercept's answer trackers file their
 * flows by route slot, lib/intercept/answers.ts): set as {@link RouteTable.listener}.
 */
export interface RouteSlotListener<P> {
  /**
   * The route in `slot` no longer belongs to `peer`: removed (CLIENT_DEL, expiry, eviction,
   * quota, its connection gone) or moved to another connection. Called once the slot is free
   * (removed) or holds the new connection (moved).
   */
  released(slot: number, peer: P): void;
  /** {@link RouteTable.compact} renumbered the live routes: `renum[old]` is the new slot. */
  renumbered(renum: Int32Array): void;
}

/** The route table. `P` is the connection type (compared by identity). */
export class RouteTable<P> {
  /** One key index per key length (route keys: 6 code units for IPv4, 18 for IPv6). */
  #indexes: (KeyIndex | undefined)[] = [];
  #count = 0;
  /** Per slot: connection (undefined: free), key length, owner index, times, queue index. */
  #peers: (P | undefined)[] = [];
  #keyLength = new SlotPages(Uint8Array);
  #owner = new SlotPages(Int32Array);
  #placed = new SlotPages(Float64Array);
  #seen = new SlotPages(Float64Array);
  #qPos = new SlotPages(Int32Array);
  /** The owner's list (free slots: `#next` chains the free list from `#freeHead`). */
  #next = new SlotPages(Int32Array);
  #prev = new SlotPages(Int32Array);
  #freeHead = NONE;
  /** Slots ever used (those at and above were never used). */
  #used = 0;
  /** The placement queue: slots, oldest first from `#qHead` to `#qEnd`. */
  #queue = new Int32Array(INITIAL_SLOTS);
  #qHead = 0;
  #qEnd = 0;
  /** Owners: index → list, and owner → index; free indexes for reuse. */
  #lists: (OwnerList | undefined)[] = [];
  #ownerIndex = new Map<unknown, number>();
  #freeOwners: number[] = [];
  /** Told when a slot's route goes from its holder or slots are renumbered (null: nobody). */
  listener: RouteSlotListener<P> | null = null;
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
    return this.#count;
  }

  /** Slots the columns have room for (grows by a page, shrinks in {@link compact}). */
  get capacity(): number {
    return this.#owner.capacity;
  }

  /**
   * Registers (or moves) `key` to `peer`; returns the connection that held it before when it
   * was another. The caller decides whether another owner's route may be taken (see peek).
   * Keys are route keys (route_key.ts), or any string of 1 to 255 code units.
   */
  set(key: string, peer: P, now: number): P | undefined {
    let slot = this.#find(key);
    let old: P | undefined;
    const owner = this.ownerOf(peer);
    if (slot !== NONE) {
      old = this.#peers[slot];
      const moved = this.#lists[this.#owner.get(slot)]!.owner !== owner;
      this.#unlink(slot);
      if (moved) this.#quota(owner);
    } else {
      if (key.length < 1 || key.length > 255) {
        throw new RangeError(`route key of ${key.length} code units (1 to 255)`);
      }
      if (this.#count >= this.maxRoutes) this.#evictOne(now);
      this.#quota(owner);
      slot = this.#alloc();
      this.#keyLength.set(slot, key.length);
      this.#indexes[key.length] ??= new KeyIndex(key.length, this.capacity);
      this.#indexes[key.length]!.insert(key, slot);
      this.#count++;
    }
    this.#peers[slot] = peer;
    this.#placed.set(slot, now);
    this.#seen.set(slot, now);
    this.#link(slot, this.#indexOf(owner)); // (after evictions: they may free an owner's index)
    this.#enqueue(slot);
    if (old !== undefined && old !== peer) {
      this.listener?.released(slot, old);
      return old;
    }
    return undefined;
  }

  /**
   * The slot of `key`'s route, refreshing its idle timer (an expired route is removed and
   * counted), or -1 when unrouted; its connection is {@link peerAt}. Slots change only as
   * {@link listener} is told.
   */
  getSlot(key: string, now: number): number {
    const slot = this.#find(key);
    if (slot === NONE) return NONE;
    if (now - this.#seen.get(slot) >= this.ttlMs) {
      this.#remove(slot);
      this.expired++;
      return NONE;
    }
    this.#seen.set(slot, now);
    return slot;
  }

  /** The slot of `key`'s route as it is (not refreshed, expired or not), -1 when none. */
  slotOf(key: string): number {
    return this.#find(key);
  }

  /** The connection holding the route in `slot` (undefined: a free slot). */
  peerAt(slot: number): P | undefined {
    return this.#peers[slot];
  }

  /** The connection holding a live (unexpired) `key`, without refreshing it. */
  peek(key: string, now: number): P | undefined {
    const slot = this.#find(key);
    if (slot === NONE || now - this.#seen.get(slot) >= this.ttlMs) return undefined;
    return this.#peers[slot];
  }

  /** The connection for `key`, refreshing its idle timer; undefined when unrouted. */
  get(key: string, now: number): P | undefined {
    const slot = this.getSlot(key, now);
    return slot === NONE ? undefined : this.#peers[slot];
  }

  /** Deletes `key` if `peer` owns it (a connection cannot delete another's route). */
  delete(key: string, peer: P): boolean {
    const slot = this.#find(key);
    if (slot === NONE || this.#peers[slot] !== peer) return false;
    this.deleteAt(slot);
    return true;
  }

  /** Deletes the route in `slot` (one found by {@link slotOf}, whose holder was checked). */
  deleteAt(slot: number): void {
    this.#remove(slot);
  }

  /** Deletes every route `peer` holds (its connection closed); returns how many. */
  deletePeer(peer: P): number {
    // its routes are listed under its owner, or under itself if it registered them before
    // it authenticated (its owner changed then)
    let n = this.#deleteFrom(this.ownerOf(peer), peer);
    if (this.ownerOf(peer) !== peer) n += this.#deleteFrom(peer, peer);
    this.compact();
    return n;
  }

  /** Number of routes of the owner of `peer`. */
  countOf(peer: P): number {
    const o = this.#ownerIndex.get(this.ownerOf(peer));
    return o === undefined ? 0 : this.#lists[o]!.count;
  }

  /** Removes routes idle for `ttlMs` or longer; returns how many. */
  expire(now: number): number {
    let n = 0;
    for (let slot = this.#front(); slot !== NONE; slot = this.#front()) {
      if (now - this.#placed.get(slot) < this.ttlMs) break;
      this.#qHead++;
      this.#qPos.set(slot, NONE);
      if (now - this.#seen.get(slot) >= this.ttlMs) {
        this.#remove(slot);
        n++;
      } else {
        this.#placed.set(slot, now);
        this.#enqueue(slot);
      }
    }
    this.expired += n;
    this.compact();
    return n;
  }

  /**
   * Rebuilds the arrays smaller when under an eighth of their slots is in use (above 1,024
   * slots), so a table a burst grew does not stay that size; the order of the queue and of
   * each owner's list is kept. Called by {@link expire} and {@link deletePeer}.
   */
  compact(): void {
    const cap = this.capacity;
    if (cap <= 2 * PAGE_SLOTS || this.#count * 8 >= cap) return;
    this.#rebuild(pagesFor(2 * this.#count) * PAGE_SLOTS);
  }

  /** Bytes of the table's typed arrays (for the benchmarks). */
  get bytes(): number {
    let n = this.#queue.byteLength;
    for (const c of [this.#keyLength, this.#owner, this.#placed, this.#seen]) n += c.bytes;
    n += this.#qPos.bytes + this.#next.bytes + this.#prev.bytes;
    for (const ix of this.#indexes) n += ix?.bytes ?? 0;
    return n;
  }

  /** The slot of `key`, NONE when it has no route. */
  #find(key: string): number {
    return this.#indexes[key.length]?.find(key) ?? NONE;
  }

  /** Index of `owner`'s list (a new one on first use). */
  #indexOf(owner: unknown): number {
    let o = this.#ownerIndex.get(owner);
    if (o === undefined) {
      o = this.#freeOwners.pop() ?? this.#lists.length;
      this.#lists[o] = { owner, head: NONE, tail: NONE, count: 0 };
      this.#ownerIndex.set(owner, o);
    }
    return o;
  }

  /** Makes room for one more route of `owner` under its quota (evicts its oldest). */
  #quota(owner: unknown): void {
    const o = this.#ownerIndex.get(owner);
    if (o === undefined) return;
    const list = this.#lists[o]!;
    if (list.count < this.maxPerOwner) return;
    this.#remove(list.head);
    this.overQuota++;
  }

  /** Deletes the routes of `peer` in the list of `owner`; returns how many. */
  #deleteFrom(owner: unknown, peer: P): number {
    const o = this.#ownerIndex.get(owner);
    if (o === undefined) return 0;
    let n = 0;
    for (let slot = this.#lists[o]!.head; slot !== NONE;) {
      const next = this.#next.get(slot);
      if (this.#peers[slot] === peer) {
        this.#remove(slot); // (the owner's list goes with its last route)
        n++;
      }
      slot = next;
    }
    return n;
  }

  /** Makes room for one route: see the module comment. */
  #evictOne(now: number): void {
    for (let tries = 0;; tries++) {
      const slot = this.#front();
      if (slot === NONE) return;
      this.#qHead++;
      this.#qPos.set(slot, NONE);
      if (tries < EVICT_LOOKS && this.#seen.get(slot) > this.#placed.get(slot)) {
        this.#placed.set(slot, now);
        this.#enqueue(slot);
        continue;
      }
      this.#remove(slot);
      this.evicted++;
      return;
    }
  }

  /** A free slot (the arrays doubled when full). */
  #alloc(): number {
    const free = this.#freeHead;
    if (free !== NONE) {
      this.#freeHead = this.#next.get(free);
      return free;
    }
    if (this.#used === this.capacity) this.#grow();
    return this.#used++;
  }

  /** Deletes the route in `slot`: out of its index, its owner's list and (lazily) the queue. */
  #remove(slot: number): void {
    const peer = this.#peers[slot];
    this.#indexes[this.#keyLength.get(slot)]!.remove(slot);
    this.#count--;
    this.#unlink(slot);
    this.#peers[slot] = undefined;
    this.#qPos.set(slot, NONE); // its queue entry is stale now
    this.#next.set(slot, this.#freeHead);
    this.#freeHead = slot;
    if (peer !== undefined) this.listener?.released(slot, peer);
  }

  /** Appends `slot` to owner `o`'s list. */
  #link(slot: number, o: number): void {
    const list = this.#lists[o]!;
    this.#owner.set(slot, o);
    this.#prev.set(slot, list.tail);
    this.#next.set(slot, NONE);
    if (list.tail === NONE) list.head = slot;
    else this.#next.set(list.tail, slot);
    list.tail = slot;
    list.count++;
  }

  /** Takes `slot` out of its owner's list (the owner goes with its last route). */
  #unlink(slot: number): void {
    const o = this.#owner.get(slot);
    const list = this.#lists[o]!;
    const prev = this.#prev.get(slot), next = this.#next.get(slot);
    if (prev === NONE) list.head = next;
    else this.#next.set(prev, next);
    if (next === NONE) list.tail = prev;
    else this.#prev.set(next, prev);
    this.#owner.set(slot, NONE);
    if (--list.count === 0) {
      this.#ownerIndex.delete(list.owner);
      this.#lists[o] = undefined;
      this.#freeOwners.push(o);
    }
  }

  /** Queues `slot` (placed now); its older entry, if any, goes stale. */
  #enqueue(slot: number): void {
    if (this.#qEnd === this.#queue.length) {
      this.#compactQueue();
      if (2 * this.#qEnd > this.#queue.length) {
        const q = new Int32Array(this.#queue.length * 2);
        q.set(this.#queue.subarray(0, this.#qEnd));
        this.#queue = q;
      }
    }
    this.#qPos.set(slot, this.#qEnd);
    this.#queue[this.#qEnd++] = slot;
  }

  /** The slot of the oldest live queue entry (stale entries before it are dropped). */
  #front(): number {
    const q = this.#queue, pos = this.#qPos;
    while (this.#qHead < this.#qEnd) {
      const slot = q[this.#qHead];
      if (pos.get(slot) === this.#qHead) return slot;
      this.#qHead++;
    }
    return NONE;
  }

  /** Moves the live entries to the front, in order; stale ones are dropped. */
  #compactQueue(): void {
    const q = this.#queue, pos = this.#qPos;
    let to = 0;
    for (let i = this.#qHead; i < this.#qEnd; i++) {
      const slot = q[i];
      if (pos.get(slot) !== i) continue;
      pos.set(slot, to);
      q[to++] = slot;
    }
    this.#qHead = 0;
    this.#qEnd = to;
  }

  /**
   * New pages for `room` slots holding the live routes renumbered 0, 1, 2, … in queue order;
   * the key indexes, the owners' lists and the queue are rewritten to the new numbers.
   */
  #rebuild(room: number): void {
    const n = this.#count;
    const renum = new Int32Array(this.#used).fill(NONE);
    const peers: (P | undefined)[] = [];
    const column = <A extends Int32Array | Float64Array | Uint8Array>(
      make: new (n: number) => A,
    ) => {
      const c = new SlotPages(make);
      c.grow(room);
      return c;
    };
    const keyLength = column(Uint8Array), owner = column(Int32Array);
    const placed = column(Float64Array), seen = column(Float64Array), qPos = column(Int32Array);
    const queue = new Int32Array(Math.max(INITIAL_SLOTS, room));
    let to = 0;
    for (let slot = this.#front(); slot !== NONE; slot = this.#front()) {
      renum[slot] = to;
      peers.push(this.#peers[slot]);
      keyLength.set(to, this.#keyLength.get(slot));
      owner.set(to, this.#owner.get(slot));
      placed.set(to, this.#placed.get(slot));
      seen.set(to, this.#seen.get(slot));
      qPos.set(to, to);
      queue[to] = to;
      to++;
      this.#qHead++;
    }
    if (to !== n) throw new Error(`route table: ${n - to} routes not queued`); // (a bug)
    while (peers.length < owner.capacity) peers.push(undefined); // (no growth until full)
    const next = column(Int32Array), prev = column(Int32Array);
    for (let slot = 0; slot < this.#used; slot++) {
      const r = renum[slot];
      if (r === NONE) continue;
      const nx = this.#next.get(slot), pv = this.#prev.get(slot);
      next.set(r, nx === NONE ? NONE : renum[nx]);
      prev.set(r, pv === NONE ? NONE : renum[pv]);
    }
    for (const list of this.#lists) {
      if (list === undefined) continue;
      list.head = renum[list.head];
      list.tail = renum[list.tail];
    }
    for (const ix of this.#indexes) ix?.renumber(renum, owner.capacity);
    this.#peers = peers;
    this.#keyLength = keyLength;
    this.#owner = owner;
    this.#placed = placed;
    this.#seen = seen;
    this.#qPos = qPos;
    this.#next = next;
    this.#prev = prev;
    this.#freeHead = NONE;
    this.#used = n;
    this.#queue = queue;
    this.#qHead = 0;
    this.#qEnd = n;
    this.listener?.renumbered(renum);
  }

  /** One more page in every column (no copy: see slot_pages.ts). */
  #grow(): void {
    const slots = this.capacity + PAGE_SLOTS;
    for (const c of [this.#keyLength, this.#owner, this.#placed, this.#seen]) c.grow(slots);
    for (const c of [this.#qPos, this.#next, this.#prev]) c.grow(slots);
    for (const ix of this.#indexes) ix?.grow(slots);
    while (this.#peers.length < slots) this.#peers.push(undefined);
  }
}
