/**
 * Scenario harness: the Engine, the simulated target and captured client segments on one
 * fake clock. Engine output reaches the target after `latencyMs`, target replies reach the
 * engine after `replyLatencyMs`; the loop runs engine and target timers in time order and
 * is bounded in steps and simulated time.
 */

import type {
  CapturedSegment,
  EngineConfig,
  OutSegment,
  ReplySegment,
  SessionEvent,
} from "../../lib/engine/mod.ts";
import { addrText, Engine } from "../../lib/engine/mod.ts";
import type { TargetBehaviour } from "./target.ts";
import { SimTarget } from "./target.ts";
import { keepSegment } from "../helpers/out_segment.ts";

/** Harness options. */
export interface ScenarioOptions {
  latencyMs?: number;
  replyLatencyMs?: number;
  /** Drop the n-th reply header (1-based) on its way to the engine (intercept loss). */
  dropReply?: (r: ReplySegment, n: number) => boolean;
  /** Change a reply header before the engine sees it (e.g. give it a payload prefix). */
  mapReply?: (r: ReplySegment) => void;
  /** Engine log lines (protocol modules) go here. */
  log?: (line: string) => void;
  start?: number;
  /** Sees the engine's own segment object at each send (before the harness copies it). */
  onSend?: (raw: OutSegment) => void;
}

interface Ev {
  at: number;
  n: number;
  fn: () => void;
}

/** See the module comment. */
export class Scenario {
  now: number;
  readonly engine: Engine;
  readonly target: SimTarget;
  readonly sent: OutSegment[] = [];
  readonly events: SessionEvent[] = [];
  readonly routes: string[] = [];
  private queue: Ev[] = [];
  private n = 0;
  private replies = 0;
  steps = 0;

  constructor(
    config: Omit<EngineConfig, "transfers"> & Partial<Pick<EngineConfig, "transfers">>,
    behaviour: TargetBehaviour = {},
    readonly opts: ScenarioOptions = {},
  ) {
    this.now = opts.start ?? 1000;
    const lat = opts.latencyMs ?? 0.5;
    const rlat = opts.replyLatencyMs ?? 0.5;
    this.target = new SimTarget(behaviour, (r) => {
      const n = ++this.replies;
      if (opts.dropReply?.(r, n)) return;
      opts.mapReply?.(r);
      this.at(this.now + rlat, () => this.engine.onReply(r, this.now));
    });
    this.engine = new Engine(
      {
        transfers: [{ online: { addr: "", port: 80 }, target: { addr: "10.9.0.2", port: 8080 } }],
        ...config,
      },
      {
        send: (out) => {
          opts.onSend?.(out);
          const seg = keepSegment(out); // the engine refills `out` for its next packet
          this.sent.push(seg);
          this.at(this.now + lat, () => this.target.receive(seg, this.now));
        },
        routeAdd: (c, t) => this.routes.push(`+${addrText(c)}:${c.port}>${addrText(t)}:${t.port}`),
        routeDel: (c, t) => this.routes.push(`-${addrText(c)}:${c.port}>${addrText(t)}:${t.port}`),
        event: (e) => this.events.push(e),
        log: (line) => (opts.log ?? (() => {}))(line),
      },
      this.now,
    );
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

  /** Feed captured segments at their capture time plus `offset`. */
  feed(segs: CapturedSegment[], offset = 0): void {
    for (const s of segs) this.at(s.timeMs + offset, () => this.engine.onCaptured(s, this.now));
  }

  /** Run until simulated time `until` or nothing is left; throws if the step bound is hit. */
  run(until: number, maxSteps = 500_000): void {
    for (;;) {
      if (++this.steps > maxSteps) throw new Error(`step bound hit at t=${this.now}`);
      let next = this.queue.length > 0 ? this.queue[0].at : Infinity;
      const e = this.engine.nextDeadline();
      if (e !== undefined && e < next) next = e;
      const t = this.target.nextDeadline();
      if (t !== undefined && t < next) next = t;
      if (next === Infinity || next > until) break;
      if (next > this.now) this.now = next;
      while (this.queue.length > 0 && this.queue[0].at <= this.now) this.queue.shift()!.fn();
      this.engine.tick(this.now);
      this.target.tick(this.now);
    }
    if (this.now < until && this.queue.length === 0) this.now = Math.max(this.now, this.now);
  }
}
