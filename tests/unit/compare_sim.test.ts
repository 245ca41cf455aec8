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
import type { ModuleName, ProtocolModule } from "../../lib/modules/module.ts";

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

/**
 * A transfer with a protocol module (`module`), the client's ISN (default 7000), `-n` copies,
 * and the target answer bytes of answer `n` (0-based) of a session to `client` (default `len`
 * bytes of "a", the online server's).
 */
interface RunOptions {
  module?: ProtocolModule;
  clientIsn?: number;
  copies?: number;
  answer?: (client: { addr: Uint8Array; port: number }, n: number, len: number) => Uint8Array;
}

function run(exchanges: Exchange[], behaviour: TargetBehaviour = {}, o: RunOptions = {}): Run {
  const records: CompareRecord[] = [];
  const transfers = o.module === undefined ? {} : {
    transfers: [{
      online: { addr: "", port: 80 },
      target: { addr: "10.9.0.2", port: 8080 },
      module: o.module,
    }],
  };
  const copies = o.copies === undefined ? {} : { copies: o.copies };
  const sc = new Scenario(
    { noAnswerMs: 200, responseIdleMs: 50, ...transfers, ...copies },
    behaviour,
  );
  const cmp = new Comparer({
    firstBytes: 64,
    proto: "bytes",
    ignoreHeaders: [],
    all: true,
    budgetBytes: 1 << 20,
    emit: (r) => records.push(r),
    turnTimeoutMs: 3000,
  });
  // intercept's stand-in: one answer per run of reply bytes with the same ACK, per session
  interface Cur {
    ack: number;
    seq: number;
    len: number;
    r: ReplySegment;
  }
  const curs = new Map<string, Cur>();
  const answers = new Map<string, number>();
  const flush = (key: string) => {
    const cur = curs.get(key);
    if (cur === undefined) return;
    const { r } = cur;
    const client = { addr: r.dst.addr, port: r.dst.port };
    const n = answers.get(key) ?? 0;
    answers.set(key, n + 1);
    cmp.onAnswer({
      client,
      target: { addr: r.src.addr, port: r.src.port },
      ack: cur.ack,
      seq: cur.seq,
      part: 0,
      summary: summarize(o.answer?.(client, n, cur.len) ?? body(cur.len)),
    }, sc.now);
    curs.delete(key);
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
    } else if (e.type === "pass" && e.original) {
      cmp.onSessionPass(e.client, e.target, e.original, e.copy ?? 0, e.seq!, e.offset!, sc.now);
    } else if (e.type === "close") cmp.onSessionClose(e.client, e.target, sc.now);
    event(e);
  };
  sc.opts.mapReply = (r) => {
    const key = `${r.dst.addr.join(".")}:${r.dst.port}>${r.src.addr.join(".")}:${r.src.port}`;
    if (r.payloadLength > 0 && curs.get(key)?.ack !== r.ack) flush(key);
    if (r.payloadLength > 0) {
      let cur = curs.get(key);
      if (cur === undefined) {
        cur = {
          ack: r.ack,
          seq: r.seq,
          len: 0,
          r: { ...r, src: { ...r.src }, dst: { ...r.dst } },
        };
        curs.set(key, cur);
      }
      cur.len += r.payloadLength;
    }
    if (r.flags & FIN) flush(key);
    // the reply header reaches tcpcopy's replicator after the engine's own delivery delay
    sc.at(
      sc.now + 0.5,
      () => cmp.onReply(r.src, r.dst, r.seq, r.ack, r.flags, r.payloadLength, sc.now),
    );
  };
  const tr = onlineConnection({
    client: { addr: "192.0.2.7", port: 41000 },
    server: { addr: "10.0.0.1", port: 80 },
    clientIsn: o.clientIsn ?? 7000,
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
  for (const key of [...curs.keys()]) flush(key);
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

/**
 * A module that logs in with another first line (the request line's padding replaced by `pad`
 * bytes: a login proof of another length) and then hands the session to the engine.
 */
function loginModule(pad: number): ProtocolModule {
  return {
    name: "toy" as ModuleName,
    counters: [],
    replyPrefix: 0,
    open: (_ctx, out) => {
      let buf = "";
      return {
        client(data) {
          buf += new TextDecoder().decode(data);
          const nl = buf.indexOf("\n");
          if (nl < 0) return;
          const login = buf.slice(0, nl).replace(/ x+$/, ` ${"p".repeat(pad)}`);
          out.send(new TextEncoder().encode(login + buf.slice(nl)));
          out.pass();
        },
        target() {},
        targetGap() {},
      };
    },
  };
}

Deno.test("sim: a module session is compared from its pass on, at the replay's offset", () => {
  // the login line is 8 bytes of padding online; the module sends 50 (offset +42) or 1
  // (offset -7: 2^32 - 7), and the client's sequence numbers wrap 2^32 during the login
  for (const [pad, clientIsn] of [[50, 7000], [1, 7000], [50, 2 ** 32 - 20], [1, 2 ** 32 - 20]]) {
    const tag = `pad ${pad}, ISN ${clientIsn}`;
    const same = run([ex(1, 300), ex(2, 5000, { segments: 3 }), ex(3, 40), ex(4, 700)], {}, {
      module: loginModule(pad),
      clientIsn,
    });
    const pass = same.sc.events.find((e) => e.type === "pass");
    assert.equal(pass?.offset, (pad - 8) >>> 0, tag);
    // the login (request 1) is neither compared nor skipped nor unpaired: turns 1-3 are
    // requests 2-4 (numbered from the pass)
    assert.deepEqual(
      same.records.map((r) => [r.turn, r.match, r.online.length, r.target.length]),
      [[1, true, 5000, 5000], [2, true, 40, 40], [3, true, 700, 700]],
      tag,
    );
    assert.equal(same.cmp.line().compared, 3, tag);
    assert.equal(same.cmp.line().skipped, 0, tag);
    assert.equal(same.cmp.unpaired, 0, tag);
    for (const r of same.records) {
      assert.ok(r.target.latencyMs !== null && r.target.latencyMs > 0, JSON.stringify(r));
    }
    const short = run([ex(1, 300), ex(2, 200), ex(3, 100)], { shortBy: 10 }, {
      module: loginModule(pad),
      clientIsn,
    });
    assert.deepEqual(
      short.records.map((r) => [r.turn, r.reason, r.online.length, r.target.length]),
      [[1, "length", 200, 190], [2, "length", 100, 90]],
      tag,
    );
    assert.equal(short.cmp.unpaired, 0, tag);
  }
});

Deno.test("sim: a module session that never passes is not compared, its answers not counted", () => {
  const module: ProtocolModule = {
    name: "toy" as ModuleName,
    counters: [],
    replyPrefix: 0,
    open: (_ctx, out) => ({
      client(data) {
        out.send(data); // (a module that filters to the end: never passes)
      },
      target() {},
      targetGap() {},
    }),
  };
  const r = run([ex(1, 300), ex(2, 200)], {}, { module });
  assert.equal(r.sc.engine.stats.requests.answered, 2);
  assert.deepEqual(r.records, []);
  assert.equal(r.cmp.line().compared, 0);
  assert.equal(r.cmp.line().skipped, 0);
  assert.equal(r.cmp.unpaired, 0);
});

Deno.test("sim: -n 2 copies are both compared; the copy whose target answers differently is named", () => {
  const exchanges = [ex(1, 300), ex(2, 5000, { segments: 3 }), ex(3, 40)];
  const same = run(exchanges, {}, { copies: 2 });
  const opened = same.sc.events.filter((e) => e.type === "open");
  assert.deepEqual(opened.map((e) => e.copy), [0, 1]);
  const ports = opened.map((e) => e.client.port);
  assert.notEqual(ports[0], ports[1], "the copies' rewritten clients differ");
  const rows = (rs: CompareRecord[]) =>
    rs.map((r) => [r.copy, r.targetAddr, r.turn, r.match ? "match" : r.reason])
      .sort((a, b) => String(a).localeCompare(String(b)));
  assert.deepEqual(rows(same.records), [
    [0, "10.9.0.2:8080", 1, "match"],
    [0, "10.9.0.2:8080", 2, "match"],
    [0, "10.9.0.2:8080", 3, "match"],
    [1, "10.9.0.2:8080", 1, "match"],
    [1, "10.9.0.2:8080", 2, "match"],
    [1, "10.9.0.2:8080", 3, "match"],
  ]);
  assert.equal(same.cmp.line().compared, 6);
  assert.equal(same.cmp.unpaired, 0);
  // the second copy's session gets another body for its second answer (same length)
  const copy1Port = ports[1];
  const other = run(exchanges, {}, {
    copies: 2,
    answer: (client, n, len) =>
      client.port === copy1Port && n === 1 ? new TextEncoder().encode("b".repeat(len)) : body(len),
  });
  assert.equal(other.sc.events.filter((e) => e.type === "open")[1].client.port, copy1Port);
  assert.deepEqual(rows(other.records), [
    [0, "10.9.0.2:8080", 1, "match"],
    [0, "10.9.0.2:8080", 2, "match"],
    [0, "10.9.0.2:8080", 3, "match"],
    [1, "10.9.0.2:8080", 1, "match"],
    [1, "10.9.0.2:8080", 2, "body"],
    [1, "10.9.0.2:8080", 3, "match"],
  ]);
  assert.deepEqual(other.cmp.line().targets, {
    "10.9.0.2:8080": { compared: 6, matched: 5, mismatched: 1 },
  });
});
