import assert from "node:assert/strict";
import { Scenario } from "../sim/harness.ts";
import { onlineConnection } from "../sim/online.ts";
import type { Exchange } from "../sim/online.ts";

const client = { addr: "192.0.2.10", port: 40000 };
const server = { addr: "198.51.100.1", port: 80 };

function exchanges(n: number, base = 1, len = 300): Exchange[] {
  return Array.from({ length: n }, (_, i) => ({ id: base + i, responseLength: len + i * 37 }));
}

/** Request k+1 reached the application only after answer k was complete. */
function assertTurns(sc: Scenario): void {
  const reqs = sc.target.requests;
  for (let i = 1; i < reqs.length; i++) {
    const prev = reqs[i - 1];
    if (prev.conn !== reqs[i].conn) continue;
    assert.ok(prev.answerEndAt !== undefined, `request ${prev.id} answered`);
    assert.ok(
      reqs[i].at >= prev.answerEndAt!,
      `request ${reqs[i].id} at ${reqs[i].at} before answer ${prev.id} ended ${prev.answerEndAt}`,
    );
  }
}

Deno.test("keep-alive connection: exact byte stream, turn-taking, counters", () => {
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: exchanges(5),
  });
  const sc = new Scenario({});
  sc.feed(tr.segments);
  sc.run(60_000);
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assertTurns(sc);
  const s = sc.engine.stats;
  assert.equal(s.requests.captured, 5);
  assert.equal(s.requests.sent, 5);
  assert.equal(s.requests.answered, 5);
  assert.equal(s.handshakes.established, 1);
  assert.equal(s.sessions.active, 0);
  assert.equal(s.sessions.closed, 1);
  assert.deepEqual(Object.values(s.lost).reduce((a, b) => a + b, 0), 0);
  assert.equal(s.queued_bytes, 0);
  assert.deepEqual(sc.routes, [
    "+192.0.2.10:40000>10.9.0.2:8080",
    "-192.0.2.10:40000>10.9.0.2:8080",
  ]);
  // The SYN went first and carried the client's options.
  const syn = sc.sent[0];
  assert.equal(syn.flags, 2);
  assert.equal(syn.seq, 1000);
  assert.equal(syn.options.wscale, 7);
  assert.ok(syn.options.timestamp);
});

Deno.test("idle sweep: an idle keep-alive session keeps its last turn in its slab row and no slab; it goes on", () => {
  // 40 quick requests (the stream arrays are cut down in place every 32 finished turns), then
  // three after 12 s of silence each (the idle sweep, after 10 s, runs in between).
  const ex = exchanges(43).map((e, i) => ({ ...e, thinkMs: i < 40 ? 5 : 12_000 }));
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 4_294_960_000, // sequence numbers wrap on the way
    serverIsn: 5000,
    start: 1000,
    exchanges: ex,
    close: "none",
  });
  const sc = new Scenario({});
  sc.feed(tr.segments);
  sc.run(tr.end + 12_000);
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assertTurns(sc);
  const s = sc.engine.stats;
  assert.equal(s.requests.captured, 43);
  assert.equal(s.requests.answered, 43);
  assert.equal(s.sessions.active, 1);
  assert.equal(s.queued_bytes, 0);
  const [session] = sc.engine.liveSessions.values();
  const st = session.stream;
  assert.equal(st.chunks.length, 0, "released chunks are gone");
  assert.equal(st.head, 0);
  assert.equal(st.turnHead, 0);
  assert.equal(st.turns.length, 0, "the last turn is stowed in the session's slab row");
  assert.equal(session.unansweredTurns(), 0);
  assert.equal(session.unsentTurns(), 0);
});

Deno.test("idle sweep: a stowed last turn changes nothing (same packets and counters as unstowed)", async () => {
  const { Session } = await import("../../lib/engine/session.ts");
  // Requests after 12 s of silence (the idle sweep stows the last turn in between): single,
  // split over three segments, pipelined, then the client's FIN or RST; sequence numbers wrap.
  const idle = (i: number, n: number) => (i < n - 4 ? 5 : 12_000);
  const conns = (["fin", "rst", "none"] as const).map((close, c) =>
    onlineConnection({
      client: { ...client, port: client.port + c },
      server,
      clientIsn: 4_294_960_000 + c * 1000,
      serverIsn: 5000,
      start: 1000 + c * 3,
      exchanges: exchanges(12).map((e, i) => ({
        ...e,
        thinkMs: idle(i, 12),
        segments: i === 9 ? 3 : 1,
        pipelineWithNext: i === 10,
      })),
      close,
    })
  );
  const run = () => {
    const sc = new Scenario({});
    for (const tr of conns) sc.feed(tr.segments);
    sc.run(Math.max(...conns.map((tr) => tr.end)) + 60_000);
    return sc;
  };
  // Every turn stowed comes back with the same numbers (recorded around stow and unstow).
  type T = { flags: number; start: number; end: number; ack: number } & Record<string, number>;
  type S = { stream: { turns: T[] }; relIdx: number; sentIdx: number; ansIdx: number };
  const fields = (s: S) => {
    const t = s.stream.turns[0];
    return [
      t.flags,
      t.start,
      t.end,
      t.ack,
      t.releaseRcv,
      t.releaseAt,
      s.relIdx,
      s.sentIdx,
      s.ansIdx,
    ];
  };
  const proto = Session.prototype as unknown as { stow(): boolean; unstow(): void };
  const { stow, unstow } = proto;
  const stowedFields = new Map<unknown, number[]>();
  const restored: [number[], number[]][] = [];
  proto.stow = function (this: S) {
    const before = this.stream.turns.length === 1 ? fields(this) : undefined;
    const done = stow.call(this);
    if (before && done) stowedFields.set(this, before);
    return done;
  };
  proto.unstow = function (this: S) {
    unstow.call(this);
    const before = stowedFields.get(this);
    if (before && this.stream.turns[0] !== undefined) {
      restored.push([before, fields(this)]);
      stowedFields.delete(this);
    }
  };
  let withStow: Scenario, without: Scenario;
  try {
    withStow = run();
    proto.stow = () => false;
    without = run();
  } finally {
    proto.stow = stow;
    proto.unstow = unstow;
  }
  assert.ok(restored.length >= 30, `turns stowed and put back: ${restored.length}`);
  for (const [before, after] of restored) assert.deepEqual(after, before);
  assert.ok(restored.some(([b]) => b[1] > 2 ** 31), "sequence numbers above 2^31 stowed");
  assert.deepEqual(withStow.sent, without.sent);
  assert.deepEqual(withStow.engine.stats, without.engine.stats);
  assert.deepEqual(withStow.target.streams(), conns.map((tr) => tr.bytes));
  assert.equal(withStow.engine.stats.requests.captured, 3 * 11);
  assert.equal(withStow.engine.stats.requests.answered, 3 * 11);
});
