/**
 * The memory budget (`-m`): a per-object cost model of what tcpcopy keeps, the limits derived
 * from a budget, and the order in which sessions that carry no data are given up to make room.
 *
 * Footprint = live sessions × {@link SESSION_COST} + connection records × {@link FLOW_COST} +
 * queued client payload bytes. The costs are measured, not guessed: live heap per object after a
 * full collection (`bench/syn_flood.ts` for sessions of spoofed SYNs and for records alone,
 * `bench/engine_scale.ts` for held keep-alive sessions that served requests), plus the
 * tunnel's route entry (`bench/route_table_heap.ts`), with a margin of ~20 %. What the heap needs beyond its live objects
 * (the collector's growth between collections) is GC_HEADROOM's. Change them only with new
 * figures from those benches.
 */

/**
 * Bytes one live session costs besides its queued payload: the Session object with its slab row,
 * stream and turn bookkeeping, its tuple-map and allocator entries, timer entries, its entry in
 * {@link OpenOrder}, and the route the tunnel client remembers for it (77 B: its key, map entry
 * and row of holders, 70 B heap + 7 B table, `bench/route_table_heap.ts`, 100,000 IPv4 routes;
 * 101 B for IPv6; ~800 B before the holder table). Heap + typed arrays without the route, its
 * record's share (503 B, below) taken off, re-measured after issue 14's slab work: 782 B for a session of a spoofed SYN
 * (`bench/syn_flood.ts --count 100000 -- -m 65536 --max-sessions 1000000 --max-flows 1000000`:
 * 1,285 B per session with its record), 528 B for a held idle keep-alive session (100,000
 * sessions, 715 B heap + 316 B slab row and tables with the record), 1,021 B once it served 17
 * requests (`bench/engine_scale.ts -- -m 65536 --max-sessions 2000000 --max-flows 4000000`,
 * 10,000 sessions: 1,227 + 297 B with the record). 1,021 + 77 = 1,098 B, + 20 % (1,318),
 * rounded up to 1,344. (Before the holder table: 2,176 from 1,021 + 800 B; before the slab
 * work: 2,560 from 1,338 + 800 B.)
 */
export const SESSION_COST = 1344;

/**
 * Bytes one connection record costs (live, sampled out, or remembered after its sessions
 * ended): the Flow object, its slab object, its tuple-map entry and its deadline-queue entry.
 * Measured: 503 B of heap + typed arrays per record of a sampled-out SYN (`bench/syn_flood.ts
 * --count 200000 -- -m 65536 --max-sessions 1000000 --max-flows 1000000 -r 1`), + 14 %.
 * (Before the slab work: 640 from 570 B.)
 */
export const FLOW_COST = 576;

/**
 * Part of `-m` set aside for what does not grow with the tables: the Deno runtime and the
 * program (40 MiB RSS idle), the sender arenas and tunnel buffers, and what the garbage
 * collector holds under heavy churn regardless of the live set (a full young generation and
 * pages kept after collections: 200-300 MiB in `bench/syn_flood.ts`, see GC_HEADROOM).
 */
export const RUNTIME_RESERVE = 256 * 1024 * 1024;

/**
 * Resident memory per byte of live objects under churn: V8 lets the heap grow to a few times
 * the live set between full collections and keeps freed pages for a while. Measured with
 * `bench/syn_flood.ts` (a million sessions created and evicted within 10 s): peak RSS ≈
 * 300 MiB + 3.8 × the accounted footprint. With this headroom and RUNTIME_RESERVE the peak
 * stayed at 60-79 % of `-m` for `-m` 512, 1024 and 2048 (README, "Memory budget").
 */
export const GC_HEADROOM = 5;

/**
 * The engine's share of a process budget of `maxMemoryBytes` (`-m`): what is left after the
 * runtime's reserve, divided by the GC headroom (for a small `-m`, a tenth of it).
 */
export function engineBudgetOf(maxMemoryBytes: number): number {
  return Math.floor(
    Math.max(maxMemoryBytes / (2 * GC_HEADROOM), (maxMemoryBytes - RUNTIME_RESERVE) / GC_HEADROOM),
  );
}

/**
 * The warning to log when V8's heap limit (`heapLimitBytes`, `heap_size_limit`) is below what a
 * budget of `maxMemoryBytes` lets the heap hold (the engine's share plus RUNTIME_RESERVE), or
 * undefined. V8 then fails the process with an out-of-memory error before the budget sheds.
 * V8's default limit is a quarter of the host's memory, at most 4 GiB (+ the young generation),
 * so this takes a `-m` of ~20 GiB or more, or a host with less memory than `-m`. The limit is
 * set at process start and a `deno compile` executable ignores DENO_V8_FLAGS: it is not derived
 * from `-m` (lib/process/v8_flags.ts).
 */
export function heapLimitWarning(
  maxMemoryBytes: number,
  heapLimitBytes: number,
): string | undefined {
  const need = engineBudgetOf(maxMemoryBytes) + RUNTIME_RESERVE;
  if (need <= heapLimitBytes) return undefined;
  const mib = (x: number) => Math.round(x / 1048576).toLocaleString("en-US");
  return `-m ${mib(maxMemoryBytes)}: the tables and runtime may need up to ${
    mib(need)
  } MiB of heap ` +
    `but V8's heap limit is ${mib(heapLimitBytes)} MiB (a quarter of the host's memory, at most ` +
    `4 GiB): lower -m (or --max-sessions/--max-flows), or raise the limit with ` +
    `DENO_V8_FLAGS=--max-old-space-size=MiB (deno run, the launcher) or in ` +
    `lib/process/v8_flags.ts before building (deno compile)`;
}

/** Default `--max-sessions` for an engine budget: sessions may take half of it. */
export function defaultMaxSessions(budgetBytes: number): number {
  return Math.max(1, Math.floor(budgetBytes / 2 / (SESSION_COST + FLOW_COST)));
}

/**
 * Default `--max-flows` for an engine budget: records may take a quarter of it, and never fewer
 * than the sessions they carry.
 */
export function defaultMaxFlows(budgetBytes: number): number {
  return Math.max(defaultMaxSessions(budgetBytes), Math.floor(budgetBytes / 4 / FLOW_COST));
}

/** Accounted footprint of `sessions` live sessions, `flows` records and `queued` bytes. */
export function footprintOf(sessions: number, flows: number, queued: number): number {
  return sessions * SESSION_COST + flows * FLOW_COST + queued;
}

/**
 * Sessions in the order they were opened, for eviction: the oldest one that is still live and
 * whose connection never carried a byte of payload (a SYN flood's, a half-open probe's) is
 * the first to go when a new session needs room. An item that stopped being evictable never
 * is again (it ended, or its connection carried data), so such items are dropped from the
 * front as soon as they get there ({@link prune}: at every push and take; the engine calls it
 * nowhere else: from its `ended` or `nextDeadline` the call changed V8's inlining of the
 * session's sequence-number getters, +2 KB of heap numbers per short connection in
 * bench/burst_heap.ts): an ended session is not kept alive by the queue while older live ones
 * stand before it. The queue is also compacted when stale entries outnumber the live
 * sessions, so it stays bounded by them (before the front was pruned, a burst of short
 * connections left up to 2 × the live sessions + 1,024 ended ones here, each with its stream
 * and flow: ~2,200 after bench/burst_heap.ts, ~1.3 MiB; with 10,000 held sessions up to
 * 21,000).
 */
export class OpenOrder<T> {
  #q: (T | undefined)[] = [];
  #head = 0;

  constructor(private readonly evictable: (item: T) => boolean) {}

  /** Entries held, stale ones included (for tests). */
  get size(): number {
    return this.#q.length - this.#head;
  }

  /** Remember `item` as opened now; `live` is the number of live items (for compaction). */
  push(item: T, live: number): void {
    this.prune();
    this.#q.push(item);
    if (this.size > 2 * live + 1024) {
      this.#q = this.#q.slice(this.#head).filter((x) => x !== undefined && this.evictable(x));
      this.#head = 0;
    }
  }

  /** Remove and return the oldest evictable item, or undefined when there is none. */
  take(): T | undefined {
    const q = this.#q;
    while (this.#head < q.length) {
      const x = q[this.#head];
      q[this.#head++] = undefined;
      if (x !== undefined && this.evictable(x)) {
        this.prune();
        return x;
      }
    }
    this.#trim();
    return undefined;
  }

  /** Drops the items at the front that are not evictable (any more: they never are again). */
  prune(): void {
    const q = this.#q;
    let h = this.#head;
    while (h < q.length) {
      const x = q[h];
      if (x !== undefined && this.evictable(x)) break;
      q[h++] = undefined;
    }
    this.#head = h;
    if (h === q.length && h > 0) {
      q.length = 0; // all gone: start over
      this.#head = 0;
    } else this.#trim();
  }

  #trim(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#q.length) {
      this.#q = this.#q.slice(this.#head);
      this.#head = 0;
    }
  }
}
