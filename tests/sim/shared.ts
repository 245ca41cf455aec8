/**
 * Several tcpcopy instances, one intercept, one target, on one fake clock: each instance is
 * an Engine with its own configuration (e.g. its own port shift); all of them send to one
 * simulated target, and the target's replies go through a model of intercept's routing:
 * a tuple's replies go to the instance that registered it last, only the owner deletes a
 * route, and a SYN or RST without a route waits until its registration arrives. Routes
 * travel with `routeLatencyMs`, packets with `latencyMs`, so the usual races (a SYN-ACK
 * beating its CLIENT_ADD, two registrations for one tuple) happen as on a real host.
 */

import type {
  CapturedSegment,
  EngineConfig,
  OutSegment,
  ReplySegment,
} from "../../lib/engine/mod.ts";
import { addrText, Engine, RST, SYN } from "../../lib/engine/mod.ts";
import type { TargetBehaviour } from "./target.ts";
import { SimTarget } from "./target.ts";
import { keepSegment } from "../helpers/out_segment.ts";

/** Options of {@link SharedTarget}. */
export interface SharedTargetOptions {
  latencyMs?: number;
  replyLatencyMs?: number;
  routeLatencyMs?: number;
  start?: number;
}

/** What intercept's model did with the replies. */
export interface RoutingCounters {
  routed: number[];
  delayed: number;
  dropped: number;
  /** CLIENT_ADDs that took a tuple over from another live instance. */
  takeovers: number;
}

interface Ev {
  at: number;
  n: number;
  fn: () => void;
}

const TARGET = { addr: "10.9.0.2", port: 8080 };

/** See the module comment. */
export class SharedTarget {
  now: number;
  readonly engines: Engine[];
  readonly target: SimTarget;
  /** Rewritten (client addr|port) tuples each instance used, in order. */
  readonly tuples: string[][];
  readonly counters: RoutingCounters;
  private readonly routes = new Map<string, number>();
  private readonly held = new Map<string, ReplySegment[]>();
  private queue: Ev[] = [];
  private n = 0;

  constructor(
    configs: Omit<EngineConfig, "transfers">[],
    behaviour: TargetBehaviour = {},
    readonly opts: SharedTargetOptions = {},
  ) {
    this.now = opts.start ?? 1000;
    const lat = opts.latencyMs ?? 0.5;
    const rlat = opts.replyLatencyMs ?? 0.5;
    const route = opts.routeLatencyMs ?? 0.3;
    this.counters = { routed: configs.map(() => 0), delayed: 0, dropped: 0, takeovers: 0 };
    this.tuples = configs.map(() => []);
    this.target = new SimTarget(behaviour, (r) => this.at(this.now + rlat, () => this.route(r)));
    this.engines = configs.map((cfg, i) =>
      new Engine(
        { transfers: [{ online: { addr: "", port: 80 }, target: TARGET }], ...cfg },
        {
          send: (out: OutSegment) => {
            const seg = keepSegment(out); // the engine refills `out` for its next packet
            this.at(this.now + lat, () => this.target.receive(seg, this.now));
          },
          routeAdd: (c) => {
            const key = `${addrText(c)}|${c.port}`;
            if (this.tuples[i].at(-1) !== key) this.tuples[i].push(key);
            this.at(this.now + route, () => this.add(key, i));
          },
          routeDel: (c) => this.at(this.now + route, () => this.del(`${addrText(c)}|${c.port}`, i)),
        },
        this.now,
      )
    );
  }

  private add(key: string, owner: number): void {
    const was = this.routes.get(key);
    if (was !== undefined && was !== owner) this.counters.takeovers++;
    this.routes.set(key, owner);
    const held = this.held.get(key);
    if (!held) return;
    this.held.delete(key);
    for (const r of held) this.deliver(r, owner);
  }

  private del(key: string, owner: number): void {
    if (this.routes.get(key) === owner) this.routes.delete(key);
  }

  private route(r: ReplySegment): void {
    const key = `${addrText(r.dst)}|${r.dst.port}`;
    const owner = this.routes.get(key);
    if (owner !== undefined) return this.deliver(r, owner);
    if (r.flags & (SYN | RST)) {
      const list = this.held.get(key) ?? [];
      list.push(r);
      this.held.set(key, list);
      this.counters.delayed++;
    } else this.counters.dropped++;
  }

  private deliver(r: ReplySegment, owner: number): void {
    this.counters.routed[owner]++;
    this.engines[owner].onReply(r, this.now);
  }

  /** Schedule `fn` at simulated time `t`. */
  at(t: number, fn: () => void): void {
    const ev = { at: t, n: this.n++, fn };
    const q = this.queue;
    let lo = 0, hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (q[mid].at < t || (q[mid].at === t && q[mid].n < ev.n)) lo = mid + 1;
      else hi = mid;
    }
    q.splice(lo, 0, ev);
  }

  /** Every instance captures the same segments (at their capture time plus `offset`). */
  feed(segs: CapturedSegment[], offset = 0): void {
    for (const s of segs) {
      this.at(s.timeMs + offset, () => {
        for (const e of this.engines) e.onCaptured(s, this.now);
      });
    }
  }

  /** Run until simulated time `until` or nothing is left; throws if the step bound is hit. */
  run(until: number, maxSteps = 1_000_000): void {
    for (let steps = 0;; steps++) {
      if (steps > maxSteps) throw new Error(`step bound hit at t=${this.now}`);
      let next = this.queue.length > 0 ? this.queue[0].at : Infinity;
      for (const e of this.engines) {
        const d = e.nextDeadline();
        if (d !== undefined && d < next) next = d;
      }
      const t = this.target.nextDeadline();
      if (t !== undefined && t < next) next = t;
      if (next === Infinity || next > until) break;
      if (next > this.now) this.now = next;
      while (this.queue.length > 0 && this.queue[0].at <= this.now) this.queue.shift()!.fn();
      for (const e of this.engines) e.tick(this.now);
      this.target.tick(this.now);
    }
  }

  /** Stop every instance (as at SIGINT): what is still unanswered counts as lost. */
  stop(): void {
    for (const e of this.engines) e.closeAll("shutdown", this.now);
  }
}
