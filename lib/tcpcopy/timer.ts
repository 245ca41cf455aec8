/**
 * One timer for the whole engine: a single setTimeout aimed at the engine's earliest deadline.
 *
 * Deadlines mostly move later (every reply pushes a session's idle timeout forward), so the
 * timer is moved only when the earliest deadline comes *earlier* than the pending timeout.
 * A timeout that finds nothing due costs one wake-up; re-arming after every batch of work
 * would cost a clearTimeout and a setTimeout per batch instead.
 */

/** Keeps a single setTimeout at or before `deadline()`. */
export class DeadlineTimer {
  #id: ReturnType<typeof setTimeout> | undefined;
  #at = Infinity;

  /**
   * @param deadline the earliest pending deadline (ms, same clock as `now`) or undefined
   * @param fire runs the due work; the timer re-arms itself afterwards
   * @param now the clock
   */
  constructor(
    private readonly deadline: () => number | undefined,
    private readonly fire: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** The time the pending timeout is aimed at (Infinity when none is pending). */
  get armedAt(): number {
    return this.#at;
  }

  /**
   * Makes sure a timeout is pending no later than the earliest deadline. Cheap when the
   * deadline did not come earlier: nothing is cancelled or created then.
   */
  arm(): void {
    const at = this.deadline();
    if (at === undefined || at >= this.#at) return;
    if (this.#id !== undefined) clearTimeout(this.#id);
    this.#at = at;
    // at least 1 ms: a deadline the engine keeps in the past must not spin the loop
    this.#id = setTimeout(this.#onTimeout, Math.max(1, at - this.now()));
  }

  #onTimeout = (): void => {
    this.#id = undefined;
    this.#at = Infinity;
    this.fire();
    this.arm();
  };

  /** Clears the pending timeout, if any. */
  cancel(): void {
    if (this.#id !== undefined) clearTimeout(this.#id);
    this.#id = undefined;
    this.#at = Infinity;
  }
}
