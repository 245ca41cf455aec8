import assert from "node:assert/strict";
import { emptyStats } from "../../lib/engine/stats.ts";
import { type TcpcopyCounters, tcpcopyStatsRecord } from "../../lib/stats/record.ts";
import { jsonLine, nextStatsDue } from "../../lib/stats/json_lines.ts";

function counters(): TcpcopyCounters {
  const engine = emptyStats();
  engine.captured = 7;
  engine.sessions = { active: 2, created: 5, closed: 3, evicted: 0 };
  engine.requests = { captured: 11, sent: 10, answered: 9 };
  engine.lost.timeout = 1;
  engine.handshakes.established = 4;
  engine.resets = 3;
  engine.retransmits = 6;
  return {
    engine,
    capture: { packets: 42, kernelDrops: 2, ifDrops: 1, parseErrors: 4, bufferBytes: 8 << 20 },
    send: { packets: 40, errors: { EMSGSIZE: 2 } },
    intercept: {
      servers: 1,
      connected: 2,
      replies: 30,
      replyErrors: 0,
      reconnects: 1,
      routesResent: 0,
    },
    process: {
      rssBytes: 1 << 20,
      heapBytes: 1 << 19,
      externalBytes: 1 << 18,
      cpuUserS: 1.23456,
      cpuSystemS: 0.5,
    },
  };
}

Deno.test("stats record carries every source under its documented name", () => {
  const start = Date.UTC(2025, 0, 31, 12, 0, 0);
  const r = tcpcopyStatsRecord(counters(), start + 5500, start, false);
  assert.equal(r.type, "stats");
  assert.equal(r.program, "tcpcopy");
  assert.equal(r.ts, "2025-01-31T12:00:05.500Z");
  assert.equal(r.uptime_s, 5.5);
  assert.equal(r.final, false);
  assert.equal(r.captured, 42);
  assert.equal(r.kernel_drops, 3);
  assert.equal(r.capture_buffer_bytes, 8 << 20);
  assert.equal(r.parse_errors, 4);
  assert.equal(r.segments, 7);
  assert.deepEqual(r.sessions, { active: 2, created: 5, closed: 3, evicted: 0 });
  assert.deepEqual(r.requests, { captured: 11, sent: 10, answered: 9 });
  assert.equal(r.lost.timeout, 1);
  assert.equal(r.handshakes.established, 4);
  assert.equal(r.resets, 3);
  assert.equal(r.retransmits, 6);
  assert.equal(r.packets_sent, 40);
  assert.deepEqual(r.send_errors, { EMSGSIZE: 2 });
  assert.deepEqual(r.intercept, {
    servers: 1,
    connected: 2,
    replies: 30,
    reply_errors: 0,
    reconnects: 1,
    routes_resent: 0,
    prefix_short: 0,
  });
  assert.deepEqual(r.modules, {});
  assert.equal(r.process.cpu_user_s, 1.235);
  assert.equal(r.process.heap_bytes, 1 << 19);
  assert.equal(r.process.external_bytes, 1 << 18);
  assert.equal(r.self_target, false);
  assert.equal(
    tcpcopyStatsRecord({ ...counters(), selfTarget: true }, start, start, false).self_target,
    true,
  );
});

Deno.test("the record is a snapshot: later counter changes do not leak into it", () => {
  const c = counters();
  const r = tcpcopyStatsRecord(c, 1000, 0, true);
  c.engine.sessions.active = 99;
  c.engine.lost.timeout = 99;
  c.send.errors.EPERM = 1;
  assert.equal(r.sessions.active, 2);
  assert.equal(r.lost.timeout, 1);
  assert.deepEqual(r.send_errors, { EMSGSIZE: 2 });
  assert.equal(r.final, true);
});

Deno.test("json line: one object, one line, parses back", () => {
  const r = tcpcopyStatsRecord(counters(), 1000, 0, false);
  const line = jsonLine(r);
  assert.ok(line.endsWith("\n"));
  assert.equal(line.indexOf("\n"), line.length - 1);
  assert.deepEqual(JSON.parse(line), r);
});

Deno.test("next stats slot: fixed grid from start, missed slots skipped, 0 = off", () => {
  assert.equal(nextStatsDue(1000, 1000, 5), 6000);
  assert.equal(nextStatsDue(1000, 5999, 5), 6000);
  assert.equal(nextStatsDue(1000, 6000, 5), 11000);
  assert.equal(nextStatsDue(1000, 33_000, 5), 36000);
  assert.equal(nextStatsDue(0, 100, 0.5), 500);
  assert.equal(nextStatsDue(0, 100, 0), null);
});
