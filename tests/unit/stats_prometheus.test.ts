import assert from "node:assert/strict";
import { emptyStats } from "../../lib/engine/stats.ts";
import { tcpcopyStatsRecord } from "../../lib/stats/record.ts";
import { renderPrometheus, TCPCOPY_SCHEMA } from "../../lib/stats/prometheus.ts";

function sampleRecord() {
  const engine = emptyStats();
  engine.sessions.active = 3;
  engine.sessions.created = 10;
  engine.lost.capture_gap = 2;
  engine.requests.answered = 8;
  return tcpcopyStatsRecord(
    {
      engine,
      capture: { packets: 100, kernelDrops: 1, ifDrops: 0, parseErrors: 0, bufferBytes: 8 << 20 },
      send: { packets: 90, errors: { EMSGSIZE: 4, 'we"ird\\': 1 } },
      intercept: {
        servers: 1,
        connected: 2,
        replies: 50,
        replyErrors: 0,
        reconnects: 0,
        routesResent: 0,
      },
      process: {
        rssBytes: 4096,
        heapBytes: 2048,
        externalBytes: 1024,
        cpuUserS: 1.5,
        cpuSystemS: 0.25,
      },
    },
    10_000,
    0,
    false,
  );
}

/** Parses exposition text into samples, checking the format rules as it goes. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Map<string, string>();
  const helped = new Set<string>();
  assert.ok(text.endsWith("\n"));
  for (const line of text.trimEnd().split("\n")) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === "HELP") helped.add(meta[2]);
      else typed.set(meta[2], meta[3]);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"\})? (\S+)$/
      .exec(line);
    assert.ok(m, `bad sample line: ${line}`);
    const name = m[1];
    assert.ok(helped.has(name), `HELP before ${name}`);
    const type = typed.get(name);
    assert.ok(type === "counter" || type === "gauge", `TYPE before ${name}`);
    if (type === "counter") assert.ok(name.endsWith("_total"), name);
    else assert.ok(!name.endsWith("_total"), name);
    assert.ok(!samples.has(name + (m[2] ?? "")), `duplicate ${line}`);
    samples.set(name + (m[2] ?? ""), Number(m[3]));
  }
  return samples;
}

Deno.test("prometheus: valid exposition text with the record's values", () => {
  const record = sampleRecord();
  const s = parseExposition(renderPrometheus(record, TCPCOPY_SCHEMA));
  assert.equal(s.get("tcpcopy_captured_total"), 100);
  assert.equal(s.get("tcpcopy_sessions_active"), 3);
  assert.equal(s.get("tcpcopy_sessions_created_total"), 10);
  assert.equal(s.get("tcpcopy_requests_answered_total"), 8);
  assert.equal(s.get('tcpcopy_lost_total{reason="capture_gap"}'), 2);
  assert.equal(s.get('tcpcopy_lost_total{reason="timeout"}'), 0);
  assert.equal(s.get('tcpcopy_send_errors_total{reason="EMSGSIZE"}'), 4);
  assert.equal(s.get("tcpcopy_process_heap_bytes"), 2048);
  assert.equal(s.get("tcpcopy_process_external_bytes"), 1024);
  assert.equal(s.get('tcpcopy_send_errors_total{reason="we\\"ird\\\\"}'), 1);
  assert.equal(s.get("tcpcopy_intercept_connected"), 2);
  assert.equal(s.get("tcpcopy_uptime_s"), 10);
  assert.equal(s.get("tcpcopy_process_cpu_user_s_total"), 1.5);
  assert.ok(![...s.keys()].some((k) => /_ts|_type|_program|_final/.test(k)));
});

Deno.test("prometheus: every numeric field of the record is exported", () => {
  const record = sampleRecord();
  const s = parseExposition(renderPrometheus(record, TCPCOPY_SCHEMA));
  const expected: string[] = [];
  const walk = (o: Record<string, unknown>, path: string) => {
    for (const [k, v] of Object.entries(o)) {
      const name = path === "" ? k : `${path}_${k}`;
      const label = path === "" ? TCPCOPY_SCHEMA.labelled[k] : undefined;
      if (label && v && typeof v === "object") {
        for (const r of Object.keys(v)) expected.push(`tcpcopy_${k}_total{${label}="${r}"}`);
      } else if (typeof v === "number") {
        const gauge = TCPCOPY_SCHEMA.gauges.has(name);
        expected.push(`tcpcopy_${name}${gauge ? "" : "_total"}`);
      } else if (v && typeof v === "object") walk(v as Record<string, unknown>, name);
    }
  };
  walk(record as unknown as Record<string, unknown>, "");
  const sanitized = expected.map((e) => e.replace('we"ird\\', 'we\\"ird\\\\'));
  for (const metric of sanitized) {
    if (/^tcpcopy_(type|program|ts|final)/.test(metric)) continue;
    assert.ok(s.has(metric), `missing ${metric}`);
  }
  assert.equal(s.size, sanitized.filter((m) => !/^tcpcopy_(ts|final)_/.test(m)).length);
});
