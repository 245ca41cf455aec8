/**
 * Engine counters. A plain, JSON-printable object; all counters are cumulative except
 * `sessions.active` and `queued_bytes`. Loss counters (`lost.*`) count requests.
 */

import type { Endpoint } from "./segment.ts";

/** Why a captured packet was not used. */
export interface IgnoredStats {
  /** Destination matches no transfer. */
  no_transfer: number;
  /** Pure ACK, window update or keep-alive probe (the engine makes its own ACKs). */
  pure_ack: number;
  /** FIN/RST/ACK of a connection the engine does not know. */
  unknown_flow: number;
  /** Connection not picked up because its SYN was not captured and `onlyComplete` is set. */
  only_complete: number;
  /** Bytes the engine already had (client retransmissions, overlaps, keep-alive probes). */
  duplicate: number;
  /** Client SYN retransmissions. */
  syn_retransmit: number;
}

/** Requests that will never reach the target, by reason. */
export interface LostStats {
  capture_gap: number;
  queue_overflow: number;
  handshake_failure: number;
  target_reset: number;
  timeout: number;
  port_conflict: number;
  memory: number;
  /** Connections not replayed because `maxSessions` sessions (or `maxFlows` records) were live. */
  session_limit: number;
  /** Requests not (wholly) sent yet when tcpcopy stopped. */
  shutdown: number;
  /** Connections not replayed because no intercept was connected (nobody would route replies). */
  no_intercept: number;
  /** Connections not replayed because the egress limit (`--max-pps`, `--max-mbps`) was spent. */
  rate_limited: number;
  /**
   * Requests of sessions a protocol module ended (`out.fail`, lib/engine/module_bridge.ts):
   * those already replayed and not answered; why is in `modules.<name>.<reason>`.
   */
  module: number;
}

/**
 * Counters of one protocol module (`--module`): `sessions` opened with it, `passed` (the
 * module handed the rest of the session to the engine), `failed` (ended by the module; by
 * reason under the reason's own key, e.g. `no_login`), and the module's own counters.
 */
export type ModuleStats = Record<string, number>;

/** The counters of one engine. */
export interface EngineStats {
  captured: number;
  ignored: IgnoredStats;
  sampled_out: number;
  /**
   * `evicted`: sessions whose connection never carried data, ended to make room for a new one
   * at the session cap or over the memory budget (no request lost).
   */
  sessions: { active: number; created: number; closed: number; evicted: number };
  handshakes: {
    sent: number;
    established: number;
    failed: number;
    syn_retransmits: number;
    synthesized: number;
  };
  /**
   * A request is a turn: a run of in-order client payload sent with the same online ACK,
   * i.e. without the client having received anything new from the online server in between
   * (lib/engine/README.md, "What a request is"). Requests the client pipelined count once
   * per batch; a request sent after part of the previous answer counts on its own.
   * `sent`: its first byte went to the target; `answered`: the target acknowledged all of
   * it and sent response bytes after it (before the next request was released).
   */
  requests: { captured: number; sent: number; answered: number };
  lost: LostStats;
  replies: number;
  /** Replies for no live session (late segments of ended sessions, foreign traffic). */
  replies_unmatched: number;
  resets: number;
  retransmits: number;
  fast_retransmits: number;
  reconnects: number;
  bytes: { captured: number; sent: number };
  packets_sent: number;
  /** Packets not sent because of the egress limit (the session retransmits them later). */
  rate_limited_packets: number;
  queued_bytes: number;
  /** Accounted footprint now: sessions, connection records and queued bytes (budget.ts). */
  footprint_bytes: number;
  /** Per protocol module (by name), only for the modules configured. */
  modules: Record<string, ModuleStats>;
}

/** All counters at zero. */
export function emptyStats(): EngineStats {
  return {
    captured: 0,
    ignored: {
      no_transfer: 0,
      pure_ack: 0,
      unknown_flow: 0,
      only_complete: 0,
      duplicate: 0,
      syn_retransmit: 0,
    },
    sampled_out: 0,
    sessions: { active: 0, created: 0, closed: 0, evicted: 0 },
    handshakes: { sent: 0, established: 0, failed: 0, syn_retransmits: 0, synthesized: 0 },
    requests: { captured: 0, sent: 0, answered: 0 },
    lost: {
      capture_gap: 0,
      queue_overflow: 0,
      handshake_failure: 0,
      target_reset: 0,
      timeout: 0,
      port_conflict: 0,
      memory: 0,
      session_limit: 0,
      shutdown: 0,
      no_intercept: 0,
      rate_limited: 0,
      module: 0,
    },
    replies: 0,
    replies_unmatched: 0,
    resets: 0,
    retransmits: 0,
    fast_retransmits: 0,
    reconnects: 0,
    bytes: { captured: 0, sent: 0 },
    packets_sent: 0,
    rate_limited_packets: 0,
    queued_bytes: 0,
    footprint_bytes: 0,
    modules: {},
  };
}

/** Why a session ended or lost requests (the keys of {@link LostStats} plus normal ends). */
export type EndReason = keyof LostStats | "closed" | "client_reset" | "idle" | "evicted";

/**
 * Which of a session's requests an end loses: none (every request reached the target),
 * those not wholly sent yet (a shutdown: the ones sent may still be served), or those not
 * answered yet (any other failure).
 */
export type LossRule = "none" | "unsent" | "unanswered";

/** The {@link LossRule} of an end reason; a new reason does not compile until it is here. */
export function lossRule(reason: EndReason): LossRule {
  switch (reason) {
    case "closed":
    case "client_reset":
    case "idle":
    case "evicted":
      return "none";
    case "shutdown":
      return "unsent";
    case "capture_gap":
    case "queue_overflow":
    case "handshake_failure":
    case "target_reset":
    case "timeout":
    case "port_conflict":
    case "memory":
    case "session_limit":
    case "no_intercept":
    case "rate_limited":
    case "module":
      return "unanswered";
    default: {
      const never: never = reason;
      throw new Error(`unknown end reason ${never}`);
    }
  }
}

/**
 * The reason has a `lost.*` counter: every reason but the normal ends, which are exactly the
 * reasons whose {@link lossRule} is "none".
 */
export function isLossReason(reason: EndReason): reason is keyof LostStats {
  return lossRule(reason) !== "none";
}

/**
 * A per-session log event. `pass`: the session's protocol module handed it to the engine and
 * the captured client bytes from `seq` on are replayed unchanged at `seq + offset` (the
 * module's login before it had other bytes); comes with `original` and `copy`, once per
 * session, and only when something is replayed after the pass (module_bridge.ts).
 */
export interface SessionEvent {
  type: "open" | "established" | "reconnect" | "close" | "lost" | "pass";
  /** Rewritten client endpoint (as the target sees it). */
  client: Endpoint;
  target: Endpoint;
  reason?: EndReason;
  /** Requests lost with this event. */
  requests?: number;
  detail?: string;
  /** `open`, `pass`: the captured connection (client, server) this session replays. */
  original?: { client: Endpoint; server: Endpoint };
  /** `open`, `pass`: the copy index (`-n`); `open`: whether a protocol module rewrites the stream. */
  copy?: number;
  module?: boolean;
  /**
   * `pass`: the first captured client byte replayed unchanged (client sequence space), and
   * the replayed stream's sequence number minus the captured one from there on (mod 2^32).
   */
  seq?: number;
  offset?: number;
}
