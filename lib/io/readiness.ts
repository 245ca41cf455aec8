/**
 * Waiting for a file descriptor to become readable without blocking the JS thread, and
 * without a promise per packet: one awaited `poll()` per wake-up, in slices of at most
 * {@link POLL_SLICE_MS} so that {@link FdWaiter.stop} ends a pending wait promptly.
 *
 * @module
 */

import { loadLibc, NativeMemory } from "./libc.ts";

/** Longest single poll(): bounds how long stop() takes to end a pending wait. */
export const POLL_SLICE_MS = 100;

const POLLIN = 0x001;

/** Awaits readability of one fd; stoppable. */
export class FdWaiter {
  readonly #pollfd = new NativeMemory(8); // struct pollfd { int fd; short events; short revents; }
  #stopped = false;
  #pending: Promise<unknown> | null = null;
  #freed = false;

  constructor(readonly fd: number) {
    this.#pollfd.dv.setInt32(0, fd, true);
    this.#pollfd.dv.setInt16(4, POLLIN, true);
  }

  /** True once {@link stop} was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Resolves `true` when the fd is readable (or `timeoutMs` elapsed: draining then finds
   * nothing), `false` once stopped. Only one wait may be pending at a time.
   */
  async wait(timeoutMs = Infinity): Promise<boolean> {
    if (this.#pending !== null) throw new Error("FdWaiter.wait: a wait is already pending");
    const end = timeoutMs === Infinity ? Infinity : performance.now() + timeoutMs;
    const poll = loadLibc().poll_async;
    while (!this.#stopped) {
      const left = end - performance.now();
      if (left <= 0) return true;
      const slice = Math.max(0, Math.min(POLL_SLICE_MS, Math.ceil(left)));
      const call = poll(this.#pollfd.pointer, 1n, slice);
      this.#pending = call;
      let ready: number;
      try {
        ready = await call;
      } finally {
        this.#pending = null;
        if (this.#stopped) this.#release();
      }
      if (this.#stopped) return false;
      if (ready > 0) return true;
      // 0: slice timed out; -1: EINTR or similar, retry until the deadline
    }
    return false;
  }

  /** Ends any pending wait within {@link POLL_SLICE_MS}; later waits return false at once. */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * Stops and frees the pollfd (deferred until a pending poll returns). Resolves when the
   * pending poll, if any, has returned, so the caller may then close the fd itself.
   */
  close(): Promise<void> {
    this.#stopped = true;
    if (this.#pending === null) {
      this.#release();
      return Promise.resolve();
    }
    return this.#pending.then(() => this.#release(), () => this.#release());
  }

  #release(): void {
    if (!this.#freed && this.#pending === null) {
      this.#freed = true;
      this.#pollfd.free();
    }
  }
}
