/**
 * The pass-list (-x): replies whose destination is a real user's address are accepted
 * (NF_ACCEPT) instead of being routed and dropped, so a port can be shared with real traffic.
 */

/** A set of IPv4/IPv6 destination addresses, matched against raw reply headers. */
export class PassList {
  #v4 = new Set<number>();
  #v6 = new Set<string>();

  constructor(addrs: Uint8Array[]) {
    for (const a of addrs) {
      if (a.length === 4) this.#v4.add(u32(a, 0));
      else this.#v6.add(a.join("."));
    }
  }

  /** True when no address is listed. */
  get empty(): boolean {
    return this.#v4.size === 0 && this.#v6.size === 0;
  }

  /** True when the destination of `ip` (bytes from the IP header) is listed. */
  has(ip: Uint8Array): boolean {
    if (ip.length < 20) return false;
    const v = ip[0] >> 4;
    if (v === 4) return this.#v4.size > 0 && this.#v4.has(u32(ip, 16));
    if (v === 6 && ip.length >= 40 && this.#v6.size > 0) {
      return this.#v6.has(ip.subarray(24, 40).join("."));
    }
    return false;
  }
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}
