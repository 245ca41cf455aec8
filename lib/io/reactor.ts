/**
 * The reactor: one synchronous poll() loop over every descriptor on the hot path (capture
 * ring, NFQUEUE socket, tunnel sockets) plus the timers that drive them.
 *
 * Why not Deno's event loop: an awaited FFI poll() runs on a helper thread and hands its
 * result back to the JS thread, three thread hand-offs per wake-up; a TCP read through Deno is
 * cheaper but still goes through the runtime's reactor and a promise. Measured here with a
 * ping-pong over loopback, CPU per round trip: ~80 µs with an awaited poll(), ~44 µs with
 * Deno.TcpConn, ~43 µs with this reactor driving promises, ~28 µs with this reactor calling
 * handlers (the hot paths do that), ~25 µs for bare send/poll/recv calls.
 *
 * So the reactor blocks the JS thread in poll() while there is work, runs the handlers of the
 * ready descriptors and the due timers synchronously, then:
 *
 * - gives promise chains the handlers resolved {@link MICROTASK_STEPS} microtask steps (a
 *   waiter's continuation needs one or two);
 * - busy: every {@link YIELD_EVERY_MS}, makes one round's poll() an awaited one (zero
 *   timeout): Deno's event loop then parks once, which is when it serves its own I/O (signals,
 *   the metrics server; a setImmediate turn would not), fires its timers, and every pending
 *   promise chain runs to its end;
 * - idle: when a whole {@link YIELD_EVERY_MS} slice passed without events or due timers, the
 *   wait goes on as an awaited poll() (no CPU, the event loop runs freely) until an event or a
 *   timer.
 *
 * The loop starts by itself when a descriptor awaits events or a timer is armed, and ends
 * when neither is left (a watch with no events keeps no loop alive); {@link Reactor.settled}
 * resolves then. Code running on Deno's side while the reactor waits (a signal handler, a
 * stats timer) may register, change or remove descriptors and arm timers: an eventfd in the
 * poll set wakes the wait so the change applies at once.
 *
 *   const r = sharedReactor();
 *   const w = r.watch(fd, PollEvents.IN, (revents) => drain());
 *   const t = r.timer(() => tick()); t.armIn(200);
 *   r.afterEvents(() => flush());            // once per round, after handlers and timers
 *   ...; w.remove(); t.cancel(); await r.settled();
 *
 * @module
 */

import { Errno, errno, loadLibc, NativeMemory } from "./libc.ts";

/** poll(2) event bits. */
export const PollEvents = {
  IN: 0x001,
  PRI: 0x002,
  OUT: 0x004,
  ERR: 0x008,
  HUP: 0x010,
  NVAL: 0x020,
} as const;

/** Longest stretch of synchronous work (or of blocking in poll()) before Deno's event loop runs. */
export const YIELD_EVERY_MS = 10;
/** Microtask steps given to promise chains after each round (see the loop). */
const MICROTASK_STEPS = 4;
/** Longest single idle wait (an armed timer or an event ends it sooner). */
export const IDLE_WAIT_MS = 1000;

/** Called with the returned events (`revents`) of a ready descriptor. */
export type ReadyHandler = (revents: number) => void;

const POLLFD_SIZE = 8; // struct pollfd { int fd; short events; short revents; }
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;

/**
 * When a watch's handler runs within a round: `first` (the default) in the order the watches
 * were made, `last` after every `first` watch that was ready in the same round. intercept's
 * NFQUEUE source is `last`: a target's SYN-ACK and the tunnel message that registers its tuple
 * (CLIENT_ADD, which tcpcopy writes before it sends the SYN) often become ready together, and
 * reading the tunnel first routes the reply at once instead of holding it in the delay queue.
 */
export type DispatchOrder = "first" | "last";

/** One registered descriptor. */
export class Watch {
  /** Slot in the poll set; -1 until the next rebuild places it. */
  slot = -1;
  active = true;

  constructor(
    private readonly reactor: Reactor,
    readonly fd: number,
    public events: number,
    readonly handler: ReadyHandler,
    readonly order: DispatchOrder = "first",
  ) {}

  /** Changes the awaited events (e.g. add {@link PollEvents.OUT} while output is pending). */
  setEvents(events: number): void {
    if (!this.active || events === this.events) return;
    const before = this.events;
    this.events = events;
    this.reactor.eventsChanged(this, before);
  }

  /** Stops watching; the descriptor itself is the caller's to close. Idempotent. */
  remove(): void {
    if (!this.active) return;
    this.active = false;
    this.reactor.removed(this);
  }
}

/** A one-shot timer that can be re-armed; fires from the reactor loop. */
export class ReactorTimer {
  /** When it fires (ms on the reactor's clock), Infinity when not armed. */
  at = Infinity;

  constructor(private readonly reactor: Reactor, readonly fire: () => void) {}

  /** True while armed. */
  get armed(): boolean {
    return this.at !== Infinity;
  }

  /** Arms (or moves) the timer to fire at `at`. */
  armAt(at: number): void {
    const before = this.at;
    this.at = at;
    this.reactor.armed(this, before);
  }

  /** Arms (or moves) the timer to fire `ms` from now. */
  armIn(ms: number): void {
    this.armAt(this.reactor.now() + ms);
  }

  /** Disarms; harmless when not armed. */
  cancel(): void {
    const before = this.at;
    if (before === Infinity) return;
    this.at = Infinity;
    this.reactor.disarmed(this, before);
  }
}

/** Settings of a Reactor. */
export interface ReactorOptions {
  /** Clock in ms (default performance.now). */
  now: () => number;
  /** Longest synchronous stretch (work or a blocking poll()) before Deno's event loop runs. */
  yieldEveryMs: number;
  /** Longest single idle wait. */
  idleWaitMs: number;
  /**
   * Receives what a handler, timer or hook threw; the loop goes on. Default: re-thrown from a
   * fresh task, which ends the process like any uncaught error.
   */
  onError: (e: unknown) => void;
}

/** Round counters, for tests and benchmarks. */
export interface ReactorCounters {
  /** poll() calls made synchronously on the JS thread. */
  syncPolls: number;
  /** Awaited poll() calls (yields and idle waits). */
  awaitedPolls: number;
  /** Handler calls. */
  dispatched: number;
  /** Timer firings. */
  timersFired: number;
}

/** A poll() loop; see the module documentation. */
export class Reactor {
  readonly now: () => number;
  readonly counters: ReactorCounters = {
    syncPolls: 0,
    awaitedPolls: 0,
    dispatched: 0,
    timersFired: 0,
  };
  readonly #opts: ReactorOptions;
  readonly #watches = new Set<Watch>();
  /** Watches awaiting at least one event (a watch with no events keeps no loop alive). */
  #interested = 0;
  readonly #timers = new Set<ReactorTimer>();
  /**
   * The earliest `at` of the armed timers (Infinity: none) when `#nextStale` is false; a lower
   * bound otherwise (the earliest one was disarmed, fired or moved later): recomputed only then,
   * so a round walks the timers only when one is due (or the earliest changed), and allocates
   * nothing for them.
   */
  #nextAt = Infinity;
  #nextStale = false;
  /** The due timers of one #fireTimers call (reused: no array per round). */
  readonly #due: ReactorTimer[] = [];
  readonly #hooks: (() => void)[] = [];
  /** Poll set: slot 0 is the wake-up eventfd, then one slot per watch. */
  #slots: (Watch | null)[] = [null];
  #pollfds: NativeMemory | null = null;
  #dirty = true;
  #wakeFd = -1;
  readonly #wakeBuf = new BigUint64Array([1n]);
  readonly #drainBuf = new Uint8Array(8);
  #running = false;
  #awaiting = false;
  #settled: Promise<void> = Promise.resolve();
  #resolveSettled: () => void = () => {};

  constructor(opts: Partial<ReactorOptions> = {}) {
    this.#opts = {
      now: () => performance.now(),
      yieldEveryMs: YIELD_EVERY_MS,
      idleWaitMs: IDLE_WAIT_MS,
      onError: (e) =>
        setTimeout(() => {
          throw e;
        }, 0),
      ...opts,
    };
    this.now = this.#opts.now;
  }

  /**
   * Watches `fd` for `events`; `handler` runs from the loop with the returned events, in
   * `order` among the watches ready in the same round ({@link DispatchOrder}).
   */
  watch(fd: number, events: number, handler: ReadyHandler, order: DispatchOrder = "first"): Watch {
    const w = new Watch(this, fd, events, handler, order);
    this.#watches.add(w);
    if (events !== 0) this.#interested++;
    this.#changed();
    return w;
  }

  /** A timer that runs `fire` from the loop once armed and due. */
  timer(fire: () => void): ReactorTimer {
    return new ReactorTimer(this, fire);
  }

  /** Resolves after `ms` (on the reactor's clock, from its loop). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.timer(resolve).armIn(ms));
  }

  /** Runs `hook` once per round, after the handlers and timers; returns its removal. */
  afterEvents(hook: () => void): () => void {
    this.#hooks.push(hook);
    return () => {
      const i = this.#hooks.indexOf(hook);
      if (i >= 0) this.#hooks.splice(i, 1);
    };
  }

  /** True while the loop runs. */
  get running(): boolean {
    return this.#running;
  }

  /** Descriptors watched now. */
  get watching(): number {
    return this.#watches.size;
  }

  /** Resolves once the loop has ended (at once when it is not running). */
  settled(): Promise<void> {
    return this.#running ? this.#settled : Promise.resolve();
  }

  /** @internal */
  eventsChanged(w: Watch, before: number): void {
    if ((before === 0) !== (w.events === 0)) this.#interested += w.events === 0 ? -1 : 1;
    if (!this.#running || this.#awaiting || w.slot < 0 || this.#dirty) {
      this.#changed();
    } else {
      const dv = this.#pollfds!.dv, at = w.slot * POLLFD_SIZE;
      dv.setInt32(at, w.events === 0 ? -1 : w.fd, true);
      dv.setInt16(at + 4, w.events, true);
    }
  }

  /** @internal */
  removed(w: Watch): void {
    this.#watches.delete(w);
    if (w.events !== 0) this.#interested--;
    this.#changed();
  }

  /** @internal `before`: the timer's `at` before (Infinity when it was not armed). */
  armed(t: ReactorTimer, before: number): void {
    this.#timers.add(t);
    if (t.at < this.#nextAt) this.#nextAt = t.at;
    else if (before === this.#nextAt && before !== Infinity && t.at !== before) {
      this.#nextStale = true; // the earliest one moved later
    }
    if (!this.#running) this.#start();
    else if (t.at < before && this.#awaiting) this.#wake();
  }

  /** @internal `before`: the timer's `at` before it was disarmed. */
  disarmed(t: ReactorTimer, before: number): void {
    this.#timers.delete(t);
    if (before === this.#nextAt) this.#nextStale = true;
  }

  #changed(): void {
    this.#dirty = true;
    if (!this.#running) this.#start();
    else if (this.#awaiting) this.#wake();
  }

  #wake(): void {
    if (this.#wakeFd >= 0) loadLibc().write(this.#wakeFd, this.#wakeBuf, 8n);
  }

  #start(): void {
    if (this.#running || !this.#busy()) return;
    this.#running = true;
    this.#settled = new Promise((r) => this.#resolveSettled = r);
    this.#loop().catch((e) => this.#opts.onError(e));
  }

  /** Re-lays the poll set: the wake-up eventfd, then the `first` watches, then the `last` ones. */
  #rebuild(): void {
    this.#dirty = false;
    const n = this.#watches.size + 1;
    if (this.#pollfds === null || this.#pollfds.size < n * POLLFD_SIZE) {
      this.#pollfds?.free();
      this.#pollfds = new NativeMemory(Math.max(16, n * 2) * POLLFD_SIZE);
    }
    const dv = this.#pollfds.dv;
    for (const w of this.#slots) if (w !== null) w.slot = -1;
    this.#slots = [null];
    dv.setInt32(0, this.#wakeFd, true);
    dv.setInt16(4, PollEvents.IN, true);
    dv.setInt16(6, 0, true);
    for (const order of ["first", "last"] as const) {
      for (const w of this.#watches) if (w.order === order) this.#place(w, dv);
    }
  }

  /** Puts `w` in the next slot of the poll set. */
  #place(w: Watch, dv: DataView): void {
    const i = this.#slots.length;
    w.slot = i;
    this.#slots.push(w);
    const at = i * POLLFD_SIZE;
    // poll() skips negative fds: a watch with no events is not even checked for errors
    dv.setInt32(at, w.events === 0 ? -1 : w.fd, true);
    dv.setInt16(at + 4, w.events, true);
    dv.setInt16(at + 6, 0, true);
  }

  /** Something to wait for: an interested watch or an armed timer. */
  #busy(): boolean {
    return this.#interested > 0 || this.#timers.size > 0;
  }

  /** The earliest armed timer's `at` (Infinity: none). */
  #nextTimerAt(): number {
    if (this.#nextStale) {
      let at = Infinity;
      for (const t of this.#timers) if (t.at < at) at = t.at;
      this.#nextAt = at;
      this.#nextStale = false;
    }
    return this.#nextAt;
  }

  async #loop(): Promise<void> {
    await null; // let the code that registered the first descriptor finish first
    const libc = loadLibc();
    const { yieldEveryMs, idleWaitMs } = this.#opts;
    let lastYield = this.now();
    if (this.#wakeFd < 0) {
      this.#wakeFd = libc.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      this.#dirty = true;
    }
    try {
      while (this.#busy()) {
        if (this.#dirty) this.#rebuild();
        const pfd = this.#pollfds!;
        const count = BigInt(this.#slots.length);
        const start = this.now();
        const timerIn = this.#nextTimerAt() - start;
        let ready: number;
        if (start - lastYield >= yieldEveryMs) {
          // busy for a while: this round's poll() is awaited (zero timeout), so Deno's event
          // loop parks once: its own I/O (signals, the metrics server) is served, every
          // pending promise chain runs to its end, timers fire
          ready = await this.#awaitPoll(pfd, count, 0);
          lastYield = this.now();
        } else {
          // block at most until the next timer or until Deno's event loop is due its turn
          const slice = Math.min(timerIn, yieldEveryMs - (start - lastYield));
          ready = libc.poll(pfd.pointer, count, slice <= 0 ? 0 : Math.ceil(slice));
          this.counters.syncPolls++;
          if (ready < 0 && errno() !== Errno.EINTR) {
            throw new Error(`poll() failed: errno ${errno()}`);
          }
          if (ready <= 0 && timerIn > slice && !this.#dirty) {
            // idle for a whole slice: wait on, with Deno's event loop running meanwhile
            const left = this.#nextTimerAt() - this.now();
            const wait = Math.max(0, Math.ceil(Math.min(idleWaitMs, left)));
            ready = await this.#awaitPoll(pfd, count, wait);
            lastYield = this.now();
          }
        }
        if (ready > 0) this.#dispatch(pfd);
        this.#fireTimers();
        for (let i = 0; i < this.#hooks.length; i++) this.#guard(this.#hooks[i]);
        // promise chains the handlers resolved advance a few steps (a waiter's continuation
        // is one or two); longer chains finish at the next awaited poll()
        for (let i = 0; i < MICROTASK_STEPS; i++) await null;
      }
    } finally {
      this.#running = false;
      this.#pollfds?.free();
      this.#pollfds = null;
      for (const w of this.#slots) if (w !== null) w.slot = -1;
      this.#slots = [null];
      this.#dirty = true;
      if (this.#wakeFd >= 0) libc.close(this.#wakeFd);
      this.#wakeFd = -1;
      this.#resolveSettled();
      // something registered while the loop was ending
      if (this.#busy()) this.#start();
    }
  }

  async #awaitPoll(pfd: NativeMemory, count: bigint, timeoutMs: number): Promise<number> {
    this.#awaiting = true;
    this.counters.awaitedPolls++;
    try {
      return await loadLibc().poll_async(pfd.pointer, count, timeoutMs);
    } finally {
      this.#awaiting = false;
    }
  }

  #dispatch(pfd: NativeMemory): void {
    const dv = pfd.dv;
    const slots = this.#slots;
    if (dv.getInt16(6, true) !== 0) loadLibc().read(this.#wakeFd, this.#drainBuf, 8n);
    for (let i = 1; i < slots.length; i++) {
      const revents = dv.getInt16(i * POLLFD_SIZE + 6, true);
      if (revents === 0) continue;
      const w = slots[i];
      if (w === null || !w.active) continue;
      this.counters.dispatched++;
      try {
        w.handler(revents);
      } catch (e) {
        this.#opts.onError(e);
      }
    }
  }

  #fireTimers(): void {
    const next = this.#nextTimerAt();
    if (next === Infinity) return;
    const now = this.now();
    if (next > now) return;
    const due = this.#due;
    for (const t of this.#timers) if (t.at <= now) due.push(t);
    // disarm all first: a timer re-armed by its own firing waits for the next round
    for (let i = 0; i < due.length; i++) {
      this.#timers.delete(due[i]);
      due[i].at = Infinity;
    }
    this.#nextStale = true;
    const n = due.length;
    try {
      for (let i = 0; i < n; i++) {
        this.counters.timersFired++;
        this.#guard(due[i].fire);
      }
    } finally {
      due.length = 0;
    }
  }

  #guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#opts.onError(e);
    }
  }
}

let shared: Reactor | undefined;

/** The process-wide reactor every I/O edge registers with. */
export function sharedReactor(): Reactor {
  return shared ??= new Reactor();
}
