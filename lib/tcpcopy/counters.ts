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

/** User and system CPU seconds of this process (Linux /proc; zeros elsewhere). */
export function cpuSeconds(): { user: number; system: number } {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
  } catch {
    return { user: 0, system: 0 };
  }
}

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
  for (const c of p.captures) {
    const s = c.stats();
    kernelDrops += s.dropped;
    ifDrops += s.ifDropped;
    bufferBytes += s.bufferBytes ?? config.bufferMiB * 1024 * 1024;
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
  const cpu = cpuSeconds(), mem = Deno.memoryUsage();
  return {
    engine: p.engine.stats,
    capture: {
      packets: r.frames,
      kernelDrops,
      ifDrops,
      parseErrors: r.parseErrors + r.truncated,
      bufferBytes,
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
    process: {
      rssBytes: mem.rss,
      heapBytes: mem.heapUsed,
      externalBytes: mem.external,
      cpuUserS: cpu.user,
      cpuSystemS: cpu.system,
    },
  };
}
