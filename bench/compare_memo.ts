/**
 * The verdict memo's gain and its cost (lib/tcpcopy/verdict_memo.ts, issue 15): CPU ns per
 * keep-alive turn through the comparer alone (`onClient`, `onSent`, `onServer`, `onReply`,
 * `onAnswer`: no capture, no tunnel), the two servers' answers differing in their `Date` header
 * so that every verdict needs the comparator. `--answers 1`: every turn brings the same pair
 * (the memo's case); the default 64: each turn another body, so the memo never holds the pair
 * (its cost: a failed comparison and a copy of both first bytes per turn). `--no-memo`: the
 * comparer without it.
 *
 *     ./build.sh deno run -A --v8-flags=--max-semi-space-size=2 bench/compare_memo.ts \
 *         [--turns 100000] [--answers 64] [--no-memo]
 *
 * Prints the median of 5 passes after a warm-up pass (wall time of one thread: run it on a quiet
 * machine, alternating the variants).
 *
 * @module
 */
import { benchArgs, intArg } from "./args.ts";
import { Comparer } from "../lib/tcpcopy/comparer.ts";
import { type AnswerSummary, summarize } from "../lib/compare/answer.ts";
import { endpointOf } from "../lib/engine/endpoint.ts";
import { median } from "./median.ts";

const { values } = benchArgs(import.meta.url, {
  options: {
    turns: { type: "string", default: "100000" },
    answers: { type: "string", default: "64" },
    "no-memo": { type: "boolean", default: false },
  },
});
const TURNS = intArg(import.meta.url, "turns", values.turns, 1000, 10_000_000);
const ANSWERS = intArg(import.meta.url, "answers", values.answers, 1, 10_000);
const memo = !values["no-memo"];

const enc = (s: string) => new TextEncoder().encode(s);
const CLIENT = endpointOf("192.0.2.7", 41000), SERVER = endpointOf("192.0.2.1", 80);
const REWRITTEN = endpointOf("10.1.0.7", 41000), TARGET = endpointOf("10.9.0.2", 80);
const REQUEST = enc("GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
const EMPTY = enc("");

/** An nginx-like answer with `body`, its Date header at second `s`. */
function answer(body: string, s: number): Uint8Array {
  return enc(
    `HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Thu, 01 Jan 2026 00:00:0${s} GMT\r\n` +
      `Content-Type: text/html\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
}

const online: Uint8Array[] = [], target: AnswerSummary[] = [];
for (let k = 0; k < ANSWERS; k++) {
  const body = ANSWERS === 1 ? "body" : `body ${k}`;
  online.push(answer(body, 0));
  target.push(summarize(answer(body, 1), { firstBytes: 1024 })); // (as intercept sends it)
}

/** One pass: CPU-free comparer, `TURNS` turns on one connection; ns per turn. */
function pass(): number {
  const c = new Comparer({
    firstBytes: 1024,
    proto: "auto",
    ignoreHeaders: [],
    all: false,
    budgetBytes: 64 << 20,
    emit: null,
    verdictMemo: memo,
  });
  let now = 0, cs = 1001, ss = 50_001, ts = 900_001;
  c.onSessionOpen(REWRITTEN, TARGET, { client: CLIENT, server: SERVER }, 0, false, now);
  c.onClient(CLIENT, SERVER, { seq: 1000, ack: 0, flags: 0x02, payload: EMPTY }, now, now);
  c.onServer(SERVER, CLIENT, { seq: 50_000, ack: 1001, flags: 0x12, payload: EMPTY }, now, now);
  c.onReply(TARGET, REWRITTEN, 900_000, 1001, 0x12, 0, now);
  const client = { seq: 0, ack: 0, flags: 0x10, payload: REQUEST };
  const server: { seq: number; ack: number; flags: number; payload: Uint8Array } = {
    seq: 0,
    ack: 0,
    flags: 0x10,
    payload: EMPTY,
  };
  const tgt = { addr: TARGET.addr, port: TARGET.port };
  const a = { client: { addr: REWRITTEN.addr, port: REWRITTEN.port }, target: tgt };
  const t0 = performance.now();
  for (let i = 0; i < TURNS; i++) {
    now += 0.05;
    client.seq = cs;
    client.ack = ss;
    c.onClient(CLIENT, SERVER, client, now, now);
    c.onSent(REWRITTEN, TARGET, cs, REQUEST.length, now);
    cs += REQUEST.length;
    server.seq = ss;
    server.ack = cs;
    server.payload = online[i % ANSWERS];
    c.onServer(SERVER, CLIENT, server, now, now);
    ss += server.payload.length;
    const summary = target[i % ANSWERS];
    c.onReply(TARGET, REWRITTEN, ts, cs, 0x10, summary.totalLength, now);
    c.onAnswer({ ...a, ack: cs, seq: ts, part: 0, summary }, now);
    ts += summary.totalLength;
    if (i % 2000 === 0) c.tick(now);
  }
  const ns = ((performance.now() - t0) * 1e6) / TURNS;
  c.closeAll(now + 100_000);
  const s = c.stats.snapshot();
  if (s.compared < TURNS - 2 || s.matched !== s.compared) {
    throw new Error(`compared ${s.compared}, matched ${s.matched} of ${TURNS}`);
  }
  return ns;
}

pass(); // warm-up
const xs = [pass(), pass(), pass(), pass(), pass()];
console.log(
  `${memo ? "memo" : "no memo"}, ${ANSWERS} answer pair(s): ${median(xs).toFixed(0)} ns per ` +
    `turn (fastest ${Math.min(...xs).toFixed(0)})`,
);
