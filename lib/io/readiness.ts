/**
 * Waiting for a file descriptor to become ready without blocking: the descriptor is watched
 * by the reactor (reactor.ts), whose synchronous poll() resolves the waiter's promise; the
 * caller's continuation runs in the same reactor round. One promise per wake-up, no thread
 * hand-off. Between two waits the watch asks for no events, so a descriptor that stays
 * readable while its owner is busy elsewhere does not spin the loop.
 *
 *   const w = new FdWaiter(fd);
 *   while (await w.wait()) drain();
 *
 * @module
 */

import {
  PollEvents,
  type Reactor,
  type ReactorTimer,
  sharedReactor,
  type Watch,
} from "./reactor.ts";

/** Awaits readiness of one fd; stoppable. */
export class FdWaiter {
  readonly #watch: Watch;
  readonly #timer: ReactorTimer;
  #resolve: ((ready: boolean) => void) | null = null;
  #stopped = false;

  /**
   * @param fd the descriptor (the caller keeps owning it)
   * @param events what {@link wait} waits for (readable by default)
   */
  constructor(
    readonly fd: number,
    readonly events: number = PollEvents.IN,
    reactor: Reactor = sharedReactor(),
  ) {
    this.#watch = reactor.watch(fd, 0, this.#onReady);
    this.#timer = reactor.timer(this.#onReady); // a timeout: draining then finds nothing
  }

  /** True once {@link stop} was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Resolves `true` when the fd is ready for `events` (or `timeoutMs` elapsed: draining then
   * finds nothing), `false` once stopped. Only one wait may be pending at a time.
   */
  wait(timeoutMs = Infinity): Promise<boolean> {
    if (this.#resolve !== null) throw new Error("FdWaiter.wait: a wait is already pending");
    if (this.#stopped) return Promise.resolve(false);
    const p = new Promise<boolean>((r) => this.#resolve = r);
    this.#watch.setEvents(this.events);
    if (timeoutMs !== Infinity) this.#timer.armIn(Math.max(0, timeoutMs));
    return p;
  }

  #onReady = (): void => this.#settle(true);

  #settle(ready: boolean): void {
    const resolve = this.#resolve;
    if (resolve === null) return;
    this.#resolve = null;
    this.#watch.setEvents(0);
    this.#timer.cancel();
    resolve(ready && !this.#stopped);
  }

  /** Ends any pending wait (it resolves false); later waits return false at once. */
  stop(): void {
    this.#stopped = true;
    this.#settle(false);
  }

  /** Stops and stops watching; the caller may close the fd once this resolved. */
  close(): Promise<void> {
    this.stop();
    this.#watch.remove();
    return Promise.resolve();
  }
}
