/**
 * `--compare` with several replayed sessions of one connection (lib/tcpcopy/comparer.ts): the
 * transfers of one online port to two targets, and `-n` copies. Every session is compared on
 * its own (its own turns, target answers and verdicts), its records name it (`targetAddr`,
 * `copy`), the stats line's totals count all of them and `compare.targets` each target's.
 * Driven with scripted segments as in compare_pairing.test.ts.
 */
import assert from "node:assert/strict";
import { summarize } from "../../lib/compare/answer.ts";
import type { TargetAnswer } from "../../lib/compare/target_answer.ts";
import { endpointOf } from "../../lib/engine/endpoint.ts";
import { mulberry32 } from "../helpers/prng.ts";
import { ACC_COST, FLOW_COMPARE_COST } from "../../lib/tcpcopy/comparer.ts";
import { HEAD_KEEP, TURN_COST } from "../../lib/tcpcopy/compare_flow.ts";
import { compareSummaryLines } from "../../lib/tcpcopy/compare_output.ts";
import { ACK, drive, enc, http, ISN_C, PATHS, Rig, type Sess } from "../helpers/compare_rig.ts";

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

Deno.test("sessions: on random keep-alive exchanges, each of two sessions gives the records of its own single-session run", () => {
  // One script of events: the online side (requests, online answers, ticks, the client's FIN)
  // once; the target side (replayed requests, reply headers, ACKs, tunnel summaries) for each
  // session. Session B's target answers some turns with other bytes of the same length. Played
  // with both sessions on one comparer, and with each alone on a fresh one: the records of a
  // session must be those of its own run (its number, target and copy aside).
  type Step =
    | { k: "req"; text: string }
    | { k: "sent"; turn: number }
    | { k: "online"; text: string }
    | { k: "reply"; turn: number; len: number }
    | { k: "ack"; turn: number }
    | { k: "answer"; turn: number; text: string; part: number; off: number }
    | { k: "tick" }
    | { k: "fin" };
  const script = (rnd: () => number): Step[] => {
    const steps: Step[] = [];
    const late: Step[] = [];
    let off = 0;
    const turns = 1 + Math.floor(rnd() * 6);
    for (let i = 0; i < turns; i++) {
      const path = `/r${i}`;
      steps.push({ k: "req", text: `GET ${path} HTTP/1.1\r\n\r\n` });
      if (rnd() < 0.3) steps.push({ k: "tick" });
      steps.push({ k: "sent", turn: i });
      const body = `body of ${path}`;
      const online = http(200, body);
      steps.push({ k: "online", text: online });
      if (i > 0 && rnd() < 0.5) steps.push({ k: "ack", turn: i });
      while (late.length > 0 && rnd() < 0.5) steps.push(late.shift()!);
      const shape = rnd();
      if (shape < 0.1) continue; // no answer from the target
      const text = shape < 0.3
        ? http(200, body.toUpperCase())
        : shape < 0.4
        ? http(503, body)
        : online;
      const parts = rnd() < 0.25 ? [text.slice(0, 20), text.slice(20)] : [text];
      parts.forEach((p, part) => {
        steps.push({ k: "reply", turn: i, len: p.length });
        const answer: Step = { k: "answer", turn: i, text: p, part, off };
        off += p.length;
        if (rnd() < 0.4) late.push(answer);
        else steps.push(answer);
        if (rnd() < 0.3) steps.push({ k: "tick" });
      });
    }
    steps.push(...late);
    steps.push({ k: "fin" });
    return steps;
  };
  /** Session B's answer bytes: odd turns' bodies in capitals (the same length). */
  const other = (turn: number, text: string) =>
    turn % 2 === 1 ? text.replace("body of", "BODY OF") : text;
  const B_CLIENT = endpointOf("10.1.0.7", 41001);
  // B: another transfer (the same rewritten client, another target) or a copy (another client)
  const play = (steps: Step[], which: ("a" | "b")[], reversed: boolean, copy: boolean) => {
    const rig = new Rig();
    const ss = which.map((w) =>
      w === "a" ? { s: rig.session(REWRITTEN, TARGET_A, 0, 900_000), b: false } : {
        s: rig.session(copy ? B_CLIENT : REWRITTEN, TARGET_B, copy ? 1 : 0, 4_294_967_000),
        b: true,
      } // (wraps 2^32)
    );
    const isns = ss.map((x) => x.s.tSeq);
    rig.handshake();
    const ends: number[] = [];
    let t = 0;
    const each = (fn: (x: { s: Sess; b: boolean }, k: number) => void) => {
      const order = ss.map((x, k) => [x, k] as const);
      if (reversed) order.reverse();
      for (const [x, k] of order) fn(x, k);
    };
    for (const st of steps) {
      rig.now = t += 7;
      switch (st.k) {
        case "req":
          ends.push(rig.request(st.text, t).end);
          break;
        case "sent":
          each((x) =>
            rig.sent(x.s, {
              start: st.turn === 0 ? ISN_C + 1 : ends[st.turn - 1],
              end: ends[st.turn],
            })
          );
          break;
        case "online":
          rig.online(st.text, t);
          break;
        case "reply":
        case "ack": {
          const len = st.k === "reply" ? st.len : 0;
          each((x) => {
            // (the reply's own sequence number: its session's next reply byte)
            rig.cmp.onReply(x.s.target, x.s.client, x.s.tSeq >>> 0, ends[st.turn], ACK, len, t);
            x.s.tSeq += len;
          });
          break;
        }
        case "answer":
          each((x, k) => {
            const a: TargetAnswer = {
              client: { addr: x.s.client.addr, port: x.s.client.port },
              target: { addr: x.s.target.addr, port: x.s.target.port },
              ack: ends[st.turn],
              seq: (isns[k] + st.off) >>> 0,
              part: st.part,
              summary: summarize(enc(x.b ? other(st.turn, st.text) : st.text)),
            };
            if (rig.cmp.answerWanted(a)) rig.cmp.onAnswer(a, t);
          });
          break;
        case "tick":
          rig.at(t);
          break;
        case "fin":
          rig.close();
          break;
      }
    }
    for (let k = 1; k <= 120; k++) rig.at(t + k * 100);
    const byTarget = (target: string) =>
      rig.records.filter((r) => r.targetAddr === target).map((x) => {
        const { time: _, session: _s, targetAddr: _t, copy: _c, ...rest } = x as unknown as Record<
          string,
          unknown
        >;
        return rest;
      }).sort((a, b) => (a.turn as number) - (b.turn as number));
    return {
      a: byTarget("10.9.0.2:80"),
      b: byTarget("10.9.0.3:80"),
      line: rig.cmp.line(),
      unpaired: rig.cmp.unpaired,
    };
  };
  const rnd = mulberry32(1515);
  let n = 0, differ = 0;
  for (let run = 0; run < 200; run++) {
    const steps = script(rnd);
    const copy = run % 4 >= 2;
    const both = play(steps, ["a", "b"], run % 2 === 1, copy);
    const a = play(steps, ["a"], false, copy), b = play(steps, ["b"], false, copy);
    const tag = `run ${run}: ${JSON.stringify(steps)}`;
    assert.deepEqual(both.a, a.a, tag);
    assert.deepEqual(both.b, b.b, tag);
    assert.equal(both.unpaired, a.unpaired + b.unpaired, tag);
    assert.equal(both.line.compared, a.line.compared + b.line.compared, tag);
    assert.equal(both.line.matched, a.line.matched + b.line.matched, tag);
    assert.equal(both.line.skipped, a.line.skipped + b.line.skipped, tag);
    assert.deepEqual(both.line.targets, { ...a.line.targets, ...b.line.targets }, tag);
    n += both.a.length + both.b.length;
    differ += both.b.filter((r, i) => r.match !== both.a[i]?.match).length;
  }
  assert.ok(n > 600, `${n} records`);
  assert.ok(differ > 30, `${differ} turns with other verdicts on B`);
});
