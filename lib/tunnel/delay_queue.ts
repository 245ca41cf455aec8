/**
 * Delay queue: SYN-ACK and RST replies that arrive before their CLIENT_ADD (the target's
 * raw-path reply can beat the tunnel message) are kept per route key for up to `ttlMs`
 * (30 s in the C original) and handed over when the route is registered. Bounded in keys
 * and per key; what does not fit is counted and dropped. Pure: the caller passes the time.
 */

interface Held {
  created: number;
  packets: Uint8Array[];
}

/** Limits of a DelayQueue. */
export interface DelayQueueLimits {
  ttlMs: number;
  maxKeys: number;
  maxPerKey: number;
}

/** Default limits: 30 s, 8192 keys, 4 packets per key. */
export const DEFAULT_DELAY_LIMITS: DelayQueueLimits = {
  ttlMs: 30_000,
  maxKeys: 8192,
  maxPerKey: 4,
};

/** The delay queue. Packets are stored as given: pass a copy you will not reuse. */
export class DelayQueue {
  #held = new Map<string, Held>();
  #count = 0;
  /** Packets refused because the queue or the key's list was full. */
  droppedFull = 0;
  /** Packets expired without a registration. */
  expired = 0;

  constructor(readonly limits: DelayQueueLimits = DEFAULT_DELAY_LIMITS) {}

  /** Packets held. */
  get size(): number {
    return this.#count;
  }

  /** Holds `packet` under `key`; false (and counted) when full. */
  add(key: string, packet: Uint8Array, now: number): boolean {
    let h = this.#held.get(key);
    if (!h) {
      if (this.#held.size >= this.limits.maxKeys) {
        this.droppedFull++;
        return false;
      }
      this.#held.set(key, h = { created: now, packets: [] });
    }
    if (h.packets.length >= this.limits.maxPerKey) {
      this.droppedFull++;
      return false;
    }
    h.packets.push(packet);
    this.#count++;
    return true;
  }

  /** Removes and returns the packets held for `key` (oldest first), if still fresh. */
  take(key: string, now: number): Uint8Array[] {
    const h = this.#held.get(key);
    if (!h) return [];
    this.#held.delete(key);
    this.#count -= h.packets.length;
    if (now - h.created >= this.limits.ttlMs) {
      this.expired += h.packets.length;
      return [];
    }
    return h.packets;
  }

  /** Drops keys older than the TTL; returns how many packets went. */
  expire(now: number): number {
    let n = 0;
    for (const [key, h] of this.#held) {
      if (now - h.created < this.limits.ttlMs) break;
      this.#held.delete(key);
      n += h.packets.length;
    }
    this.#count -= n;
    this.expired += n;
    return n;
  }
}
