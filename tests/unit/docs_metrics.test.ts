/**
 * docs/ (Grafana dashboard, Prometheus alert rules) name only metrics tcpcopy's `--metrics`
 * serves, with the labels it serves them with: the exposition of a real stats record with
 * `--compare` is rendered and every `tcpcopy_*` name in the documents is looked up in it
 * (with two targets compared, one IPv6, for the per-target series).
 */
import assert from "node:assert/strict";
import { emptyStats } from "../../lib/engine/stats.ts";
import { tcpcopyStatsRecord } from "../../lib/stats/record.ts";
import { renderPrometheus, TCPCOPY_SCHEMA } from "../../lib/stats/prometheus.ts";
import { parseTcpcopyArgs } from "../../lib/cli/tcpcopy.ts";
import { comparerFor, renderCompareMetrics } from "../../lib/tcpcopy/compare_output.ts";
import { summarize } from "../../lib/compare/answer.ts";
import { endpointOf } from "../../lib/engine/endpoint.ts";
import { drive, Rig } from "../helpers/compare_rig.ts";

const DOCS = new URL("../../docs/", import.meta.url);

function exposition(): string {
  const r = parseTcpcopyArgs([
    "-x",
    "80-10.0.0.2:8080",
    "-s",
    "10.0.0.3",
    "--secret-file",
    "/s",
    "--compare",
  ]);
  if (r.kind !== "run") throw new Error(r.kind);
  const cmp = comparerFor(r.config, null)!;
  const a = summarize(new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  cmp.stats.add({ match: true, partial: false }, { ...a, firstMs: 2 }, { ...a, firstMs: 3 });
  // two targets of the port (three requests each; the second target answers /b differently)
  const rig = new Rig({}, cmp);
  const client = endpointOf("10.1.0.7", 41000);
  const one = rig.session(client, endpointOf("10.0.0.2", 8080), 0, 900_000);
  const two = rig.session(client, endpointOf("fd00::2", 8080), 0, 2_000_000);
  rig.handshake();
  drive(rig, [one, two], (s, i) => s === two && i === 1 ? "diff" : "same");
  const record = tcpcopyStatsRecord(
    {
      engine: emptyStats(),
      capture: { packets: 1, kernelDrops: 0, ifDrops: 0, parseErrors: 0, bufferBytes: 1 },
      send: { packets: 1, errors: {} },
      intercept: {
        servers: 1,
        connected: 1,
        replies: 1,
        replyErrors: 0,
        reconnects: 0,
        routesResent: 0,
      },
      process: { rssBytes: 1, heapBytes: 1, externalBytes: 1, cpuUserS: 0, cpuSystemS: 0 },
    },
    1000,
    0,
    false,
  );
  return renderPrometheus({ ...record, compare: cmp.line() }, TCPCOPY_SCHEMA) +
    renderCompareMetrics(cmp, { written: 1, errors: 0 });
}

/** metric name -> label names seen on it. */
function served(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? /.exec(line);
    assert.ok(m, `exposition line: ${line}`);
    const labels = out.get(m[1]) ?? new Set<string>();
    for (const l of (m[3] ?? "").matchAll(/([a-z_]+)="/g)) labels.add(l[1]);
    out.set(m[1], labels);
  }
  return out;
}

/** Every `tcpcopy_*{labels}` reference of `text`, and the `by (...)` labels after it. */
function references(text: string): { name: string; labels: string[] }[] {
  return [...text.matchAll(/(tcpcopy_[a-z0-9_]+)(\{([^}]*)\})?/g)].map((m) => ({
    name: m[1],
    labels: [...(m[3] ?? "").matchAll(/([a-z_]+)=~?"/g)].map((l) => l[1]),
  }));
}

function check(doc: string, text: string, metrics: Map<string, Set<string>>): number {
  const refs = references(text);
  for (const { name, labels } of refs) {
    const have = metrics.get(name);
    assert.ok(have, `${doc}: ${name} is not served by tcpcopy --metrics`);
    for (const l of labels) {
      if (l === "instance") continue; // added by Prometheus
      assert.ok(have.has(l), `${doc}: ${name} has no label ${l}`);
    }
  }
  for (const by of text.matchAll(/by \(([a-z_, ]+)\) \(rate\((tcpcopy_[a-z0-9_]+)/g)) {
    for (const l of by[1].split(",").map((s) => s.trim())) {
      if (l === "instance" || l === "le") continue;
      assert.ok(metrics.get(by[2])?.has(l), `${doc}: ${by[2]} has no label ${l} to group by`);
    }
  }
  return refs.length;
}

Deno.test("docs: the Grafana dashboard loads as JSON and names only served metrics", () => {
  const metrics = served(exposition());
  const text = Deno.readTextFileSync(new URL("grafana/tcpcopy-compare.json", DOCS));
  const dash = JSON.parse(text);
  assert.ok(Array.isArray(dash.panels) && dash.panels.length >= 6);
  for (const p of dash.panels) {
    assert.ok(p.targets.length > 0 && p.targets.every((t: { expr: string }) => t.expr), p.title);
  }
  assert.ok(check("dashboard", text, metrics) >= 15);
  for (
    const need of [
      "tcpcopy_compare_mismatched_total",
      "tcpcopy_lost_total",
      "tcpcopy_compare_target_mismatched_total",
      "tcpcopy_compare_target_latency_seconds_bucket",
    ]
  ) {
    assert.ok(text.includes(need), need);
  }
});

Deno.test("docs: the alert rules are well formed and name only served metrics", () => {
  const metrics = served(exposition());
  const text = Deno.readTextFileSync(new URL("prometheus/tcpcopy-alerts.yml", DOCS));
  assert.match(text, /^groups:\n {2}- name: tcpcopy\n {4}rules:\n/m);
  const alerts = text.split("\n      - alert: ").slice(1);
  assert.ok(alerts.length >= 4);
  for (const a of alerts) {
    const name = a.split("\n")[0];
    assert.match(name, /^Tcpcopy[A-Za-z]+$/);
    for (const key of ["expr:", "for:", "labels:", "severity:", "annotations:", "summary:"]) {
      assert.ok(
        a.includes(`\n        ${key}`) || a.includes(`\n          ${key}`),
        `${name}: ${key}`,
      );
    }
    assert.ok(!a.includes("\t"), `${name}: tabs are not YAML indentation`);
  }
  assert.ok(check("alerts", text, metrics) >= 8);
  assert.match(text, /tcpcopy_compare_mismatched_total/);
  assert.match(text, /tcpcopy_lost_total/);
  assert.match(text, /by \(instance, target\) \(rate\(tcpcopy_compare_target_mismatched_total/);
});

Deno.test("docs: the compare metrics are exposed once each, histograms by side", () => {
  const text = exposition();
  const metrics = served(text);
  assert.deepEqual([...metrics.get("tcpcopy_compare_latency_seconds_bucket")!].sort(), [
    "le",
    "side",
  ]);
  assert.deepEqual([...metrics.get("tcpcopy_compare_mismatched_total")!], ["reason"]);
  assert.equal(
    text.split("\n").filter((l) => l.startsWith("# TYPE tcpcopy_compare_turns_total")).length,
    1,
  );
  assert.ok(
    !text.includes("tcpcopy_compare_latencyMs"),
    "the compare object is not walked generically",
  );
  // (1 added by hand, 3 turns of the online connection replayed to two targets: 6)
  assert.match(text, /tcpcopy_compare_latency_seconds_count\{side="online"\} 7/);
  for (const name of ["turns", "matched", "mismatched"]) {
    assert.deepEqual([...metrics.get(`tcpcopy_compare_target_${name}_total`)!], ["target"]);
  }
  assert.deepEqual([...metrics.get("tcpcopy_compare_target_latency_seconds_bucket")!].sort(), [
    "le",
    "target",
  ]);
  assert.match(text, /^tcpcopy_compare_target_mismatched_total\{target="\[fd00::2\]:8080"\} 1$/m);
});
