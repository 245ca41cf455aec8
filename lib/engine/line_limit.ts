/**
 * Rate limit for operator log lines the engine produces on behalf of protocol modules (a
 * wrong password in the auth file fails every session: one line each would flood the log).
 * At most `perWindow` lines per `windowMs` of engine time; the next line that passes says
 * how many were suppressed before it. Lines are made printable and cut to a bounded length
 * (module details may quote bytes from the network).
 */

/** Longest line passed on (characters). */
export const MAX_LINE = 300;

/** See the module comment. */
export class LineLimiter {
  #windowStart = Number.NEGATIVE_INFINITY;
  #used = 0;
  #suppressed = 0;

  constructor(readonly perWindow = 10, readonly windowMs = 60_000) {}

  /** Lines dropped since the last one that passed. */
  get suppressed(): number {
    return this.#suppressed;
  }

  /** The line to print at `now` (cleaned, with the suppressed count), or undefined. */
  take(line: string, now: number): string | undefined {
    if (now - this.#windowStart >= this.windowMs) {
      this.#windowStart = now;
      this.#used = 0;
    }
    if (this.#used >= this.perWindow) {
      this.#suppressed++;
      return undefined;
    }
    this.#used++;
    let out = printable(line);
    if (this.#suppressed > 0) {
      out += ` (${this.#suppressed} similar lines suppressed)`;
      this.#suppressed = 0;
    }
    return out;
  }
}

/** `text` with control characters replaced by '?' and cut to {@link MAX_LINE} characters. */
export function printable(text: string): string {
  // deno-lint-ignore no-control-regex
  const clean = text.replace(/[\x00-\x1f\x7f-\x9f]/g, "?");
  return clean.length > MAX_LINE ? clean.slice(0, MAX_LINE - 1) + "…" : clean;
}
