/**
 * intercept's `--compare` answer path without the network (issue 15): the target's keep-alive
 * HTTP replies (nginx-like, ~850 bytes, one packet per answer, 10 connections) through the code
 * the tunnel server runs per reply: `inspectReply`, the route lookup (`RouteTable.get`; a route
 * is registered at a connection's first reply, deleted at its CLIENT_DEL: lib/tunnel/routing.ts,
 * whose slots the answer tracker files its flows by), `AnswerTracker.reply`, the reply record
 * into the peer's `ReplyBatcher`, `settle` at the end of each capture cycle (the ANSWER frame
 * written in place into the batcher), and the batcher's output taken as a write would.
 * `--baseline` runs the same without the tracker (what intercept does without `--compare`).
 *
 *     ./build.sh deno run -A bench/answer_path_cost.ts [--requests 100000] [--baseline] [--cold]
 *       [--short] [--body 615]
 *
 * Hot (default): CPU ns per request (process CPU, median of 5 passes after a warm-up pass) and
 * heap bytes allocated per request (V8's counter: deterministic, unlike CPU time on a shared
 * machine). `--cold`: one pass in a fresh process, CPU per request including the JIT's work
 * (interpreted first requests, Maglev and TurboFan compiles on V8's threads, counted 300 ms
 * after the pass) and the main thread's share: what a short benchmark such as
 * bench/e2e_replication.ts's 20,000-request `ka20k` row pays once per process.
 * `--short`: one answer per connection (`short1k`'s shape): SYN-ACK, the answer, the target's
 * FIN after the client's, then the route's CLIENT_DEL; a new client port (a new flow) each
 * time, over {@link SHORT_PORTS} ports.
 * `--body N`: the answers' body bytes (615 by default; bench/e2e_replication.ts's nginx answers
 * "ok\n", 3 bytes: `--body 3` is its answers' shape).
 * `--evict KIB` (with `--short`): reads KIB KiB of another buffer (one byte per 64-byte cache
 * line) after each connection, as the other processes of a host run between intercept's
 * wake-ups: the answer path then meets its data cold, as it does end to end. The reading costs
 * the same with and without `--compare` (`--baseline`); the path's own wall time per connection
 * (the reading left out) is printed as quartiles: `--compare` adds ~1.6 µs per connection hot,
 * +0.7–1.9 with 4096 (L2 cold), +7–16 with 16384 (last-level cache and TLB cold: the end-to-end
 * magnitude; runs swing by ±40 %, alternate many). README.md, "Comparing responses", eighth round.
 * `--mark N`: prints `mark K` on stdout after every N requests (connections with `--short`)
 * since the start, for cutting a `--v8-flags=--trace-opt` trace by request count (V8 prints
 * its trace through stdio's buffer: run under `stdbuf -o0` to keep the order), e.g. at which
 * connection each answer-path function reaches TurboFan:
 *
 *     stdbuf -o0 ./build.sh deno run -A --v8-flags=--trace-opt bench/answer_path_cost.ts \
 *       --short --cold --requests 30000 --body 3 --mark 1000 > trace.txt
 *     ./build.sh deno run -A bench/jit_trace.ts --marks trace.txt
 */
import { benchArgs, intArg } from "./args.ts";
import { cpuMs, timedPasses } from "./passes.ts";
import { AnswerTracker, newAnswerCounters } from "../lib/intercept/answers.ts";
import { inspectReply, newReplyInfo } from "../lib/tunnel/reply_packet.ts";
import { ReplyBatcher } from "../lib/tunnel/batcher.ts";
import { RouteTable } from "../lib/tunnel/routing.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../lib/wire/build.ts";

const { values } = benchArgs(import.meta.url, {
  options: {
    requests: { type: "string", default: "100000" },
    baseline: { type: "boolean", default: false },
    cold: { type: "boolean", default: false },
    short: { type: "boolean", default: false },
    body: { type: "string", default: "615" },
    mark: { type: "string", default: "0" },
    evict: { type: "string", default: "0" },
  },
});
const REQUESTS = intArg(import.meta.url, "requests", values.requests, 1000);
const compare = !values.baseline;
const BODY_BYTES = intArg(import.meta.url, "body", values.body, 0, 1400);
const MARK = intArg(import.meta.url, "mark", values.mark, 0);
// (filled: pages never written would all be the kernel's one zero page, always cached)
const EVICT = new Uint8Array(intArg(import.meta.url, "evict", values.evict, 0, 1 << 20) << 10)
  .fill(1);
let evictSum = 0;

/**
 * With `--evict`: the path's own ns per connection in the last pass, quartiles of the wall time
 * around each connection's replies (the reading between them left out: its cost dwarfs the
 * path's), and the reads' sum (printed: the loop must not be optimised away).
 */
function evicted(): string {
  if (EVICT.length === 0) return "";
  const t = pathNs.toSorted();
  const q = (f: number) => t[Math.floor(f * (t.length - 1))].toFixed(0);
  return `; path ns per connection, cold: median ${q(0.5)} (quartiles ${q(0.25)}-${q(0.75)})` +
    ` (evict sum ${evictSum})`;
}

/** `--evict`: one read per cache line of the other buffer. */
function evict(): void {
  const b = EVICT;
  let sum = 0;
  for (let i = 0; i < b.length; i += 64) sum += b[i];
  evictSum += sum;
}
/** Requests (connections with `--short`) since the start, for `--mark`. */
let marked = 0;

/** One more request (or connection) done: prints the `--mark` line it reaches. */
function mark(): void {
  if (MARK > 0 && ++marked % MARK === 0) console.log(`mark ${marked}`);
}

const BODY = "x".repeat(BODY_BYTES);
const ANSWER = new TextEncoder().encode(
  "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n" +
    `Content-Type: text/html\r\nContent-Length: ${BODY.length}\r\n` +
    'Last-Modified: Thu, 01 Jan 2026 00:00:00 GMT\r\nConnection: keep-alive\r\nETag: "1-267"\r\n' +
    `Accept-Ranges: bytes\r\n\r\n${BODY}`,
);
const FLOWS = 10, TURNS = 64, ISN = 9000, REQUEST_LEN = 100;

/** One reply from the target (bytes from the IP header). */
function reply(port: number, seq: number, ack: number, flags: number, payload: Uint8Array) {
  const repr = {
    ...addressPair("10.0.0.2", "192.168.1.10"),
    srcPort: 80,
    dstPort: port,
    seq: seq >>> 0,
    ack: ack >>> 0,
    flags,
    window: 512,
    options: { sackPermitted: false, sackBlocks: [], unknown: [], timestamp: undefined },
    payload,
  };
  const n = tcpPacketLength(repr);
  if (arenaAt + n > ARENA.length) ARENA = new Uint8Array(ARENA.length);
  const ip = ARENA.subarray(arenaAt, arenaAt + n);
  arenaAt += n;
  buildTcpPacket(repr, ip);
  return ip;
}

/** The replies are views of large buffers, as the server's are (of its capture buffer). */
let ARENA = new Uint8Array(4 << 20);
let arenaAt = 0;

// the turns of each flow, made once (each lap starts the flows again with a new SYN-ACK)
const synAcks = Array.from(
  { length: FLOWS },
  (_, i) => reply(40000 + i, ISN, 1001, 0x12, ANSWER.subarray(0, 0)),
);
const turns = Array.from(
  { length: FLOWS },
  (_, i) =>
    Array.from(
      { length: TURNS },
      (_, k) =>
        reply(40000 + i, ISN + 1 + k * ANSWER.length, 1001 + (k + 1) * REQUEST_LEN, 0x18, ANSWER),
    ),
);
/** Client ports of `--short` (each one's route is deleted before it comes round again). */
const SHORT_PORTS = 2000;
const shortConns = values.short
  ? Array.from({ length: SHORT_PORTS }, (_, i) => {
    const port = 20000 + i, end = ISN + 1 + ANSWER.length;
    return [
      reply(port, ISN, 1001, 0x12, ANSWER.subarray(0, 0)),
      reply(port, ISN + 1, 1001 + REQUEST_LEN, 0x18, ANSWER),
      reply(port, end, 1001 + REQUEST_LEN + 1, 0x11, ANSWER.subarray(0, 0)),
    ];
  })
  : [];
const batcher = new ReplyBatcher({ ext: true, maxQueuedBytes: 64 << 20 });
const counters = newAnswerCounters();
const tracker = new AnswerTracker({ bytes: 1024, mode: "auto" }, counters, batcher);
const info = newReplyInfo();
let now = 0;
const routes = new RouteTable<object>(60_000);
const PEER = {};

/** One reply through the server's path; a capture cycle per reply. */
// the route table tells the tracker of slots that go or move, as the dispatcher does
routes.listener = {
  released: (slot) => compare && tracker.routeReleased(slot),
  renumbered: (renum) => compare && tracker.routesRenumbered(renum),
};

function one(pkt: Uint8Array): void {
  inspectReply(pkt, info);
  let slot = routes.getSlot(info.key, now);
  if (slot < 0) {
    routes.set(info.key, PEER, now); // (CLIENT_ADD)
    slot = routes.slotOf(info.key);
  }
  if (compare) tracker.reply(pkt, info, now, slot);
  batcher.add(pkt, info, now);
  if (compare) tracker.settle();
  batcher.flush();
  const out = batcher.takeOutput();
  if (out !== undefined) batcher.written(out.length);
}

function pass(n: number): void {
  if (values.short) return shortPass(n);
  for (let done = 0; done < n;) {
    for (const s of synAcks) one(s);
    for (let k = 0; k < TURNS && done < n; k++) {
      for (let i = 0; i < FLOWS; i++, done++) {
        now += 0.05; // 20,000 replies/s
        one(turns[i][k]);
        mark();
      }
    }
  }
}

/** `--evict`: the wall ns of each connection's path in the last pass (the reading left out). */
let pathNs = new Float64Array(0);

/** `--short`: `n` connections of one answer each. */
function shortPass(n: number): void {
  if (EVICT.length > 0 && pathNs.length !== n) pathNs = new Float64Array(n);
  for (let done = 0; done < n; done++) {
    const t0 = EVICT.length > 0 ? performance.now() : 0;
    const conn = shortConns[done % SHORT_PORTS];
    for (const pkt of conn) {
      now += 0.05;
      one(pkt);
    }
    // CLIENT_DEL (info: the FIN's), the tracker first (lib/tunnel/dispatch.ts deleteRoute)
    if (compare) tracker.routeDeleted(info.key, routes.slotOf(info.key));
    routes.delete(info.key, PEER);
    mark();
    if (EVICT.length > 0) {
      pathNs[done] = (performance.now() - t0) * 1e6;
      evict();
    }
  }
}

/**
 * CPU ms of the calling thread (the main thread: JS and its synchronous compiles), in
 * nanoseconds from schedstat (stat's clock ticks are 10 ms: too coarse for 10,000 answers).
 */
function threadMs(): number {
  return Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0]) / 1e6;
}

const label = (compare ? "compare" : "baseline") + (values.short ? " short" : "");
if (values.cold) {
  const t0 = cpuMs(), m0 = threadMs();
  pass(REQUESTS);
  await new Promise((r) => setTimeout(r, 300)); // background compiles finish
  const ms = cpuMs() - t0, main = threadMs() - m0;
  console.log(
    `${label} cold: ${(ms * 1e6 / REQUESTS).toFixed(0)} ns/req over the first ${REQUESTS} ` +
      `(${ms.toFixed(0)} ms CPU, main thread ${
        main.toFixed(1)
      } ms), answers sent ${counters.sent}${evicted()}`,
  );
} else {
  const { ns: times, bytes } = timedPasses(() => pass(REQUESTS), REQUESTS);
  console.log(
    `${label}: ${times[2].toFixed(0)} ns/req (range ${times[0].toFixed(0)}-${
      times[4].toFixed(0)
    }), heap ${bytes.toFixed(0)} bytes/req, answers sent ${counters.sent}${evicted()}`,
  );
}
