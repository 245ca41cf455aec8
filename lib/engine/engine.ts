/**
 * The session engine (skeleton: the API the glue code is written against).
 */

import type { EngineConfig, ResolvedConfig } from "./config.ts";
import { defaultConfig } from "./config.ts";
import type { CapturedSegment, Endpoint, OutSegment, ReplySegment } from "./segment.ts";
import type { EngineStats, SessionEvent } from "./stats.ts";
import { emptyStats } from "./stats.ts";

/** Where the engine's decisions go. */
export interface EngineOutput {
  /** A packet for the target. */
  send(seg: OutSegment): void;
  /** Register a rewritten client with intercept(s); always called before its SYN. */
  routeAdd(client: Endpoint, target: Endpoint): void;
  /** The client's session ended; intercept may forget the route. */
  routeDel(client: Endpoint, target: Endpoint): void;
  /** Optional per-session events (open, close with reason, losses). */
  event?(e: SessionEvent): void;
}

/** Replays captured client connections against the target (pure; time is an argument). */
export class Engine {
  readonly config: ResolvedConfig;
  readonly stats: EngineStats = emptyStats();

  constructor(config: EngineConfig, readonly out: EngineOutput, readonly startMs: number) {
    this.config = defaultConfig(config);
  }

  /** A captured client->server segment. */
  onCaptured(_seg: CapturedSegment, _nowMs: number): void {}

  /** A reply header from the target. */
  onReply(_reply: ReplySegment, _nowMs: number): void {}

  /** Run the timers that are due. */
  tick(_nowMs: number): void {}

  /** Earliest pending timer, or undefined when none. */
  nextDeadline(): number | undefined {
    return undefined;
  }

  /** Release every queued request now, ignoring turn-taking (end of an offline replay). */
  drainAll(_nowMs: number): void {}

  /** Reset every live session (shutdown). */
  closeAll(_reason = "shutdown", _nowMs = this.startMs): void {}
}
