/**
 * Several tcpcopy instances replaying the same clients to one target (tests/sim/shared.ts):
 * their rewritten tuples must never meet, whatever source ports the clients use, and every
 * request is either answered or counted as lost.
 */
import assert from "node:assert/strict";
import {
  LANE_PORTS,
  laneOf,
  lanePort,
  PORT_LANES,
  PORT_MAX,
  PORT_MIN,
  TupleAllocator,
} from "../../lib/engine/allocator.ts";
import type { EngineStats } from "../../lib/engine/mod.ts";
import { mergeTraces, onlineConnection, type OnlineTrace } from "../sim/online.ts";
import { SharedTarget } from "../sim/shared.ts";
import { ip } from "../helpers/endpoints.ts";

const server = { addr: "198.51.100.1", port: 80 };

function lostTotal(s: EngineStats): number {
  return Object.values(s.lost).reduce((a, b) => a + b, 0);
}

/**
 * `n` short connections from one client address, in pairs whose source ports are exactly
 * 2048 apart and live at the same time: the C-style shift (port + f * 2048) maps the pair's
 * first port under -f 2 and its second under -f 1 onto the same tuple.
 */
function pairedPorts(n: number, reqs = 2): OnlineTrace[] {
  return Array.from({ length: n }, (_, i) =>
    onlineConnection({
      client: { addr: "192.0.2.10", port: 40000 + (i % 2) * 2048 + 2 * (i >> 1) },
      server,
      clientIsn: (7_000_000 + i * 104_729) >>> 0,
      serverIsn: 5000 + i,
      start: 1000 + (i >> 1) * 2,
      rttMs: 1,
      exchanges: Array.from({ length: reqs }, (_, k) => ({ id: i * 100 + k, responseLength: 300 })),
    }));
}

Deno.test("port lanes: a shifted port stays in lane (shift mod 8), in range, for every port", () => {
  for (let f = 1; f <= 2 * PORT_LANES; f++) {
    for (let p = 0; p <= PORT_MAX; p += 7) {
      for (const copy of [0, 1, 5]) {
        const q = lanePort(p, f, copy);
        assert.ok(q >= PORT_MIN && q <= PORT_MAX, `${p} -f ${f} copy ${copy} -> ${q}`);
        assert.equal(laneOf(q), f % PORT_LANES);
      }
    }
  }
  // Neighbouring client ports get neighbouring slots of the lane.
  assert.equal(lanePort(40002, 1, 0) - lanePort(40000, 1, 0), 2 * PORT_LANES);
  assert.equal(LANE_PORTS * PORT_LANES, PORT_MAX - PORT_MIN + 1);
});

Deno.test("port lanes: probing with the lane step never leaves the lane", () => {
  const a = new TupleAllocator(0);
  const start = lanePort(65000, 3, 0);
  const got = new Set<number>();
  for (let i = 0; i < 300; i++) {
    const p = a.take(ip("10.0.0.1"), start, ip("10.9.0.1"), 80, 0, PORT_LANES);
    assert.ok(p !== undefined);
    assert.equal(laneOf(p), 3);
    got.add(p);
  }
  assert.equal(got.size, 300); // wrapped past 65535 and stayed collision-free
});

Deno.test("two instances (-f 1, -f 2) on one target: disjoint tuples, every request twice, no loss", () => {
  const traces = pairedPorts(160);
  const sim = new SharedTarget([{ portShift: 1 }, { portShift: 2 }], { answerDelayMs: 15 });
  sim.feed(mergeTraces(traces));
  sim.run(120_000);
  sim.stop();
  const [a, b] = sim.tuples.map((t) => new Set(t));
  const shared = [...a].filter((k) => b.has(k));
  assert.deepEqual(shared, [], "the instances used the same tuple");
  assert.equal(sim.counters.takeovers, 0);
  const want = traces.flatMap((t) => t.requests.map((r) => r.trimEnd()));
  const served = sim.target.requests.map((r) => r.line).sort();
  assert.deepEqual(served, [...want, ...want].sort());
  for (const e of sim.engines) {
    const s = e.stats;
    assert.equal(s.requests.captured, want.length);
    assert.equal(s.requests.answered, want.length, JSON.stringify(s.requests));
    assert.equal(lostTotal(s), 0, JSON.stringify(s.lost));
    assert.equal(s.handshakes.syn_retransmits, 0);
    assert.equal(s.sessions.active, 0);
  }
});

Deno.test("stopping an instance counts the requests it never sent (shutdown), no others", () => {
  const traces = pairedPorts(20, 3);
  // The target answers slowly: at the stop, some requests wait for their turn (never sent),
  // some are sent and not answered yet, some are answered.
  const sim = new SharedTarget([{ portShift: 1 }], { answerDelayMs: 400 });
  sim.feed(mergeTraces(traces));
  sim.run(1500);
  sim.stop();
  sim.run(3000); // what was sent before the stop arrives; the RSTs close everything
  const s = sim.engines[0].stats;
  const served = sim.target.requests.length;
  assert.ok(s.lost.shutdown > 0, JSON.stringify(s.lost));
  assert.ok(s.requests.answered < served, "some were served but not answered by the stop");
  assert.equal(served + lostTotal(s), s.requests.captured, JSON.stringify(s));
});
