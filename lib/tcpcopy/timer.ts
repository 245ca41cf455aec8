/**
 * One timer for the whole engine: armed at the engine's earliest deadline, re-armed after
 * every batch of work. Never more than one pending setTimeout.
 */

/** Keeps a single setTimeout pointed at `deadline()`. */
export class DeadlineTimer {
  #id: ReturnType<typeof setTimeout> | undefined;
  #at: number | undefined;

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

  /** Points the timer at the current earliest deadline (cheap when unchanged). */
  arm(): void {
    const at = this.deadline();
    if (at === this.#at && this.#id !== undefined) return;
    this.cancel();
    if (at === undefined) return;
    this.#at = at;
    // at least 1 ms: a deadline the engine keeps in the past must not spin the loop
    this.#id = setTimeout(() => {
      this.#id = undefined;
      this.#at = undefined;
      this.fire();
      this.arm();
    }, Math.max(1, at - this.now()));
  }

  /** Clears the pending timeout, if any. */
  cancel(): void {
    if (this.#id !== undefined) clearTimeout(this.#id);
    this.#id = undefined;
    this.#at = undefined;
  }
}
