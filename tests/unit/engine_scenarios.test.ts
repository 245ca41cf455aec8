import assert from "node:assert/strict";
import type { CapturedSegment } from "../../lib/engine/mod.ts";
import { Scenario } from "../sim/harness.ts";
import type { Exchange, OnlineConn } from "../sim/online.ts";
import { mergeTraces, onlineConnection } from "../sim/online.ts";
import type { TargetBehaviour } from "../sim/target.ts";

const client = { addr: "192.0.2.10", port: 40000 };
const server = { addr: "198.51.100.1", port: 80 };

function exchanges(n: number, len = 300, extra: Partial<Exchange> = {}): Exchange[] {
  return Array.from(
    { length: n },
    (_, i) => ({ id: 1 + i, responseLength: len + i * 37, ...extra }),
  );
}

function conn(over: Partial<OnlineConn> = {}): OnlineConn {
  return {
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: exchanges(4),
    ...over,
  };
}

function run(
  c: Partial<OnlineConn>,
  behaviour: TargetBehaviour = {},
  cfg = {},
  mutate?: (s: CapturedSegment[]) => CapturedSegment[],
  until = 120_000,
) {
  const tr = onlineConnection(conn(c));
  const sc = new Scenario(cfg, behaviour);
  sc.feed(mutate ? mutate(tr.segments) : tr.segments);
  sc.run(until);
  return { tr, sc, s: sc.engine.stats };
}

function totalLost(sc: Scenario): number {
  return Object.values(sc.engine.stats.lost).reduce((a, b) => a + b, 0);
}

function assertTurns(sc: Scenario): void {
  const reqs = sc.target.requests;
  for (let i = 1; i < reqs.length; i++) {
    const prev = reqs[i - 1];
    if (prev.conn !== reqs[i].conn || prev.answerEndAt === undefined) continue;
    assert.ok(reqs[i].at >= prev.answerEndAt, `request ${reqs[i].id} overtook answer ${prev.id}`);
  }
}

Deno.test("pipelined requests go out together, the next turn waits for all answers", () => {
  const ex = exchanges(5);
  ex[0].pipelineWithNext = true;
  ex[1].pipelineWithNext = true;
  const { tr, sc, s } = run({ exchanges: ex }, { answerDelayMs: 50 });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  const r = sc.target.requests;
  // Requests 1-3 arrive before answer 1 ends; request 4 after answer 3 ends.
  assert.ok(r[1].at <= r[0].answerEndAt!);
  assert.ok(r[3].at >= r[2].answerEndAt!);
  assert.equal(s.requests.captured, 3); // one turn of three pipelined requests + two
  assert.equal(totalLost(sc), 0);
});

Deno.test("a request sent after part of the previous answer is a request of its own", () => {
  // Online, the client sent request 2 once it had 100 bytes of answer 1: its ACK says so,
  // so the two are separate requests (unlike a pipelined batch, which shares one ACK).
  const ex = exchanges(3, 3000);
  ex[0].pipelineWithNext = true;
  const partly = (segs: CapturedSegment[]) =>
    segs.map((x) => {
      const line = new TextDecoder().decode(x.payload);
      return line.startsWith("REQ 2 ") ? { ...x, ack: (x.ack + 100) >>> 0 } : x;
    });
  const { tr, sc, s } = run({ exchanges: ex }, {}, {}, partly);
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.equal(s.requests.captured, 3);
  assert.equal(s.requests.answered, 3);
  const r = sc.target.requests;
  // Request 2 waited for (part of) answer 1; request 3 for all of answer 2.
  assert.ok(r[0].answeredAt !== undefined && r[1].at >= r[0].answeredAt);
  assert.ok(r[2].at >= r[1].answerEndAt!);
  assert.equal(totalLost(sc), 0);
});

Deno.test("a pipelined batch is one request: captured, sent and answered once", () => {
  const ex = exchanges(4);
  ex[0].pipelineWithNext = true;
  ex[1].pipelineWithNext = true;
  ex[2].pipelineWithNext = true;
  const { tr, sc, s } = run({ exchanges: ex }, { answerDelayMs: 5 });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.equal(sc.target.requests.length, 4); // four application requests arrived...
  assert.deepEqual(s.requests, { captured: 1, sent: 1, answered: 1 }); // ...as one turn
});

Deno.test("server speaks first: the request waits for the greeting", () => {
  const { tr, sc, s } = run({ greeting: 120 }, { greeting: 120, answerDelayMs: 0 });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  const c = sc.target.accepted[0];
  assert.ok(c.firstByteAt !== undefined && sc.target.requests[0].at >= c.firstByteAt);
  assert.equal(s.requests.answered, 4);
  assertTurns(sc);
});

Deno.test("greeting expected but the target greets with delay: request still waits", () => {
  // The target sends its greeting late; the engine must not send the request before it.
  const { tr, sc } = run({ greeting: 50 }, { greeting: 50, answerDelayMs: 0 });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
});

Deno.test("a request spread over many segments and larger than the MSS", () => {
  const ex = exchanges(3, 200, { segments: 7, pad: 9000 });
  const { tr, sc, s } = run({ exchanges: ex });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.equal(s.requests.captured, 3);
  assert.equal(s.requests.answered, 3);
  assertTurns(sc);
});

Deno.test("half-close: client FIN right after the request, the answer still flows", () => {
  const { tr, sc, s } = run({ exchanges: exchanges(1), halfClose: true });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.equal(s.requests.answered, 1);
  assert.equal(s.sessions.active, 0);
});

Deno.test("mid-stream pick-up with a synthesised handshake; --only-complete skips it", () => {
  const { tr, sc, s } = run({ syn: false });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.equal(s.handshakes.synthesized, 1);
  const syn = sc.sent[0];
  assert.equal(syn.seq, 1000); // first data byte 1001, SYN at first data - 1
  assert.deepEqual(Object.keys(syn.options), ["mss"]);
  assert.ok(sc.sent.every((p) => p.options.timestamp === undefined));
  const only = run({ syn: false }, {}, { onlyComplete: true });
  assert.equal(only.sc.sent.length, 0);
  assert.ok(only.s.ignored.only_complete > 0);
});

Deno.test("short answers: the idle fallback releases the next request", () => {
  const { tr, sc, s } = run({}, { shortBy: 25 }, { responseIdleMs: 100 });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.equal(s.requests.answered, 4);
  assertTurns(sc);
});

Deno.test("slow answers keep the turn order", () => {
  const { tr, sc } = run({}, { answerDelayMs: 700 });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assertTurns(sc);
});

Deno.test("an unanswered request: the no-answer fallback moves on", () => {
  const { tr, sc, s } = run({}, { noAnswerIds: new Set([2]) }, { noAnswerMs: 500 });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.equal(s.requests.answered, 3);
});

Deno.test("target never answers: bounded timeout with a reason", () => {
  const { sc, s } = run({}, { noAnswerIds: new Set([1, 2, 3, 4]) }, {
    noAnswerMs: 200,
    sessionTimeoutMs: 5000,
  }, (segs) => segs.filter((x) => !(x.flags & 1))); // the client never closes
  assert.equal(s.sessions.active, 0);
  assert.ok(s.lost.timeout >= 1, JSON.stringify(s.lost));
  assert.ok(sc.events.some((e) => e.type === "close" && e.reason === "timeout"));
});

Deno.test("target RST in the middle of a response: reconnect and replay the rest", () => {
  const { tr, sc, s } = run({ exchanges: exchanges(5) }, {
    rstAfterResponseBytes: 450,
    answerDelayMs: 30,
  });
  assert.ok(s.reconnects >= 1);
  const joined = sc.target.streams().join("");
  assert.equal(joined, tr.bytes);
  assert.ok(sc.target.accepted.length >= 2);
  assert.equal(totalLost(sc), 0);
});

Deno.test("target RST with nothing queued: the next request is picked up again", () => {
  const { tr, sc, s } = run({ exchanges: exchanges(5) }, { rstAfterResponseBytes: 450 });
  assert.equal(sc.target.streams().join(""), tr.bytes);
  assert.ok(s.handshakes.synthesized >= 1);
  assert.equal(totalLost(sc), 0);
});

Deno.test("target closes early (keep-alive timeout): reconnect for the queued requests", () => {
  const { tr, sc, s } = run({ exchanges: exchanges(5) }, { finAfterRequests: 2 });
  assert.ok(s.reconnects >= 2, `reconnects ${s.reconnects}`);
  assert.equal(sc.target.streams().join(""), tr.bytes);
  assert.equal(s.requests.answered, 5);
});

Deno.test("SYN retransmission with back-off", () => {
  const { tr, sc, s } = run({}, { dropSyns: 2 });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.equal(s.handshakes.syn_retransmits, 2);
  const syns = sc.sent.filter((p) => p.flags === 2);
  assert.equal(syns.length, 3);
});

Deno.test("handshake failure is counted and bounded", () => {
  const { sc, s } = run({}, { refuse: true });
  assert.equal(sc.target.accepted.length, 0);
  assert.ok(s.handshakes.failed >= 1);
  assert.ok(s.lost.handshake_failure >= 1);
  assert.equal(s.sessions.active, 0);
});

Deno.test("target drops data: RTO with back-off retransmits", () => {
  const { tr, sc, s } = run({}, { dropInbound: new Set([2, 3]) });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.ok(s.retransmits >= 2);
});

Deno.test("fast retransmit on three duplicate ACKs", () => {
  const ex = exchanges(1, 100, { segments: 8, pad: 10000 });
  const { tr, sc, s } = run({ exchanges: ex }, { dropInbound: new Set([2]), delayedAckMs: 40 });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.ok(s.fast_retransmits >= 1);
});

Deno.test("zero window and window updates (including one that acks everything)", () => {
  const ex = exchanges(2, 100, { pad: 30000, segments: 25 });
  const { tr, sc } = run({ exchanges: ex }, { rcvBuf: 4000, readDelayMs: 30 });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
});

Deno.test("client retransmissions, overlaps and keep-alive probes are trimmed", () => {
  const { tr, sc, s } = run(
    { probes: true, exchanges: exchanges(3, 200, { segments: 3 }) },
    {},
    {},
    (segs) => {
      const out = [...segs];
      const data = segs.filter((x) => x.payload.length > 2);
      out.push({ ...data[1], timeMs: data[1].timeMs + 0.001 });
      // An overlapping segment: last 3 bytes of data[0] plus first 2 of data[1].
      const a = data[0], b = data[1];
      const ov = new Uint8Array([
        ...a.payload.subarray(a.payload.length - 3),
        ...b.payload.subarray(0, 2),
      ]);
      out.push({ ...a, seq: a.seq + a.payload.length - 3, payload: ov, timeMs: b.timeMs + 0.002 });
      return out.sort((x, y) => x.timeMs - y.timeMs);
    },
  );
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.ok(s.ignored.duplicate >= 2);
});

Deno.test("out-of-order capture is reordered", () => {
  const ex = exchanges(2, 200, { segments: 4 });
  const { tr, sc } = run({ exchanges: ex }, {}, {}, (segs) => {
    const out = [...segs];
    const i = out.findIndex((x) => x.payload.length > 0);
    [out[i], out[i + 2]] = [out[i + 2], out[i]];
    return out;
  });
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
});

Deno.test("capture gap: counted, never corrupts the stream, later requests still replayed", () => {
  const ex = exchanges(6, 200, { segments: 2 });
  const { tr, sc, s } = run({ exchanges: ex }, {}, { gapTimeoutMs: 500 }, (segs) => {
    const data = segs.filter((x) => x.payload.length > 0);
    return segs.filter((x) => x !== data[5]); // second half of request 3
  });
  assert.ok(s.lost.capture_gap >= 1, JSON.stringify(s.lost));
  // Every complete line a connection delivered is an original request (a cut-off tail is
  // reset, never completed with foreign bytes).
  const originals = new Set(tr.requests.map((r) => r.trimEnd()));
  for (const stream of sc.target.streams()) {
    for (const l of stream.split("\n").slice(0, -1)) {
      assert.ok(originals.has(l), `corrupted line ${JSON.stringify(l)}`);
    }
  }
  // Request 3 lost in the gap; 4 follows the hole with no visible boundary before it.
  const ids = sc.target.requests.map((r) => r.id);
  assert.deepEqual(ids, [1, 2, 5, 6]);
  assert.equal(s.lost.capture_gap, 2);
});

Deno.test("timestamps: TSecr echoes the target, TSval never goes back; no SACK blocks", () => {
  const { sc } = run({});
  let last = 0;
  for (const p of sc.sent) {
    const ts = p.options.timestamp;
    if (!ts || p.flags & 4) continue;
    assert.ok(ts.tsval >= last);
    last = ts.tsval;
    assert.equal(
      Object.keys(p.options).filter((k) => k !== "timestamp" && !(p.flags & 2)).length,
      0,
    );
  }
  // After the handshake, TSecr is a value the target sent (its clock: the sim time).
  const data = sc.sent.find((p) => p.payload.length > 0)!;
  assert.ok(data.options.timestamp!.tsecr >= 1000);
});

Deno.test("lost reply headers (intercept loss) do not stall the session", () => {
  const tr = onlineConnection(conn({ exchanges: exchanges(6, 3000) }));
  const sc = new Scenario({}, {}, { dropReply: (_r, n) => n % 4 === 0 });
  sc.feed(tr.segments);
  sc.run(120_000);
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
});

Deno.test("per-session memory cap drops the session with a reason", () => {
  const ex = exchanges(3, 100, { pad: 5000 });
  const { s, sc } = run({ exchanges: ex }, { answerDelayMs: 5000 }, { maxSessionBytes: 8000 });
  assert.ok(s.lost.queue_overflow >= 1, JSON.stringify(s.lost));
  assert.ok(sc.events.some((e) => e.reason === "queue_overflow"));
  assert.equal(s.queued_bytes, 0);
});

Deno.test("global memory cap sheds the session holding the most bytes, not the growing one", () => {
  // A queues two large requests behind a slow answer; later B's small requests push the
  // total over the budget. A is shed (reason "memory"), B is replayed in full.
  const a = onlineConnection(conn({
    client: { addr: "192.0.2.10", port: 40001 },
    exchanges: exchanges(3, 100, { pad: 5000 }),
  }));
  const b = onlineConnection(conn({
    client: { addr: "192.0.2.11", port: 40002 },
    start: 1010,
    exchanges: exchanges(3, 100, { pad: 500 }),
  }));
  const sc = new Scenario({ maxMemoryBytes: 10_300 }, { answerDelayMs: 5000 });
  sc.feed(mergeTraces([a, b]));
  sc.run(120_000);
  const s = sc.engine.stats;
  const shed = sc.events.filter((e) => e.reason === "memory");
  assert.equal(shed.length, 1, JSON.stringify(sc.events));
  assert.equal(shed[0].client.port, 40001);
  assert.ok(s.lost.memory >= 1, JSON.stringify(s.lost));
  const bConn = sc.target.accepted.filter((c) => c.client.port === 40002);
  assert.equal(bConn.length, 1);
  assert.equal(new TextDecoder().decode(new Uint8Array(bConn[0].stream)), b.bytes);
  assert.equal(s.queued_bytes, 0);
  assert.equal(s.sessions.active, 0);
});

Deno.test("global memory cap: among equal sessions the one stalled longest goes first", () => {
  // Two connections queue the same number of bytes behind slow answers; the target last
  // made progress on the first one earlier. A third, small connection overflows the budget.
  const mk = (port: number, start: number, pad: number) =>
    onlineConnection(conn({
      client: { addr: "192.0.2.20", port },
      start,
      exchanges: exchanges(2, 100, { pad }),
    }));
  const one = mk(41001, 1000, 3000), two = mk(41002, 1005, 3000), three = mk(41003, 1020, 200);
  const sc = new Scenario({ maxMemoryBytes: 6200 }, { answerDelayMs: 4000, delayedAckMs: 1 });
  sc.feed(mergeTraces([one, two, three]));
  sc.run(120_000);
  const shed = sc.events.filter((e) => e.reason === "memory").map((e) => e.client.port);
  assert.deepEqual(shed, [41001]);
  const rest = sc.target.accepted.filter((c) => c.client.port !== 41001);
  assert.deepEqual(
    rest.map((c) => new TextDecoder().decode(new Uint8Array(c.stream))),
    [two.bytes, three.bytes],
  );
  assert.equal(sc.engine.stats.queued_bytes, 0);
});

Deno.test("global memory cap with copies: shedding one copy mid-segment leaves the other whole", () => {
  const tr = onlineConnection(conn({ exchanges: exchanges(3, 100, { pad: 3000 }) }));
  // Each copy holds up to three 3 KB requests (the first until fully acknowledged, two more
  // behind its slow answer): one copy fits in the budget, two do not.
  const sc = new Scenario({ maxMemoryBytes: 10_000, copies: 2 }, { answerDelayMs: 2000 });
  sc.feed(tr.segments);
  sc.run(120_000);
  const shed = sc.events.filter((e) => e.reason === "memory");
  assert.equal(shed.length, 1, JSON.stringify(sc.events));
  const kept = sc.target.accepted.filter((c) => c.client.port !== shed[0].client.port);
  assert.equal(kept.length, 1);
  assert.equal(new TextDecoder().decode(new Uint8Array(kept[0].stream)), tr.bytes);
  assert.equal(sc.engine.stats.queued_bytes, 0);
  assert.equal(sc.engine.stats.sessions.active, 0);
});

Deno.test("segments fit the MTU with TCP options: MSS minus timestamp bytes (GRO-sized capture)", () => {
  // The online capture holds 9000-byte super-packets (GRO); the target negotiates MSS 1460
  // and timestamps, so every data segment carries at most 1460 - 12 payload bytes.
  const { tr, sc } = run({
    mss: 9000,
    timestamps: true,
    exchanges: exchanges(3, 300, { pad: 20_000 }),
  });
  const data = sc.sent.filter((p) => p.payload.length > 0);
  assert.ok(data.length > 3 * 13, "every request is split");
  for (const p of data) {
    assert.ok(p.options.timestamp !== undefined);
    assert.ok(p.payload.length <= 1448, `payload ${p.payload.length} > 1448`);
  }
  assert.equal(sc.target.streams().join(""), tr.bytes);
  assert.equal(totalLost(sc), 0);
});

Deno.test("target closes after every request: reconnects counted per session up to the limit", () => {
  // Each connection to the target takes one request; 6 requests need 5 reconnections, the limit
  // allows 3 (the session's count shares a field with its state: both must stay right).
  const { sc, s } = run({ exchanges: exchanges(6) }, { finAfterRequests: 1 }, {
    maxReconnects: 3,
  });
  assert.equal(s.reconnects, 3);
  assert.equal(s.lost.target_reset, 1, JSON.stringify(s.lost));
  assert.equal(s.sessions.active, 0);
  assert.ok(sc.events.some((e) => e.type === "close" && e.reason === "target_reset"));
  // With room for every reconnection, all six requests are answered.
  const all = run({ exchanges: exchanges(6) }, { finAfterRequests: 1 }, { maxReconnects: 8 });
  assert.equal(all.s.reconnects, 5);
  assert.equal(all.s.requests.answered, 6);
  assert.equal(totalLost(all.sc), 0);
});
