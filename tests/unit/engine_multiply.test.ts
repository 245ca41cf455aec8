import assert from "node:assert/strict";
import type { EngineConfig } from "../../lib/engine/mod.ts";
import { addrText } from "../../lib/engine/mod.ts";
import { Scenario } from "../sim/harness.ts";
import type { OnlineTrace } from "../sim/online.ts";
import { mergeTraces, onlineConnection } from "../sim/online.ts";
import type { TargetBehaviour } from "../sim/target.ts";

const server = { addr: "198.51.100.1", port: 80 };

/** `n` short connections; connection i uses client (addrs[i % addrs.length], ports[i]). */
function shortConns(
  n: number,
  opts: { addrs?: string[]; port?: (i: number) => number; gapMs?: number; reqs?: number } = {},
): OnlineTrace[] {
  const addrs = opts.addrs ?? ["192.0.2.10"];
  return Array.from({ length: n }, (_, i) =>
    onlineConnection({
      client: { addr: addrs[i % addrs.length], port: opts.port ? opts.port(i) : 30000 + i },
      server,
      clientIsn: (100_000 + i * 7919) >>> 0,
      serverIsn: 9000 + i,
      start: 1000 + i * (opts.gapMs ?? 3),
      rttMs: 1,
      exchanges: Array.from({ length: opts.reqs ?? 1 }, (_, k) => ({
        id: i * 100 + k,
        responseLength: 200,
      })),
    }));
}

function replay(
  traces: OnlineTrace[],
  cfg: Omit<EngineConfig, "transfers"> = {},
  behaviour: TargetBehaviour = {},
) {
  const sc = new Scenario(cfg, behaviour);
  sc.feed(mergeTraces(traces));
  sc.run(600_000);
  return sc;
}

function lost(sc: Scenario): number {
  return Object.values(sc.engine.stats.lost).reduce((a, b) => a + b, 0);
}

/** Multiset of delivered request lines. */
function delivered(sc: Scenario): string[] {
  return sc.target.requests.map((r) => r.line).sort();
}

Deno.test("source-port reuse while the previous incarnation is still replaying: no loss", () => {
  // 40 connections from one client reuse 4 ports; the target is much slower than online.
  const traces = shortConns(40, { port: (i) => 50000 + (i % 4), gapMs: 2, reqs: 2 });
  const sc = replay(traces, {}, { answerDelayMs: 30 });
  const want = traces.flatMap((t) => t.requests.map((r) => r.trimEnd())).sort();
  assert.deepEqual(delivered(sc), want);
  assert.equal(lost(sc), 0);
  assert.equal(sc.engine.stats.requests.answered, 80);
  // Each target connection carried exactly one original connection's bytes.
  const streams = new Set(sc.target.streams());
  for (const t of traces) assert.ok(streams.has(t.bytes));
  assert.equal(sc.engine.stats.sessions.active, 0);
});

Deno.test("--copies 2 replays every connection twice on distinct tuples", () => {
  const traces = shortConns(20);
  const sc = replay(traces, { copies: 2 });
  assert.equal(sc.target.accepted.length, 40);
  const tuples = new Set(sc.target.accepted.map((c) => c.key));
  assert.equal(tuples.size, 40);
  const want = traces.flatMap((t) => t.requests.map((r) => r.trimEnd()));
  assert.deepEqual(delivered(sc), [...want, ...want].sort());
  assert.equal(lost(sc), 0);
});

Deno.test("--copies 1.5: every connection once, about half twice, deterministic", () => {
  const traces = shortConns(400, { gapMs: 1 });
  const a = replay(traces, { copies: 1.5, seed: 42 });
  const b = replay(traces, { copies: 1.5, seed: 42 });
  const n = a.target.accepted.length;
  assert.ok(n >= 560 && n <= 640, `accepted ${n}`);
  assert.equal(b.target.accepted.length, n);
  assert.deepEqual(
    a.target.accepted.map((c) => c.key),
    b.target.accepted.map((c) => c.key),
  );
  // Every original connection was replayed at least once.
  const lines = new Set(a.target.requests.map((r) => r.line));
  for (const t of traces) assert.ok(lines.has(t.requests[0].trimEnd()));
  assert.equal(lost(a), 0);
});

Deno.test("--sample 50 keeps about half of the connections, whole", () => {
  const traces = shortConns(400, { gapMs: 1, reqs: 2 });
  const sc = replay(traces, { samplePercent: 50 });
  const n = sc.target.accepted.length;
  assert.ok(n >= 160 && n <= 240, `accepted ${n}`);
  assert.equal(sc.engine.stats.sampled_out, 400 - n);
  // Kept connections are complete.
  const streams = new Set(sc.target.streams());
  assert.equal(traces.filter((t) => streams.has(t.bytes)).length, n);
});

Deno.test("--gradual ramps up by 1 % per second", () => {
  // 300 connections over 100 s: early ones are mostly skipped, late ones mostly kept.
  const traces = shortConns(300, { gapMs: 333 });
  const sc = replay(traces, { gradual: true });
  const keptAt = sc.target.accepted.map((c) => Number(c.key.split("|")[1]) - 30000);
  const early = keptAt.filter((i) => i < 100).length;
  const late = keptAt.filter((i) => i >= 200).length;
  assert.ok(early < late, `early ${early} late ${late}`);
  assert.ok(sc.engine.stats.sampled_out > 0);
});

Deno.test("--client-ip and --port-shift rewrite sources without collisions", () => {
  // 60 clients from 30 addresses, all on the same source port, mapped onto 2 addresses.
  const addrs = Array.from({ length: 30 }, (_, i) => `203.0.113.${i + 1}`);
  const traces = shortConns(60, { addrs, port: () => 40000, gapMs: 0.5, reqs: 2 });
  const clientIps = ["10.1.2.1", "10.1.2.2"];
  const sc = replay(traces, { clientIps, portShift: 3 }, { answerDelayMs: 20 });
  const keys = sc.target.accepted.map((c) => c.key);
  assert.equal(new Set(keys).size, 60);
  for (const c of sc.target.accepted) assert.ok(clientIps.includes(addrText(c.client)));
  assert.ok(sc.target.accepted.every((c) => c.client.port !== 40000));
  const want = traces.flatMap((t) => t.requests.map((r) => r.trimEnd())).sort();
  assert.deepEqual(delivered(sc), want);
  assert.equal(lost(sc), 0);
  // Routes were added before each SYN and removed at the end.
  assert.equal(sc.routes.filter((r) => r.startsWith("+")).length, 60);
  assert.equal(sc.routes.filter((r) => r.startsWith("-")).length, 60);
});

Deno.test("one keep-alive connection at full speed: 300 requests, none lost", () => {
  const t = onlineConnection({
    client: { addr: "192.0.2.77", port: 45555 },
    server,
    clientIsn: 4_294_960_000, // wraps around 2^32 during the run
    serverIsn: 4_294_967_000,
    start: 1000,
    rttMs: 0.2,
    exchanges: Array.from({ length: 300 }, (_, i) => ({ id: i, responseLength: 150 + (i % 7) })),
  });
  const sc = replay([t], {}, { answerDelayMs: 1 });
  assert.deepEqual(sc.target.streams(), [t.bytes]);
  assert.equal(sc.engine.stats.requests.answered, 300);
  assert.equal(lost(sc), 0);
});
