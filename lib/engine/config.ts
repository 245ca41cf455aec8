/**
 * Engine configuration: what to copy where, how to multiply and rewrite it, and the limits
 * and timers of the emulated client TCP. All durations are milliseconds.
 */

import { defaultMaxFlows, defaultMaxSessions } from "./budget.ts";
import type { ProtocolModule } from "../modules/module.ts";
import { type ModuleOptions, NO_MODULE_OPTIONS } from "./module_bridge.ts";

/** An address as text (canonical IPv4 or IPv6) and a port, as the command line gives it. */
export interface TextEndpoint {
  addr: string;
  port: number;
}

/**
 * One `-x` entry: traffic to `online` is replayed to `target`. The engine turns the text into
 * address bytes once, at start.
 */
export interface Transfer {
  /** `addr` "" / "0.0.0.0" / "::" matches any local address. */
  online: TextEndpoint;
  target: TextEndpoint;
  /** The protocol module its sessions go through (`--module`, `-x ...@NAME`); none: as captured. */
  module?: ProtocolModule;
}

/** User-facing configuration (command-line level); see {@link defaultConfig}. */
export interface EngineConfig {
  transfers: Transfer[];
  /** `-c`: client source addresses to use instead of the captured ones (already expanded). */
  clientIps?: string[];
  /** `-n`: copies of each connection; a fraction copies that share of connections once more. */
  copies?: number;
  /** `-f`: shifts rewritten source ports so several instances do not collide. */
  portShift?: number;
  /** `-r`: percentage (0-100] of connections replayed, chosen per connection. */
  samplePercent?: number;
  /** `-g`: ramp the sampled share up by 1 % per second from start. */
  gradual?: boolean;
  /** `-D`: MSS advertised in synthesised SYNs (default 1460). */
  mss?: number;
  /** `-M`: largest IP packet sent to the target; larger client segments are split. */
  mtu?: number;
  /** `-t`: a session whose target stays silent this long while work is pending is dropped. */
  sessionTimeoutMs?: number;
  /** `-k`: an idle session (nothing pending) is released after this long without traffic. */
  keepaliveTimeoutMs?: number;
  /** `-O`: do not pick up connections whose SYN was not captured. */
  onlyComplete?: boolean;
  /** `-W`: do not wait for responses; send client data as soon as the window allows. */
  noWait?: boolean;
  /** `-m`: global budget of queued client bytes; sessions are shed to respect it. */
  maxMemoryBytes?: number;
  /** Per-session budget of queued client bytes. */
  maxSessionBytes?: number;
  /**
   * The whole accounted footprint (`-m` less the runtime's reserve, see budget.ts): sessions ×
   * SESSION_COST + records × FLOW_COST + queued bytes. Above it sessions are shed; a new
   * session or record that does not fit takes the place of one that never carried data, or
   * is not opened. Default: no limit beyond `maxSessions`, `maxFlows` and `maxMemoryBytes`.
   */
  memoryBudgetBytes?: number;
  /**
   * Most live sessions (`--max-sessions`); at the cap a new connection takes the place of the
   * oldest session whose connection never carried data (SYN floods, half-open probes), or is
   * not replayed (`lost.session_limit`). Default: half of `memoryBudgetBytes` (200,000 without).
   */
  maxSessions?: number;
  /**
   * Most connection records (`--max-flows`: live, sampled out, or remembered after their
   * sessions ended); at the cap the oldest remembered ones are forgotten early. Default: a
   * quarter of `memoryBudgetBytes` (1,000,000 without).
   */
  maxFlows?: number;
  /** `--max-pps`: packets per second sent to the target(s); 0 = no limit. */
  maxPps?: number;
  /** `--max-mbps`: megabits per second sent to the target(s); 0 = no limit. */
  maxMbps?: number;
  /** Seed for flow hashing (sampling, copies, allocation) and synthesised values. */
  seed?: number;
  /** Fallback: release the next request this long after the target's answer went quiet. */
  responseIdleMs?: number;
  /** Fallback: release the next request this long after sending one that got no answer. */
  noAnswerMs?: number;
  /** A hole in the captured client stream older than this is a capture gap. */
  gapTimeoutMs?: number;
  /** SYN transmissions before the handshake is declared failed. */
  synRetries?: number;
  /** Retransmissions of one segment before the session is dropped (timeout). */
  dataRetries?: number;
  /** Lower / upper bound and initial value of the retransmission timeout. */
  minRtoMs?: number;
  maxRtoMs?: number;
  initialRtoMs?: number;
  /** Delay before acknowledging a lone reply segment. */
  delayedAckMs?: number;
  /** Reconnections of one session (target RST/FIN, capture gap) before giving up. */
  maxReconnects?: number;
  /** A rewritten tuple is not reused for this long after its session ended. */
  tupleQuarantineMs?: number;
  /** Settings of the protocol modules (`--auth-file`, `--read-only`, the random source). */
  modules?: ModuleOptions;
}

/** Every option present, with defaults filled in. */
export type ResolvedConfig = Required<EngineConfig>;

/** Defaults that mirror the C original where it makes sense (-t 600 s, -k = -t + 120 s). */
export function defaultConfig(partial: EngineConfig): ResolvedConfig {
  const sessionTimeoutMs = partial.sessionTimeoutMs ?? 600_000;
  return {
    transfers: partial.transfers,
    clientIps: partial.clientIps ?? [],
    copies: partial.copies ?? 1,
    portShift: partial.portShift ?? 0,
    samplePercent: partial.samplePercent ?? 100,
    gradual: partial.gradual ?? false,
    mss: partial.mss ?? 1460,
    mtu: partial.mtu ?? 1500,
    sessionTimeoutMs,
    keepaliveTimeoutMs: partial.keepaliveTimeoutMs ?? sessionTimeoutMs + 120_000,
    onlyComplete: partial.onlyComplete ?? false,
    noWait: partial.noWait ?? false,
    maxMemoryBytes: partial.maxMemoryBytes ?? 512 * 1024 * 1024,
    maxSessionBytes: partial.maxSessionBytes ?? 16 * 1024 * 1024,
    memoryBudgetBytes: partial.memoryBudgetBytes ?? Number.POSITIVE_INFINITY,
    maxSessions: partial.maxSessions ??
      (partial.memoryBudgetBytes ? defaultMaxSessions(partial.memoryBudgetBytes) : 200_000),
    maxFlows: partial.maxFlows ??
      (partial.memoryBudgetBytes ? defaultMaxFlows(partial.memoryBudgetBytes) : 1_000_000),
    maxPps: partial.maxPps ?? 0,
    maxMbps: partial.maxMbps ?? 0,
    seed: partial.seed ?? 0x7c0c,
    responseIdleMs: partial.responseIdleMs ?? 200,
    noAnswerMs: partial.noAnswerMs ?? 3000,
    gapTimeoutMs: partial.gapTimeoutMs ?? 3000,
    synRetries: partial.synRetries ?? 5,
    dataRetries: partial.dataRetries ?? 8,
    minRtoMs: partial.minRtoMs ?? 200,
    maxRtoMs: partial.maxRtoMs ?? 30_000,
    initialRtoMs: partial.initialRtoMs ?? 1000,
    delayedAckMs: partial.delayedAckMs ?? 20,
    maxReconnects: partial.maxReconnects ?? 3,
    tupleQuarantineMs: partial.tupleQuarantineMs ?? 0,
    modules: partial.modules ?? NO_MODULE_OPTIONS,
  };
}
