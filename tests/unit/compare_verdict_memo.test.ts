/**
 * `--compare`'s verdict memo (lib/tcpcopy/verdict_memo.ts): a turn bringing the same two answers
 * as the last turn compared gets that turn's verdict, and an online answer held unparsed the
 * kept online answer's digest, without running the comparator or the parser; and online answers
 * sharing the previous pending turn's equal first bytes (lib/tcpcopy/compare_flow.ts). Each held
 * here to a comparer without it on random keep-alive exchanges whose answers repeat, differ in
 * an ignored header, a body, a status, a length, come in parts, with gaps, late (by up to 13
 * turns) or not at all.
 */
import assert from "node:assert/strict";
import { Comparer } from "../../lib/tcpcopy/comparer.ts";
import type { CompareRecord } from "../../lib/compare/record.ts";
import { type AnswerSummary, summarize } from "../../lib/compare/answer.ts";
import type { TurnVerdict } from "../../lib/compare/compare.ts";
import { matched } from "../../lib/compare/result.ts";
import { VerdictMemo } from "../../lib/tcpcopy/verdict_memo.ts";
import { endpointOf } from "../../lib/engine/endpoint.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";
import { recordingComparer } from "../helpers/compare_rig.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const ACK = 0x10, SYN = 0x02, FIN = 0x01;
const CLIENT = endpointOf("192.0.2.7", 41000), SERVER = endpointOf("192.0.2.1", 80);
const REWRITTEN = endpointOf("10.1.0.7", 41000), TARGET = endpointOf("10.9.0.2", 80);

/**
 * An answer with `body`; `chunked`: in two chunks, the first of 200 bytes (so answers of
 * different lengths share their first 256 bytes).
 */
function http(status: number, date: number, body: string, chunked = false): string {
  const head = `HTTP/1.1 ${status} ${status === 200 ? "OK" : "Other"}\r\nServer: nginx\r\n` +
    `Date: Thu, 01 Jan 2026 00:00:0${date} GMT\r\n`;
  if (!chunked) return `${head}Content-Length: ${body.length}\r\n\r\n${body}`;
  const a = body.slice(0, 200), b = body.slice(200);
  return `${head}Transfer-Encoding: chunked\r\n\r\n${a.length.toString(16)}\r\n${a}\r\n` +
    `${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`;
}

type Event = () => void;

/**
 * One exchange of `turns` keep-alive requests as a list of events (made once, played on both
 * comparers): the online answer in one or two packets, sometimes with a hole never filled;
 * the target's answer equal, in another Date, another body or status, in two parts, before or
 * after the online answer ended, or missing.
 */
function exchange(seed: number, cmp: () => Comparer): Event[] {
  const int = randomInt(mulberry32(seed));
  const ev: Event[] = [];
  let now = 0, c = 1001, s = 50_001, t = 900_001;
  const step = (f: Event) => ev.push(f);
  step(() => {
    cmp().onSessionOpen(REWRITTEN, TARGET, { client: CLIENT, server: SERVER }, 0, false, now);
    cmp().onClient(CLIENT, SERVER, { seq: 1000, ack: 0, flags: SYN, payload: enc("") }, now, now);
    cmp().onServer(
      SERVER,
      CLIENT,
      { seq: 50_000, ack: 1001, flags: SYN | ACK, payload: enc("") },
      now,
      now,
    );
    cmp().onReply(TARGET, REWRITTEN, 900_000, 1001, SYN | ACK, 0, now);
  });
  let lateAnswer: Event[] = [];
  // a third of the exchanges lag: the target's answers (and reply headers) come `lag` turns
  // late, in order, so several turns wait with their online answer in (shared when equal)
  const lag = int(3) === 0 ? 2 + int(12) : 0;
  const queue: Event[][] = [];
  const last = { body: "", chunked: false, date: 0, pick: 0 };
  const turns = 2 + int(30);
  for (let k = 0; k < turns; k++) {
    const path = ["/a", "/b", "/a?x"][int(3)];
    const req = enc(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const cs = c, ss = s;
    step(() => {
      now += 5;
      cmp().onClient(CLIENT, SERVER, { seq: cs, ack: ss, flags: ACK, payload: req }, now, now);
      cmp().onSent(REWRITTEN, TARGET, cs, req.length, now);
    });
    ev.push(...lateAnswer); // a target answer that came after this request
    lateAnswer = [];
    while (queue.length > lag) ev.push(...queue.shift()!);
    c += req.length;
    const ce = c;
    // (long bodies: the first bytes hold part of them; the same length with another last
    // byte differs in the digest only, chunked ones of other lengths in the length only)
    // Most turns change one thing of the last turn's answers or nothing (a load repeating
    // itself, the memo's case), the others draw all of them again.
    const again = k > 0 && int(4) !== 0;
    const change = again ? int(6) : -1;
    if (!again || change === 0) {
      const long = 290 + int(2) * 10;
      last.body = ["ok", "ok", "fine", "x".repeat(long), "x".repeat(long - 1) + "y"][int(5)];
    }
    if (!again || change === 1) last.chunked = last.body.length > 200 && int(2) === 0;
    if (!again || change === 2) last.date = int(3) === 0 ? 1 : 0;
    if (!again || change === 3) last.pick = int(10);
    const { body, chunked, date, pick } = last;
    const online = enc(http(200, date, body, chunked));
    const answer = pick === 0 ? null : enc(
      pick === 1
        ? http(200, date, body + "!", chunked)
        : pick === 2
        ? http(500, date, body, chunked)
        : pick === 3 // (another last byte: past the first bytes of a long body)
        ? http(200, date, body.slice(0, -1) + "z", chunked)
        : pick <= 5
        ? http(200, 1 - date, body, chunked)
        : http(200, date, body, chunked),
    );
    // the online answer: one packet, two, or two with the first lost (a gap)
    const cut = 1 + int(online.length - 1);
    const shape = int(6);
    const parts = shape < 3
      ? [[0, online.length]]
      : shape < 5
      ? [[0, cut], [cut, online.length]]
      : [[cut, online.length]];
    for (const [from, to] of parts) {
      step(() => {
        now += 1;
        cmp().onServer(
          SERVER,
          CLIENT,
          { seq: ss + from, ack: ce, flags: ACK, payload: online.subarray(from, to) },
          now,
          now,
        );
      });
    }
    s += online.length;
    if (answer !== null) {
      const ts = t;
      const split = int(5) === 0 ? 1 + int(answer.length - 1) : answer.length;
      const target: Event[] = [];
      for (const [from, to, part] of [[0, split, 0], [split, answer.length, 1]]) {
        if (to <= from) continue;
        const lost = part === 1 && int(3) === 0; // a tail whose summary never comes
        target.push(() => {
          now += 1;
          cmp().onReply(TARGET, REWRITTEN, ts + from, ce, ACK, to - from, now);
          if (lost) return;
          cmp().onAnswer({
            client: { addr: REWRITTEN.addr, port: REWRITTEN.port },
            target: { addr: TARGET.addr, port: TARGET.port },
            ack: ce,
            seq: ts + from,
            part,
            summary: summarize(answer.subarray(from, to), { firstBytes: 256 }),
          }, now);
        });
      }
      t += answer.length;
      if (lag > 0) queue.push(target);
      else if (int(2) === 0) ev.push(...target); // before the online answer ends
      else lateAnswer = target;
    }
    if (int(8) === 0) step(() => cmp().tick(now += 100));
  }
  ev.push(...lateAnswer);
  for (const q of queue) ev.push(...q);
  step(() => {
    cmp().onClient(
      CLIENT,
      SERVER,
      { seq: c, ack: s, flags: FIN | ACK, payload: enc("") },
      now,
      now,
    );
    for (let k = 1; k <= 120; k++) cmp().tick(now + k * 100);
  });
  return ev;
}

function play(seed: number, memo: boolean, all: boolean, share = true) {
  const records: CompareRecord[] = [];
  const c = recordingComparer(records, {
    firstBytes: 256,
    all,
    verdictMemo: memo,
    shareOnline: share,
  });
  for (const e of exchange(seed, () => c)) e();
  return { records, stats: c.stats.snapshot(), unpaired: c.unpaired };
}

Deno.test("verdict memo: a comparer with the memo gives the records and counters of one without", () => {
  let compared = 0, mismatched = 0, partial = 0;
  for (let seed = 1; seed <= 300; seed++) {
    for (const all of [true, false]) {
      const a = play(seed, true, all), b = play(seed, false, all);
      assert.deepEqual(a, b, `seed ${seed}, all ${all}`);
      if (all) {
        compared += a.stats.compared;
        partial += a.stats.partial;
        mismatched += a.records.filter((r) => !r.match).length;
      }
    }
  }
  // (the exchanges reach every kind of verdict)
  assert.ok(
    compared > 3000 && mismatched > 500 && partial > 100,
    `${compared} ${mismatched} ${partial}`,
  );
});

Deno.test("online sharing: online answers sharing the previous turn's equal first bytes give the records and counters of their own copies", () => {
  // (lib/tcpcopy/compare_flow.ts: a lagging replay holds turns whose online answers repeat;
  // the first one's buffer goes to the next turn showing them when it leaves)
  for (let seed = 1; seed <= 300; seed++) {
    for (const all of [true, false]) {
      const a = play(seed, true, all, true), b = play(seed, true, all, false);
      assert.deepEqual(a, b, `seed ${seed}, all ${all}`);
    }
  }
});

Deno.test("verdict memo: every compared field of either answer and the protocol are part of the key", () => {
  const memo = new VerdictMemo(256);
  const answer = enc(http(200, 0, "x".repeat(300)));
  const online = summarize(answer, { firstBytes: 256 }),
    target = summarize(answer, { firstBytes: 256 });
  const verdict: TurnVerdict = { proto: "http", result: matched() };
  assert.equal(memo.verdictFor("http", online, target), null); // nothing kept yet
  memo.keep("http", online, target, verdict);
  assert.equal(memo.verdictFor("http", { ...online }, { ...target }), verdict);
  assert.equal(memo.verdictFor(null, online, target), null);
  const other = enc(http(200, 0, "x".repeat(299) + "y")); // the same first bytes and length
  const changes: [keyof AnswerSummary, unknown][] = [
    ["firstBytes", other.subarray(0, 255)],
    ["firstBytes", other.subarray(1, 257)],
    ["totalLength", answer.length + 1],
    ["gapBytes", 1],
    ["kind", "bytes"],
    ["digest", summarize(other, { firstBytes: 256 }).digest],
    ["digest", null],
    ["bodyLength", 299],
    ["timedOut", true],
    ["complete", false],
    ["truncated", false],
  ];
  for (const [field, value] of changes) {
    for (const side of ["online", "target"]) {
      const o = { ...online }, t = { ...target };
      (side === "online" ? o : t)[field] = value as never;
      assert.equal(memo.verdictFor("http", o, t), null, `${side} ${field}`);
    }
  }
  // first bytes longer than the kept ones, the same up to their length: not the same
  const shorter = new VerdictMemo(256);
  shorter.keep(
    "http",
    { ...online, firstBytes: online.firstBytes.subarray(0, 255) },
    target,
    verdict,
  );
  assert.equal(shorter.verdictFor("http", online, target), null);
  // a held online answer takes the kept digest only for the same whole answer
  const small = enc(http(200, 0, "ok"));
  const whole = summarize(small, { firstBytes: 256 });
  const memo2 = new VerdictMemo(256); // (the one above missed 22 times: it keeps sparingly now)
  memo2.keep("http", whole, whole, verdict);
  const held = { ...whole, kind: "bytes" as const, digest: null, bodyLength: null };
  assert.ok(memo2.completeHeld(held));
  assert.deepEqual(held, whole);
  const unlike = enc(http(200, 0, "no"));
  const heldOther = { ...held, firstBytes: unlike, digest: null };
  assert.ok(!memo2.completeHeld(heldOther));
  assert.equal(heldOther.digest, null);
  memo2.keep("http", online, target, verdict); // (a cut answer: no whole answer to take from)
  const heldCut = { ...online, kind: "bytes" as const, digest: null, bodyLength: null };
  assert.ok(!memo2.completeHeld(heldCut));
});

Deno.test("verdict memo: after 16 misses in a row only every 16th verdict is kept, a hit keeps them all again", () => {
  const memo = new VerdictMemo(256);
  const verdict: TurnVerdict = { proto: "http", result: matched() };
  const pair = (k: number) => summarize(enc(http(200, 0, `body ${k}`)), { firstBytes: 256 });
  let n = 0;
  const miss = () => { // a comparator verdict for a pair the memo does not hold, then kept
    const a = pair(1000 + n++);
    assert.equal(memo.verdictFor("http", a, a), null);
    memo.keep("http", a, a, verdict);
    return a;
  };
  for (let i = 0; i < 15; i++) miss(); // 15 misses (the first finds nothing kept)
  let a = miss(); // the 16th: kept
  assert.equal(memo.verdictFor("http", a, a), verdict); // a hit: the count starts again
  for (let i = 0; i < 16; i++) a = miss();
  // 16 misses in a row: the 17th to 31st are not kept (the memo still holds the 16th's pair)
  for (let i = 0; i < 15; i++) {
    const b = pair(2000 + i);
    assert.equal(memo.verdictFor("http", b, b), null);
    memo.keep("http", b, b, verdict);
  }
  assert.equal(memo.verdictFor("http", a, a), verdict); // (a hit: the count starts again)
  for (let i = 0; i < 16; i++) a = miss();
  for (let i = 0; i < 15; i++) {
    const b = pair(3000 + i);
    assert.equal(memo.verdictFor("http", b, b), null);
    memo.keep("http", b, b, verdict);
  }
  const last = miss(); // the 32nd: kept
  assert.equal(memo.verdictFor("http", last, last), verdict);
});
