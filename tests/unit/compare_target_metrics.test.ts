/**
 * `--compare`'s per-target Prometheus series (lib/tcpcopy/compare_output.ts renderCompareMetrics):
 * an A/B of two targets of one online port (one of them IPv6) gives each target its compared,
 * matched and mismatched counters and its target latency histogram, labelled
 * `target="ip:port"` (`"[ip6]:port"`), beside the unchanged totals; targets beyond the cap are
 * counted in the totals only. Driven with scripted segments (tests/helpers/compare_rig.ts).
 */
import assert from "node:assert/strict";
import { endpointOf } from "../../lib/engine/endpoint.ts";
import type { Endpoint } from "../../lib/engine/segment.ts";
import { escapeLabelValue, labelPair } from "../../lib/metrics/labels.ts";
import { MAX_TARGETS } from "../../lib/tcpcopy/comparer.ts";
import { COMPARE_METRICS, renderCompareMetrics } from "../../lib/tcpcopy/compare_output.ts";
import { http, PATHS, Rig, type Sess } from "../helpers/compare_rig.ts";

const REWRITTEN = endpointOf("10.1.0.7", 41000);
const CURRENT = endpointOf("10.9.0.2", 80);
const CANDIDATE = endpointOf("fd00::3", 8080);

/**
 * The three requests of one keep-alive connection, each replayed to every session at `t`; the
 * online server answers 1 ms later, session `s` after `delay(s)` ms with `body(s, i)`.
 */
function run(
  rig: Rig,
  sessions: Sess[],
  delay: (s: Sess) => number,
  body: (s: Sess, i: number) => string,
): void {
  let t = 10;
  for (let i = 0; i < PATHS.length; i++, t += 100) {
    rig.at(t);
    const r = rig.request(`GET ${PATHS[i]} HTTP/1.1\r\nHost: x\r\n\r\n`, t);
    for (const s of sessions) rig.sent(s, r);
    rig.online(http(200, "same"), t + 1);
    const order = [...sessions].sort((a, b) => delay(a) - delay(b));
    for (const s of order) {
      rig.at(t + delay(s));
      rig.target(s, r.end, http(200, body(s, i)));
    }
  }
  rig.close();
  for (const s of sessions) rig.cmp.onSessionClose(s.client, s.target, t);
  rig.at(t + 5000);
}

/** The exposition's samples: "name{labels}" -> value (every line checked against the format). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    // name, optional {label="value",...} with escaped values, one space, the value
    const m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})?) (\S+)$/
        .exec(line);
    assert.ok(m, `not a sample line of the text format: ${JSON.stringify(line)}`);
    assert.ok(!out.has(m[1]), `sample twice: ${m[1]}`);
    out.set(m[1], Number(m[2]));
  }
  return out;
}

Deno.test("target metrics: an A/B of two targets (one IPv6) has each target's counters and latencies", () => {
  // (with --compare-all every verdict comes from a comparator; without, identical answers are
  // counted on a path of their own)
  for (const all of [true, false]) abTest(all);
});

function abTest(all: boolean): void {
  const rig = new Rig({ all });
  const cur = rig.session(REWRITTEN, CURRENT, 0, 900_000);
  const cand = rig.session(REWRITTEN, CANDIDATE, 0, 4_000_000_000);
  rig.handshake();
  // the current version answers as online in 2 ms; the candidate in 30 ms, /b differently
  run(
    rig,
    [cur, cand],
    (s) => s === cur ? 2 : 30,
    (s, i) => s === cand && i === 1 ? "diff" : "same",
  );
  const text = renderCompareMetrics(rig.cmp);
  const got = samples(text);
  const m = COMPARE_METRICS;
  const A = `target="10.9.0.2:80"`, B = `target="[fd00::3]:8080"`;
  const want: [string, number][] = [
    // the totals, unchanged (no target label)
    [m.compared, 6],
    [m.matched, 5],
    [`${m.mismatched}{reason="body"}`, 1],
    [`${m.latency}_count{side="target"}`, 6],
    // each target's
    [`${m.targetCompared}{${A}}`, 3],
    [`${m.targetCompared}{${B}}`, 3],
    [`${m.targetMatched}{${A}}`, 3],
    [`${m.targetMatched}{${B}}`, 2],
    [`${m.targetMismatched}{${A}}`, 0],
    [`${m.targetMismatched}{${B}}`, 1],
    [`${m.targetLatency}_count{${A}}`, 3],
    [`${m.targetLatency}_count{${B}}`, 3],
    [`${m.targetLatency}_bucket{${A},le="0.0025"}`, 3],
    [`${m.targetLatency}_bucket{${A},le="0.001"}`, 0],
    [`${m.targetLatency}_bucket{${B},le="0.025"}`, 0],
    [`${m.targetLatency}_bucket{${B},le="0.05"}`, 3],
    [`${m.targetLatency}_bucket{${B},le="+Inf"}`, 3],
  ];
  for (const [k, v] of want) assert.equal(got.get(k), v, `${k} (all ${all})`);
  assert.ok(Math.abs(got.get(`${m.targetLatency}_sum{${A}}`)! - 0.006) < 1e-9);
  assert.ok(Math.abs(got.get(`${m.targetLatency}_sum{${B}}`)! - 0.09) < 1e-9);
  // one family each (HELP and TYPE once), the histogram typed as one
  for (const name of [m.targetCompared, m.targetMatched, m.targetMismatched, m.targetLatency]) {
    assert.equal(text.split("\n").filter((l) => l.startsWith(`# TYPE ${name} `)).length, 1, name);
  }
  assert.match(text, new RegExp(`^# TYPE ${m.targetLatency} histogram$`, "m"));
  // the per-target series agree with the stats line's compare.targets
  const line = rig.cmp.line();
  for (const [t, c] of Object.entries(line.targets)) {
    const l = `{${labelPair("target", t)}}`;
    assert.equal(got.get(`${m.targetCompared}${l}`), c.compared, t);
    assert.equal(got.get(`${m.targetMismatched}${l}`), c.mismatched, t);
  }
  // the existing metrics keep their labels: no target label on them
  for (const k of got.keys()) {
    if (k.includes("target=")) assert.ok(k.startsWith("tcpcopy_compare_target_"), k);
  }
}

Deno.test("target metrics: none before a session was compared", () => {
  const text = renderCompareMetrics(new Rig().cmp);
  assert.ok(!text.includes("tcpcopy_compare_target_"), text);
  assert.match(text, /^tcpcopy_compare_turns_total 0$/m);
});

Deno.test("target metrics: targets beyond the cap are in the totals only", () => {
  const rig = new Rig();
  const sessions: Sess[] = [];
  for (let i = 0; i < MAX_TARGETS + 2; i++) {
    const target: Endpoint = endpointOf(`10.9.${i >> 8}.${(i & 255) + 1}`, 80);
    sessions.push(rig.session(REWRITTEN, target, 0, 1_000_000 * (i + 1)));
  }
  rig.handshake();
  run(rig, sessions, () => 2, () => "same");
  const got = samples(renderCompareMetrics(rig.cmp));
  const m = COMPARE_METRICS;
  assert.equal(got.get(m.compared), 3 * (MAX_TARGETS + 2));
  const per = [...got.keys()].filter((k) => k.startsWith(`${m.targetCompared}{`));
  assert.equal(per.length, MAX_TARGETS);
  assert.equal(got.get(`${m.targetCompared}{target="10.9.0.1:80"}`), 3);
  assert.equal(got.get(`${m.targetCompared}{target="10.9.0.${MAX_TARGETS + 2}:80"}`), undefined);
});

Deno.test("target metrics: label values are escaped as the text format says", () => {
  assert.equal(escapeLabelValue("10.0.0.2:80"), "10.0.0.2:80");
  assert.equal(escapeLabelValue("[fd00::3]:8080"), "[fd00::3]:8080");
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  assert.equal(labelPair("target", 'x"'), 'target="x\\""');
});
