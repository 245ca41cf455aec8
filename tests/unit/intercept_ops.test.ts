/** intercept's operator features: `doctor` arguments, --metrics, Prometheus rendering. */
import assert from "node:assert/strict";
import { parseInterceptArgs } from "../../lib/cli/intercept.ts";
import { INTERCEPT_SCHEMA, interceptStatsRecord } from "../../lib/intercept/stats.ts";
import { renderPrometheus } from "../../lib/stats/prometheus.ts";
import { Dispatcher } from "../../lib/tunnel/dispatch.ts";

Deno.test("intercept doctor: mode flags are optional; -F means an assistant host", () => {
  const a = parseInterceptArgs(["doctor", "--port", "80,8080", "--json"]);
  assert.deepEqual(a, {
    kind: "doctor",
    request: { json: true, allow: [], ports: [80, 8080], devices: [], assistant: false },
  });
  const s = parseInterceptArgs(["doctor", "--allow", "10.0.0.0/8", "--secret-file", "/x"]);
  assert.ok(s.kind === "doctor");
  assert.deepEqual([s.request.allow, s.request.secretFile], [["10.0.0.0/8"], "/x"]);
  const bad = parseInterceptArgs(["doctor", "--allow", "10.0.0.0/33"]);
  assert.ok(bad.kind === "error" && /--allow "10.0.0.0\/33".*prefix length/.test(bad.message));
  const b = parseInterceptArgs(["doctor", "-i", "eth0", "-F", "tcp and src port 80"]);
  assert.ok(b.kind === "doctor" && b.request.assistant && b.request.devices[0] === "eth0");
  const c = parseInterceptArgs(["doctor", "--port", "70000"]);
  assert.ok(c.kind === "error");
  assert.match(c.message, /^doctor: --port "70000": expected an integer 1\.\.65535$/);
  const d = parseInterceptArgs(["doctor", "--bogus"]);
  assert.ok(d.kind === "error" && /accepted: --json, --port, -i, -F/.test(d.message));
});

Deno.test("intercept --metrics: address parsed, bad values are one line", () => {
  const ok = parseInterceptArgs(["--port", "80", "--metrics", "0.0.0.0:9121"]);
  assert.ok(ok.kind === "run");
  assert.deepEqual(ok.config.metrics, { hostname: "0.0.0.0", port: 9121 });
  const none = parseInterceptArgs(["--port", "80"]);
  assert.ok(none.kind === "run" && none.config.metrics === undefined);
  const bad = parseInterceptArgs(["--port", "80", "--metrics", "x:0"]);
  assert.ok(bad.kind === "error");
  assert.match(bad.message, /^--metrics "x:0": expected \[host:\]port/);
});

Deno.test("intercept stats render as Prometheus counters and gauges with HELP lines", () => {
  const dispatch = new Dispatcher();
  const rec = interceptStatsRecord(
    {
      dispatch: dispatch.counters,
      passed: 3,
      notIp: 0,
      peers: 2,
      accepted: 4,
      rejected: 1,
      routes: 7,
      routesEvicted: 2,
      routesOverQuota: 6,
      security: { auth: "none", allow: "any" },
      access: {
        refusedAllow: 1,
        refusedPerIp: 2,
        authOk: 3,
        authFailed: 4,
        authRequired: 5,
        idleClosed: 6,
        protocolErrors: 7,
        logSuppressed: 8,
      },
      kernel: { pcap_drops: 0, nfq_queue_dropped: 5, nfq_user_dropped: 0 },
      verdicts: { accept: 3, drop: 11 },
      batches: { frames: 4, records: 10, dropped: 1 },
      answers: {
        sent: 9,
        skipped: 1,
        dropped: 2,
        bytes: 900,
        duplicateBytes: 3,
        open: 4,
        live: 3,
        flows: 5,
      },
      failOpen: true,
      draining: false,
      rulesInstalled: 2,
      staleRulesReplaced: 1,
      process: {
        rssBytes: 60 << 20,
        rssAnonBytes: 24 << 20,
        rssFileBytes: 36 << 20,
        heapBytes: 9 << 20,
        heapTotalBytes: 12 << 20,
        externalBytes: 1 << 20,
        cpuUserS: 1.5,
        cpuSystemS: 0.25,
      },
    },
    10_000,
    0,
    false,
  );
  assert.equal(rec.process?.rss_anon_bytes, 24 << 20);
  const text = renderPrometheus(rec, INTERCEPT_SCHEMA);
  assert.match(text, /^# TYPE intercept_process_rss_file_bytes gauge$/m);
  assert.match(text, /^intercept_process_rss_file_bytes 37748736$/m);
  assert.match(text, /^intercept_process_heap_total_bytes 12582912$/m);
  assert.match(text, /^intercept_process_cpu_user_s_total 1\.5$/m);
  assert.match(text, /^# HELP intercept_replies_passed_total Replies let through by the/m);
  assert.match(text, /^# TYPE intercept_replies_passed_total counter$/m);
  assert.match(text, /^intercept_replies_passed_total 3$/m);
  assert.match(text, /^# TYPE intercept_peers_connected gauge$/m);
  assert.match(text, /^intercept_peers_connected 2$/m);
  assert.match(text, /^intercept_routes 7$/m);
  assert.match(text, /^intercept_verdicts_total\{verdict="drop"\} 11$/m);
  assert.match(text, /^intercept_kernel_nfq_queue_dropped_total 5$/m);
  assert.match(text, /^intercept_batches_avg_size 2\.5$/m);
  assert.match(text, /^intercept_routes_evicted_total 2$/m);
  assert.match(text, /^intercept_batches_dropped_queue_full_total 1$/m);
  assert.match(text, /^# TYPE intercept_fail_open gauge$/m);
  assert.match(text, /^intercept_fail_open 1$/m);
  assert.match(text, /^intercept_draining 0$/m);
  assert.match(text, /^intercept_rules_installed 2$/m);
  assert.match(text, /^intercept_rules_stale_replaced_total 1$/m);
  assert.doesNotMatch(text, /\bts\b|program|final/);
  for (const line of text.trimEnd().split("\n")) {
    assert.match(line, /^(# (HELP|TYPE) intercept_\w+ .+|intercept_\w+(\{[^}]*\})? [0-9.e+-]+)$/);
  }
});

Deno.test("intercept tunnel flags: defaults, values, one-line errors", () => {
  const d = parseInterceptArgs(["--port", "80"]);
  assert.ok(d.kind === "run");
  assert.equal(d.config.allow.empty, true);
  assert.equal(d.config.secretFile, undefined);
  assert.deepEqual(
    [d.config.maxConnsPerIp, d.config.maxPeerRoutes, d.config.idleTimeoutS, d.config.bind],
    [32, 250_000, 15, "0.0.0.0"],
  );
  const v = parseInterceptArgs([
    "--port=80",
    "-b",
    "10.0.0.9",
    "--allow",
    "10.0.0.5/32,2001:db8::/64",
    "--allow",
    "192.0.2.1",
    "--secret-file",
    "/etc/tcpcopy/secret",
    "--max-conns-per-ip",
    "8",
    "--max-peer-routes",
    "1000",
    "--idle-timeout",
    "5",
  ]);
  assert.ok(v.kind === "run");
  assert.equal(v.config.allow.cidrs.length, 3);
  assert.ok(v.config.allow.has("10.0.0.5") && !v.config.allow.has("10.0.0.6"));
  assert.ok(v.config.allow.has("2001:db8::1") && v.config.allow.has("::ffff:192.0.2.1"));
  assert.deepEqual(
    [v.config.bind, v.config.secretFile, v.config.maxConnsPerIp, v.config.maxPeerRoutes],
    ["10.0.0.9", "/etc/tcpcopy/secret", 8, 1000],
  );
  assert.equal(v.config.idleTimeoutS, 5);
  for (
    const [args, re] of [
      [["--allow", "10.0.0.0/40"], /^--allow "10.0.0.0\/40": .*prefix length/],
      [["--allow", "host.example"], /^--allow "host.example": .*not an IPv4 or IPv6 address/],
      [["--allow", "10.0.0.1,"], /^--allow "10.0.0.1,": empty entry/],
      [["--max-conns-per-ip", "0"], /^--max-conns-per-ip "0": expected an integer 1\.\.1024$/],
      [["--max-peer-routes", "x"], /^--max-peer-routes "x": expected an integer/],
      [["--idle-timeout", "0"], /^--idle-timeout "0": expected an integer 1\.\.3600$/],
      [["--secret-file", ""], /^--secret-file "": expected the path/],
      [["-b", "nowhere"], /^-b "nowhere": expected an IPv4 or IPv6 address$/],
    ] as const
  ) {
    const r = parseInterceptArgs(["--port", "80", ...args]);
    assert.ok(r.kind === "error", args.join(" "));
    assert.match(r.message, re);
    assert.equal(r.message.includes("\n"), false);
  }
});
