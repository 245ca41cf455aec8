/**
 * The egress limit (`--max-pps`, `--max-mbps`): two token buckets, packets and bytes, refilled
 * from the engine's clock. Pure: time is an argument. A bucket holds at most 100 ms of its
 * rate (at least 64 packets / 64 KiB), so a burst after a quiet spell stays short.
 */

/** How much of the rate a full bucket holds. */
const BURST_MS = 100;

/** One token bucket; a rate of 0 means no limit. */
class Bucket {
  readonly capacity: number;
  tokens: number;
  #last: number;

  constructor(readonly perMs: number, minBurst: number, now: number) {
    this.capacity = Math.max(minBurst, perMs * BURST_MS);
    this.tokens = this.capacity;
    this.#last = now;
  }

  refill(now: number): void {
    if (now > this.#last) {
      this.tokens = Math.min(this.capacity, this.tokens + (now - this.#last) * this.perMs);
    }
    this.#last = Math.max(this.#last, now);
  }
}

/** The packet and byte buckets together. */
export class EgressLimit {
  readonly #pps: Bucket | null;
  readonly #bytes: Bucket | null;

  /**
   * @param maxPps packets per second, 0 = unlimited
   * @param maxMbps megabits per second (10^6 bit/s of IP packets), 0 = unlimited
   */
  constructor(maxPps: number, maxMbps: number, now: number) {
    this.#pps = maxPps > 0 ? new Bucket(maxPps / 1000, 64, now) : null;
    this.#bytes = maxMbps > 0 ? new Bucket(maxMbps * 125, 65536, now) : null;
  }

  /** True when some limit is configured. */
  get active(): boolean {
    return this.#pps !== null || this.#bytes !== null;
  }

  /** Whether a packet of `bytes` may go now; takes its tokens when it may. */
  take(bytes: number, now: number): boolean {
    const p = this.#pps, b = this.#bytes;
    p?.refill(now);
    b?.refill(now);
    if ((p !== null && p.tokens < 1) || (b !== null && b.tokens < bytes)) return false;
    if (p !== null) p.tokens -= 1;
    if (b !== null) b.tokens -= bytes;
    return true;
  }

  /**
   * Takes the tokens of a packet that must go anyway (an RST that frees the target's socket):
   * the buckets may go into debt, at most one bucket's worth.
   */
  force(bytes: number, now: number): void {
    const p = this.#pps, b = this.#bytes;
    p?.refill(now);
    b?.refill(now);
    if (p !== null) p.tokens = Math.max(-p.capacity, p.tokens - 1);
    if (b !== null) b.tokens = Math.max(-b.capacity, b.tokens - bytes);
  }

  /** Whether there is room for at least one more packet now (new sessions wait otherwise). */
  hasRoom(now: number): boolean {
    const p = this.#pps, b = this.#bytes;
    p?.refill(now);
    b?.refill(now);
    return (p === null || p.tokens >= 1) && (b === null || b.tokens >= 1500);
  }
}
