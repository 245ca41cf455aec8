/**
 * Everything the engine keeps for the life of the process must be bounded: flow records,
 * timer entries, allocator tuples. These tests replay traffic and then look at what is
 * left once every connection is over.
 */

import assert from "node:assert/strict";
import { seenAt, seenStamp } from "../../lib/engine/seen_clock.ts";
import type { CapturedSegment, EngineConfig } from "../../lib/engine/mod.ts";
import { ACK, addrText, Engine, FIN, PSH, RST, SYN } from "../../lib/engine/mod.ts";
import { ep, ip } from "../helpers/endpoints.ts";
import { TupleAllocator } from "../../lib/engine/allocator.ts";
import { Scenario } from "../sim/harness.ts";
import type { OnlineTrace } from "../sim/online.ts";
import { mergeTraces, onlineConnection } from "../sim/online.ts";
import { keepSegment } from "../helpers/out_segment.ts";

const server = { addr: "198.51.100.1", port: 80 };
const TARGET = { addr: "10.9.0.2", port: 8080 };

function shortConns(n: number, gapMs = 2, thinkMs = 0): OnlineTrace[] {
  return Array.from({ length: n }, (_, i) =>
    onlineConnection({
      client: { addr: `192.0.2.${1 + (i % 200)}`, port: 20000 + i },
      server,
      clientIsn: (100_000 + i * 7919) >>> 0,
      serverIsn: 9000 + i,
      start: 1000 + i * gapMs,
      rttMs: 1,
      exchanges: [{ id: i, responseLength: 200, thinkMs }],
    }));
}

const SHORT_TIMERS: Omit<EngineConfig, "transfers"> = {
  sessionTimeoutMs: 20_000,
  keepaliveTimeoutMs: 30_000,
};

Deno.test("bounds: with -n 0.5 the connections that get no copy are forgotten", () => {
  const traces = shortConns(400);
  const sc = new Scenario({ ...SHORT_TIMERS, copies: 0.5 });
  sc.feed(mergeTraces(traces));
  sc.run(10_000);
  const e = sc.engine;
  assert.ok(e.stats.sessions.created > 100 && e.stats.sessions.created < 300);
  assert.equal(e.stats.sessions.active, 0);
  // Long after every connection ended (tombstone and keep-alive timeouts passed).
  sc.run(200_000);
  e.tick(200_000);
  assert.equal(e.flowCount, 0, "flow records left");
  // Every connection is either replayed or counted as left out.
  assert.equal(e.stats.sessions.created + e.stats.sampled_out, 400);
});

/** A SYN (and nothing else) from `src`. */
function syn(src: { addr: string; port: number }, seq: number, t: number): CapturedSegment {
  return {
    src: ep(src),
    dst: ep(server),
    seq,
    ack: 0,
    flags: SYN,
    window: 64240,
    options: { mss: 1460 },
    payload: new Uint8Array(0),
    timeMs: t,
  };
}

Deno.test("bounds: connections refused for a port conflict are forgotten", () => {
  const sent: unknown[] = [];
  const t0 = 1000;
  const e = new Engine(
    {
      transfers: [{ online: { addr: "", port: 80 }, target: TARGET }],
      clientIps: ["10.1.2.1"],
      ...SHORT_TIMERS,
      synRetries: 2,
    },
    { send: (s) => sent.push(keepSegment(s)), routeAdd() {}, routeDel() {} },
    t0,
  );
  // 4200 clients with the same source port, all rewritten to one address: past the
  // allocator's 4096 probes every new one is a port conflict.
  for (let i = 0; i < 4200; i++) {
    const src = { addr: `192.0.${2 + (i >> 8)}.${i & 255}`, port: 33333 };
    e.onCaptured(syn(src, i * 1000, t0), t0);
  }
  assert.ok(e.stats.lost.port_conflict > 0);
  assert.equal(e.stats.sessions.created + e.stats.lost.port_conflict, 4200);
  for (let t = t0; t <= 300_000; t += 1000) e.tick(t);
  assert.equal(e.stats.sessions.active, 0);
  assert.equal(e.flowCount, 0, "flow records left");
  assert.equal(e.tuplesTracked, 0, "allocator tuples left");
});

Deno.test("bounds: ended sessions do not pile up in the timer heap", () => {
  // 4000 short connections, one per ms, each one idle (keep-alive deadline armed) for 300 ms
  // between its answer and its FIN: their far deadlines must not keep dead sessions around.
  const traces = shortConns(4000, 1, 300);
  const sc = new Scenario(SHORT_TIMERS);
  sc.feed(mergeTraces(traces));
  sc.run(4_000);
  const e = sc.engine;
  assert.ok(e.stats.sessions.closed > 2500, `closed ${e.stats.sessions.closed}`);
  assert.ok(e.stats.sessions.active > 100, `active ${e.stats.sessions.active}`);
  assert.ok(
    e.timerEntries <= 2 * e.stats.sessions.active + 1024,
    `timer entries ${e.timerEntries} with ${e.stats.sessions.active} live sessions`,
  );
});

Deno.test("bounds: a quarantined tuple is forgotten once its quarantine is over", () => {
  const a = new TupleAllocator(1000);
  for (let p = 2000; p < 5000; p++) {
    assert.equal(a.take(ip("10.1.2.1"), p, ip("10.9.0.2"), 80, 0), p);
    a.release(ip("10.1.2.1"), p, ip("10.9.0.2"), 80, 10);
  }
  assert.equal(a.size, 0);
  // Quarantined: the same port is not handed out again at once.
  assert.equal(a.take(ip("10.1.2.1"), 2000, ip("10.9.0.2"), 80, 500), 5000);
  a.release(ip("10.1.2.1"), 5000, ip("10.9.0.2"), 80, 500);
  // Long after: another tuple is taken; the expired quarantine entries are gone.
  assert.equal(a.take(ip("10.1.2.9"), 5000, ip("10.9.0.2"), 80, 60_000), 5000);
  assert.ok(a.tracked <= 2, `tuples tracked: ${a.tracked}`);
});

Deno.test("bounds: a non-finite clock value does not leave a session without timers", () => {
  const e = new Engine(
    { transfers: [{ online: { addr: "", port: 80 }, target: TARGET }], ...SHORT_TIMERS },
    { send() {}, routeAdd() {}, routeDel() {} },
    1000,
  );
  const src = { addr: "192.0.2.1", port: 40000 };
  const data: CapturedSegment = {
    src: ep(src),
    dst: ep(server),
    seq: 5000,
    ack: 77,
    flags: ACK | PSH,
    window: 500,
    options: {},
    payload: new Uint8Array(100),
    timeMs: 1000,
  };
  e.onCaptured(data, Number.NaN);
  e.onCaptured({ ...data, seq: 5100, flags: ACK | FIN, payload: new Uint8Array(0) }, Infinity);
  e.onReply({
    src: ep(TARGET),
    dst: ep(src),
    seq: 1,
    ack: 1,
    flags: ACK,
    window: 100,
    options: {},
    payloadLength: 0,
  }, Number.NaN);
  assert.equal(e.stats.sessions.active, 1);
  const d = e.nextDeadline();
  assert.ok(d !== undefined && Number.isFinite(d), `next deadline ${d}`);
  for (let t = 1000; t <= 200_000; t += 500) e.tick(t);
  assert.equal(e.stats.sessions.active, 0);
  assert.equal(e.stats.lost.handshake_failure, 1);
});

Deno.test("bounds: closed connections are forgotten after the short tombstone even behind long ones", () => {
  // One connection that is never closed (its record lives for the keep-alive timeout), then
  // 500 short connections that close: theirs must go after the 10 s tombstone, not wait for
  // the first one's keep-alive deadline.
  const e = new Engine(
    {
      transfers: [{ online: { addr: "", port: 80 }, target: TARGET }],
      ...SHORT_TIMERS,
      synRetries: 1,
    },
    { send() {}, routeAdd() {}, routeDel() {} },
    1000,
  );
  const data = (
    src: { addr: string; port: number },
    flags: number,
    t: number,
  ): CapturedSegment => ({
    src: ep(src),
    dst: ep(server),
    seq: 100,
    ack: 5,
    flags,
    window: 500,
    options: {},
    payload: new Uint8Array(flags & (FIN | RST) ? 0 : 10),
    timeMs: t,
  });
  e.onCaptured(data({ addr: "192.0.2.1", port: 1 }, ACK | PSH, 30_000), 30_000);
  e.tick(35_000); // its session ended (no SYN-ACK), the record stays for the keep-alive timeout
  assert.equal(e.stats.sessions.active, 0);
  for (let i = 0; i < 500; i++) {
    const src = { addr: "192.0.2.2", port: 2000 + i };
    e.onCaptured(syn(src, 99, 40_000), 40_000);
    e.onCaptured(data(src, ACK | RST, 40_001), 40_001);
  }
  assert.equal(e.flowCount, 501);
  for (let t = 40_000; t <= 60_000; t += 1000) e.tick(t);
  assert.equal(e.stats.sessions.active, 0);
  assert.equal(e.flowCount, 1, "closed connections' records left after their tombstone");
});

Deno.test("bounds: sessions are capped; connections over the cap are counted, later ones replay again", () => {
  const opened: string[] = [];
  const e = new Engine(
    {
      transfers: [{ online: { addr: "", port: 80 }, target: TARGET }],
      ...SHORT_TIMERS,
      synRetries: 1,
      maxSessions: 100,
    },
    { send() {}, routeAdd: (c) => opened.push(`${addrText(c)}:${c.port}`), routeDel() {} },
    1000,
  );
  // 150 connections at once against a silent target, each with a request: none may make
  // room for another (only sessions that never carried data are evicted).
  for (let i = 0; i < 150; i++) {
    const src = { addr: "192.0.2.7", port: 3000 + i };
    e.onCaptured(syn(src, i, 1000), 1000);
    const d = { ...syn(src, i + 1, 1000), flags: ACK | PSH, payload: new Uint8Array(10) };
    e.onCaptured(d, 1000);
  }
  assert.equal(e.stats.sessions.active, 100);
  assert.equal(e.stats.lost.session_limit, 50);
  assert.equal(e.stats.sessions.evicted, 0);
  assert.equal(opened.length, 100);
  // A refused connection is counted once, not once per segment.
  for (let k = 0; k < 3; k++) {
    const d = { ...syn({ addr: "192.0.2.7", port: 3149 }, 160 + k * 10, 1000), flags: ACK | PSH };
    e.onCaptured({ ...d, payload: new Uint8Array(10) }, 1000);
  }
  assert.equal(e.stats.lost.session_limit, 50);
  // Their handshakes fail; new connections get sessions again.
  for (let t = 1000; t <= 5000; t += 100) e.tick(t);
  assert.equal(e.stats.sessions.active, 0);
  e.onCaptured(syn({ addr: "192.0.2.8", port: 4000 }, 1, 5000), 5000);
  assert.equal(e.stats.sessions.active, 1);
  assert.equal(e.stats.lost.session_limit, 50);
});

Deno.test("bounds: at the flow cap remembered connections are forgotten early, live ones replay", () => {
  const e = new Engine(
    {
      transfers: [{ online: { addr: "", port: 80 }, target: TARGET }],
      ...SHORT_TIMERS,
      synRetries: 1,
      maxFlows: 120,
    },
    { send() {}, routeAdd() {}, routeDel() {} },
    1000,
  );
  // 500 connections that end at once (SYN, client RST, failed handshake): remembered.
  for (let i = 0; i < 500; i++) {
    const src = { addr: "192.0.2.9", port: 5000 + i };
    const t = 1000 + i * 10;
    e.onCaptured(syn(src, 7, t), t);
    e.onCaptured({ ...syn(src, 8, t), flags: ACK | RST }, t);
    e.tick(t);
    assert.ok(e.flowCount <= 120, `flows ${e.flowCount} at connection ${i}`);
  }
  assert.equal(e.stats.sessions.created, 500);
  assert.equal(e.stats.lost.session_limit, 0);
});

Deno.test("bounds: a clock stepped back an hour does not stall the timers", () => {
  const sent: { flags: number; at: number }[] = [];
  let now = 10_000_000;
  const e = new Engine(
    { transfers: [{ online: { addr: "", port: 80 }, target: TARGET }], ...SHORT_TIMERS },
    { send: (s) => sent.push({ flags: s.flags, at: now }), routeAdd() {}, routeDel() {} },
    now,
  );
  e.onCaptured(syn({ addr: "192.0.2.1", port: 40000 }, 1, now), now);
  assert.equal(sent.length, 1); // the SYN
  const first = e.nextDeadline()!;
  assert.equal(first, now + 1000); // initial RTO, on the caller's clock
  now -= 3_600_000; // the wall clock is set back an hour
  e.tick(now);
  assert.equal(sent.length, 1);
  // The deadline keeps its distance on the caller's (stepped) clock...
  const d = e.nextDeadline()!;
  assert.ok(d <= now + 1000, `next deadline ${d - now} ms away after the step`);
  // ...and the SYN is retransmitted about one RTO later, not an hour later.
  now = d;
  e.tick(now);
  assert.equal(sent.length, 2);
  assert.equal(sent[1].flags & SYN, SYN);
  assert.equal(e.stats.handshakes.syn_retransmits, 1);
});

Deno.test("bounds: records go on time with epoch-ms clocks, across a 2^31 ms boundary", () => {
  // The flow's last-seen time is kept in whole ms (rounded up) modulo 2^31: read back on either
  // side of a multiple of 2^31, with the fractions a real clock has.
  const boundary = 822 * 2 ** 31; // 2025-12-08, epoch ms
  for (const t0 of [boundary - 30_000.37, boundary - 45_000.61, 1_765_100_000_123.5, 1000]) {
    const e = new Engine(
      { transfers: [{ online: { addr: "", port: 80 }, target: TARGET }], ...SHORT_TIMERS },
      { send() {}, routeAdd() {}, routeDel() {} },
      t0,
    );
    const conns = [{ addr: "192.0.2.7", port: 4000 }, { addr: "192.0.2.8", port: 4001 }];
    for (const src of conns) e.onCaptured(syn(src, 5000, t0), t0);
    // One client resets (its record becomes a tombstone once its session ends), the other not.
    e.onCaptured({ ...syn(conns[0], 5001, t0 + 0.25), flags: ACK | RST }, t0 + 0.25);
    e.tick(t0 + 20_000.5); // no SYN-ACK came: both sessions ended
    assert.equal(e.stats.sessions.active, 0, `t0 ${t0}`);
    // A late ACK from each client: seen again, the records stay 10 s / 30 s from here.
    const late = t0 + 25_000.3;
    for (const src of conns) e.onCaptured({ ...syn(src, 5001, late), flags: ACK }, late);
    const counts = [30_000.5, 34_998, 35_003, 54_998, 55_003].map((dt) => {
      e.tick(t0 + dt);
      return e.flowCount;
    });
    assert.deepEqual(counts, [2, 2, 1, 1, 0], `t0 ${t0}`);
  }
});

Deno.test("bounds: a flow's seen stamp reads back exactly, and as now after a clock step back", () => {
  for (const t0 of [822 * 2 ** 31 - 0.25, 1_765_100_000_123.5, 1000]) {
    const s = seenStamp(t0);
    for (const age of [0, 1, 30_000, 7 * 86_400_000, 2 ** 30 - 1]) {
      assert.equal(seenAt(s, t0 + age), Math.ceil(t0), `t0 ${t0} age ${age}`);
    }
    // a stamp after the clock: now, not an age of ~2^31 ms (which would end a keep-alive record)
    for (const back of [1, 2_000, 3_600_000]) {
      assert.equal(seenAt(s, t0 - back), Math.ceil(t0 - back), `t0 ${t0} back ${back}`);
    }
  }
});
