/**
 * `--compare` with several replayed sessions of one connection (lib/tcpcopy/comparer.ts): the
 * transfers of one online port to two targets, and `-n` copies. Every session is compared on
 * its own (its own turns, target answers and verdicts), its records name it (`targetAddr`,
 * `copy`), the stats line's totals count all of them and `compare.targets` each target's.
 * Driven with scripted segments as in compare_pairing.test.ts.
 */
import assert from "node:assert/strict";
import { summarize } from "../../lib/compare/answer.ts";
import type { CompareRecord } from "../../lib/compare/record.ts";
import type { TargetAnswer } from "../../lib/compare/target_answer.ts";
import { endpointOf } from "../../lib/engine/endpoint.ts";
import type { Endpoint } from "../../lib/engine/segment.ts";
import {
  ACC_COST,
  Comparer,
  type ComparerOptions,
  FLOW_COMPARE_COST,
} from "../../lib/tcpcopy/comparer.ts";
import { HEAD_KEEP, TURN_COST } from "../../lib/tcpcopy/compare_flow.ts";
import { compareSummaryLines } from "../../lib/tcpcopy/compare_output.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const ACK = 0x10, FIN = 0x01, SYN = 0x02;

const CLIENT = endpointOf("192.0.2.7", 41000);
const SERVER = endpointOf("192.0.2.1", 80);
const ORIGINAL = { client: CLIENT, server: SERVER };
const ISN_C = 1000, ISN_S = 50_000;

function http(status: number, body: string): string {
  return `HTTP/1.1 ${status} ${status === 200 ? "OK" : "Other"}\r\nContent-Length: ${body.length}` +
    `\r\n\r\n${body}`;
}

/** One replayed session: its rewritten client, target, copy index and reply sequence number. */
interface Sess {
  client: Endpoint;
  target: Endpoint;
  copy: number;
  tSeq: number;
}

/** The online connection (shared) and the replayed sessions following it. */
class Rig {
  readonly records: CompareRecord[] = [];
  readonly cmp: Comparer;
  now = 0;
  cSeq = ISN_C + 1;
  sSeq = ISN_S + 1;

  constructor(opts: Partial<ComparerOptions> = {}) {
    this.cmp = new Comparer({
      firstBytes: 1024,
      proto: "auto",
      ignoreHeaders: [],
      all: true,
      budgetBytes: 1 << 20,
      emit: (r) => this.records.push(JSON.parse(JSON.stringify(r))),
      ...opts,
    });
  }

  session(client: Endpoint, target: Endpoint, copy: number, isn: number): Sess {
    this.cmp.onSessionOpen(client, target, ORIGINAL, copy, false, this.now);
    this.cmp.onReply(target, client, isn, ISN_C + 1, SYN | ACK, 0, this.now);
    return { client, target, copy, tSeq: isn + 1 };
  }

  handshake(): void {
    this.cmp.onClient(CLIENT, SERVER, seg(ISN_C, 0, SYN, ""), this.now, this.now);
    this.cmp.onServer(SERVER, CLIENT, seg(ISN_S, ISN_C + 1, SYN | ACK, ""), this.now, this.now);
  }

  request(text: string, at = this.now): { start: number; end: number } {
    const start = this.cSeq;
    this.cmp.onClient(CLIENT, SERVER, seg(start, this.sSeq, ACK, text), at, this.now);
    this.cSeq += text.length;
    return { start, end: this.cSeq };
  }

  online(text: string, at = this.now): void {
    this.cmp.onServer(SERVER, CLIENT, seg(this.sSeq, this.cSeq, ACK, text), at, this.now);
    this.sSeq += text.length;
  }

  sent(s: Sess, r: { start: number; end: number }): void {
    this.cmp.onSent(s.client, s.target, r.start, r.end - r.start, this.now);
  }

  /** `s`'s target answers `text` to the request ending at `ack` (reply header, then summary). */
  target(s: Sess, ack: number, text: string): void {
    const seq = s.tSeq;
    this.cmp.onReply(s.target, s.client, seq, ack, ACK, text.length, this.now);
    s.tSeq += text.length;
    const a: TargetAnswer = {
      client: { addr: s.client.addr, port: s.client.port },
      target: { addr: s.target.addr, port: s.target.port },
      ack,
      seq,
      part: 0,
      summary: summarize(enc(text)),
    };
    if (this.cmp.answerWanted(a)) this.cmp.onAnswer(a, this.now);
  }

  close(): void {
    this.cmp.onClient(CLIENT, SERVER, seg(this.cSeq, this.sSeq, FIN | ACK, ""), this.now, this.now);
  }

  at(ms: number): void {
    this.now = ms;
    this.cmp.tick(ms);
  }
}

function seg(seq: number, ack: number, flags: number, text: string) {
  return { seq: seq >>> 0, ack: ack >>> 0, flags, payload: enc(text) };
}

const PATHS = ["/a", "/b", "/c"];

/**
 * A keep-alive connection of three requests replayed by `sessions` (opened with the
 * connection): the online server answers "same" to each; `answer(s, i)` is session `s`'s
 * target body for request `i`. Sessions answer in turn, in the order given (or reversed); the
 * clock starts at `t0`.
 */
function drive(
  rig: Rig,
  sessions: Sess[],
  answer: (s: Sess, i: number) => string,
  reversed = false,
  t0 = 1,
): void {
  let t = t0;
  for (let i = 0; i < PATHS.length; i++) {
    const r = rig.request(`GET ${PATHS[i]} HTTP/1.1\r\nHost: x\r\n\r\n`, t * 10);
    rig.at(t++);
    for (const s of sessions) rig.sent(s, r);
    rig.online(http(200, "same"), t * 10 + 2);
    rig.at(t++);
    const order = reversed ? [...sessions].reverse() : sessions;
    for (const s of order) rig.target(s, r.end, http(200, answer(s, i)));
  }
  rig.close();
  for (const s of sessions) rig.cmp.onSessionClose(s.client, s.target, t);
  rig.at(t + 5000);
}

/** The records as [target, copy, turn, path-ish request, verdict], sorted. */
function verdicts(rig: Rig): (string | number | undefined)[][] {
  return rig.records.map((r) => [
    r.targetAddr,
    r.copy,
    r.turn,
    r.request.split(" ")[1],
    r.match ? "match" : r.reason!,
  ]).sort((a, b) => String(a).localeCompare(String(b)));
}

const REWRITTEN = endpointOf("10.1.0.7", 41000);
const TARGET_A = endpointOf("10.9.0.2", 80);
const TARGET_B = endpointOf("10.9.0.3", 80);

Deno.test("sessions: two transfers of one port are both compared; only the differing target's records mismatch", () => {
  for (const reversed of [false, true]) {
    const rig = new Rig();
    // (both sessions have the same rewritten client: only the target tells them apart)
    const a = rig.session(REWRITTEN, TARGET_A, 0, 900_000);
    const b = rig.session(REWRITTEN, TARGET_B, 0, 4_000_000_000); // (wraps 2^32 on the way)
    rig.handshake();
    drive(rig, [a, b], (s, i) => s === b && i === 1 ? "diff" : "same", reversed);
    assert.deepEqual(verdicts(rig), [
      ["10.9.0.2:80", 0, 1, "/a", "match"],
      ["10.9.0.2:80", 0, 2, "/b", "match"],
      ["10.9.0.2:80", 0, 3, "/c", "match"],
      ["10.9.0.3:80", 0, 1, "/a", "match"],
      ["10.9.0.3:80", 0, 2, "/b", "body"],
      ["10.9.0.3:80", 0, 3, "/c", "match"],
    ], `reversed ${reversed}`);
    // each session has its own number
    const ids = new Set(rig.records.map((r) => `${r.targetAddr} ${r.session}`));
    assert.equal(new Set(rig.records.map((r) => r.session)).size, 2);
    assert.equal(ids.size, 2);
    const line = rig.cmp.line();
    assert.equal(line.compared, 6);
    assert.equal(line.matched, 5);
    assert.equal(line.mismatched.body, 1);
    assert.equal(line.skipped, 0);
    assert.equal(rig.cmp.unpaired, 0);
    assert.deepEqual(line.targets, {
      "10.9.0.2:80": { compared: 3, matched: 3, mismatched: 0 },
      "10.9.0.3:80": { compared: 3, matched: 2, mismatched: 1 },
    });
    assert.ok(
      compareSummaryLines(rig.cmp).includes(
        "compare: by target: 10.9.0.2:80 3 compared, 0 mismatched; " +
          "10.9.0.3:80 3 compared, 1 mismatched",
      ),
    );
    assert.equal(line.flows, 0, "both sessions' flows forgotten");
    assert.equal(line.state_bytes, 0, "their budget given back");
  }
});

Deno.test("sessions: -n copies are each compared; a copy's answers name it", () => {
  const rig = new Rig();
  const c0 = rig.session(REWRITTEN, TARGET_A, 0, 900_000);
  const c1 = rig.session(endpointOf("10.1.0.7", 41001), TARGET_A, 1, 1_900_000);
  const c2 = rig.session(endpointOf("10.1.0.7", 41002), TARGET_A, 2, 2_900_000);
  rig.handshake();
  drive(rig, [c0, c1, c2], (s, i) => s === c1 && i !== 1 ? "diff" : "same");
  assert.deepEqual(verdicts(rig), [
    ["10.9.0.2:80", 0, 1, "/a", "match"],
    ["10.9.0.2:80", 0, 2, "/b", "match"],
    ["10.9.0.2:80", 0, 3, "/c", "match"],
    ["10.9.0.2:80", 1, 1, "/a", "body"],
    ["10.9.0.2:80", 1, 2, "/b", "match"],
    ["10.9.0.2:80", 1, 3, "/c", "body"],
    ["10.9.0.2:80", 2, 1, "/a", "match"],
    ["10.9.0.2:80", 2, 2, "/b", "match"],
    ["10.9.0.2:80", 2, 3, "/c", "match"],
  ]);
  const line = rig.cmp.line();
  assert.equal(line.compared, 9);
  assert.equal(line.mismatched.body, 2);
  assert.deepEqual(line.targets, {
    "10.9.0.2:80": { compared: 9, matched: 7, mismatched: 2 },
  });
  assert.equal(rig.cmp.unpaired, 0);
});

Deno.test("sessions: a session whose target answers nothing is missing there only; one that closes early leaves the others going", () => {
  const rig = new Rig();
  const a = rig.session(REWRITTEN, TARGET_A, 0, 900_000);
  const b = rig.session(REWRITTEN, TARGET_B, 0, 2_000_000);
  rig.handshake();
  const r1 = rig.request("GET /a HTTP/1.1\r\n\r\n", 10);
  rig.at(1);
  rig.sent(a, r1);
  rig.sent(b, r1);
  rig.online(http(200, "same"), 12);
  rig.at(2);
  rig.target(a, r1.end, http(200, "same")); // b stays silent, and its session ends
  rig.cmp.onSessionClose(b.client, b.target, 3);
  const r2 = rig.request("GET /b HTTP/1.1\r\n\r\n", 30);
  rig.at(4);
  rig.sent(a, r2);
  rig.online(http(200, "same"), 32);
  rig.at(5);
  rig.target(a, r2.end, http(200, "same"));
  rig.close();
  rig.at(2_500);
  rig.at(5_000);
  assert.deepEqual(verdicts(rig), [
    ["10.9.0.2:80", 0, 1, "/a", "match"],
    ["10.9.0.2:80", 0, 2, "/b", "match"],
    ["10.9.0.3:80", 0, 1, "/a", "missing"],
    ["10.9.0.3:80", 0, 2, "/b", "missing"],
  ]);
});

Deno.test("sessions: the budget is per followed session: over it the second session is skipped, the first compared", () => {
  // room for one session's flow, accumulator and first turn, not for a second flow besides
  const one = FLOW_COMPARE_COST + ACC_COST + 1024 + TURN_COST + HEAD_KEEP;
  const rig = new Rig({ budgetBytes: one + FLOW_COMPARE_COST - 1 });
  const a = rig.session(REWRITTEN, TARGET_A, 0, 900_000);
  assert.equal(rig.cmp.line().flows, 1);
  assert.equal(rig.cmp.stateBytes, FLOW_COMPARE_COST);
  rig.handshake();
  const r1 = rig.request("GET /a HTTP/1.1\r\n\r\n", 10);
  assert.equal(rig.cmp.stateBytes, one);
  const b = rig.session(REWRITTEN, TARGET_B, 0, 2_000_000);
  assert.equal(rig.cmp.line().flows, 1, "the second session is not followed");
  assert.equal(rig.cmp.line().skipped, 1);
  rig.at(1);
  rig.sent(a, r1);
  rig.sent(b, r1);
  rig.online(http(200, "same"), 12);
  rig.at(2);
  rig.target(a, r1.end, http(200, "same"));
  rig.target(b, r1.end, http(200, "same"));
  rig.close();
  rig.at(20_000);
  assert.deepEqual(verdicts(rig), [["10.9.0.2:80", 0, 1, "/a", "match"]]);
  assert.equal(rig.cmp.unpaired, 1, "the unfollowed session's answer");
});

Deno.test("sessions: a reopened session of the same copy and target goes on in its flow; forgetting any flow of a chain keeps the others", () => {
  const rig = new Rig();
  const a = rig.session(REWRITTEN, TARGET_A, 0, 900_000);
  const b = rig.session(REWRITTEN, TARGET_B, 0, 2_000_000);
  const c = rig.session(endpointOf("10.1.0.7", 41001), TARGET_A, 1, 3_000_000);
  assert.equal(rig.cmp.line().flows, 3);
  rig.handshake();
  // the first session (the chain's first flow) ends and a new one of the same copy and target
  // opens (another rewritten port: a capture gap's new session): the flow goes on, turn 2
  rig.cmp.onSessionClose(a.client, a.target, 0);
  const a2 = rig.session(endpointOf("10.1.0.7", 42000), TARGET_A, 0, 5_000_000);
  assert.equal(rig.cmp.line().flows, 3);
  drive(rig, [a2, b, c], (s, i) => s === b && i === 2 ? "diff" : "same");
  assert.deepEqual(verdicts(rig), [
    ["10.9.0.2:80", 0, 1, "/a", "match"],
    ["10.9.0.2:80", 0, 2, "/b", "match"],
    ["10.9.0.2:80", 0, 3, "/c", "match"],
    ["10.9.0.2:80", 1, 1, "/a", "match"],
    ["10.9.0.2:80", 1, 2, "/b", "match"],
    ["10.9.0.2:80", 1, 3, "/c", "match"],
    ["10.9.0.3:80", 0, 1, "/a", "match"],
    ["10.9.0.3:80", 0, 2, "/b", "match"],
    ["10.9.0.3:80", 0, 3, "/c", "body"],
  ]);
  assert.equal(rig.cmp.line().flows, 0);
  assert.equal(rig.cmp.stateBytes, 0);
});

Deno.test("sessions: flows forgotten from the chain's start or middle leave the others followed", () => {
  for (const gone of [["a"], ["b"], ["a", "b"], ["c"]]) {
    const rig = new Rig();
    const all: Record<string, Sess> = {
      a: rig.session(REWRITTEN, TARGET_A, 0, 900_000),
      b: rig.session(REWRITTEN, TARGET_B, 0, 2_000_000),
      c: rig.session(endpointOf("10.1.0.7", 41001), TARGET_A, 1, 3_000_000),
    };
    rig.handshake();
    // the sessions named in `gone` end before the first request and are forgotten
    for (const k of gone) rig.cmp.onSessionClose(all[k].client, all[k].target, 0);
    rig.at(3_000);
    assert.equal(rig.cmp.line().flows, 3 - gone.length, gone.join());
    const left = Object.keys(all).filter((k) => !gone.includes(k)).map((k) => all[k]);
    // a session opened now joins the chain that is left
    const d = rig.session(endpointOf("10.1.0.7", 41002), TARGET_B, 2, 4_000_000);
    drive(rig, [...left, d], (s, i) => s === d && i === 0 ? "diff" : "same", false, 3_001);
    const want = [...left, d].flatMap((s) =>
      PATHS.map((p, i) => [
        `${s.target === TARGET_A ? "10.9.0.2" : "10.9.0.3"}:80`,
        s.copy,
        i + 1,
        p,
        s === d && i === 0 ? "body" : "match",
      ])
    ).sort((a, b) => String(a).localeCompare(String(b)));
    // (d met the connection mid-stream: no SYN; its turns start at its first request)
    assert.deepEqual(verdicts(rig), want, gone.join());
    assert.equal(rig.cmp.unpaired, 0);
    assert.equal(rig.cmp.line().flows, 0);
    assert.equal(rig.cmp.stateBytes, 0);
  }
});
