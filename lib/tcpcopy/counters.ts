/**
 * tcpcopy's counters for the stats line and /metrics, gathered from the parts of the running
 * process (captures, senders, replicator, engine, tunnel). To add a stats field: gather it here,
 * then lib/stats/record.ts (JSON) and lib/stats/prometheus.ts (schema).
 */
import type { TcpcopyConfig } from "../cli/config.ts";
import type { OpenedCapture } from "../io/capture.ts";
import type { PacketSender } from "../io/batch_sender.ts";
import type { Engine } from "../engine/engine.ts";
import type { TunnelClient } from "../tunnel/client.ts";
import type { TcpcopyCounters } from "../stats/record.ts";
import type { Replicator } from "./replicator.ts";
import { processUsage } from "../process/memory.ts";

export { cpuSeconds } from "../process/memory.ts";

/** The parts counted. */
export interface CountedParts {
  config: TcpcopyConfig;
  captures: readonly OpenedCapture[];
  senders: readonly PacketSender[];
  replicator: Replicator;
  engine: Engine;
  tunnel: TunnelClient | null;
  selfTarget: boolean;
}

/** The counters now. */
export function tcpcopyCounters(p: CountedParts): TcpcopyCounters {
  const { config, tunnel } = p;
  let kernelDrops = 0, ifDrops = 0, sent = 0, bufferBytes = 0, waitedMs = 0, stalledDrops = 0;
  let peakBytes = 0;
  for (const c of p.captures) {
    const s = c.stats();
    kernelDrops += s.dropped;
    ifDrops += s.ifDropped;
    bufferBytes += s.bufferBytes ?? config.bufferMiB * 1024 * 1024;
    peakBytes += s.peakBytes ?? 0;
  }
  const errors: Record<string, number> = {};
  for (const s of p.senders) {
    sent += s.stats.sent;
    waitedMs += s.stats.waitedMs;
    stalledDrops += s.stats.stalledDrops;
    for (const [k, n] of Object.entries(s.stats.errors)) errors[k] = (errors[k] ?? 0) + n;
  }
  const r = p.replicator.counters;
  if (r.buildErrors > 0) errors.build = r.buildErrors;
  if (r.noSender > 0) errors.no_sender = r.noSender;
  return {
    engine: p.engine.stats,
    capture: {
      packets: r.frames,
      kernelDrops,
      ifDrops,
      parseErrors: r.parseErrors + r.truncated,
      bufferBytes,
      peakBytes,
    },
    send: { packets: sent, errors, waitedMs, stalledDrops },
    intercept: {
      servers: config.intercepts.length,
      connected: tunnel?.connected ?? 0,
      replies: tunnel?.counters.replies ?? 0,
      replyErrors: r.replyErrors + (tunnel?.counters.protocolErrors ?? 0),
      reconnects: tunnel?.counters.reconnects ?? 0,
      routesResent: tunnel?.counters.routesResent ?? 0,
      prefixShort: tunnel?.counters.prefixShort ?? 0,
    },
    selfTarget: p.selfTarget,
    process: processUsage(),
  };
}
