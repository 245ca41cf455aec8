/**
 * The turn pairing of `--compare` (lib/tcpcopy/comparer.ts, compare_flow.ts) driven with
 * synthetic inputs: captured client and server segments (in order, out of order,
 * retransmitted), the replayed session's output and reply headers, and target answer
 * summaries as the tunnel delivers them.
 */
import assert from "node:assert/strict";
import { summarize } from "../../lib/compare/answer.ts";
import type { CompareRecord } from "../../lib/compare/record.ts";
import type { TargetAnswer } from "../../lib/compare/target_answer.ts";
import { endpointOf } from "../../lib/engine/endpoint.ts";
import { mulberry32 } from "../helpers/prng.ts";
import { Comparer, type ComparerOptions, MAX_PENDING_TURNS } from "../../lib/tcpcopy/comparer.ts";
import { recordingComparer } from "../helpers/compare_rig.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const ACK = 0x10, FIN = 0x01, SYN = 0x02, RST = 0x04;

const CLIENT = endpointOf("192.0.2.7", 41000);
const SERVER = endpointOf("192.0.2.1", 80);
const REWRITTEN = endpointOf("10.1.0.7", 41000);
const TARGET = endpointOf("10.9.0.2", 8080);

const ISN_C = 1000, ISN_S = 50_000, ISN_T = 900_000;

function http(status: number, body: string, extra = ""): string {
  const reason = status === 200 ? "OK" : "Other";
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;
}

/** A comparer with records collected, and helpers speaking for each side. */
class Rig {
  readonly records: CompareRecord[] = [];
  readonly cmp: Comparer;
  now = 0;
  cSeq = ISN_C + 1;
  sSeq = ISN_S + 1;
  tSeq = ISN_T + 1;
  /**
   * Answers go through `answerWanted` first, as the tunnel client hands them over (their
   * summary only to a pending turn); false: straight to `onAnswer`.
   */
  headFirst = false;

  constructor(opts: Partial<ComparerOptions> = {}) {
    this.cmp = recordingComparer(this.records, opts);
  }

  open(copy = 0, module = false): void {
    this.cmp.onSessionOpen(
      REWRITTEN,
      TARGET,
      { client: CLIENT, server: SERVER },
      copy,
      module,
      this.now,
    );
    this.cmp.onClient(CLIENT, SERVER, seg(ISN_C, 0, SYN, ""), this.now, this.now);
    this.cmp.onServer(SERVER, CLIENT, seg(ISN_S, ISN_C + 1, SYN | ACK, ""), this.now, this.now);
    this.cmp.onReply(TARGET, REWRITTEN, ISN_T, ISN_C + 1, SYN | ACK, 0, this.now);
  }

  /** The client sends `text` (one segment unless `pieces`), acking what it got online. */
  request(text: string, at = this.now): { start: number; end: number } {
    const start = this.cSeq;
    this.client(start, this.sSeq, text, at);
    this.cSeq += text.length;
    return { start, end: this.cSeq };
  }

  client(seq: number, ack: number, text: string, at = this.now, flags = ACK): void {
    this.cmp.onClient(CLIENT, SERVER, seg(seq, ack, flags, text), at, this.now);
  }

  server(seq: number, text: string, at = this.now, flags = ACK): void {
    this.cmp.onServer(SERVER, CLIENT, seg(seq, this.cSeq, flags, text), at, this.now);
  }

  /** The online server answers `text` in order (advancing its sequence number). */
  online(text: string, at = this.now): void {
    this.server(this.sSeq, text, at);
    this.sSeq += text.length;
  }

  /** The replay sends the request `r` to the target at `now`. */
  sent(r: { start: number; end: number }): void {
    this.cmp.onSent(REWRITTEN, TARGET, r.start, r.end - r.start, this.now);
  }

  /** A reply header of `len` bytes acking `ack` arrives at `now` (at tSeq unless `seq`). */
  reply(ack: number, len: number, seq = this.tSeq): void {
    this.cmp.onReply(TARGET, REWRITTEN, seq, ack, ACK, len, this.now);
    if (seq === this.tSeq) this.tSeq += len;
  }

  /** Reply headers and then the tunnel's answer summary of `text` for the request ending at `ack`. */
  target(ack: number, text: string, part = 0): void {
    const seq = this.tSeq;
    this.reply(ack, text.length);
    this.answer(ack, seq, text, part);
  }

  answer(ack: number, seq: number, text: string, part = 0): void {
    const a: TargetAnswer = {
      client: { addr: REWRITTEN.addr, port: REWRITTEN.port },
      target: { addr: TARGET.addr, port: TARGET.port },
      ack,
      seq,
      part,
      summary: summarize(enc(text)),
    };
    if (this.headFirst && !this.cmp.answerWanted(a)) return;
    this.cmp.onAnswer(a, this.now);
  }

  at(ms: number): void {
    this.now = ms;
    this.cmp.tick(ms);
  }
}

function seg(seq: number, ack: number, flags: number, text: string) {
  return { seq: seq >>> 0, ack: ack >>> 0, flags, payload: enc(text) };
}

Deno.test("pairing: keep-alive turns get their online and target answers, latencies from both clocks", () => {
  const r = new Rig();
  r.open();
  const a = r.request("GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 100);
  r.at(1);
  r.sent(a);
  r.online(http(200, "same"), 103); // online: 3 ms after the request's capture
  r.at(6);
  r.target(a.end, http(200, "same")); // target: 5 ms after it was sent
  const b = r.request("GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 110);
  r.at(7);
  r.sent(b);
  r.online(http(200, "online body"), 111);
  r.at(9);
  r.target(b.end, http(200, "target body"));
  r.client(r.cSeq, r.sSeq, "", 120, FIN | ACK);
  r.at(10);
  assert.equal(r.records.length, 2);
  const [ra, rb] = r.records;
  assert.equal(ra.match, true);
  assert.equal(ra.turn, 1);
  assert.equal(ra.request, "GET /a HTTP/1.1");
  assert.equal(ra.online.latencyMs, 3);
  assert.equal(ra.target.latencyMs, 5);
  assert.equal(rb.match, false);
  assert.equal(rb.reason, "body");
  assert.equal(rb.turn, 2);
  assert.equal(rb.online.latencyMs, 1);
  assert.equal(rb.target.latencyMs, 2);
  const line = r.cmp.line();
  assert.equal(line.compared, 2);
  assert.equal(line.matched, 1);
  assert.equal(line.mismatched.body, 1);
  assert.equal(line.tunnel_rtt_ms, null);
  assert.deepEqual(r.cmp.top(5).map((e) => [e.key, e.count]), [["GET /b", 1]]);
  assert.equal(r.cmp.settled(), true);
});

Deno.test("pairing: out-of-order and retransmitted segments on both sides", () => {
  const r = new Rig();
  r.open();
  const text = "GET /ooo HTTP/1.1\r\nHost: x\r\nX-Pad: " + "p".repeat(40) + "\r\n\r\n";
  const start = r.cSeq;
  // client: second half first, then the first half twice (a retransmission)
  const half = 20;
  r.client(start + half, r.sSeq, text.slice(half), 200);
  r.client(start, r.sSeq, text.slice(0, half), 201);
  r.client(start, r.sSeq, text.slice(0, half), 202);
  r.cSeq += text.length;
  const req = { start, end: r.cSeq };
  r.at(1);
  r.sent(req);
  r.sent(req); // a retransmission to the target changes nothing
  // online answer in three pieces: 3rd, 1st, 2nd, then 1st again
  const ans = http(200, "x".repeat(300));
  const p1 = ans.slice(0, 100), p2 = ans.slice(100, 200), p3 = ans.slice(200);
  r.server(r.sSeq + 200, p3, 205);
  r.server(r.sSeq, p1, 206);
  r.server(r.sSeq + 100, p2, 207);
  r.server(r.sSeq, p1, 208);
  r.sSeq += ans.length;
  // target replies: a piece, its retransmission, then the rest
  r.at(4);
  const tseq = r.tSeq;
  r.reply(req.end, 150);
  r.reply(req.end, 150, tseq); // retransmitted reply header: not new data
  r.at(5);
  r.reply(req.end, ans.length - 150);
  r.answer(req.end, tseq, ans);
  r.client(r.cSeq, r.sSeq, "", 230, FIN | ACK);
  r.at(6);
  assert.equal(r.records.length, 1);
  const rec = r.records[0];
  assert.equal(rec.match, true, JSON.stringify(rec));
  assert.equal(rec.partial, undefined);
  assert.equal(rec.request.startsWith("GET /ooo HTTP/1.1"), true);
  assert.equal(rec.online.length, ans.length);
  // from the request's last captured segment (201) to its first answer byte in order (206)
  assert.equal(rec.online.latencyMs, 5);
  assert.equal(rec.target.length, ans.length);
  assert.equal(rec.target.latencyMs, 3);
  assert.equal(rec.target.lastMs, 4);
});

Deno.test("pairing: a capture hole in the online answer is a gap: lengths kept, partial match", () => {
  const r = new Rig();
  r.open();
  const a = r.request("GET /gap HTTP/1.1\r\n\r\n", 10);
  r.sent(a);
  const ans = http(200, "y".repeat(500));
  r.server(r.sSeq, ans.slice(0, 100), 11);
  r.server(r.sSeq + 200, ans.slice(200), 12); // bytes 100..200 never captured
  r.sSeq += ans.length;
  r.target(a.end, ans);
  r.request("GET /next HTTP/1.1\r\n\r\n", 20); // the client acked it all: the hole is a gap
  r.at(1);
  const rec = r.records[0];
  assert.equal(rec.match, true, JSON.stringify(rec));
  assert.equal(rec.partial, true);
  assert.equal(rec.online.length, ans.length);
  assert.equal(r.cmp.line().partial, 1);
});

Deno.test("pairing: missing (session ended), extra (online silent) and timeout (target silent)", () => {
  // missing: the target never answers and the session ends
  const m = new Rig({ answerWaitMs: 100 });
  m.open();
  const a = m.request("GET /m HTTP/1.1\r\n\r\n", 0);
  m.sent(a);
  m.online(http(200, "ok"), 1);
  m.client(m.cSeq, m.sSeq, "", 2, FIN | ACK);
  m.cmp.onSessionClose(REWRITTEN, TARGET, 3);
  m.at(50);
  assert.equal(m.records.length, 0);
  m.at(200);
  assert.equal(m.records.length, 1);
  assert.equal(m.records[0].reason, "missing");
  assert.equal(m.records[0].target.length, null);

  // extra: the online server sent nothing for the turn, the target did
  const e = new Rig({ onlineQuietMs: 50, turnTimeoutMs: 500 });
  e.open();
  const b = e.request("POST /e HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0);
  e.sent(b);
  e.target(b.end, http(200, "surprise"));
  e.server(e.sSeq, "", 1, RST | ACK); // the online server reset without answering
  e.at(10);
  assert.equal(e.records.length, 1);
  assert.equal(e.records[0].reason, "extra");

  // timeout: the target stays silent past the turn deadline with the session alive
  const t = new Rig({ turnTimeoutMs: 300 });
  t.open();
  const c = t.request("GET /t HTTP/1.1\r\n\r\n", 0);
  t.sent(c);
  t.online(http(200, "ok"), 1);
  t.server(t.sSeq, "", 2, FIN | ACK);
  t.at(100);
  assert.equal(t.records.length, 0);
  t.at(301);
  assert.equal(t.records.length, 1);
  assert.equal(t.records[0].reason, "timeout");
});

Deno.test("pairing: part > 0 tails add to the target's length and leave the digest out", () => {
  const r = new Rig();
  r.open();
  const a = r.request("GET /tail HTTP/1.1\r\n\r\n", 0);
  r.sent(a);
  const ans = http(200, "z".repeat(64));
  r.online(ans, 1);
  const head = ans.slice(0, 40), tail = ans.slice(40);
  const seq0 = r.tSeq;
  r.reply(a.end, head.length);
  r.answer(a.end, seq0, head); // cut after a quiet period...
  r.at(1);
  assert.equal(r.records.length, 0, "parts still missing: reply headers counted more bytes");
  const seq1 = r.tSeq;
  r.reply(a.end, tail.length);
  r.answer(a.end, seq1, tail, 1); // ...and the late tail
  r.client(r.cSeq, r.sSeq, "", 2, FIN | ACK);
  r.at(2);
  assert.equal(r.records.length, 1);
  const rec = r.records[0];
  assert.equal(rec.target.length, ans.length);
  assert.equal(rec.match, true, JSON.stringify(rec));
  assert.equal(rec.partial, true);
});

Deno.test("pairing: answers of no pending turn are unpaired; copies are compared, module sessions not before their pass", () => {
  const r = new Rig();
  r.open();
  r.answer(ISN_C + 1, r.tSeq, "220 greeting\r\n"); // a greeting: no request ends there
  assert.equal(r.cmp.unpaired, 1);
  const other = new Rig();
  other.open(1); // a copy (each session is compared, see compare_sessions.test.ts)
  const a = other.request("GET /c HTTP/1.1\r\n\r\n", 0);
  other.target(a.end, http(200, "x"));
  assert.equal(other.cmp.unpaired, 0);
  assert.equal(other.cmp.line().flows, 1);
  const mod = new Rig();
  mod.open(0, true);
  assert.equal(mod.cmp.line().flows, 0);
});

Deno.test("pairing: a module session is followed from its pass point, the target side through the offset", () => {
  // offsets: the module's login 9 bytes longer than the captured one, 5 bytes shorter (2^32 - 5);
  // captured client numbers from 1001, or wrapping 2^32 during the login and again after it
  for (
    const [delta, first] of [[9, ISN_C + 1], [-5, ISN_C + 1], [9, 2 ** 32 - 6], [-5, 2 ** 32 - 6]]
  ) {
    const tag = `login ${delta}, first byte ${first}`;
    const r = new Rig();
    r.open(0, true);
    assert.equal(r.cmp.line().flows, 0, tag); // nothing followed before the pass
    r.cSeq = first;
    const login = r.request("AUTH online-proof\r\n", 100);
    r.online("+OK\r\n", 101);
    const off = delta >>> 0; // replayed = captured + off from the pass point on
    const loginEnd = (login.end + off) >>> 0; // where the module's own login ends, replayed
    r.cmp.onSent(REWRITTEN, TARGET, first, login.end - login.start + delta, r.now);
    r.target(loginEnd, "+OK\r\n"); // the target's answer to the module's login
    // the module passed: the captured stream from login.end on is replayed at +off
    r.cmp.onSessionPass(
      REWRITTEN,
      TARGET,
      { client: CLIENT, server: SERVER },
      0,
      login.end,
      off,
      1,
    );
    r.answer(loginEnd, r.tSeq, "+OK\r\n"); // a late part of the login's answer: no turn
    // the client's first request comes coalesced with the login's last bytes (a retransmission
    // that TCP merged): the turn starts at the pass point
    const get = "GET /a HTTP/1.1\r\n\r\n";
    r.client(login.end - 4, r.sSeq, "of\r\n" + get, 110);
    r.cSeq += get.length;
    const a = { start: login.end, end: r.cSeq };
    r.at(2);
    r.cmp.onSent(REWRITTEN, TARGET, (a.start + off) >>> 0, a.end - a.start, r.now);
    r.online(http(200, "same"), 113);
    r.at(7);
    r.target((a.end + off) >>> 0, http(200, "same"));
    const b = r.request("GET /b HTTP/1.1\r\n\r\n", 120);
    r.at(8);
    r.cmp.onSent(REWRITTEN, TARGET, (b.start + off) >>> 0, b.end - b.start, r.now);
    r.online(http(200, "online"), 122);
    r.at(11);
    r.target((b.end + off) >>> 0, http(200, "target"));
    r.client(r.cSeq, r.sSeq, "", 130, FIN | ACK);
    r.at(20);
    assert.deepEqual(
      r.records.map((x) => [x.turn, x.request, x.match ? "match" : x.reason, x.target.latencyMs]),
      [[1, "GET /a HTTP/1.1", "match", 5], [2, "GET /b HTTP/1.1", "body", 3]],
      tag,
    );
    const line = r.cmp.line();
    assert.equal(line.compared, 2, tag);
    assert.equal(line.skipped, 0, tag);
    assert.equal(r.cmp.unpaired, 0, tag);
  }
});

Deno.test("pairing: module sessions of copies are compared from their pass; answers after a module session closed count as before", () => {
  const copy = new Rig();
  copy.open(1, true);
  copy.cmp.onSessionPass(REWRITTEN, TARGET, { client: CLIENT, server: SERVER }, 1, ISN_C + 1, 3, 0);
  const a = copy.request("GET /c HTTP/1.1\r\n\r\n", 0);
  copy.sent({ start: a.start + 3, end: a.end + 3 });
  copy.online(http(200, "x"), 1);
  copy.target((a.end + 3) >>> 0, http(200, "x"));
  copy.request("GET /d HTTP/1.1\r\n\r\n", 2); // (ends the online answer)
  copy.at(3);
  assert.equal(copy.cmp.line().flows, 1);
  assert.equal(copy.cmp.unpaired, 0);
  assert.deepEqual(
    copy.records.map((x) => [x.turn, x.copy, x.targetAddr, x.match]),
    [[1, 1, "10.9.0.2:8080", true]],
  );
  const closed = new Rig();
  closed.open(0, true);
  closed.answer(ISN_C + 5, closed.tSeq, "+OK\r\n"); // the login's: not counted
  assert.equal(closed.cmp.unpaired, 0);
  closed.cmp.onSessionClose(REWRITTEN, TARGET, 1);
  closed.answer(ISN_C + 5, closed.tSeq, "+OK\r\n"); // no session any more: unpaired
  assert.equal(closed.cmp.unpaired, 1);
});

Deno.test("pairing: over the budget turns are skipped and counted, nothing else changes", () => {
  const r = new Rig({ budgetBytes: 3000 }); // room for the flow and its accumulator only
  r.open();
  const a = r.request("GET /1 HTTP/1.1\r\n\r\n", 0);
  r.sent(a);
  r.online(http(200, "a"), 1);
  r.target(a.end, http(200, "a"));
  r.request("GET /2 HTTP/1.1\r\n\r\n", 2);
  r.at(5);
  const line = r.cmp.line();
  assert.equal(line.compared, 0);
  assert.equal(line.skipped, 2);
  assert.ok(line.state_bytes <= line.budget_bytes);
});

Deno.test("pairing: pipelined requests in one turn, answers cut apart by the target, merged", () => {
  const r = new Rig();
  r.open();
  const one = "GET /p1 HTTP/1.1\r\n\r\n", two = "GET /p2 HTTP/1.1\r\n\r\n";
  const start = r.cSeq;
  r.client(start, r.sSeq, one, 0);
  r.client(start + one.length, r.sSeq, two, 0); // same ACK: one turn
  r.cSeq += one.length + two.length;
  r.sent({ start, end: r.cSeq });
  const a1 = http(200, "first"), a2 = http(200, "second");
  r.online(a1 + a2, 1);
  r.at(2);
  r.target(start + one.length, a1); // the target answered /p1 before /p2 arrived
  r.target(r.cSeq, a2);
  r.client(r.cSeq, r.sSeq, "", 3, FIN | ACK);
  r.at(3);
  assert.equal(r.records.length, 1);
  const rec = r.records[0];
  assert.equal(rec.match, true, JSON.stringify(rec));
  assert.equal(rec.target.length, a1.length + a2.length);
  assert.equal(rec.online.length, a1.length + a2.length);
});

Deno.test("pairing: pipelined answers cut apart, the second differs: its status is still seen", () => {
  const r = new Rig();
  r.open();
  const one = "GET /p1 HTTP/1.1\r\n\r\n", two = "GET /p2 HTTP/1.1\r\n\r\n";
  const start = r.cSeq;
  r.client(start, r.sSeq, one + two, 0); // one segment: one turn, one ACK for both answers
  r.cSeq += one.length + two.length;
  r.sent({ start, end: r.cSeq });
  const a1 = http(200, "first"), a2 = http(200, "second"), b2 = http(503, "second");
  r.online(a1 + a2, 1);
  r.at(2);
  // intercept cut the target's answers apart (framing): the second arrives as a part-1 tail
  r.target(r.cSeq, a1);
  r.target(r.cSeq, b2, 1);
  r.client(r.cSeq, r.sSeq, "", 3, FIN | ACK);
  r.at(3);
  assert.equal(r.records.length, 1);
  const rec = r.records[0];
  assert.equal(rec.match, false, JSON.stringify(rec));
  assert.equal(rec.reason, "status", JSON.stringify(rec));
});

Deno.test("pairing: equal first bytes shared by both sides give the same verdicts in either order, tails included", () => {
  // Equal first bytes are shared between the online and the target summary (no copy): when
  // the target's answer comes after the online one was finished, and when it comes before.
  // A late tail then continues the target's first bytes from a copy of the shared ones.
  const run = (targetFirst: boolean, tail: string, same: boolean) => {
    const r = new Rig();
    r.open();
    const a = r.request("GET /share HTTP/1.1\r\n\r\n", 0);
    r.sent(a);
    const ans = http(200, "s".repeat(100));
    r.online(ans, 1);
    const finish = () => r.client(r.cSeq, r.sSeq, "", 2, FIN | ACK);
    if (!targetFirst) finish();
    const seq0 = r.tSeq;
    const t0 = same ? ans : ans.replace("s", "t");
    r.reply(a.end, t0.length);
    r.answer(a.end, seq0, t0);
    if (tail !== "") {
      const seq1 = r.tSeq;
      r.reply(a.end, tail.length);
      r.answer(a.end, seq1, tail, 1);
    }
    if (targetFirst) finish();
    r.at(3);
    assert.equal(r.records.length, 1);
    const { atMs: _, online, target, ...rest } = r.records[0] as unknown as Record<string, unknown>;
    return { rest, online, target };
  };
  const seen: unknown[] = [];
  for (const tail of ["", "XYZ"]) {
    for (const same of [true, false]) {
      const a = run(false, tail, same), b = run(true, tail, same);
      assert.deepEqual(a, b, `tail ${JSON.stringify(tail)}, same ${same}`);
      seen.push(a);
    }
  }
  // (the verdicts without sharing: a tail after a framed answer leaves the digest out)
  const reasons = seen.map((x) => {
    const r = x as {
      rest: { reason: string | null; partial?: boolean };
      target: { length: number };
    };
    return [r.rest.reason, r.rest.partial ?? false, r.target.length];
  });
  assert.deepEqual(reasons, [
    [null, false, 140],
    ["body", false, 140],
    [null, true, 143],
    ["body", false, 143],
  ]);
});

Deno.test("pairing: a replay lagging by more than MAX_PENDING_TURNS keeps the oldest turns (they are answered next) and skips the newest", () => {
  // The target answers each request LAG turns after it was captured (a replay seconds behind
  // production): shedding the oldest pending turns would shed exactly the next ones answered.
  const LAG = MAX_PENDING_TURNS + 44, N = 1000;
  const r = new Rig();
  laggingReplay(r, LAG, N);
  const line = r.cmp.line();
  assert.equal(line.compared + line.skipped, N, JSON.stringify(line));
  assert.equal(line.matched, line.compared, "every compared turn matches");
  assert.ok(line.compared >= N / 2, `compared ${line.compared} of ${N}`);
  // the first MAX_PENDING_TURNS turns are all compared, in order
  const turns = r.records.map((x) => x.turn);
  assert.deepEqual(
    turns.slice(0, MAX_PENDING_TURNS),
    [...Array(MAX_PENDING_TURNS)].map((_, i) => i + 1),
  );
});

/** A replay answering each request `lag` turns after its capture, `n` requests in all. */
function laggingReplay(r: Rig, lag: number, n: number): void {
  r.open();
  const reqs: { start: number; end: number }[] = [];
  const answerTarget = (k: number) => {
    r.sent(reqs[k]);
    r.target(reqs[k].end, http(200, `body ${k}`));
  };
  for (let i = 0; i < n; i++) {
    reqs.push(r.request(`GET /${i} HTTP/1.1\r\n\r\n`, r.now));
    r.online(http(200, `body ${i}`), r.now);
    if (i >= lag) answerTarget(i - lag);
    if (i % 10 === 9) r.at(r.now + 1);
  }
  for (let k = n - lag; k < n; k++) answerTarget(k);
  r.at(r.now + 100_000);
}

Deno.test("pairing: --compare-max-pending above the lag compares every turn; below it skips the newest beyond the cap", () => {
  const LAG = 600, N = 1000;
  const wide = new Rig({ maxPendingTurns: 1024 });
  laggingReplay(wide, LAG, N);
  const w = wide.cmp.line();
  assert.equal(w.compared, N, JSON.stringify(w));
  assert.equal(w.skipped, 0);
  assert.equal(w.matched, N);
  assert.deepEqual(wide.records.map((x) => x.turn), [...Array(N)].map((_, i) => i + 1));
  const narrow = new Rig({ maxPendingTurns: 100 });
  laggingReplay(narrow, LAG, N);
  const n = narrow.cmp.line();
  assert.equal(n.compared + n.skipped, N, JSON.stringify(n));
  assert.ok(n.skipped > N / 2, `skipped ${n.skipped}`);
  assert.equal(n.matched, n.compared);
  assert.equal(new Rig().cmp.maxPendingTurns, MAX_PENDING_TURNS);
});

Deno.test("pairing: answers of skipped turns turned down by their header (answerWanted) give the same verdicts and counts", () => {
  // lagging replays over and under the cap, with greetings (answers no request ends at): the
  // answers no pending turn waits for are counted as unpaired by answerWanted, the others
  // reach onAnswer as before
  const rnd = mulberry32(1515);
  let unpaired = 0;
  for (let run = 0; run < 40; run++) {
    const lag = 1 + Math.floor(rnd() * 80), cap = 1 + Math.floor(rnd() * 60);
    const greet = rnd() < 0.5;
    const play = (headFirst: boolean) => {
      const r = new Rig({ maxPendingTurns: cap });
      r.headFirst = headFirst;
      if (greet) r.answer(ISN_C + 1, r.tSeq, "220 greeting\r\n");
      laggingReplay(r, lag, 150);
      const { latencyMs: _l, ...stats } = r.cmp.stats.snapshot();
      return { records: r.records, stats, unpaired: r.cmp.unpaired };
    };
    const direct = play(false);
    assert.deepEqual(play(true), direct, `run ${run}: lag ${lag}, cap ${cap}`);
    unpaired += direct.unpaired;
  }
  assert.ok(unpaired > 1000, `${unpaired} unpaired answers`);
});

Deno.test("pairing: a request head cut across segments is sniffed again as it grows (auto)", () => {
  // the comparer sniffs each request once while its bytes are fresh: "GE" alone names no
  // protocol, "GET /cut HTTP/1.1" names HTTP; the answers (not HTTP) would name none
  const r = new Rig();
  r.open();
  const start = r.cSeq;
  r.client(start, r.sSeq, "GE", 0);
  r.client(start + 2, r.sSeq, "T /cut HTTP/1.1\r\n\r\n", 0); // same ACK: the same turn
  r.cSeq += "GET /cut HTTP/1.1\r\n\r\n".length;
  r.sent({ start, end: r.cSeq });
  r.online("plain text answer\n", 1);
  r.at(2);
  r.target(r.cSeq, "plain text answer\n");
  r.client(r.cSeq, r.sSeq, "", 3, FIN | ACK);
  r.at(3);
  assert.equal(r.records.length, 1);
  const rec = r.records[0];
  assert.equal(rec.proto, "http", JSON.stringify(rec));
  assert.equal(rec.match, true, JSON.stringify(rec));
  assert.equal(rec.request, "GET /cut HTTP/1.1");
});

Deno.test("pairing: the record's request and the sniffing read every byte of the kept head, in one segment or several", () => {
  // the turn keeps its head's length and makes a view of it only for a verdict that needs one
  // (lib/tcpcopy/compare_flow.ts turnHead): short requests, whose last byte decides
  for (const pieces of [1, 2, 3]) {
    const r = new Rig();
    r.open();
    const texts = ["GET /", "ping 12345", "x".repeat(300)];
    for (const text of texts) {
      const start = r.cSeq;
      const cut = Math.ceil(text.length / pieces);
      for (let at = 0; at < text.length; at += cut) {
        r.client(start + at, r.sSeq, text.slice(at, at + cut), r.now);
      }
      r.cSeq += text.length;
      r.sent({ start, end: r.cSeq });
      r.online(`answer to ${text.slice(0, 5)}\n`, r.now);
      r.target(r.cSeq, `other answer\n`);
      r.at(r.now + 1);
    }
    r.client(r.cSeq, r.sSeq, "", r.now, FIN | ACK);
    r.at(r.now + 1);
    assert.deepEqual(
      r.records.map((x) => [x.proto, x.request, x.match]),
      [["http", "GET /", false], ["bytes", "ping 12345", false], ["bytes", "x".repeat(64), false]],
      `${pieces} piece(s)`,
    );
    // (a mismatch's key names the whole head too)
    assert.deepEqual(r.cmp.top(5).map((e) => e.key).sort(), [
      "GET /",
      "ping 12345",
      "x".repeat(16),
    ]);
  }
});

Deno.test("pairing: a turn gets its verdict before the tick once the target acknowledged the next request", () => {
  const r = new Rig();
  r.open();
  const a = r.request("GET /a HTTP/1.1\r\n\r\n", 0);
  r.sent(a);
  r.online(http(200, "a"), 1);
  r.target(a.end, http(200, "a"));
  assert.equal(r.records.length, 0); // the target may still send more with this ACK
  const b = r.request("GET /b HTTP/1.1\r\n\r\n", 2); // ends turn a's online answer
  r.sent(b);
  assert.equal(r.records.length, 0);
  r.reply(b.end, 0); // the target acknowledged /b: nothing more can come for /a
  assert.equal(r.records.length, 1);
  assert.equal(r.records[0].request, "GET /a HTTP/1.1");
  assert.equal(r.records[0].match, true, JSON.stringify(r.records[0]));
  assert.equal(r.cmp.stats.compared, 1);
  r.online(http(200, "b"), 3);
  r.target(b.end, http(200, "B"));
  r.client(r.cSeq, r.sSeq, "", 4, FIN | ACK);
  r.at(5); // /b: no later request, its verdict at the tick
  assert.equal(r.records.length, 2);
  assert.equal(r.records[1].reason, "body", JSON.stringify(r.records[1]));
});

Deno.test("pairing: a tail whose headers came before the next request's ACK is merged before the early verdict", () => {
  // the same exchange decided early (the target acknowledges the next request) and at the tick
  // (it does not): the same verdict, the tail included
  const run = (early: boolean) => {
    const r = new Rig();
    r.open();
    const a = r.request("GET /t HTTP/1.1\r\n\r\n", 0);
    r.sent(a);
    const ans = http(200, "tail test");
    r.online(ans, 1);
    const seq0 = r.tSeq;
    r.reply(a.end, ans.length);
    r.answer(a.end, seq0, ans); // cut by its framing
    const seq1 = r.tSeq;
    r.reply(a.end, 3); // then 3 more bytes with the same ACK (a tail)
    const b = r.request("GET /u HTTP/1.1\r\n\r\n", 2);
    r.sent(b);
    if (early) r.reply(b.end, 0);
    assert.equal(r.records.length, 0); // the tail's summary is still missing
    r.answer(a.end, seq1, "XYZ", 1);
    assert.equal(r.records.length, early ? 1 : 0);
    r.at(3);
    assert.equal(r.records.length, 1);
    const { time: _, ...rest } = r.records[0] as unknown as Record<string, unknown>;
    return rest;
  };
  const early = run(true), tick = run(false);
  assert.deepEqual(early, tick); // (all but the verdict's time)
  const target = (early as { target: { length: number } }).target;
  assert.equal(target.length, http(200, "tail test").length + 3, JSON.stringify(early));
});

Deno.test("pairing: an unanswered turn before one decided early still counts as moved on at the next tick", () => {
  // turn 1 gets no target answer; turn 2's is final (the target acknowledged turn 3) long
  // after turn 1's online answer: at the next tick turn 1 is `missing` (the target moved on),
  // as when turn 2 was still pending at that tick, not `timeout` 10 s later
  const r = new Rig();
  r.open();
  const one = r.request("GET /1 HTTP/1.1\r\n\r\n", 0);
  r.sent(one);
  r.online(http(200, "1"), 0);
  const two = r.request("GET /2 HTTP/1.1\r\n\r\n", 0);
  r.sent(two);
  r.online(http(200, "2"), 0);
  const three = r.request("GET /3 HTTP/1.1\r\n\r\n", 0);
  r.sent(three);
  r.now = 2500;
  r.target(two.end, http(200, "2"));
  r.reply(three.end, 0);
  assert.equal(r.records.length, 1);
  assert.equal(r.records[0].request, "GET /2 HTTP/1.1");
  r.at(2600);
  assert.equal(r.records.length, 2, JSON.stringify(r.records));
  assert.equal(r.records[1].request, "GET /1 HTTP/1.1");
  assert.equal(r.records[1].reason, "missing", JSON.stringify(r.records[1]));
});

Deno.test("pairing: early verdicts equal the tick's on random keep-alive exchanges", () => {
  // One script of events (client, online, replayed requests, reply headers, tunnel summaries,
  // ticks) played twice: with early verdicts and with every verdict at a tick. Reply headers
  // keep TCP's order (a turn's reply bytes before any reply acknowledging a later request);
  // summaries may come late; targets answer equal, different, in two parts, or not at all.
  type Step =
    | { k: "req"; text: string; split: boolean }
    | { k: "sent"; turn: number }
    | { k: "online"; text: string }
    | { k: "reply"; turn: number; len: number }
    | { k: "ack"; turn: number }
    | { k: "answer"; turn: number; text: string; part: number; seq: number }
    | { k: "tick" }
    | { k: "fin" };
  const script = (rnd: () => number): Step[] => {
    const steps: Step[] = [];
    const late: Step[] = []; // summaries held back (the tunnel may bring them after later headers)
    let tSeq = ISN_T + 1;
    const turns = 1 + Math.floor(rnd() * 6);
    const flushLate = (all: boolean) => {
      while (late.length > 0 && (all || rnd() < 0.5)) steps.push(late.shift()!);
    };
    let tail: Step[] = []; // a tail sent after the client's next request (before its ACK)
    for (let i = 0; i < turns; i++) {
      const path = `/r${i}`;
      steps.push({ k: "req", text: `GET ${path} HTTP/1.1\r\n\r\n`, split: rnd() < 0.2 });
      steps.push(...tail);
      tail = [];
      if (rnd() < 0.3) steps.push({ k: "tick" });
      steps.push({ k: "sent", turn: i });
      const body = `body of ${path}`;
      const online = http(200, body);
      steps.push({ k: "online", text: online });
      if (i > 0 && rnd() < 0.5) steps.push({ k: "ack", turn: i }); // the target has request i
      flushLate(false);
      const shape = rnd();
      if (shape < 0.1) continue; // no answer from the target
      const text = shape < 0.3
        ? http(200, body.toUpperCase())
        : shape < 0.4
        ? http(503, body)
        : online;
      const parts = rnd() < 0.25 ? [text.slice(0, 20), text.slice(20)] : [text];
      parts.forEach((p, part) => {
        const out = part > 0 && rnd() < 0.5 ? tail : steps;
        out.push({ k: "reply", turn: i, len: p.length });
        const answer: Step = { k: "answer", turn: i, text: p, part, seq: tSeq };
        tSeq += p.length;
        if (out === steps && rnd() < 0.4) late.push(answer);
        else out.push(answer);
        if (rnd() < 0.3) out.push({ k: "tick" });
      });
    }
    steps.push(...tail);
    flushLate(true);
    steps.push({ k: "fin" });
    return steps;
  };
  const play = (steps: Step[], early: boolean, headFirst = false) => {
    const r = new Rig({ earlyVerdicts: early });
    r.headFirst = headFirst;
    r.open();
    const ends: number[] = [];
    let t = 0;
    for (const s of steps) {
      r.now = t += 7;
      switch (s.k) {
        case "req": {
          const start = r.cSeq;
          if (s.split) {
            r.client(start, r.sSeq, s.text.slice(0, 5), t);
            r.client(start + 5, r.sSeq, s.text.slice(5), t);
          } else r.client(start, r.sSeq, s.text, t);
          r.cSeq += s.text.length;
          ends.push(r.cSeq);
          break;
        }
        case "sent":
          r.sent({ start: s.turn === 0 ? ISN_C + 1 : ends[s.turn - 1], end: ends[s.turn] });
          break;
        case "online":
          r.online(s.text, t);
          break;
        case "reply":
          r.reply(ends[s.turn], s.len);
          break;
        case "ack":
          r.reply(ends[s.turn], 0);
          break;
        case "answer":
          r.answer(ends[s.turn], s.seq, s.text, s.part);
          break;
        case "tick":
          r.at(t);
          break;
        case "fin":
          r.client(r.cSeq, r.sSeq, "", t, FIN | ACK);
          break;
      }
    }
    for (let k = 1; k <= 120; k++) r.at(t + k * 100); // every verdict given (12 s)
    const records = r.records.map((x) => {
      const { time: _, ...rest } = x as unknown as Record<string, unknown>;
      return rest;
    }).sort((a, b) => (a.turn as number) - (b.turn as number));
    const { latencyMs: _l, ...stats } = r.cmp.stats.snapshot();
    return { records, stats, unpaired: r.cmp.unpaired };
  };
  const rnd = mulberry32(1507);
  let early = 0;
  for (let run = 0; run < 300; run++) {
    const steps = script(rnd);
    const a = play(steps, true), b = play(steps, false);
    assert.deepEqual(a, b, `run ${run}: ${JSON.stringify(steps)}`);
    // answers turned down by their header (no pending turn) give the same verdicts too
    assert.deepEqual(play(steps, true, true), a, `run ${run}, headFirst`);
    early += a.records.length;
  }
  assert.ok(early > 300, `${early} verdicts`);
});

Deno.test("pairing: a flow object reused after its connection was forgotten gives a fresh one's verdicts", () => {
  // Connection 1 leaves a flow in some state (turns answered or not, an out-of-order client or
  // server segment still held), is closed and forgotten; connection 2 on the same tuple reuses
  // the flow object and its last turn object (the comparer pools them): its records must be
  // those of the same connection on a fresh comparer.
  const play = (r: Rig, rnd: () => number, t0: number): number => {
    r.cSeq = ISN_C + 1;
    r.sSeq = ISN_S + 1;
    r.tSeq = ISN_T + 1;
    r.now = t0;
    r.open();
    let t = t0;
    const turns = 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < turns; i++) {
      r.now = t += 5;
      const req = r.request(`GET /p${i} HTTP/1.1\r\n\r\n`, t);
      r.sent(req);
      const body = `body ${i}`;
      const shape = rnd();
      r.online(http(200, body), t + 1);
      if (shape < 0.15) continue; // the target is silent
      r.now = t += 2;
      r.target(req.end, shape < 0.4 ? http(200, body.toUpperCase()) : http(200, body));
      if (rnd() < 0.3) r.at(t);
    }
    if (rnd() < 0.3) r.client(r.cSeq + 50, r.sSeq, "beyond a hole", t); // held, never filled
    if (rnd() < 0.3) r.server(r.sSeq + 70, "beyond a hole", t); // held, never filled
    const fin = rnd() < 0.5;
    r.client(r.cSeq, r.sSeq, "", t, (fin ? FIN : RST) | ACK);
    r.cmp.onSessionClose(REWRITTEN, TARGET, t);
    for (let k = 1; k <= 130; k++) r.at(t + k * 100); // every verdict, then forgotten
    return t + 130 * 100;
  };
  const normal = (records: CompareRecord[]) =>
    records.map((x) => {
      const { time: _, session: _s, ...rest } = x as unknown as Record<string, unknown>;
      return rest;
    });
  const rnd = mulberry32(2027);
  const shared = new Rig();
  let t = 0, reused = 0;
  for (let run = 0; run < 200; run++) {
    const seed = Math.floor(rnd() * 2 ** 31);
    const before = shared.records.length;
    t = play(shared, mulberry32(seed), t);
    const fresh = new Rig();
    play(fresh, mulberry32(seed), 0); // (latencies are differences: the start does not matter)
    const got = normal(shared.records.slice(before)), want = normal(fresh.records);
    assert.deepEqual(got, want, `run ${run}`);
    assert.equal(shared.cmp.line().flows, 0); // forgotten: the next run reuses its objects
    reused += got.length;
  }
  assert.ok(reused > 300, `${reused} records`);
});

Deno.test("pairing: without --compare-all, same answers count as matches and only the others are records", () => {
  // (identical summaries skip the comparator when no record is written: the counts and the
  // records must be those of the comparator)
  const r = new Rig({ all: false });
  r.open();
  const texts: [string, string][] = [
    [http(200, "same"), http(200, "same")], // identical: shared first bytes
    [http(200, "online body"), http(200, "target body")], // body
    [http(200, "x", "Date: a\r\n"), http(200, "x", "Date: b\r\n")], // ignored header only
    [http(200, "y"), http(500, "y")], // status
    [http(200, "same again"), http(200, "same again")],
  ];
  texts.forEach(([online, target], i) => {
    const q = r.request(`GET /t${i} HTTP/1.1\r\n\r\n`, 100 + 10 * i);
    r.at(1 + 10 * i);
    r.sent(q);
    r.online(online, 101 + 10 * i);
    r.at(3 + 10 * i);
    r.target(q.end, target);
  });
  r.client(r.cSeq, r.sSeq, "", 200, FIN | ACK);
  r.at(60);
  r.at(3000);
  assert.deepEqual(r.records.map((x) => [x.turn, x.reason]), [[2, "body"], [4, "status"]]);
  const line = r.cmp.line();
  assert.equal(line.compared, 5);
  assert.equal(line.matched, 3);
  assert.equal(line.partial, 0);
  assert.equal(line.mismatched.body, 1);
  assert.equal(line.mismatched.status, 1);
  assert.equal(line.latencyMs.online.count, 5);
  assert.equal(line.latencyMs.target.count, 5);
});
