/**
 * One timer for the whole engine: a single reactor timer aimed at the engine's earliest
 * deadline. It fires from the reactor loop (lib/io/reactor.ts), so an RTO or a paced send is
 * not held back while the loop is busy with packets, as a Deno setTimeout would be.
 *
 * Deadlines mostly move later (every reply pushes a session's idle timeout forward), so the
 * timer is moved only when the earliest deadline comes *earlier* than the pending one; a
 * timeout that finds nothing due costs one loop round.
 */
import { type Reactor, sharedReactor } from "../io/reactor.ts";

/** Keeps a single timer at or before `deadline()`. */
export class DeadlineTimer {
  #at = Infinity;
  readonly #timer;

  /**
   * @param deadline the earliest pending deadline (ms, same clock as `now`) or undefined
   * @param fire runs the due work; the timer re-arms itself afterwards
   * @param now the clock
   */
  constructor(
    private readonly deadline: () => number | undefined,
    private readonly fire: () => void,
    private readonly now: () => number = Date.now,
    reactor: Reactor = sharedReactor(),
  ) {
    this.#timer = reactor.timer(this.#onTimeout);
  }

  /** The time the pending timeout is aimed at (Infinity when none is pending). */
  get armedAt(): number {
    return this.#at;
  }

  /**
   * Makes sure a timeout is pending no later than the earliest deadline. Cheap when the
   * deadline did not come earlier: nothing is moved then.
   */
  arm(): void {
    const at = this.deadline();
    if (at === undefined || at >= this.#at) return;
    this.#at = at;
    // at least 1 ms: a deadline the engine keeps in the past must not spin the loop
    this.#timer.armIn(Math.max(1, at - this.now()));
  }

  #onTimeout = (): void => {
    this.#at = Infinity;
    this.fire();
    this.arm();
  };

  /** Clears the pending timeout, if any. */
  cancel(): void {
    this.#timer.cancel();
    this.#at = Infinity;
  }
}
