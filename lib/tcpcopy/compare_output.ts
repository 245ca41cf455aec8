/**
 * What `--compare` shows outside the records: the comparer built from the command line, its
 * Prometheus metrics (latency histograms by side, mismatches by reason, per-target counters
 * and target latencies), the exit summary
 * (top mismatching requests, latency ratio) and the `--compare-fail-above` verdict.
 *
 * @module
 */

import type { TcpcopyConfig } from "../cli/config.ts";
import {
  type LatencyHistogram,
  PROMETHEUS_BOUNDS_S,
  prometheusBuckets,
} from "../compare/histogram.ts";
import type { CompareRecord } from "../compare/record.ts";
import { MISMATCH_REASONS } from "../compare/result.ts";
import { engineBudgetOf } from "../engine/budget.ts";
import { labelPair } from "../metrics/labels.ts";
import { Comparer } from "./comparer.ts";

/** Share of the engine's budget (from `-m`) the comparison state may take: a quarter. */
export const COMPARE_BUDGET_SHARE = 4;

/** The comparison budget for `-m` MiB. */
export function compareBudgetOf(maxMemoryMiB: number): number {
  return Math.floor(engineBudgetOf(maxMemoryMiB * 1024 * 1024) / COMPARE_BUDGET_SHARE);
}

/** The comparer for a command line with `--compare` (null without). */
export function comparerFor(
  config: TcpcopyConfig,
  emit: ((r: CompareRecord) => void) | null,
  tunnelRttMs?: () => number | null,
): Comparer | null {
  const c = config.compare;
  if (c === null) return null;
  return new Comparer({
    firstBytes: c.bytes,
    maxPendingTurns: c.maxPending,
    proto: c.proto,
    ignoreHeaders: c.ignoreHeaders,
    all: c.all,
    budgetBytes: compareBudgetOf(config.maxMemoryMiB),
    emit,
    tunnelRttMs,
  });
}

/** Metric names of the comparison (a contract for docs/ dashboards and alerts). */
export const COMPARE_METRICS = {
  compared: "tcpcopy_compare_turns_total",
  matched: "tcpcopy_compare_matched_total",
  partial: "tcpcopy_compare_partial_total",
  mismatched: "tcpcopy_compare_mismatched_total",
  skipped: "tcpcopy_compare_skipped_total",
  unpaired: "tcpcopy_compare_unpaired_total",
  pending: "tcpcopy_compare_pending",
  stateBytes: "tcpcopy_compare_state_bytes",
  latency: "tcpcopy_compare_latency_seconds",
  tunnelRtt: "tcpcopy_compare_tunnel_rtt_seconds",
  // per target (`target="ip:port"`, `"[ip6]:port"`; at most MAX_TARGETS of comparer.ts)
  targetCompared: "tcpcopy_compare_target_turns_total",
  targetMatched: "tcpcopy_compare_target_matched_total",
  targetMismatched: "tcpcopy_compare_target_mismatched_total",
  targetLatency: "tcpcopy_compare_target_latency_seconds",
  logRecords: "tcpcopy_compare_log_records_total",
  logErrors: "tcpcopy_compare_log_errors_total",
} as const;

function counter(out: string[], name: string, help: string, samples: [string, number][]): void {
  const gauge = !name.endsWith("_total");
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${gauge ? "gauge" : "counter"}`);
  for (const [labels, v] of samples) out.push(`${name}${labels} ${v}`);
}

/**
 * A latency histogram family: one series per entry, `labels` the entry's label pairs
 * (`side="online"`, `target="10.0.0.2:80"`), with its `_bucket`, `_sum` and `_count` samples.
 */
function histogram(
  out: string[],
  name: string,
  help: string,
  series: readonly [string, LatencyHistogram][],
): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  for (const [labels, h] of series) {
    const b = prometheusBuckets(h, PROMETHEUS_BOUNDS_S);
    for (const [le, n] of b.buckets) out.push(`${name}_bucket{${labels},le="${le}"} ${n}`);
    out.push(`${name}_sum{${labels}} ${b.sumS}`);
    out.push(`${name}_count{${labels}} ${b.count}`);
  }
}

/** The comparison's Prometheus text (appended to the stats record's). */
export function renderCompareMetrics(
  c: Comparer,
  log?: { written: number; errors: number } | null,
): string {
  const m = COMPARE_METRICS, s = c.stats, out: string[] = [];
  counter(out, m.compared, "Replayed requests whose answers were compared.", [["", s.compared]]);
  counter(out, m.matched, "Compared requests whose answers matched.", [["", s.matched]]);
  counter(out, m.partial, "Matches with checks left out (capture gaps, cut answers).", [[
    "",
    s.partial,
  ]]);
  counter(
    out,
    m.mismatched,
    "Compared requests whose answers differ, by reason.",
    MISMATCH_REASONS.map((r) => [`{reason="${r}"}`, s.mismatched[r]]),
  );
  counter(out, m.skipped, "Requests not compared (over the comparison budget, no summary).", [[
    "",
    s.skipped,
  ]]);
  counter(out, m.unpaired, "Target answers that matched no pending request.", [[
    "",
    c.unpaired,
  ]]);
  if (log !== undefined && log !== null) {
    counter(out, m.logRecords, "Records written to --compare-log.", [["", log.written]]);
    counter(out, m.logErrors, "Records that could not be written to --compare-log.", [[
      "",
      log.errors,
    ]]);
  }
  const line = c.line();
  counter(out, m.pending, "Requests waiting for a comparison verdict.", [["", line.pending]]);
  counter(out, m.stateBytes, "Bytes of comparison state (within -m).", [["", line.state_bytes]]);
  if (line.tunnel_rtt_ms !== null) {
    counter(
      out,
      m.tunnelRtt,
      "The tunnel's smoothed heartbeat round trip (beside the target latency).",
      [[
        "",
        Math.round(line.tunnel_rtt_ms * 1000) / 1e6,
      ]],
    );
  }
  histogram(out, m.latency, "Time from a request's last segment to its answer's first byte.", [
    ['side="online"', s.online],
    ['side="target"', s.target],
  ]);
  renderTargetMetrics(out, c);
  return out.join("\n") + "\n";
}

/**
 * Each target's series (the stats line's `compare.targets`, plus its target latencies): one
 * sample per target and family, none before a session was compared.
 */
function renderTargetMetrics(out: string[], c: Comparer): void {
  const m = COMPARE_METRICS, ts = c.targetTallies();
  if (ts.length === 0) return;
  const by = (f: (t: (typeof ts)[number]["tally"]) => number): [string, number][] =>
    ts.map((e) => [`{${labelPair("target", e.text)}}`, f(e.tally)]);
  counter(out, m.targetCompared, "Compared requests, by target.", by((t) => t.compared));
  counter(
    out,
    m.targetMatched,
    "Compared requests whose answers matched, by target.",
    by((t) => t.matched),
  );
  counter(
    out,
    m.targetMismatched,
    "Compared requests whose answers differ, by target.",
    by((t) => t.mismatched),
  );
  histogram(
    out,
    m.targetLatency,
    "Time from a request's last segment sent to the target's first answer byte, by target.",
    ts.map((e) => [labelPair("target", e.text), e.tally.latency]),
  );
}

/** The exit summary: counts, latencies and their ratio, the top mismatching requests. */
export function compareSummaryLines(c: Comparer, top = 10): string[] {
  const l = c.line();
  const reasons = MISMATCH_REASONS.filter((r) => l.mismatched[r] > 0)
    .map((r) => `${r} ${l.mismatched[r]}`).join(", ");
  const mismatched = c.stats.mismatchedTotal;
  const ms = (v: number | null) => v === null ? "-" : `${v} ms`;
  const lines = [
    `compare: ${l.compared} request(s) compared, ${l.matched} matched` +
    (l.partial > 0 ? ` (${l.partial} partly)` : "") +
    `, ${mismatched} mismatched${reasons ? ` (${reasons})` : ""}, ${l.skipped} skipped` +
    (l.unpaired > 0 ? `, ${l.unpaired} target answer(s) unpaired` : ""),
    `compare: latency p50/p90/p99 online ${ms(l.latencyMs.online.p50)}/` +
    `${ms(l.latencyMs.online.p90)}/${ms(l.latencyMs.online.p99)}, target ` +
    `${ms(l.latencyMs.target.p50)}/${ms(l.latencyMs.target.p90)}/` +
    `${ms(l.latencyMs.target.p99)}; ratio target/online p50 ${l.ratio.p50 ?? "-"}, p90 ` +
    `${l.ratio.p90 ?? "-"}, p99 ${l.ratio.p99 ?? "-"}; tunnel round trip ` +
    `${l.tunnel_rtt_ms === null ? "not measured" : `${l.tunnel_rtt_ms} ms`}`,
  ];
  const targets = Object.entries(l.targets);
  if (targets.length > 1) {
    // (several targets: each one's verdicts, e.g. the current version and the candidate)
    lines.push(
      `compare: by target: ${
        targets.map(([t, n]) => `${t} ${n.compared} compared, ${n.mismatched} mismatched`)
          .join("; ")
      }`,
    );
  }
  const rows = c.top(top);
  if (rows.length > 0) {
    lines.push(
      `compare: top mismatching requests: ${rows.map((e) => `${e.key} (${e.count})`).join(", ")}`,
    );
  }
  return lines;
}

/** `--compare-fail-above`: the mismatch ratio is above the limit (the exit code is 3). */
export function compareFailed(c: Comparer, failAbove: number | null): boolean {
  return failAbove !== null && c.stats.mismatchRatio > failAbove;
}
