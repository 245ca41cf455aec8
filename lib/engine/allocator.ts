/**
 * Collision-free choice of rewritten client tuples (client address, port) per target.
 *
 * A tuple is in use while a session holds it and for a quarantine after it ended. The
 * preferred port (original port, shifted by --port-shift and the copy index) is taken when
 * free; otherwise ports are probed upwards deterministically, so two live originals never
 * share a rewritten tuple and the same input always gives the same mapping.
 */

/** Key of a (client, target) tuple as used by the engine's session table. */
export function tupleKey(cAddr: string, cPort: number, tAddr: string, tPort: number): string {
  return `${cAddr}|${cPort}|${tAddr}|${tPort}`;
}

/** Lowest and highest port used for rewritten clients. */
export const PORT_MIN = 1024, PORT_MAX = 65535;

/** Map `p` into [PORT_MIN, PORT_MAX] (ports below 1024 stay as they are when unshifted). */
export function wrapPort(p: number): number {
  const span = PORT_MAX - PORT_MIN + 1;
  return PORT_MIN + ((((p - PORT_MIN) % span) + span) % span);
}

/** See the module comment. */
export class TupleAllocator {
  /** Tuples held by live sessions. */
  private live = new Set<string>();
  /** Ended tuples and when they become free again. */
  private quarantine = new Map<string, number>();

  constructor(readonly quarantineMs: number, readonly maxProbes = 4096) {}

  /** Number of tuples held by live sessions. */
  get size(): number {
    return this.live.size;
  }

  /** Whether a tuple can be taken at `now`. */
  free(key: string, now: number): boolean {
    if (this.live.has(key)) return false;
    const until = this.quarantine.get(key);
    if (until === undefined) return true;
    if (now >= until) {
      this.quarantine.delete(key);
      return true;
    }
    return false;
  }

  /** Take a port for (addr -> target) near `preferred`; undefined when none is free. */
  take(addr: string, preferred: number, tAddr: string, tPort: number, now: number):
    | number
    | undefined {
    let p = preferred;
    for (let i = 0; i < this.maxProbes; i++) {
      const key = tupleKey(addr, p, tAddr, tPort);
      if (this.free(key, now)) {
        this.live.add(key);
        return p;
      }
      p = wrapPort(p + 1);
    }
    return undefined;
  }

  /** The session holding `key` ended. */
  release(key: string, now: number): void {
    this.live.delete(key);
    if (this.quarantineMs > 0) this.quarantine.set(key, now + this.quarantineMs);
  }
}
