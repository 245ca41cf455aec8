/**
 * `--compare` pairing through the real engine and the simulated target (tests/sim): the
 * comparer sees what the replicator would give it (captured client segments after the
 * engine, the online server's segments, engine output, reply headers, session events), and a
 * small intercept stand-in cuts the target's replies into answers at ACK advances.
 */
import assert from "node:assert/strict";
import { summarize } from "../../lib/compare/answer.ts";
import type { CompareRecord } from "../../lib/compare/record.ts";
import type { CapturedSegment, ReplySegment } from "../../lib/engine/mod.ts";
import { Comparer } from "../../lib/tcpcopy/comparer.ts";
import { Scenario } from "../sim/harness.ts";
import { type Exchange, onlineConnection } from "../sim/online.ts";
import type { TargetBehaviour } from "../sim/target.ts";

const ACK = 0x10, FIN = 0x01;
const body = (n: number) => new TextEncoder().encode("a".repeat(n));

/** The online server's segments implied by the client's ACK advances (before its FIN). */
function serverSegments(client: CapturedSegment[]): CapturedSegment[] {
  const out: CapturedSegment[] = [];
  let ack: number | undefined;
  for (const c of client) {
    if (c.flags & FIN) break;
    if (!(c.flags & ACK)) continue;
    if (ack !== undefined && c.ack !== ack) {
      out.push({
        src: c.dst,
        dst: c.src,
        seq: ack,
        ack: c.seq,
        flags: ACK,
        window: 500,
        options: {},
        payload: body((c.ack - ack) >>> 0),
        timeMs: c.timeMs - 0.5,
      });
    }
    ack = c.ack;
  }
  return out;
}

interface Run {
  records: CompareRecord[];
  cmp: Comparer;
  sc: Scenario;
}

function run(exchanges: Exchange[], behaviour: TargetBehaviour = {}): Run {
  const records: CompareRecord[] = [];
  const sc = new Scenario({ noAnswerMs: 200, responseIdleMs: 50 }, behaviour);
  const cmp = new Comparer({
    firstBytes: 64,
    proto: "bytes",
    ignoreHeaders: [],
    all: true,
    budgetBytes: 1 << 20,
    emit: (r) => records.push(r),
    turnTimeoutMs: 3000,
  });
  // intercept's stand-in: one answer per run of reply bytes with the same ACK
  let cur: { ack: number; seq: number; len: number; r: ReplySegment } | null = null;
  const flush = () => {
    if (cur === null) return;
    const { r } = cur;
    cmp.onAnswer({
      client: { addr: r.dst.addr, port: r.dst.port },
      target: { addr: r.src.addr, port: r.src.port },
      ack: cur.ack,
      seq: cur.seq,
      part: 0,
      summary: summarize(body(cur.len)),
    }, sc.now);
    cur = null;
  };
  const out = sc.engine.out;
  const send = out.send.bind(out), event = out.event!.bind(out);
  out.send = (seg) => {
    cmp.onSent(seg.src, seg.dst, seg.seq, seg.payload.length, sc.now);
    send(seg);
  };
  out.event = (e) => {
    if (e.type === "open" && e.original) {
      cmp.onSessionOpen(e.client, e.target, e.original, e.copy ?? 0, e.module ?? false, sc.now);
    } else if (e.type === "close") cmp.onSessionClose(e.client, e.target, sc.now);
    event(e);
  };
  sc.opts.mapReply = (r) => {
    if (r.payloadLength > 0 && cur !== null && cur.ack !== r.ack) flush();
    if (r.payloadLength > 0) {
      if (cur === null) {
        cur = {
          ack: r.ack,
          seq: r.seq,
          len: 0,
          r: { ...r, src: { ...r.src }, dst: { ...r.dst } },
        };
      }
      cur.len += r.payloadLength;
    }
    if (r.flags & FIN) flush();
    // the reply header reaches tcpcopy's replicator after the engine's own delivery delay
    sc.at(
      sc.now + 0.5,
      () => cmp.onReply(r.src, r.dst, r.seq, r.ack, r.flags, r.payloadLength, sc.now),
    );
  };
  const tr = onlineConnection({
    client: { addr: "192.0.2.7", port: 41000 },
    server: { addr: "10.0.0.1", port: 80 },
    clientIsn: 7000,
    serverIsn: 90_000,
    start: 1000,
    exchanges,
  });
  for (const s of tr.segments) {
    sc.at(s.timeMs, () => {
      sc.engine.onCaptured(s, sc.now);
      cmp.onClient(s.src, s.dst, s, s.timeMs, sc.now);
    });
  }
  for (const s of serverSegments(tr.segments)) {
    sc.at(s.timeMs, () => cmp.onServer(s.src, s.dst, s, s.timeMs, sc.now));
  }
  for (let t = 1000; t < 9000; t += 50) sc.at(t, () => cmp.tick(sc.now));
  sc.run(9000);
  flush();
  cmp.closeAll(sc.now);
  return { records, cmp, sc };
}

const ex = (id: number, responseLength: number, more: Partial<Exchange> = {}): Exchange => ({
  id,
  responseLength,
  ...more,
});

Deno.test("sim: the same answers on both sides match turn by turn, with latencies", () => {
  const { records, cmp } = run([ex(1, 300), ex(2, 5000, { segments: 3 }), ex(3, 40)]);
  assert.equal(records.length, 3, JSON.stringify(records));
  assert.deepEqual(records.map((r) => [r.turn, r.match]), [[1, true], [2, true], [3, true]]);
  for (const r of records) {
    assert.ok(r.online.latencyMs !== null && r.online.latencyMs >= 0);
    assert.ok(r.target.latencyMs !== null && r.target.latencyMs > 0, JSON.stringify(r));
    assert.equal(r.online.length, r.target.length);
  }
  assert.equal(records[1].online.length, 5000);
  assert.equal(cmp.line().skipped, 0);
  assert.equal(cmp.unpaired, 0);
});

Deno.test("sim: retransmissions to and from the target change nothing", () => {
  const { records, sc } = run(
    [ex(1, 300), ex(2, 3000, { segments: 2 }), ex(3, 40)],
    { dropInbound: new Set([2, 4]) },
  );
  assert.ok(sc.engine.stats.retransmits > 0, "the target dropped segments: the replay resent");
  assert.deepEqual(records.map((r) => [r.turn, r.match]), [[1, true], [2, true], [3, true]]);
});

Deno.test("sim: a shorter target answer is a length mismatch; an unanswered request is missing", () => {
  const short = run([ex(1, 300), ex(2, 200)], { shortBy: 10 });
  assert.deepEqual(short.records.map((r) => [r.turn, r.reason]), [[1, "length"], [2, "length"]]);
  assert.equal(short.records[0].online.length! - short.records[0].target.length!, 10);
  const none = run([ex(1, 300), ex(2, 200), ex(3, 100)], { noAnswerIds: new Set([2]) });
  // the missing verdict waits for the answer's grace period: it comes after turn 3's
  const byTurn = [...none.records].sort((a, b) => a.turn - b.turn);
  assert.deepEqual(byTurn.map((r) => [r.turn, r.match ? "match" : r.reason]), [
    [1, "match"],
    [2, "missing"],
    [3, "match"],
  ]);
});
