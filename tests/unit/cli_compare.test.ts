/**
 * `--compare` and its flags on tcpcopy's command line (issue 15): defaults, values, the
 * capture filter taking both directions, the one-line errors, and the `--compare` help.
 */
import assert from "node:assert/strict";
import { parseTcpcopyArgs, renderHelp } from "../../lib/cli/tcpcopy.ts";
import { buildCaptureFilter, NO_SERVER_ACKS } from "../../lib/cli/filter.ts";
import {
  compareBudgetOf,
  compareFailed,
  comparerFor,
  compareSummaryLines,
  renderCompareMetrics,
} from "../../lib/tcpcopy/compare_output.ts";
import { OnlineMatcher } from "../../lib/tcpcopy/online_match.ts";
import { endpointOf } from "../../lib/engine/endpoint.ts";

const BASE = ["-x", "10.0.0.1:80-10.0.0.2:8080", "-s", "10.0.0.3"];
const SECRET = ["--secret-file", "/etc/tcpcopy/secret"];

function run(args: string[]) {
  const r = parseTcpcopyArgs(args);
  if (r.kind !== "run") throw new Error(`expected a config, got ${JSON.stringify(r)}`);
  return r.config;
}

function error(args: string[]): string {
  const r = parseTcpcopyArgs(args);
  if (r.kind !== "error") throw new Error(`expected an error, got ${r.kind}`);
  assert.equal(r.exitCode, 2);
  assert(!r.message.includes("\n"), "one line");
  return r.message;
}

Deno.test("cli --compare: off by default; defaults; the filter then takes the server's packets too", () => {
  assert.equal(run(BASE).compare, null);
  assert.equal(run(BASE).filter.includes("src port"), false);
  const c = run([...BASE, ...SECRET, "--compare"]);
  assert.deepEqual(c.compare, {
    proto: "auto",
    bytes: 1024,
    maxPending: 256,
    ignoreHeaders: [],
    log: null,
    all: false,
    failAbove: null,
  });
  assert.equal(
    c.filter,
    "tcp and ((dst port 80 and dst host 10.0.0.1) or " +
      `(src port 80 and src host 10.0.0.1 and ${NO_SERVER_ACKS}))`,
  );
});

Deno.test("cli --compare: every flag with a value", () => {
  const c = run([
    ...BASE,
    ...SECRET,
    "--compare",
    "--compare-proto",
    "http",
    "--compare-bytes",
    "4096",
    "--compare-max-pending",
    "4096",
    "--compare-ignore-header",
    "X-Trace-Id",
    "--compare-ignore-header",
    "x-b3-spanid",
    "--compare-log",
    "-",
    "--compare-all",
    "--compare-fail-above",
    "0.001",
  ]).compare!;
  assert.deepEqual(c, {
    proto: "http",
    bytes: 4096,
    maxPending: 4096,
    ignoreHeaders: ["x-trace-id", "x-b3-spanid"],
    log: "-",
    all: true,
    failAbove: 0.001,
  });
  for (const proto of ["auto", "http", "resp", "pg", "bytes"]) {
    assert.equal(
      run([...BASE, ...SECRET, "--compare", "--compare-proto", proto]).compare!.proto,
      proto,
    );
  }
});

Deno.test("cli --compare: clear one-line errors", () => {
  assert.equal(
    error([...BASE, "--compare"]),
    "tcpcopy: --compare needs --secret-file FILE: intercept sends the target's answers only " +
      "to a tcpcopy that authenticates with the shared secret",
  );
  assert.equal(
    error([...BASE, "--compare-log", "x.ndjson"]),
    "tcpcopy: --compare-log 'x.ndjson': only used with --compare",
  );
  assert.equal(
    error([...BASE, "--compare-fail-above", "0.1"]),
    "tcpcopy: --compare-fail-above '0.1': only used with --compare",
  );
  const on = [...BASE, ...SECRET, "--compare"];
  assert.match(
    error([...on, "--compare-proto", "grpc"]),
    /--compare-proto 'grpc': expected one of auto, http, resp, pg, bytes/,
  );
  assert.match(error([...on, "--compare-bytes", "8"]), /--compare-bytes '8': /);
  assert.match(error([...on, "--compare-bytes", "70000"]), /--compare-bytes '70000': /);
  assert.match(error([...on, "--compare-fail-above", "1.5"]), /--compare-fail-above '1.5': /);
  for (const v of ["0", "1000001", "1.5", "many"]) {
    assert.match(
      error([...on, "--compare-max-pending", v]),
      new RegExp(`--compare-max-pending '${v}': `),
    );
  }
  assert.equal(
    error([...BASE, "--compare-max-pending", "4096"]),
    "tcpcopy: --compare-max-pending '4096': only used with --compare",
  );
  assert.match(error([...on, "--compare-fail-above", "x"]), /--compare-fail-above 'x': /);
  assert.match(
    error([...on, "--compare-ignore-header", "bad header"]),
    /--compare-ignore-header 'bad header': expected an HTTP header name/,
  );
  assert.equal(
    error([...on, "--compare-all"]),
    "tcpcopy: --compare-all: only used with --compare-log FILE",
  );
  assert.match(
    error([...on, "--compare-log", " "]),
    /--compare-log ' ': expected a file path, or - for stdout/,
  );
});

Deno.test("cli --compare: help lists the flags and exit code 3", () => {
  const help = renderHelp();
  for (
    const flag of [
      "--compare",
      "--compare-proto auto|http|resp|pg|bytes",
      "--compare-bytes N",
      "--compare-ignore-header NAME",
      "--compare-log FILE",
      "--compare-all",
      "--compare-fail-above RATIO",
    ]
  ) assert(help.includes(flag), flag);
  assert(help.includes("3 mismatch ratio above"));
});

Deno.test("compare wiring: filter for wildcard online addresses, the answer matcher, budget, fail gate", () => {
  assert.equal(
    buildCaptureFilter(
      [{ onlineIp: null, onlinePort: 80, targetIp: "10.0.0.2", targetPort: 8080 }] as never,
      true,
    ),
    `tcp and ((dst port 80) or (src port 80 and ${NO_SERVER_ACKS}))`,
  );
  const m = new OnlineMatcher([
    { online: { addr: "10.0.0.1", port: 80 }, target: { addr: "10.0.0.2", port: 8080 } },
  ]);
  const server = endpointOf("10.0.0.1", 80), client = endpointOf("192.0.2.9", 40000);
  assert.equal(m.isAnswer(server.addr, 80, client.addr, 40000), true);
  assert.equal(m.isAnswer(client.addr, 40000, server.addr, 80), false);
  assert.equal(m.isAnswer(endpointOf("10.0.0.9", 0).addr, 80, client.addr, 40000), false);
  // a packet to an online endpoint is a client's, whatever its source port
  assert.equal(m.isAnswer(server.addr, 80, server.addr, 80), false);
  assert.ok(compareBudgetOf(2048) > 80 * 1024 * 1024 && compareBudgetOf(2048) < 2048 * 1024 * 1024);
  const c = comparerFor(run([...BASE, ...SECRET, "--compare"]), null)!;
  assert.equal(compareFailed(c, 0), false, "nothing compared: ratio 0");
  c.stats.add(
    { match: false, reason: "status", hint: { offset: 0, what: "status", online: "", target: "" } },
    null,
    null,
  );
  assert.equal(compareFailed(c, 0.5), true);
  assert.equal(compareFailed(c, null), false);
  assert.equal(comparerFor(run(BASE), null), null);
});

Deno.test("tunnel round trip: in the stats object, the exit summary and Prometheus when measured", () => {
  let rtt: number | null = null;
  const c = comparerFor(run([...BASE, ...SECRET, "--compare"]), null, () => rtt)!;
  assert.equal(c.line().tunnel_rtt_ms, null);
  assert.match(compareSummaryLines(c)[1], /tunnel round trip not measured/);
  assert.doesNotMatch(renderCompareMetrics(c), /tunnel_rtt/);
  rtt = 0.42;
  assert.equal(c.line().tunnel_rtt_ms, 0.42);
  assert.match(compareSummaryLines(c)[1], /tunnel round trip 0\.42 ms/);
  assert.match(renderCompareMetrics(c), /^tcpcopy_compare_tunnel_rtt_seconds 0\.00042$/m);
});

Deno.test("--compare-log counts in Prometheus: records written and not written, only with a log", () => {
  const c = comparerFor(run([...BASE, ...SECRET, "--compare"]), null)!;
  assert.doesNotMatch(renderCompareMetrics(c), /log_/);
  const text = renderCompareMetrics(c, { written: 76, errors: 3 });
  assert.match(text, /^tcpcopy_compare_log_records_total 76$/m);
  assert.match(text, /^tcpcopy_compare_log_errors_total 3$/m);
  assert.match(text, /^# TYPE tcpcopy_compare_log_errors_total counter$/m);
});
