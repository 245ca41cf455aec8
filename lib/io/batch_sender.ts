/**
 * Batched sending with `sendmmsg()` over one malloc'd arena.
 *
 * Arena layout (one allocation, wrapped once as an ArrayBuffer, B = batch size):
 *
 * ```
 * struct mmsghdr hdr[B]      64 B each: msg_name@0 namelen@8 msg_iov@16 iovlen@24 msg_len@56
 * struct iovec   iov[B]      16 B each: iov_base@0 iov_len@8
 * sockaddr       name[B]     nameStride B each (or one shared name)
 * struct pollfd  pfd         8 B, for waiting on POLLOUT during retries
 * packet slots   slot[B]     slotSize B each: headroom (e.g. Ethernet header), then the packet
 * ```
 *
 * Packets are written in place ({@link BatchSender.slot}) or copied in
 * ({@link BatchSender.enqueue}); a full batch is flushed automatically. Per-packet errors are
 * counted by errno name and the packet is skipped; EAGAIN/ENOBUFS retry the unsent tail within a
 * bounded time budget: at most `retryBudgetMs` per flush and `stallBudgetMs` per 100 ms window
 * over all flushes, so a full NIC queue never holds the capture loop for longer than a few ms;
 * past the budget the tail is dropped at once (counted by errno, and in `stats.stalledDrops`).
 * Nothing here throws for a packet.
 *
 * @module
 */

import { Errno, errno, errnoName, loadLibc, NativeMemory } from "./libc.ts";

/** Counters of a sender. `errors` maps errno names ("EMSGSIZE") to dropped-packet counts. */
export interface SendStats {
  /** packets the kernel accepted */
  sent: number;
  /** packets dropped, by reason */
  errors: Record<string, number>;
  /** sendmmsg() calls made */
  syscalls: number;
  /** EAGAIN/ENOBUFS/EINTR retries */
  retries: number;
  /** Milliseconds spent waiting for room in the socket or device queue (bounded, see module). */
  waitedMs: number;
  /** Packets dropped because the wait budget was spent (also counted in `errors`). */
  stalledDrops: number;
}

/** What every packet sender offers (raw IPv4, raw IPv6, link layer). */
export interface PacketSender {
  /**
   * A view of `len` bytes in the next free slot: build the packet there. Valid until the next
   * `slot`, `enqueue` or `flush`. Flushes first when the batch is full.
   */
  slot(len: number): Uint8Array;
  /** Copies `packet` into the next slot (see {@link slot}). */
  enqueue(packet: Uint8Array): void;
  /** Sends everything queued; returns how many packets the kernel accepted. */
  flush(): number;
  /** Packets queued and not yet flushed. */
  readonly pending: number;
  /** Packets a batch holds: the next {@link slot} after that many flushes first. */
  readonly capacity: number;
  /** Counters (live object). */
  readonly stats: SendStats;
  /** Flushes nothing; releases the socket and the arena. Idempotent. */
  close(): void;
}

/** Sizing of a {@link BatchSender}. */
export interface BatchOptions {
  /** packets per sendmmsg() call (default 64) */
  batch?: number;
  /** largest packet, excluding headroom (default 65535) */
  maxPacket?: number;
  /** milliseconds a flush may spend retrying EAGAIN/ENOBUFS before dropping the tail (2) */
  retryBudgetMs?: number;
  /** milliseconds all flushes of one 100 ms window may spend waiting, together (5) */
  stallBudgetMs?: number;
}

/** Length of the window {@link BatchOptions.stallBudgetMs} applies to. */
const STALL_WINDOW_MS = 100;

const MMSGHDR = 64, IOVEC = 16;
const MSG_DONTWAIT = 0x40;
const POLLOUT = 0x004;

/**
 * The sendmmsg engine shared by concrete senders. Subclasses fill the per-packet destination
 * in {@link prepare} and own the socket lifetime through {@link closeSocket}.
 */
export abstract class BatchSender implements PacketSender {
  readonly stats: SendStats = {
    sent: 0,
    errors: {},
    syscalls: 0,
    retries: 0,
    waitedMs: 0,
    stalledDrops: 0,
  };
  protected readonly mem: NativeMemory;
  protected readonly batch: number;
  protected readonly slotSize: number;
  protected readonly maxPacket: number;
  protected readonly namesOff: number;
  protected readonly slotsOff: number;
  readonly #pfdOff: number;
  readonly #hdrPtrs: Deno.PointerObject[] = [];
  readonly #retryBudgetMs: number;
  readonly #stallBudgetMs: number;
  /** Start of the current stall window and the time waited in it. */
  #windowStart = 0;
  #windowWaited = 0;
  readonly #lens: Int32Array;
  readonly #pfdPtr: Deno.PointerObject;
  #count = 0;
  #closed = false;

  /**
   * @param fd the socket (owned by the subclass)
   * @param headroom bytes before each packet (the Ethernet header for link-layer sends)
   * @param nameStride bytes per destination address; 0 for none
   * @param sharedName true when all packets use name[0] (one fixed destination)
   */
  protected constructor(
    protected readonly fd: number,
    protected readonly headroom: number,
    nameStride: number,
    sharedName: boolean,
    opts: BatchOptions = {},
  ) {
    this.batch = Math.max(1, Math.min(1024, Math.floor(opts.batch ?? 64)));
    this.maxPacket = Math.max(20, Math.min(65535, Math.floor(opts.maxPacket ?? 65535)));
    this.slotSize = (headroom + this.maxPacket + 15) & ~15;
    this.#retryBudgetMs = opts.retryBudgetMs ?? 2;
    this.#stallBudgetMs = opts.stallBudgetMs ?? 5;
    const b = this.batch;
    const iovOff = b * MMSGHDR;
    this.namesOff = iovOff + b * IOVEC;
    this.#pfdOff = this.namesOff + ((nameStride * (sharedName ? 1 : b) + 15) & ~15);
    this.slotsOff = this.#pfdOff + 16;
    this.mem = new NativeMemory(this.slotsOff + b * this.slotSize);
    const dv = this.mem.dv;
    for (let i = 0; i < b; i++) {
      const h = i * MMSGHDR;
      if (nameStride > 0) {
        this.mem.setPointer(h, this.namesOff + (sharedName ? 0 : i * nameStride));
        dv.setUint32(h + 8, nameStride, true);
      }
      this.mem.setPointer(h + 16, iovOff + i * IOVEC);
      dv.setBigUint64(h + 24, 1n, true);
      this.mem.setPointer(iovOff + i * IOVEC, this.slotsOff + i * this.slotSize);
      this.#hdrPtrs.push(this.mem.at(h));
    }
    this.#lens = new Int32Array(b);
    this.#pfdPtr = this.mem.at(this.#pfdOff);
    dv.setInt32(this.#pfdOff, fd, true);
    dv.setInt16(this.#pfdOff + 4, POLLOUT, true);
  }

  /**
   * Called at flush time for queued packet `i` (its bytes start at `off` in `mem.u8`, `len`
   * long): fill the destination name / headroom. Returns 0, or an errno to drop the packet.
   */
  protected abstract prepare(i: number, off: number, len: number): number;

  /** Closes the socket (called once by {@link close}). */
  protected abstract closeSocket(): void;

  get pending(): number {
    return this.#count;
  }

  get capacity(): number {
    return this.batch;
  }

  slot(len: number): Uint8Array {
    if (this.#closed) throw new Error("sender is closed");
    if (!(len >= 0 && len <= this.maxPacket)) {
      throw new RangeError(`packet length ${len} outside 0..${this.maxPacket}`);
    }
    if (this.#count === this.batch) this.flush();
    const i = this.#count++;
    const start = this.slotsOff + i * this.slotSize + this.headroom;
    this.#lens[i] = len;
    return this.mem.u8.subarray(start, start + len);
  }

  enqueue(packet: Uint8Array): void {
    if (packet.length > this.maxPacket) {
      this.#countError(Errno.EMSGSIZE, 1);
      return;
    }
    this.slot(packet.length).set(packet);
  }

  flush(): number {
    const n = this.#count;
    if (n === 0 || this.#closed) return 0;
    this.#count = 0;
    const dv = this.mem.dv;
    const iovOff = this.batch * MMSGHDR;
    let sent = 0, i = 0;
    while (i < n) {
      let j = i, err = 0;
      for (; j < n; j++) {
        const len = this.#lens[j];
        err = this.prepare(j, this.slotsOff + j * this.slotSize + this.headroom, len);
        if (err !== 0) break;
        dv.setUint32(iovOff + j * IOVEC + 8, this.headroom + len, true); // iov_len (high half 0)
      }
      if (j > i) sent += this.#sendRun(i, j);
      if (j < n) {
        this.#countError(err, 1);
        j++;
      }
      i = j;
    }
    return sent;
  }

  /** Sends packets [from, to) with as few sendmmsg() calls as the kernel allows. */
  #sendRun(from: number, to: number): number {
    const C = loadLibc();
    let i = from, sent = 0, deadline = 0;
    while (i < to) {
      const r = C.sendmmsg(this.fd, this.#hdrPtrs[i], to - i, MSG_DONTWAIT);
      this.stats.syscalls++;
      if (r > 0) {
        i += r;
        sent += r;
        continue;
      }
      const e = r < 0 ? errno() : Errno.EAGAIN;
      if (e === Errno.EAGAIN || e === Errno.ENOBUFS || e === Errno.EINTR) {
        const now = performance.now();
        if (deadline === 0) deadline = now + this.#waitAllowance(now);
        if (now < deadline) {
          this.stats.retries++;
          // wait for room: POLLOUT on the socket (EAGAIN) or just a 1 ms pause (ENOBUFS)
          if (e === Errno.EAGAIN) C.poll(this.#pfdPtr, 1n, Math.max(1, Math.ceil(deadline - now)));
          else C.poll(null, 0n, 1);
          this.#waited(performance.now() - now);
          continue;
        }
        this.#countError(e, to - i); // budget exhausted: drop the tail
        this.stats.stalledDrops += to - i;
        break;
      }
      this.#countError(e, 1); // this packet is refused: skip it, send the rest
      i++;
    }
    this.stats.sent += sent;
    return sent;
  }

  /** How long this flush may still wait at `now`: its own budget, within the window's. */
  #waitAllowance(now: number): number {
    if (now - this.#windowStart >= STALL_WINDOW_MS) {
      this.#windowStart = now;
      this.#windowWaited = 0;
    }
    return Math.max(0, Math.min(this.#retryBudgetMs, this.#stallBudgetMs - this.#windowWaited));
  }

  #waited(ms: number): void {
    this.#windowWaited += ms;
    this.stats.waitedMs += ms;
  }

  #countError(e: number, n: number): void {
    const name = errnoName(e);
    this.stats.errors[name] = (this.stats.errors[name] ?? 0) + n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#count = 0;
    this.closeSocket();
    this.mem.free();
  }
}
