/**
 * Collision-free choice of rewritten client tuples (client address, port) per target.
 * Addresses are bytes (4 or 16) the caller never changes; they are kept, not copied.
 *
 * A tuple is in use while a session holds it and for a quarantine after it ended. The
 * preferred port (original port, shifted by --port-shift and the copy index) is taken when
 * free; otherwise ports are probed upwards deterministically, so two live originals never
 * share a rewritten tuple and the same input always gives the same mapping.
 *
 * One allocator only knows its own process. Several tcpcopy instances replaying the same
 * clients to one target are kept apart by port lanes: with a port shift `f`, every port an
 * instance uses (preferred or probed) lies in lane `f mod PORT_LANES`, so instances with
 * different lanes can never pick the same tuple, whatever their clients do.
 *
 * The allocator's table is also the engine's table of live sessions: a held tuple maps to
 * its holder (the session), a quarantined one to the end of its quarantine. One entry per
 * live session, not one here and one in a second map.
 */

import { TupleMap } from "./tuple_map.ts";

/** Text of a (client, target) tuple (`Session.key`, diagnostics; the tables key by bytes). */
export function tupleKey(cAddr: string, cPort: number, tAddr: string, tPort: number): string {
  return `${cAddr}|${cPort}|${tAddr}|${tPort}`;
}

/** Lowest and highest port used for rewritten clients. */
export const PORT_MIN = 1024, PORT_MAX = 65535;

const SPAN = PORT_MAX - PORT_MIN + 1;

/** Map `p` into [PORT_MIN, PORT_MAX] (ports below 1024 stay as they are when unshifted). */
export function wrapPort(p: number): number {
  return PORT_MIN + ((((p - PORT_MIN) % SPAN) + SPAN) % SPAN);
}

/**
 * Number of port lanes. Lane `l` holds the ports with `(port - PORT_MIN) mod PORT_LANES = l`
 * (8064 ports each); the span is a multiple of it, so wrapping keeps a port in its lane.
 */
export const PORT_LANES = 8;

/** Ports of one lane. */
export const LANE_PORTS = SPAN / PORT_LANES;

/** The lane of a rewritten port. */
export function laneOf(port: number): number {
  return (port - PORT_MIN) % PORT_LANES;
}

/**
 * Preferred rewritten port of a client port for port shift `shift` (non-zero) and copy
 * `copy`: the shifted position (`port + shift * 2048 + copy * 1031`, as the C original
 * shifts) taken as a slot number in lane `shift mod PORT_LANES`. Neighbouring client ports
 * get neighbouring slots; ports LANE_PORTS apart share one and the allocator probes on.
 */
export function lanePort(port: number, shift: number, copy: number): number {
  const pos = Math.max(port, PORT_MIN) - PORT_MIN + shift * 2048 + copy * 1031;
  const slot = pos % LANE_PORTS;
  return PORT_MIN + slot * PORT_LANES + (shift % PORT_LANES);
}

/** The holder of a tuple taken without one. */
const HELD = Object.freeze({});

/** See the module comment. */
export class TupleAllocator<T extends object = object> {
  /** Tuples in use: the holder while one holds it, else when it becomes free (a number). */
  private busyUntil = new TupleMap<T | number>();
  private live = 0;
  /** Quarantined tuples in release order, so expired ones are forgotten without a probe. */
  private quarantine: {
    until: number;
    addr: Uint8Array;
    port: number;
    tAddr: Uint8Array;
    tPort: number;
  }[] = [];
  private quarantineHead = 0;

  constructor(readonly quarantineMs: number, readonly maxProbes = 4096) {}

  /** Number of tuples held by live sessions. */
  get size(): number {
    return this.live;
  }

  /** Tuples tracked: held by live sessions or still quarantined. */
  get tracked(): number {
    return this.busyUntil.size;
  }

  /** Whether the tuple can be taken at `now`. */
  free(addr: Uint8Array, port: number, tAddr: Uint8Array, tPort: number, now: number): boolean {
    const until = this.busyUntil.get(addr, port, tAddr, tPort);
    if (until === undefined) return true;
    if (typeof until === "number" && now >= until) {
      this.busyUntil.delete(addr, port, tAddr, tPort);
      return true;
    }
    return false;
  }

  /** The holder of a held tuple (undefined when free or quarantined). */
  holder(addr: Uint8Array, port: number, tAddr: Uint8Array, tPort: number): T | undefined {
    const v = this.busyUntil.get(addr, port, tAddr, tPort);
    return typeof v === "number" ? undefined : v;
  }

  /** Set the holder of a tuple taken with {@link take} (the session made for it). */
  hold(addr: Uint8Array, port: number, tAddr: Uint8Array, tPort: number, holder: T): void {
    this.busyUntil.set(addr, port, tAddr, tPort, holder);
  }

  /** Every holder of a held tuple (in no particular order). */
  *holders(): IterableIterator<T> {
    for (const v of this.busyUntil.values()) if (typeof v !== "number" && v !== HELD) yield v;
  }

  /**
   * Take a port for (addr -> target) at `preferred` or the next free one `step` apart
   * (`PORT_LANES` keeps the probe in the preferred port's lane); undefined when none is free.
   * The tuple is held until {@link release}; {@link hold} names its holder.
   */
  take(
    addr: Uint8Array,
    preferred: number,
    tAddr: Uint8Array,
    tPort: number,
    now: number,
    step = 1,
  ): number | undefined {
    this.expire(now);
    let p = preferred;
    for (let i = 0; i < this.maxProbes; i++) {
      if (this.free(addr, p, tAddr, tPort, now)) {
        this.busyUntil.set(addr, p, tAddr, tPort, HELD as T);
        this.live++;
        return p;
      }
      p = wrapPort(p + step);
    }
    return undefined;
  }

  /** The session holding the tuple ended at `now`. */
  release(addr: Uint8Array, port: number, tAddr: Uint8Array, tPort: number, now: number): void {
    const v = this.busyUntil.get(addr, port, tAddr, tPort);
    if (v === undefined || typeof v === "number") return;
    this.live--;
    if (this.quarantineMs > 0) {
      const until = now + this.quarantineMs;
      this.busyUntil.set(addr, port, tAddr, tPort, until);
      this.quarantine.push({ until, addr, port, tAddr, tPort });
      this.expire(now);
    } else this.busyUntil.delete(addr, port, tAddr, tPort);
  }

  /** Forget quarantined tuples whose quarantine is over (oldest releases first). */
  private expire(now: number): void {
    const q = this.quarantine;
    let h = this.quarantineHead;
    while (h < q.length && q[h].until <= now) {
      const e = q[h++];
      // Only if the tuple was not taken again (then it is held, or has a later release).
      if (this.busyUntil.get(e.addr, e.port, e.tAddr, e.tPort) === e.until) {
        this.busyUntil.delete(e.addr, e.port, e.tAddr, e.tPort);
      }
    }
    if (h > 1024 && h * 2 > q.length) {
      q.splice(0, h);
      h = 0;
    }
    this.quarantineHead = h;
  }
}
