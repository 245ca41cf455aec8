/**
 * tcpcopy within its budget (issue 12, item 6): a SYN flood from spoofed sources must not grow
 * the footprint past `-m`, and real connections interleaved with it must still replicate in
 * full. Also: the budget's pieces (cost model, eviction order, derived limits) and the egress
 * limit on the engine's clock.
 */
import assert from "node:assert/strict";
import { Engine } from "../../lib/engine/engine.ts";
import type { OutSegment, ReplySegment } from "../../lib/engine/segment.ts";
import { ACK, PSH, RST, SYN } from "../../lib/wire/tcp.ts";
import {
  defaultMaxFlows,
  defaultMaxSessions,
  engineBudgetOf,
  FLOW_COST,
  footprintOf,
  OpenOrder,
  SESSION_COST,
} from "../../lib/engine/budget.ts";
import { EgressLimit } from "../../lib/engine/rate_limit.ts";
import { addrText } from "../../lib/engine/endpoint.ts";
import { ep } from "../helpers/endpoints.ts";
import { clientFrame, FLOOD_TARGET, floodRig, SpoofedSyns } from "../helpers/syn_flood.ts";
import { keepSegment } from "../helpers/out_segment.ts";

const TARGET = FLOOD_TARGET;

Deno.test("budget: 1M spoofed SYNs stay under -m; interleaved real connections replicate in full", () => {
  /** What the engine sent for the real clients (192.0.2.0/24). */
  const real: OutSegment[] = [];
  const r = floodRig(["-m", "64"], (seg) => {
    if (addrText(seg.src).startsWith("192.0.2.")) real.push(keepSegment(seg));
  });
  const { engine } = r;
  const budget = engineBudgetOf(r.config.maxMemoryMiB * 1048576);
  const syns = new SpoofedSyns(0x2545f491);
  let maxFootprint = 0, realDone = 0;
  const REAL_EVERY = 20_000;
  for (let i = 0; i < 1_000_000; i++) {
    r.advance(0.01); // 100,000 SYNs per second
    r.feed(syns.next());
    if ((i & 1023) === 0) engine.tick(r.now());
    maxFootprint = Math.max(maxFootprint, engine.stats.footprint_bytes);
    if (i % REAL_EVERY !== REAL_EVERY / 2) continue;
    // A real client: SYN, the target's SYN-ACK, a request, the target's answer, FIN both ways
    // — with 500 spoofed SYNs arriving between each of its steps.
    const port = 30000 + realDone;
    const client = "192.0.2.1";
    r.feed(clientFrame(client, port, SYN, 7000));
    const syn = real.at(-1)!;
    assert.equal(syn.flags & SYN, SYN, "the real client's SYN went to the target");
    const reply = (flags: number, seq: number, ack: number, len = 0): ReplySegment => ({
      src: ep(TARGET),
      dst: { ...syn.src },
      seq,
      ack,
      flags,
      window: 65535,
      options: {},
      payloadLength: len,
    });
    for (let k = 0; k < 500; k++) r.feed(syns.next());
    engine.onReply(reply(SYN | ACK, 5000, 7001), r.now());
    const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    r.feed(clientFrame(client, port, ACK | PSH, 7001, req));
    const data = real.at(-1)!;
    assert.equal(data.payload.length, req.length, "the real request reached the target");
    engine.onReply(reply(ACK | PSH, 5001, 7001 + req.length, 100), r.now());
    realDone++;
  }
  engine.tick(r.now());
  const st = engine.stats;
  assert.ok(maxFootprint <= budget, `footprint ${maxFootprint} over the budget ${budget}`);
  assert.ok(budget < 64 * 1048576 / 8);
  assert.equal(realDone, 50);
  assert.equal(st.requests.answered, 50, "every real request answered");
  assert.equal(st.lost.session_limit, 0);
  assert.ok(st.sessions.evicted > 900_000, `evicted ${st.sessions.evicted}`);
  assert.ok(st.sessions.active <= defaultMaxSessions(budget));
  assert.ok(engine.flowCount <= defaultMaxFlows(budget));
  assert.equal(
    st.footprint_bytes,
    footprintOf(st.sessions.active, engine.flowCount, st.queued_bytes),
  );
});

Deno.test("budget: at the cap, sessions with data are kept; a new data-less one is refused", () => {
  const sent: OutSegment[] = [];
  const e = new Engine(
    {
      transfers: [{ online: { addr: "", port: 80 }, target: TARGET }],
      maxSessions: 3,
    },
    { send: (s) => sent.push(keepSegment(s)), routeAdd() {}, routeDel() {} },
    0,
  );
  const seg = (port: number, flags: number, len: number) => ({
    src: ep({ addr: "192.0.2.9", port }),
    dst: ep({ addr: "10.0.0.1", port: 80 }),
    seq: 100,
    ack: flags & ACK ? 1 : 0,
    flags,
    window: 1000,
    options: {},
    payload: new Uint8Array(len),
    timeMs: 0,
  });
  e.onCaptured(seg(1, SYN, 0), 0); // data-less: evictable
  e.onCaptured(seg(2, SYN, 0), 0);
  e.onCaptured({ ...seg(2, ACK | PSH, 10), seq: 101 }, 0); // carries data
  e.onCaptured(seg(3, ACK | PSH, 10), 0); // mid-stream pick-up: data
  e.onCaptured(seg(4, SYN, 0), 0); // evicts 1
  assert.equal(e.stats.sessions.evicted, 1);
  assert.ok(sent.some((s) => s.src.port === 1 && s.flags & RST), "the evicted one is reset");
  e.onCaptured(seg(5, SYN, 0), 0); // evicts 4
  e.onCaptured({ ...seg(2, ACK | PSH, 10), seq: 111 }, 0);
  assert.equal(e.stats.sessions.evicted, 2);
  assert.equal(e.stats.sessions.active, 3);
  assert.equal(e.stats.lost.session_limit, 0);
  e.onCaptured({ ...seg(5, ACK | PSH, 10), seq: 101 }, 0); // now 2, 3, 5 all carry data
  e.onCaptured(seg(6, SYN, 0), 0);
  assert.equal(e.stats.lost.session_limit, 1);
  assert.equal(e.stats.sessions.evicted, 2);
});

Deno.test("budget: derived limits, cost model and the eviction queue stay bounded", () => {
  const b = engineBudgetOf(2048 * 1048576);
  assert.equal(b, Math.floor((2048 - 256) * 1048576 / 5), "(-m less the reserve) / headroom");
  assert.equal(engineBudgetOf(64 * 1048576), Math.floor(64 * 1048576 / 10), "small -m: m / 10");
  const s = defaultMaxSessions(b), f = defaultMaxFlows(b);
  assert.ok(s * (SESSION_COST + FLOW_COST) <= b / 2);
  assert.ok(f * FLOW_COST <= b / 4 + FLOW_COST && f >= s);
  assert.ok(footprintOf(s, f, 0) <= b);
  const q = new OpenOrder<{ live: boolean }>((x) => x.live);
  const items = Array.from({ length: 10_000 }, () => ({ live: true }));
  for (const [i, it] of items.entries()) {
    q.push(it, 10);
    if (i >= 10) items[i - 10].live = false; // only the 10 newest stay live
  }
  assert.ok(q.size <= 2 * 10 + 1024 + 1, `queue ${q.size}`);
  assert.equal(q.take(), items[9990], "the oldest live one");
});

Deno.test("egress limit: token buckets on the caller's clock", () => {
  const l = new EgressLimit(1000, 0, 0); // 1000 pps, burst 100
  let ok = 0;
  for (let i = 0; i < 500; i++) if (l.take(100, 0)) ok++;
  assert.equal(ok, 100, "one bucket (100 ms) at once");
  assert.equal(l.hasRoom(0), false);
  assert.equal(l.take(100, 50), true, "refilled 50 tokens after 50 ms");
  for (let i = 0; i < 49; i++) assert.ok(l.take(100, 50));
  assert.equal(l.take(100, 50), false);
  l.force(100, 50); // an RST goes anyway, into debt
  assert.equal(l.take(100, 50.9), false);
  assert.equal(l.take(100, 52.1), true);
  const m = new EgressLimit(0, 8, 0); // 8 Mbit/s = 1000 bytes/ms, burst 100 KB
  assert.equal(m.take(100_000, 0), true);
  assert.equal(m.take(1500, 0), false);
  assert.equal(m.take(1500, 2), true);
  assert.equal(new EgressLimit(0, 0, 0).active, false);
});

Deno.test("egress limit in the engine: packets over it wait, new connections are refused", () => {
  const sent: OutSegment[] = [];
  let now = 0;
  const e = new Engine(
    { transfers: [{ online: { addr: "", port: 80 }, target: TARGET }], maxPps: 1000 },
    { send: (s) => sent.push(keepSegment(s)), routeAdd() {}, routeDel() {} },
    now,
  );
  const syn = (port: number) => ({
    src: ep({ addr: "192.0.2.9", port }),
    dst: ep({ addr: "10.0.0.1", port: 80 }),
    seq: 100,
    ack: 0,
    flags: SYN,
    window: 1000,
    options: {},
    payload: new Uint8Array(0),
    timeMs: now,
  });
  for (let i = 0; i < 200; i++) e.onCaptured(syn(1000 + i), now);
  assert.equal(sent.length, 100, "a full bucket: 100 ms at 1000 pps");
  assert.equal(e.stats.lost.rate_limited, 100);
  assert.equal(e.stats.packets_sent, 100);
  // The bucket is empty: the ACK of an answered handshake waits (the session retries later).
  const synOut = sent[0];
  e.onReply({
    src: ep(TARGET),
    dst: { ...synOut.src },
    seq: 5000,
    ack: (synOut.seq + 1) >>> 0,
    flags: SYN | ACK,
    window: 65535,
    options: {},
    payloadLength: 0,
  }, now);
  assert.equal(e.stats.rate_limited_packets, 1);
  assert.equal(e.stats.handshakes.established, 1);
  // Half a second later the bucket is full again: new connections open.
  now = 500;
  e.tick(now);
  for (let i = 0; i < 60; i++) e.onCaptured(syn(2000 + i), now);
  assert.equal(e.stats.sessions.active, 160);
  // Over 10 s of retransmissions, never more than 1000 per second (plus one bucket).
  const before = sent.length;
  for (now = 500; now <= 10_500; now += 10) e.tick(now);
  assert.ok(sent.length - before <= 1000 * 10 + 100, `${sent.length - before} packets`);
});
