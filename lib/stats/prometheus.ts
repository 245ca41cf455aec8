/**
 * Prometheus text exposition (format 0.0.4) of a stats record, for `--metrics`.
 *
 * Every numeric field becomes a metric named `<program>_<path>`; counters get the `_total`
 * suffix, fields listed as gauges do not. Objects whose keys are reasons (`lost`,
 * `send_errors`, `ignored`) become one metric with a `reason` label. Each metric family has a
 * `# HELP` and a `# TYPE` line.
 */

import { escapeLabelValue } from "../metrics/labels.ts";

/** How to render one program's record. */
export interface PrometheusSchema {
  /** Metric name prefix, e.g. "tcpcopy". */
  prefix: string;
  /** Record keys that are not metrics (type, program, ts, ...). */
  skip: ReadonlySet<string>;
  /** Flattened paths (joined with "_") that are gauges rather than counters. */
  gauges: ReadonlySet<string>;
  /** Record keys whose object members are label values: key -> label name. */
  labelled: Readonly<Record<string, string>>;
  /** HELP text per flattened path; a generic text is used for the rest. */
  help: Readonly<Record<string, string>>;
  /**
   * Record keys holding one object of counters per named item: key -> [metric infix, label].
   * `modules: { postgres: { passed: 3 } }` with `["module", "module"]` becomes
   * `tcpcopy_module_passed_total{module="postgres"} 3`.
   */
  grouped?: Readonly<Record<string, readonly [string, string]>>;
}

/** The memory fields of both programs' `process` object (lib/stats/record.ts memoryFields). */
export const PROCESS_GAUGES: readonly string[] = [
  "process_rss_bytes",
  "process_rss_anon_bytes",
  "process_rss_file_bytes",
  "process_heap_bytes",
  "process_heap_total_bytes",
  "process_external_bytes",
];

/** HELP texts of the `process` object's metrics (both programs). */
export const PROCESS_HELP: Readonly<Record<string, string>> = {
  process_rss_bytes: "Resident set size of the process.",
  process_rss_anon_bytes: "RSS in anonymous pages (V8 heap, malloc, stacks).",
  process_rss_file_bytes: "RSS in file-backed pages (code, libraries, capture rings).",
  process_heap_bytes: "V8 heap in use (sessions, records, tables).",
  process_heap_total_bytes: "V8 heap reserved (in use, free space in its pages, young generation).",
  process_external_bytes: "Memory held by JS objects outside the heap (buffers, capture rings).",
  process_cpu_user_s: "User CPU seconds used by the process.",
  process_cpu_system_s: "System CPU seconds used by the process.",
};

/** The schema of tcpcopy's stats record. */
export const TCPCOPY_SCHEMA: PrometheusSchema = {
  prefix: "tcpcopy",
  // `compare` (--compare) has its own rendering: histograms and reason labels
  // (lib/tcpcopy/compare_output.ts renderCompareMetrics)
  skip: new Set(["type", "program", "ts", "final", "compare"]),
  gauges: new Set([
    "uptime_s",
    "offline_pass",
    "offline_passes",
    "sessions_active",
    "queued_bytes",
    "capture_buffer_bytes",
    "capture_peak_bytes",
    "footprint_bytes",
    "intercept_servers",
    "intercept_connected",
    ...PROCESS_GAUGES,
  ]),
  labelled: { lost: "reason", send_errors: "reason", ignored: "reason" },
  grouped: { modules: ["module", "module"] },
  help: {
    module_sessions: "Sessions opened through a protocol module.",
    module_passed: "Module sessions handed back to the engine after the login (fast path).",
    module_failed: "Sessions a protocol module ended; each reason has its own counter.",
    module_reply_gap_bytes: "Reply payload bytes a module did not see (beyond the prefix).",
    intercept_prefix_short: "Tunnel connections granted less reply payload than requested.",
    uptime_s: "Seconds since tcpcopy started.",
    captured: "Packets delivered by the capture.",
    kernel_drops: "Packets dropped by the kernel or interface before capture.",
    parse_errors: "Captured packets that were not valid TCP over IPv4/IPv6.",
    capture_buffer_bytes: "Bytes of kernel capture rings now (they grow up to -B when filling).",
    capture_peak_bytes: "Most capture ring bytes found waiting to be read (near the ring size: " +
      "drops are close).",
    segments: "Client segments handed to the session engine.",
    ignored: "Captured segments not used, by reason.",
    sampled_out: "Connections left out by --sample or --gradual.",
    sessions_active: "Sessions currently open.",
    sessions_created: "Sessions created.",
    sessions_closed: "Sessions ended.",
    sessions_evicted: "Sessions that never carried data, ended to make room (no request lost).",
    handshakes_sent: "SYNs sent to the target (captured or synthesised).",
    handshakes_established: "Handshakes the target completed.",
    handshakes_failed: "Handshakes that failed.",
    handshakes_syn_retransmits: "SYN retransmissions to the target.",
    handshakes_synthesized: "Connections picked up mid-stream with a synthesised SYN.",
    requests_captured: "Client requests captured.",
    requests_sent: "Client requests whose first byte was sent to the target.",
    requests_answered: "Requests the target acknowledged in full and answered.",
    lost: "Requests that will never reach the target, by reason.",
    replies: "Reply headers the engine processed.",
    resets: "RSTs sent to the target.",
    retransmits: "Segments retransmitted to the target.",
    fast_retransmits: "Fast retransmissions on duplicate ACKs.",
    reconnects: "Sessions reconnected after a target reset or early close.",
    bytes_captured: "Client payload bytes captured.",
    bytes_sent: "Payload bytes sent to the target.",
    packets_sent: "Packets sent to the target.",
    queued_bytes: "Client bytes queued in sessions.",
    footprint_bytes: "Accounted memory footprint: sessions, connection records, queued bytes.",
    rate_limited_packets: "Packets held back by --max-pps/--max-mbps (retransmitted later).",
    send_errors: "Packets the kernel refused to send, by errno.",
    send_wait_ms: "Milliseconds spent waiting for room in a full send queue (bounded).",
    send_stalled_drops: "Packets dropped because the send wait budget was spent.",
    intercept_servers: "Configured intercept servers.",
    intercept_connected: "Tunnel connections to intercept currently up.",
    intercept_replies: "Reply headers received from intercept.",
    intercept_reply_errors: "Reply headers from intercept that did not parse.",
    intercept_reconnects: "Tunnel connections re-established.",
    intercept_routes_resent: "Live sessions' routes registered again after a tunnel connection " +
      "came back or was lost.",
    ...PROCESS_HELP,
  },
};

function sanitize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, "_");
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** Renders a record as Prometheus text; ends with a newline. */
export function renderPrometheus(record: object, schema: PrometheusSchema): string {
  const out: string[] = [];
  const family = (path: string, samples: string[]) => {
    const gauge = schema.gauges.has(path);
    const name = `${schema.prefix}_${sanitize(path)}${gauge ? "" : "_total"}`;
    const help = schema.help[path] ?? `${schema.prefix} ${path.replace(/_/g, " ")}.`;
    out.push(`# HELP ${name} ${escapeHelp(help)}`);
    out.push(`# TYPE ${name} ${gauge ? "gauge" : "counter"}`);
    for (const s of samples) out.push(`${name}${s}`);
  };
  const walk = (obj: Record<string, unknown>, prefix: string) => {
    for (const [key, value] of Object.entries(obj)) {
      if (prefix === "" && schema.skip.has(key)) continue;
      const path = prefix === "" ? key : `${prefix}_${key}`;
      if (typeof value === "number") {
        family(path, [` ${formatValue(value)}`]);
      } else if (typeof value === "boolean" && schema.gauges.has(path)) {
        family(path, [` ${value ? 1 : 0}`]); // a flag shown as a 0/1 gauge
      } else if (
        value !== null && typeof value === "object" && prefix === "" && schema.grouped?.[key]
      ) {
        grouped(value as Record<string, unknown>, schema.grouped[key]);
      } else if (value !== null && typeof value === "object") {
        const label = prefix === "" ? schema.labelled[key] : undefined;
        if (label !== undefined) {
          const samples = Object.entries(value as Record<string, unknown>)
            .filter(([, v]) => typeof v === "number")
            .map(([k, v]) => `{${label}="${escapeLabelValue(k)}"} ${formatValue(v as number)}`);
          family(path, samples);
        } else {
          walk(value as Record<string, unknown>, path);
        }
      }
    }
  };
  const grouped = (obj: Record<string, unknown>, [infix, label]: readonly [string, string]) => {
    const byMetric = new Map<string, string[]>();
    for (const [item, counters] of Object.entries(obj)) {
      if (counters === null || typeof counters !== "object") continue;
      for (const [k, v] of Object.entries(counters as Record<string, unknown>)) {
        if (typeof v !== "number") continue;
        const path = `${infix}_${k}`;
        const samples = byMetric.get(path) ?? [];
        samples.push(`{${label}="${escapeLabelValue(item)}"} ${formatValue(v)}`);
        byMetric.set(path, samples);
      }
    }
    for (const [path, samples] of byMetric) family(path, samples);
  };
  walk(record as Record<string, unknown>, "");
  return out.join("\n") + "\n";
}
