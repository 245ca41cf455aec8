/**
 * The tcpcopy stats record: one JSON-printable object built from the counters of the engine,
 * the capture, the sender and the intercept tunnel. Printed as one line per interval (see
 * json_lines.ts) and rendered for Prometheus (see prometheus.ts). Field names are documented
 * in the README; keep them stable, tooling parses them with jq.
 */
import type { EngineStats } from "../engine/stats.ts";
import type { ProcessUsage } from "../process/memory.ts";

/** Capture-side counters (libpcap). */
export interface CaptureCounters {
  /** Packets the capture delivered. */
  packets: number;
  /** Packets the kernel dropped before we could read them (pcap_stats ps_drop). */
  kernelDrops: number;
  /** Packets the interface dropped (pcap_stats ps_ifdrop). */
  ifDrops: number;
  /** Captured packets that did not parse as TCP over IPv4/IPv6. */
  parseErrors: number;
  /** Bytes of kernel capture rings now (they start small and grow up to -B). */
  bufferBytes: number;
  /** The most ring bytes found waiting to be read (rings only; how close to drops). */
  peakBytes?: number;
}

/** Send-side counters (raw IP socket or link-layer sender). */
export interface SendCounters {
  packets: number;
  /** Per-packet send failures by errno name (EMSGSIZE, EPERM, ...); never fatal. */
  errors: Record<string, number>;
  /** Milliseconds spent waiting for room in a full send queue (bounded per 100 ms). */
  waitedMs?: number;
  /** Packets dropped because that wait budget was spent (also in `errors`). */
  stalledDrops?: number;
}

/** Intercept tunnel counters. */
export interface InterceptCounters {
  /** Configured intercept servers (-s). */
  servers: number;
  /** Tunnel connections currently up. */
  connected: number;
  /** Reply headers received. */
  replies: number;
  /** Reply headers that did not parse. */
  replyErrors: number;
  /** Connections re-established after a loss. */
  reconnects: number;
  /** Live sessions' routes registered again after a connection came back or was lost. */
  routesResent: number;
  /** Connections on which intercept granted less reply payload than the modules asked for. */
  prefixShort?: number;
}

/** Process resource usage (lib/process/memory.ts; the split fields may be absent in tests). */
export type ProcessCounters =
  & Pick<ProcessUsage, "rssBytes" | "heapBytes" | "externalBytes" | "cpuUserS" | "cpuSystemS">
  & Partial<ProcessUsage>;

/** Everything a stats record is built from. */
export interface TcpcopyCounters {
  engine: EngineStats;
  capture: CaptureCounters;
  send: SendCounters;
  intercept: InterceptCounters;
  process: ProcessCounters;
  /** A target is an address of this host, accepted with `--allow-self-target` (unsafe). */
  selfTarget?: boolean;
}

/** One stats record (see the README for every field). */
export type StatsRecord = ReturnType<typeof tcpcopyStatsRecord>;

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Builds the record. `nowMs` is the wall-clock time (ms since the epoch) and `startMs` the
 * process start on the same clock; `final` marks the last line printed at exit.
 */
export function tcpcopyStatsRecord(
  c: TcpcopyCounters,
  nowMs: number,
  startMs: number,
  final: boolean,
) {
  const e = c.engine;
  return {
    type: "stats" as const,
    program: "tcpcopy" as const,
    ts: new Date(nowMs).toISOString(),
    uptime_s: round3((nowMs - startMs) / 1000),
    final,
    captured: c.capture.packets,
    kernel_drops: c.capture.kernelDrops + c.capture.ifDrops,
    parse_errors: c.capture.parseErrors,
    capture_buffer_bytes: c.capture.bufferBytes,
    capture_peak_bytes: c.capture.peakBytes ?? 0,
    segments: e.captured,
    ignored: { ...e.ignored },
    sampled_out: e.sampled_out,
    sessions: { ...e.sessions },
    handshakes: { ...e.handshakes },
    requests: { ...e.requests },
    lost: { ...e.lost },
    replies: e.replies,
    resets: e.resets,
    retransmits: e.retransmits,
    fast_retransmits: e.fast_retransmits,
    reconnects: e.reconnects,
    bytes: { ...e.bytes },
    packets_sent: c.send.packets,
    rate_limited_packets: e.rate_limited_packets,
    queued_bytes: e.queued_bytes,
    footprint_bytes: e.footprint_bytes,
    send_errors: { ...c.send.errors },
    send_wait_ms: round3(c.send.waitedMs ?? 0),
    send_stalled_drops: c.send.stalledDrops ?? 0,
    intercept: {
      servers: c.intercept.servers,
      connected: c.intercept.connected,
      replies: c.intercept.replies,
      reply_errors: c.intercept.replyErrors,
      reconnects: c.intercept.reconnects,
      routes_resent: c.intercept.routesResent,
      prefix_short: c.intercept.prefixShort ?? 0,
    },
    modules: Object.fromEntries(
      Object.entries(e.modules).map(([name, m]) => [name, { ...m }]),
    ),
    self_target: c.selfTarget ?? false,
    process: {
      ...memoryFields(c.process),
      cpu_user_s: round3(c.process.cpuUserS),
      cpu_system_s: round3(c.process.cpuSystemS),
    },
  };
}

/**
 * The memory fields of a stats line's `process` object (both programs): RSS, its anonymous and
 * file-backed parts, the V8 heap in use and reserved, memory outside the heap.
 */
export function memoryFields(p: ProcessCounters) {
  return {
    rss_bytes: p.rssBytes,
    rss_anon_bytes: p.rssAnonBytes ?? 0,
    rss_file_bytes: p.rssFileBytes ?? 0,
    heap_bytes: p.heapBytes,
    heap_total_bytes: p.heapTotalBytes ?? 0,
    external_bytes: p.externalBytes,
  };
}
