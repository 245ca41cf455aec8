/**
 * The adversary of source-port reuse: one client reusing one source port for connection after
 * connection (ab bursts with a small port range and tcp_tw_reuse), with retransmitted SYNs,
 * the RST a client sends when its new SYN meets the old connection's socket, late segments of
 * the old connection captured after the new one's SYN, and a slow target. No network, fake
 * clock (tests/sim). Every request must reach the target exactly once, no original connection
 * may be replayed twice, and no target connection may carry bytes of two connections.
 */
import assert from "node:assert/strict";
import type { CapturedSegment, EngineConfig } from "../../lib/engine/mod.ts";
import { ACK, FIN, RST, SYN } from "../../lib/engine/mod.ts";
import { Scenario } from "../sim/harness.ts";
import type { OnlineTrace } from "../sim/online.ts";
import { onlineConnection } from "../sim/online.ts";
import type { TargetBehaviour } from "../sim/target.ts";

const client = { addr: "192.0.2.10", port: 40000 };
const server = { addr: "198.51.100.1", port: 80 };

/** Connection `id` on the reused port: one request, starting at `start`, ISN `isn`. */
function conn(id: number, isn: number, start: number, reqs = 1): OnlineTrace {
  return onlineConnection({
    client,
    server,
    clientIsn: isn >>> 0,
    serverIsn: 7000 + id * 100_000,
    start,
    rttMs: 1,
    exchanges: Array.from({ length: reqs }, (_, k) => ({ id: id * 10 + k, responseLength: 300 })),
  });
}

/** The ISN Linux gives a connection that reuses a TIME-WAIT tuple: old snd_nxt + 65537. */
function twReuseIsn(prev: OnlineTrace): number {
  const last = prev.segments[prev.segments.length - 1];
  return (last.seq + 65537) >>> 0;
}

const at = (s: CapturedSegment, t: number): CapturedSegment => ({ ...s, timeMs: t });
const hasData = (s: CapturedSegment) => s.payload.length > 0;
const isFin = (s: CapturedSegment) => (s.flags & FIN) !== 0;

/** The RST a client in SYN-SENT sends for the old socket's ACK (seq = that ACK's ack field). */
function rstFor(prev: OnlineTrace, t: number): CapturedSegment {
  const last = prev.segments[prev.segments.length - 1];
  return { ...last, seq: last.seq, ack: 0, flags: RST, options: {}, timeMs: t };
}

function replay(
  segs: CapturedSegment[],
  cfg: Omit<EngineConfig, "transfers"> = {},
  behaviour: TargetBehaviour = {},
): Scenario {
  const sc = new Scenario(cfg, behaviour);
  sc.feed([...segs].sort((a, b) => a.timeMs - b.timeMs)); // stable: equal times keep order
  sc.run(300_000);
  return sc;
}

function lost(sc: Scenario): number {
  return Object.values(sc.engine.stats.lost).reduce((a, b) => a + b, 0);
}

/** Each request of `traces` reached the target exactly once; no stream mixes connections. */
function assertExactlyOnce(sc: Scenario, traces: OnlineTrace[], what: string): void {
  const want = traces.flatMap((t) => t.requests.map((r) => r.trimEnd())).sort();
  const got = sc.target.requests.map((r) => r.line).sort();
  assert.deepEqual(got, want, `${what}: requests at the target`);
  for (const s of sc.target.streams()) {
    if (s.length === 0) continue;
    assert.ok(
      traces.some((t) => t.bytes.includes(s)),
      `${what}: a target connection carried ${JSON.stringify(s)}, not one connection's bytes`,
    );
  }
  assert.equal(lost(sc), 0, `${what}: lost ${JSON.stringify(sc.engine.stats.lost)}`);
  assert.equal(sc.engine.stats.sessions.active, 0, `${what}: sessions left`);
}

Deno.test("port reuse: a SYN retransmitted before the target's SYN-ACK opens one session", () => {
  const a = conn(1, 1000, 1000);
  const syn = a.segments[0];
  const segs = [...a.segments, at(syn, 1000.5), at(syn, 1000.7)];
  // The target ignores the first SYN: the engine retransmits, the client did too.
  const sc = replay(segs, {}, { dropSyns: 1 });
  assertExactlyOnce(sc, [a], "SYN retransmit");
  assert.equal(sc.engine.stats.sessions.created, 1);
  assert.equal(sc.target.accepted.length, 1);
  assert.equal(sc.engine.stats.ignored.syn_retransmit, 2);
});

Deno.test("port reuse: a SYN retransmit captured after the request, or after the close", () => {
  const a = conn(1, 1000, 1000);
  const syn = a.segments[0];
  const data = a.segments.find(hasData)!;
  for (const t of [data.timeMs + 0.001, a.end + 0.5, a.end + 3000]) {
    const sc = replay([...a.segments, at(syn, t)], {}, { answerDelayMs: 5 });
    assertExactlyOnce(sc, [a], `late SYN at ${t}`);
    assert.equal(sc.engine.stats.sessions.created, 1, `late SYN at ${t}`);
  }
});

Deno.test("port reuse: new SYN while the old session still holds queued bytes (slow target)", () => {
  for (const order of ["higher", "lower"] as const) {
    const a = conn(1, 500_000, 1000, 3);
    const isn = order === "higher" ? twReuseIsn(a) : 1000; // a random ISN may be below
    const b = conn(2, isn, a.end + 1, 2);
    const sc = replay([...a.segments, ...b.segments], {}, { answerDelayMs: 40 });
    assertExactlyOnce(sc, [a, b], `new ISN ${order}`);
    assert.equal(sc.engine.stats.sessions.created, 2, `new ISN ${order}`);
  }
});

Deno.test("port reuse: the old connection's retransmitted request after the new SYN", () => {
  for (const order of ["higher", "lower"] as const) {
    const a = conn(1, 500_000, 1000);
    const isn = order === "higher" ? twReuseIsn(a) : 1000;
    const b = conn(2, isn, a.end + 1);
    const lateReq = at(a.segments.find(hasData)!, b.segments[0].timeMs + 0.2);
    const lateAck = at(a.segments[a.segments.length - 1], b.segments[0].timeMs + 0.3);
    const sc = replay([...a.segments, ...b.segments, lateReq, lateAck], {}, {
      answerDelayMs: 20,
    });
    assertExactlyOnce(sc, [a, b], `late request of the old connection, ISN ${order}`);
    assert.equal(sc.engine.stats.sessions.created, 2, `ISN ${order}`);
  }
});

Deno.test("port reuse: a late FIN of the old connection does not close the new one", () => {
  for (const order of ["higher", "lower"] as const) {
    const a = conn(1, 500_000, 1000);
    const isn = order === "higher" ? twReuseIsn(a) : 1000;
    const b = conn(2, isn, a.end + 1, 2);
    const fin = a.segments.find(isFin)!;
    // Captured out of order: the old FIN after the new SYN, and again after the new request.
    const segs = [
      ...a.segments.filter((s) => s !== fin),
      ...b.segments,
      at(fin, b.segments[0].timeMs + 0.1),
      at(fin, b.segments.find(hasData)!.timeMs + 0.001),
    ];
    const sc = replay(segs, {}, { answerDelayMs: 20 });
    assertExactlyOnce(sc, [a, b], `late FIN, ISN ${order}`);
    assert.equal(sc.engine.stats.sessions.created, 2, `ISN ${order}`);
  }
});

Deno.test("port reuse: new SYN meets the old socket: client RST, then the SYN again (tw_reuse)", () => {
  // Online: the server still has the old connection (LAST-ACK / TIME-WAIT); it answers the new
  // SYN with an ACK of the old one, the client resets it (seq = that ACK) and sends the SYN
  // again after 1 s. The RST belongs to the old connection, not to the new one.
  const a = conn(1, 500_000, 1000);
  const isn = twReuseIsn(a);
  const b0 = conn(2, isn, a.end + 1);
  const syn = b0.segments[0];
  const b = conn(2, isn, syn.timeMs + 1000); // the same connection, re-timed after the retry
  const segs = [...a.segments, syn, rstFor(a, syn.timeMs + 0.5), ...b.segments];
  for (const answerDelayMs of [0, 30, 1500]) {
    const sc = replay(segs, {}, { answerDelayMs });
    assertExactlyOnce(sc, [a, b], `RST of the old socket, answer delay ${answerDelayMs}`);
    assert.equal(sc.engine.stats.sessions.created, 2, `answer delay ${answerDelayMs}`);
  }
});

Deno.test("port reuse: a retransmitted request of connection B after C's SYN on the same tuple", () => {
  const a = conn(1, 100_000, 1000);
  const b = conn(2, twReuseIsn(a), a.end + 1);
  const c = conn(3, twReuseIsn(b), b.end + 1);
  const bReq = b.segments.find(hasData)!;
  const segs = [
    ...a.segments,
    ...b.segments,
    ...c.segments,
    at(bReq, c.segments[0].timeMs + 0.05),
    at(bReq, c.segments.find(hasData)!.timeMs + 0.05),
  ];
  const sc = replay(segs, {}, { answerDelayMs: 25 });
  assertExactlyOnce(sc, [a, b, c], "retransmitted request after a new SYN");
  assert.equal(sc.engine.stats.sessions.created, 3);
});

Deno.test("port reuse: 200 connections on 4 ports, every capture shuffled within 3 ms", () => {
  // Segments of consecutive connections on one port overlap in the capture by a few ms (the
  // capture reorders across CPUs); ISNs follow Linux (the tw_reuse rule) or are random.
  for (const isnRule of ["tw_reuse", "random"] as const) {
    let rng = 12345;
    const rand = () => (rng = (Math.imul(rng, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const traces: OnlineTrace[] = [];
    const segs: CapturedSegment[] = [];
    const lastOn = new Map<number, OnlineTrace>();
    let t = 1000;
    for (let i = 0; i < 200; i++) {
      const port = 50000 + (i % 4);
      const prev = lastOn.get(port);
      const isn = isnRule === "tw_reuse" && prev ? twReuseIsn(prev) : Math.floor(rand() * 2 ** 32);
      const start = Math.max(t, prev ? prev.end + 0.2 : 0);
      const tr = onlineConnection({
        client: { addr: client.addr, port },
        server,
        clientIsn: isn,
        serverIsn: 9000 + i,
        start,
        rttMs: 1,
        exchanges: [{ id: 1000 + i, responseLength: 200 }],
      });
      lastOn.set(port, tr);
      traces.push(tr);
      for (const s of tr.segments) {
        // Only pure ACKs and FINs may slip behind the next connection's SYN: data and the SYN
        // keep their order (the online server saw them in order).
        const jitter = s.payload.length === 0 && !(s.flags & SYN) ? rand() * 3 : 0;
        segs.push(at(s, s.timeMs + jitter));
      }
      t += 1;
    }
    const sc = replay(segs, {}, { answerDelayMs: 10 });
    assertExactlyOnce(sc, traces, `shuffled, ISN ${isnRule}`);
    assert.equal(sc.engine.stats.sessions.created, 200, `ISN ${isnRule}`);
  }
});

Deno.test("port reuse: the old connection's SYN captured again after the new one's SYN", () => {
  // A retransmitted SYN of connection A (delayed in the capture) after B's SYN: A is not
  // opened again and B keeps its segments.
  const a = conn(1, 500_000, 1000);
  const b = conn(2, twReuseIsn(a), a.end + 1, 2);
  const segs = [...a.segments, ...b.segments, at(a.segments[0], b.segments[0].timeMs + 0.1)];
  const sc = replay(segs, {}, { answerDelayMs: 20 });
  assertExactlyOnce(sc, [a, b], "old SYN after the new SYN");
  assert.equal(sc.engine.stats.sessions.created, 2);
});

Deno.test("port reuse: SYN with the same ISN as the previous connection after it closed", () => {
  // A late duplicate of the old SYN (network duplicate, long delay): it is not a new connection.
  const a = conn(1, 1000, 1000);
  const sc = replay([...a.segments, at(a.segments[0], a.end + 200)]);
  assertExactlyOnce(sc, [a], "old SYN again");
  assert.equal(sc.engine.stats.sessions.created, 1);
});

Deno.test("port reuse: a late reply of the old target socket does not end, replay or skew the new one", () => {
  // The rewritten tuple is free again once A's session ended, so B's session takes the same
  // tuple; a reply of A's target socket still on its way (a FIN, an RST or data again: intercept's
  // delay queue can hand a parked RST to the tuple's next route, a route may move to another
  // tunnel connection) reaches B's session. Target ISNs grow with time on one tuple, so A's
  // sequence numbers are behind B's; a far-off one may be ahead.
  const kinds = ["fin", "rst", "data behind", "data ahead"] as const;
  for (const kind of kinds) {
    const a = conn(1, 500_000, 1000);
    const b = conn(2, twReuseIsn(a), a.end + 300, 2); // A's replay is over by then
    const sc = new Scenario({}, { answerDelayMs: 100, seed: 7 });
    sc.feed([...a.segments, ...b.segments]);
    const req = b.segments.find(hasData)!;
    let injected = false;
    sc.at(req.timeMs + 5, () => {
      const c = sc.target.accepted[sc.target.accepted.length - 1];
      assert.equal(sc.target.accepted.length, 2, "B's target connection is up");
      assert.equal(c.client.port, client.port, "B's session took the tuple A's had");
      const seq = kind === "data ahead" ? c.iss + (1 << 20) : c.iss - 5000;
      const flags = kind === "fin" ? FIN | ACK : kind === "rst" ? RST | ACK : ACK;
      sc.engine.onReply({
        src: c.self,
        dst: c.client,
        seq: seq >>> 0,
        ack: a.segments[a.segments.length - 1].seq,
        flags,
        window: 500,
        options: {},
        payloadLength: kind.startsWith("data") ? 300 : 0,
      }, sc.now);
      injected = true;
    });
    sc.run(300_000);
    assert.ok(injected);
    assertExactlyOnce(sc, [a, b], `stale target ${kind}`);
    assert.equal(sc.engine.stats.reconnects, 0, `stale target ${kind}: reconnects`);
    assert.equal(sc.target.accepted.length, 2, `stale target ${kind}: target connections`);
    // B's session never acknowledged bytes its target did not send.
    const tb = sc.target.accepted[1];
    for (const p of sc.sent) {
      if (p.src.port !== tb.client.port || !(p.flags & ACK) || p.flags & SYN) continue;
      if (((p.ack - tb.iss) | 0) < 0) continue; // A's connection on the same tuple
      assert.ok(((tb.sndNxt - p.ack) | 0) >= 0, `stale target ${kind}: ACK ${p.ack} beyond`);
    }
  }
});
