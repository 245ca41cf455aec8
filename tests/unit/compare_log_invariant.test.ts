/**
 * What `--compare-log` is promised (lib/tcpcopy/comparer.ts): with `--compare-all` every
 * compared turn gives exactly one record, so the records equal `compare.compared` (in total,
 * matched, and per target); without it, the records are exactly the mismatches. Held over
 * random keep-alive scripts on one or two sessions of a connection, with the early verdicts
 * and the verdict memo on and off, with identical answers on both sides (the comparator-free
 * match), other bodies, other statuses, unanswered and split answers, summaries arriving late,
 * and a shutdown (`closeAll`) at a random point or after every verdict came by ticks.
 */
import assert from "node:assert/strict";
import { summarize } from "../../lib/compare/answer.ts";
import type { CompareRecord } from "../../lib/compare/record.ts";
import type { TargetAnswer } from "../../lib/compare/target_answer.ts";
import { endpointOf } from "../../lib/engine/endpoint.ts";
import type { Endpoint } from "../../lib/engine/segment.ts";
import { mulberry32 } from "../helpers/prng.ts";
import type { ComparerOptions } from "../../lib/tcpcopy/comparer.ts";
import { recordingComparer } from "../helpers/compare_rig.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const ACK = 0x10, FIN = 0x01, SYN = 0x02;

const CLIENT = endpointOf("192.0.2.7", 41000);
const SERVER = endpointOf("192.0.2.1", 80);
const ORIGINAL = { client: CLIENT, server: SERVER };
const ISN_C = 1000, ISN_S = 50_000;
const REWRITTEN = endpointOf("10.1.0.7", 41000);
const COPY_CLIENT = endpointOf("10.1.0.7", 41001);
const TARGET_A = endpointOf("10.9.0.2", 80);
const TARGET_B = endpointOf("10.9.0.3", 80);

function http(status: number, body: string): string {
  return `HTTP/1.1 ${status} ${status === 200 ? "OK" : "Other"}\r\nContent-Length: ${body.length}` +
    `\r\n\r\n${body}`;
}

function seg(seq: number, ack: number, flags: number, text: string) {
  return { seq: seq >>> 0, ack: ack >>> 0, flags, payload: enc(text) };
}

type Step =
  | { k: "req"; text: string }
  | { k: "sent"; turn: number }
  | { k: "online"; text: string }
  | { k: "reply"; turn: number; len: number }
  | { k: "answer"; turn: number; text: string; part: number; off: number }
  | { k: "tick" }
  | { k: "fin" };

/** A random keep-alive exchange (the online side once, the target side per session). */
function script(rnd: () => number): Step[] {
  const steps: Step[] = [];
  const late: Step[] = [];
  let off = 0;
  const turns = 1 + Math.floor(rnd() * 8);
  for (let i = 0; i < turns; i++) {
    // repeated paths: the memo sees the same two answers again
    const path = `/r${Math.floor(rnd() * 3)}`;
    steps.push({ k: "req", text: `GET ${path} HTTP/1.1\r\n\r\n` });
    if (rnd() < 0.3) steps.push({ k: "tick" });
    steps.push({ k: "sent", turn: i });
    const body = `body of ${path}`;
    const online = http(200, body);
    steps.push({ k: "online", text: online });
    while (late.length > 0 && rnd() < 0.5) steps.push(late.shift()!);
    const shape = rnd();
    if (shape < 0.1) continue; // no answer from the target
    const text = shape < 0.25
      ? http(200, body.toUpperCase())
      : shape < 0.35
      ? http(503, body)
      : online; // identical: the comparator-free match
    const parts = rnd() < 0.25 ? [text.slice(0, 20), text.slice(20)] : [text];
    parts.forEach((p, part) => {
      steps.push({ k: "reply", turn: i, len: p.length });
      const answer: Step = { k: "answer", turn: i, text: p, part, off };
      off += p.length;
      if (rnd() < 0.3) late.push(answer);
      else steps.push(answer);
      if (rnd() < 0.3) steps.push({ k: "tick" });
    });
  }
  steps.push(...late);
  if (rnd() < 0.8) steps.push({ k: "fin" });
  return steps;
}

interface Sess {
  client: Endpoint;
  target: Endpoint;
  copy: number;
  isn: number;
  tSeq: number;
}

/**
 * Plays `steps` on a fresh comparer with `sessions` sessions (the second: another target, or
 * a copy); ends by ticks (`shutdownAt` null) or by `closeAll` after that many steps.
 */
function play(
  steps: Step[],
  opts: Partial<ComparerOptions>,
  sessions: 1 | 2,
  copy: boolean,
  shutdownAt: number | null,
) {
  const records: CompareRecord[] = [];
  const cmp = recordingComparer(records, opts);
  const ss: Sess[] = [{ client: REWRITTEN, target: TARGET_A, copy: 0, isn: 900_000, tSeq: 0 }];
  if (sessions === 2) {
    ss.push({
      client: copy ? COPY_CLIENT : REWRITTEN,
      target: copy ? TARGET_A : TARGET_B,
      copy: copy ? 1 : 0,
      isn: 4_294_967_000, // (wraps 2^32)
      tSeq: 0,
    });
  }
  let t = 0;
  for (const s of ss) {
    cmp.onSessionOpen(s.client, s.target, ORIGINAL, s.copy, false, t);
    cmp.onReply(s.target, s.client, s.isn, ISN_C + 1, SYN | ACK, 0, t);
    s.tSeq = s.isn + 1;
  }
  cmp.onClient(CLIENT, SERVER, seg(ISN_C, 0, SYN, ""), t, t);
  cmp.onServer(SERVER, CLIENT, seg(ISN_S, ISN_C + 1, SYN | ACK, ""), t, t);
  let cSeq = ISN_C + 1, sSeq = ISN_S + 1;
  const ends: number[] = [];
  const last = shutdownAt ?? steps.length;
  for (const st of steps.slice(0, last)) {
    t += 7;
    switch (st.k) {
      case "req":
        cmp.onClient(CLIENT, SERVER, seg(cSeq, sSeq, ACK, st.text), t, t);
        cSeq += st.text.length;
        ends.push(cSeq);
        break;
      case "sent": {
        const start = st.turn === 0 ? ISN_C + 1 : ends[st.turn - 1];
        for (const s of ss) cmp.onSent(s.client, s.target, start, ends[st.turn] - start, t);
        break;
      }
      case "online":
        cmp.onServer(SERVER, CLIENT, seg(sSeq, cSeq, ACK, st.text), t, t);
        sSeq += st.text.length;
        break;
      case "reply":
        for (const s of ss) {
          cmp.onReply(s.target, s.client, s.tSeq >>> 0, ends[st.turn], ACK, st.len, t);
          s.tSeq += st.len;
        }
        break;
      case "answer":
        ss.forEach((s, k) => {
          // the second session's target answers odd turns with other bytes (same length)
          const text = k === 1 && st.turn % 2 === 1
            ? st.text.replace("body of", "BODY OF")
            : st.text;
          const a: TargetAnswer = {
            client: { addr: s.client.addr, port: s.client.port },
            target: { addr: s.target.addr, port: s.target.port },
            ack: ends[st.turn],
            seq: (s.isn + 1 + st.off) >>> 0,
            part: st.part,
            summary: summarize(enc(text)),
          };
          if (cmp.answerWanted(a)) cmp.onAnswer(a, t);
        });
        break;
      case "tick":
        cmp.tick(t);
        break;
      case "fin":
        cmp.onClient(CLIENT, SERVER, seg(cSeq, sSeq, FIN | ACK, ""), t, t);
        for (const s of ss) cmp.onSessionClose(s.client, s.target, t);
        break;
    }
  }
  if (shutdownAt === null) {
    for (let k = 1; k <= 120; k++) cmp.tick(t + k * 100);
  } else cmp.closeAll(t + 1);
  return { records, line: cmp.line() };
}

Deno.test("compare log: with --compare-all, records = compared (total, matched, per target) on random scripts", () => {
  const rnd = mulberry32(15015);
  let records = 0, identical = 0, mismatches = 0, closed = 0;
  for (let run = 0; run < 400; run++) {
    const steps = script(rnd);
    const opts: Partial<ComparerOptions> = {
      earlyVerdicts: run % 2 === 0,
      verdictMemo: run % 4 < 2,
    };
    const sessions = run % 3 === 0 ? 2 : 1;
    const shutdownAt = run % 5 < 2 ? Math.floor(rnd() * (steps.length + 1)) : null;
    const { records: recs, line } = play(steps, opts, sessions, run % 6 === 3, shutdownAt);
    const tag = `run ${run} ${JSON.stringify({ opts, sessions, shutdownAt })}: ${
      JSON.stringify(steps)
    }`;
    assert.equal(recs.length, line.compared, tag);
    assert.equal(recs.filter((r) => r.match).length, line.matched, tag);
    for (const [target, counts] of Object.entries(line.targets)) {
      const mine = recs.filter((r) => r.targetAddr === target);
      assert.equal(mine.length, counts.compared, `${target} ${tag}`);
      assert.equal(mine.filter((r) => !r.match).length, counts.mismatched, `${target} ${tag}`);
    }
    // one record per (session, turn)
    const keys = new Set(recs.map((r) => `${r.targetAddr}/${r.copy}/${r.turn}`));
    assert.equal(keys.size, recs.length, tag);
    records += recs.length;
    identical += recs.filter((r) => r.match).length;
    mismatches += recs.filter((r) => !r.match).length;
    if (shutdownAt !== null) closed += recs.length;
  }
  // the paths were taken: matches (identical answers), mismatches, verdicts at a shutdown
  assert.ok(records > 1000, `${records} records`);
  assert.ok(identical > 500, `${identical} matches`);
  assert.ok(mismatches > 200, `${mismatches} mismatches`);
  assert.ok(closed > 200, `${closed} records of runs ended by closeAll`);
});

Deno.test("compare log: without --compare-all, records = mismatched on the same scripts", () => {
  const rnd = mulberry32(15016);
  for (let run = 0; run < 200; run++) {
    const steps = script(rnd);
    const opts: Partial<ComparerOptions> = {
      all: false,
      earlyVerdicts: run % 2 === 0,
      verdictMemo: run % 4 < 2,
    };
    const shutdownAt = run % 5 < 2 ? Math.floor(rnd() * (steps.length + 1)) : null;
    const { records, line } = play(steps, opts, run % 3 === 0 ? 2 : 1, false, shutdownAt);
    const tag = `run ${run}: ${JSON.stringify(steps)}`;
    assert.equal(records.length, line.compared - line.matched, tag);
    assert.ok(records.every((r) => !r.match), tag);
  }
});
