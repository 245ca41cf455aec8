/**
 * `--compare` cost per keep-alive request without the network (issue 15): recorded-like HTTP
 * keep-alive exchanges (ab -k: HTTP/1.0 requests, nginx answers of ~850 bytes) fed through the
 * same code paths the programs run, deterministic, on one thread.
 *
 * - tcpcopy: the replicator glue (`onFrame` of the request and of the answer packet, `send`,
 *   `onReplyBytes`, `onAnswer` of the decoded ANSWER frame, `compareTick` every 100 ms of
 *   simulated time) with a no-op engine; `--baseline` runs the same without a comparer (the
 *   answer packet is then not captured at all, as without `--compare`).
 * - intercept: the answer tracker (`inspectReply`, `AnswerTracker.reply`, `settle`, the ANSWER
 *   frame encoded and copied into an output buffer, as the batcher does); tcpcopy decodes it
 *   into a reused answer (views of its first bytes), as the tunnel client does.
 *
 *     ./build.sh deno run -A bench/compare_cost.ts [--requests 200000] [--flows 10] [--baseline]
 *         [--online-first] [--short] [--alloc-sites] [--lag N [--max-pending N]] [--other-date]
 *         [--decode-all] [--targets N]
 *
 * `--online-first`: each target answer arrives after the flow's next request (the online
 * answer is finished first, as when the replay lags); by default it arrives before.
 * `--lag N`: the replay runs N requests behind the capture (as `ka20k`'s lagging replay: the
 * request is sent, its reply header and ANSWER frame come, N requests after it was captured);
 * `--max-pending N` is `--compare-max-pending` (default 256: with `--lag` above 256 per flow the
 * newest turns are skipped). `--other-date`: the target's answers carry another `Date` header
 * (two servers a second apart, as end to end: the first bytes differ, the comparator runs).
 * `--short`: one request per connection instead (`short1k`'s shape: see `runShort`), tcpcopy's
 * side only. `--decode-all`: every ANSWER frame's summary decoded, also for the answers no pending
 * turn waits for (the tunnel client's way before `answerWanted`). `--targets N`: keep-alive, no
 * `--lag`: each connection replayed to N targets (`-x 80-T1:80,80-T2:80,...`, the same rewritten
 * client), every session compared (each target's requests, answers and ANSWER frames; ns and
 * bytes are still per captured request). `--alloc-sites`: one more pass under V8's sampling heap profiler, printing the
 * bytes allocated per request by function (both sides and the bench's packet making).
 *
 * Prints CPU ns per request for each side (process CPU time, median of 5 passes after a
 * warm-up pass) and the heap bytes tcpcopy's side allocates per request (deterministic, unlike
 * CPU time on a shared machine: V8's `total_allocated_bytes` over tcpcopy's calls). Run it
 * with tcpcopy's own V8 flags (lib/process/v8_flags.ts, `--v8-flags=--max-semi-space-size=2`)
 * for its garbage collections. Process CPU includes V8's garbage-collection helper threads: the intercept
 * figure of `--baseline`, where no intercept code runs, is theirs alone.
 */
import { benchArgs } from "./args.ts";
import { allocatedBytes, cpuMs } from "./passes.ts";
import { allocSampler } from "./alloc_sampler.ts";
import { median } from "./median.ts";
import { Replicator } from "../lib/tcpcopy/replicator.ts";
import { Comparer } from "../lib/tcpcopy/comparer.ts";
import { OnlineMatcher } from "../lib/tcpcopy/online_match.ts";
import { Logger } from "../lib/stats/logger.ts";
import { emptyStats } from "../lib/engine/stats.ts";
import type { OutSegment } from "../lib/engine/segment.ts";
import { endpointOf } from "../lib/engine/endpoint.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../lib/wire/build.ts";
import { LinkType } from "../lib/wire/link.ts";
import { AnswerTracker, newAnswerCounters } from "../lib/intercept/answers.ts";
import { inspectReply, newReplyInfo } from "../lib/tunnel/reply_packet.ts";
import { AnswerDecoder } from "../lib/tunnel/answer_frame.ts";

/**
 * One ANSWER frame to the replicator as the tunnel client hands it over: its header decoded,
 * its summary only when a pending turn waits for it (`--decode-all`: every summary decoded, as
 * before `answerWanted`).
 */
function deliverAnswer(decoder: AnswerDecoder, r: Replicator, fr: Uint8Array, at: number): void {
  const a = decoder.decodeHead(fr, 4, fr.length - 4, 1024);
  if (typeof a === "string") throw new Error(a);
  if (!DECODE_ALL && !r.answerWanted(a)) return;
  r.onAnswer(decoder.decodeSummary(fr, 4, fr.length - 4), at);
}

const { values } = benchArgs(import.meta.url, {
  options: {
    requests: { type: "string", default: "200000" },
    flows: { type: "string", default: "10" },
    baseline: { type: "boolean", default: false },
    "online-first": { type: "boolean", default: false },
    "alloc-sites": { type: "boolean", default: false },
    short: { type: "boolean", default: false },
    lag: { type: "string", default: "0" },
    "max-pending": { type: "string", default: "256" },
    "other-date": { type: "boolean", default: false },
    "decode-all": { type: "boolean", default: false },
    targets: { type: "string", default: "1" },
  },
});
/** `--targets`: sessions per connection (one per target). */
const TARGETS = Number(values.targets);
if (TARGETS > 1 && (values.short || Number(values.lag) > 0)) {
  console.error("compare_cost: --targets goes with the keep-alive run without --lag");
  Deno.exit(2);
}
const DECODE_ALL = values["decode-all"];
const REQUESTS = Number(values.requests);
const FLOWS = Number(values.flows);
const baseline = values.baseline;
const LAG = Number(values.lag);
const MAX_PENDING = Number(values["max-pending"]);

const te = new TextEncoder();
const REQUEST = te.encode(
  "GET /index.html HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: 10.0.0.1\r\n" +
    "User-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n",
);
const BODY = "x".repeat(615);
/** An nginx answer whose Date header says second `s`. */
const answerAt = (s: number) =>
  te.encode(
    `HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 01 Jan 2026 00:00:0${s} GMT\r\n` +
      `Content-Type: text/html\r\nContent-Length: ${BODY.length}\r\n` +
      'Last-Modified: Thu, 01 Jan 2026 00:00:00 GMT\r\nConnection: keep-alive\r\nETag: "1-267"\r\n' +
      `Accept-Ranges: bytes\r\n\r\n${BODY}`,
  );
const ANSWER = answerAt(0);
/** The target's answer: the online one, or (`--other-date`) one a second later. */
const TARGET_ANSWER = values["other-date"] ? answerAt(1) : ANSWER;
const EMPTY = new Uint8Array(0);
const CLIENT = "192.168.1.10", ONLINE = "10.0.0.1", TARGET = "10.0.0.2";
/** The targets of `--targets` (the first is TARGET). */
const TARGET_IPS = Array.from({ length: TARGETS }, (_, s) => `10.0.0.${2 + s}`);

/** One IPv4 TCP packet (bytes from the IP header). */
function packet(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  payload: Uint8Array,
): Uint8Array {
  const repr = {
    ...addressPair(src, dst),
    srcPort: sport,
    dstPort: dport,
    seq: seq >>> 0,
    ack: ack >>> 0,
    flags,
    window: 512,
    options: { sackPermitted: false, sackBlocks: [], unknown: [], timestamp: undefined },
    payload,
  };
  const ip = new Uint8Array(tcpPacketLength(repr));
  buildTcpPacket(repr, ip);
  return ip;
}

/**
 * Captured frames live in one buffer, as in the capture ring (views of one mapped area): the
 * frames of a batch are written from its start again (the previous batch's are consumed).
 */
const RING = new Uint8Array(16 << 20);
let ringAt = 0;

function ether(ip: Uint8Array): Uint8Array {
  const len = 14 + ip.length;
  if (ringAt + len > RING.length) throw new Error("bench ring too small");
  const f = RING.subarray(ringAt, ringAt += len);
  f.set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00]);
  f.set(ip, 14);
  return f;
}

/** Per flow and turn k, the packets of one exchange (made once: the loop only feeds them). */
interface Flow {
  port: number;
  request: Uint8Array[]; // captured client frames
  answer: Uint8Array[]; // captured server frames
  replyHeader: Uint8Array[]; // reply headers tcpcopy receives (IP+TCP header)
  reply: Uint8Array[]; // whole target replies intercept sees
  out: OutSegment[];
  // (with --targets N, the last three hold N entries per turn: turn j, target s at j * N + s)
}

const TURNS_PER_FLOW = 64; // packets repeat with other sequence numbers every 64 turns: made lazily
const CLI_ISN = 1000, SRV_ISN = 5000, TGT_ISN = 9000;

function makeFlow(port: number, base: number): Flow {
  const f: Flow = { port, request: [], answer: [], replyHeader: [], reply: [], out: [] };
  for (let k = 0; k < TURNS_PER_FLOW; k++) {
    const n = base + k;
    const cs = CLI_ISN + 1 + n * REQUEST.length, ss = SRV_ISN + 1 + n * ANSWER.length;
    const ts = TGT_ISN + 1 + n * ANSWER.length;
    f.request.push(ether(packet(CLIENT, ONLINE, port, 80, cs, ss, 0x18, REQUEST)));
    f.answer.push(
      ether(packet(ONLINE, CLIENT, 80, port, ss, cs + REQUEST.length, 0x18, ANSWER)),
    );
    for (const target of TARGET_IPS) {
      const rep = packet(target, CLIENT, 80, port, ts, cs + REQUEST.length, 0x18, TARGET_ANSWER);
      f.reply.push(rep);
      f.replyHeader.push(rep.slice(0, 40));
      f.out.push({
        src: endpointOf(CLIENT, port),
        dst: endpointOf(target, 80),
        seq: cs >>> 0,
        ack: ts >>> 0,
        flags: 0x18,
        window: 512,
        options: {},
        payload: REQUEST,
      });
    }
  }
  return f;
}

/**
 * A replicator with a sender that sends nothing and an engine that does nothing, and (unless
 * `--baseline`) a comparer for the online server ONLINE:80 replayed to TARGET:80.
 */
function replicatorRig(): { comparer: Comparer | null; r: Replicator } {
  const slotBuf = new Uint8Array(4096);
  const sender = { pending: 0, slot: (len: number) => slotBuf.subarray(0, len), flush: () => 0 };
  const comparer = baseline ? null : new Comparer({
    firstBytes: 1024,
    proto: "auto",
    ignoreHeaders: [],
    all: false,
    budgetBytes: LAG > 0 ? 256 << 20 : 64 << 20,
    maxPendingTurns: MAX_PENDING,
    emit: () => {},
  });
  const online = new OnlineMatcher(
    TARGET_IPS.map((t) => ({
      online: { addr: ONLINE, port: 80 },
      target: { addr: t, port: 80 },
    })) as never,
  );
  const r = new Replicator({
    v4: sender,
    v6: null,
    log: new Logger(() => {}),
    now: () => 0,
    compare: comparer === null ? null : { comparer, online },
  });
  r.attach({
    stats: emptyStats(),
    onCaptured() {},
    onReply() {},
    tick() {},
    nextDeadline: () => undefined,
    closeAll() {},
  });
  return { comparer, r };
}

function run(): { tcpcopy: number; intercept: number; compared: number; alloc: number } {
  const { comparer, r } = replicatorRig();
  // the tunnel's output buffer: frames are copied in as the batcher does, decoded later
  const out = new Uint8Array(TURNS_PER_FLOW * FLOWS * TARGETS * 2048);
  let outAt = 0;
  const frames: Uint8Array[] = [];
  const tracker = new AnswerTracker(
    { bytes: 1024, mode: "auto" },
    newAnswerCounters(),
    (frame) => {
      if (outAt + frame.length > out.length) outAt = 0;
      out.set(frame, outAt);
      frames.push(out.subarray(outAt, outAt += frame.length));
      return true;
    },
  );
  const info = newReplyInfo();
  const decoder = new AnswerDecoder();
  let tTcpcopy = 0, tIntercept = 0, now = 0;
  // --online-first: each ANSWER comes after the flow's next request (which ends the online
  // answer): a target slower than the client's next request
  const lag = values["online-first"] ? FLOWS : 0;
  const deliver = (frs: Uint8Array[], at: number) => {
    for (const fr of frs) {
      deliverAnswer(decoder, r, fr, at);
    }
  };
  let bytes = 0; // heap bytes allocated in tcpcopy's calls
  const flows: Flow[] = [];
  ringAt = 0;
  for (let i = 0; i < FLOWS; i++) {
    const port = 40000 + i;
    const c = endpointOf(CLIENT, port), o = endpointOf(ONLINE, 80);
    // handshakes
    r.onFrame(ether(packet(CLIENT, ONLINE, port, 80, CLI_ISN, 0, 0x02, EMPTY)), 1, 0, 0);
    for (const target of TARGET_IPS) {
      comparer?.onSessionOpen(c, endpointOf(target, 80), { client: c, server: o }, 0, false, 0);
    }
    r.onFrame(ether(packet(ONLINE, CLIENT, 80, port, SRV_ISN, CLI_ISN + 1, 0x12, EMPTY)), 1, 0, 0);
    for (const target of TARGET_IPS) {
      r.onReplyBytes(packet(target, CLIENT, 80, port, TGT_ISN, CLI_ISN + 1, 0x12, EMPTY), 0);
      const syn = packet(target, CLIENT, 80, port, TGT_ISN, CLI_ISN + 1, 0x12, EMPTY);
      inspectReply(syn, info);
      tracker.reply(syn, info, 0);
    }
    flows.push(makeFlow(port, 0));
  }
  const perFlow = Math.ceil(REQUESTS / FLOWS);
  let nextTick = 100, done = 0;
  const answers: Uint8Array[][] = []; // per turn of the batch: the frames intercept sent
  // --lag: the replays of the batch, and those waiting (a ring of LAG + 1)
  const replays: Replay[] = [];
  const queue: Replay[] = new Array(LAG + 1);
  let qHead = 0, qTail = 0;
  for (let k0 = 0; k0 < perFlow; k0 += TURNS_PER_FLOW) {
    if (k0 > 0) {
      ringAt = 0;
      for (let i = 0; i < FLOWS; i++) flows[i] = makeFlow(flows[i].port, k0);
    }
    const turns = Math.min(TURNS_PER_FLOW, perFlow - k0);
    // intercept: the target's replies of the batch, one capture cycle each
    const t0 = cpuMs();
    let at = now;
    if (comparer !== null) {
      for (let j = 0; j < turns; j++) {
        for (let i = 0; i < FLOWS; i++) {
          at += 0.05;
          for (let s = 0; s < TARGETS; s++) {
            const rep = flows[i].reply[j * TARGETS + s];
            inspectReply(rep, info);
            tracker.reply(rep, info, at);
          }
          tracker.settle();
          // (--lag: kept past this batch, whose output buffer is written again: copied into
          // one long-lived buffer, as the tunnel client reads them from one)
          answers.push(LAG > 0 ? frames.splice(0).map(keepFrame) : frames.splice(0));
        }
      }
    }
    if (LAG > 0) {
      replays.length = 0;
      for (let j = 0; j < turns; j++) {
        for (let i = 0; i < FLOWS; i++) {
          replays.push({ out: flows[i].out[j], header: flows[i].replyHeader[j], frames: [] });
        }
      }
      for (let k = 0; k < answers.length; k++) replays[k].frames = answers[k];
    }
    const t1 = cpuMs();
    const h1 = allocatedBytes();
    // tcpcopy: request, its replay, the online answer, the reply header, the ANSWER frame
    let n = 0;
    for (let j = 0; j < turns; j++) {
      for (let i = 0; i < FLOWS; i++) {
        const f = flows[i];
        now += 0.05; // 20k requests/s
        r.onFrame(f.request[j], LinkType.EN10MB, now * 1000, now);
        if (LAG > 0) { // the capture runs LAG requests ahead of the replay
          if (comparer !== null) r.onFrame(f.answer[j], LinkType.EN10MB, now * 1000 + 300, now);
          queue[qTail++ % queue.length] = replays[n++];
          if (qTail - qHead > LAG) replay(queue[qHead++ % queue.length], now);
        } else {
          capturedAndReplayed(f, j, n++);
        }
        if (now >= nextTick) {
          r.compareTick(now);
          nextTick += 100;
        }
        done++;
      }
    }
    if (comparer !== null && LAG === 0) {
      for (let k = Math.max(0, n - lag); k < n; k++) deliver(answers[k], now);
    }
    bytes += allocatedBytes() - h1;
    answers.length = 0;
    outAt = 0;
    tTcpcopy += cpuMs() - t1;
    tIntercept += t1 - t0;
  }
  const t0 = cpuMs();
  const h0 = allocatedBytes();
  while (qHead < qTail) replay(queue[qHead++ % queue.length], now);
  r.compareTick(now + 5000);
  bytes += allocatedBytes() - h0;
  tTcpcopy += cpuMs() - t0;
  const compared = comparer?.stats.snapshot().compared ?? 0;
  return {
    tcpcopy: (tTcpcopy * 1e6) / done,
    intercept: (tIntercept * 1e6) / done,
    compared,
    alloc: bytes / done,
  };

  /** Request j of flow f replayed at once: the capture and the replay in step. */
  function capturedAndReplayed(f: Flow, j: number, n: number): void {
    for (let s = 0; s < TARGETS; s++) r.send(f.out[j * TARGETS + s]);
    if (comparer !== null) r.onFrame(f.answer[j], LinkType.EN10MB, now * 1000 + 300, now);
    for (let s = 0; s < TARGETS; s++) r.onReplyBytes(f.replyHeader[j * TARGETS + s], now);
    if (comparer !== null && n >= lag) deliver(answers[n - lag], now);
  }

  /** A request's replay (--lag): sent, its reply header and its ANSWER frames received. */
  function replay(x: Replay, at: number): void {
    r.send(x.out);
    r.onReplyBytes(x.header, at);
    if (comparer !== null) deliver(x.frames, at);
  }
}

/** `--lag`'s frames waiting for their replay, in one buffer (at most LAG of them live). */
const LAG_WIRE = new Uint8Array(LAG > 0 ? Math.max(1 << 20, (LAG + 64 * FLOWS) * 2048) : 0);
let lagAt = 0;

function keepFrame(fr: Uint8Array): Uint8Array {
  if (lagAt + fr.length > LAG_WIRE.length) lagAt = 0;
  LAG_WIRE.set(fr, lagAt);
  return LAG_WIRE.subarray(lagAt, lagAt += fr.length);
}

/** A request's replay waiting behind the capture (`--lag`). */
interface Replay {
  out: OutSegment;
  header: Uint8Array;
  frames: Uint8Array[];
}

/**
 * `--short`: one request per connection (`short1k`'s shape), a new client port each time: the
 * client's SYN, the session opening, the online SYN-ACK and the target's, the request and its
 * replay, the online answer with the server's FIN, the target's answer (its reply header and
 * its ANSWER frame, made by intercept's tracker), the client's FIN, the session closing, a
 * compare tick every 100 connections (flows are forgotten there). Packets are made per
 * connection outside the measured calls; only tcpcopy's side is timed and counted.
 */
function runShort(): { tcpcopy: number; intercept: number; compared: number; alloc: number } {
  const { comparer, r } = replicatorRig();
  // the tunnel's read buffer: the frames of a batch are copied in, decoded from views of it
  const frames: Uint8Array[] = [];
  const wire = new Uint8Array(1 << 20);
  let wireAt = 0;
  const tracker = new AnswerTracker({ bytes: 1024, mode: "auto" }, newAnswerCounters(), (fr) => {
    wire.set(fr, wireAt);
    frames.push(wire.subarray(wireAt, wireAt += fr.length));
    return true;
  });
  const info = newReplyInfo();
  const decoder = new AnswerDecoder();
  const o = endpointOf(ONLINE, 80), tgt = endpointOf(TARGET, 80);
  interface Conn {
    c: ReturnType<typeof endpointOf>;
    syn: Uint8Array;
    synAck: Uint8Array;
    tSynAck: Uint8Array;
    req: Uint8Array;
    ans: Uint8Array;
    repHeader: Uint8Array;
    fin: Uint8Array;
    out: OutSegment;
    frames: Uint8Array[];
  }
  const BATCH = 100; // connections made, then fed (the counters are read once per batch)
  let bytes = 0, cpu = 0, now = 0, done = 0;
  for (let i0 = 0; i0 < REQUESTS; i0 += BATCH) {
    ringAt = wireAt = 0;
    const conns: Conn[] = [];
    for (let i = i0; i < Math.min(REQUESTS, i0 + BATCH); i++) {
      const port = 1024 + (i % 60000);
      const c = endpointOf(CLIENT, port);
      const cs = CLI_ISN + 1, ss = SRV_ISN + 1, ts = TGT_ISN + 1, ce = cs + REQUEST.length;
      const tSynAck = packet(TARGET, CLIENT, 80, port, TGT_ISN, cs, 0x12, EMPTY);
      const rep = packet(TARGET, CLIENT, 80, port, ts, ce, 0x19, ANSWER);
      if (comparer !== null) { // intercept: the target's SYN-ACK and answer, its ANSWER frame
        for (const p of [tSynAck, rep]) {
          inspectReply(p, info);
          tracker.reply(p, info, now);
          tracker.settle();
        }
      }
      conns.push({
        c,
        syn: ether(packet(CLIENT, ONLINE, port, 80, CLI_ISN, 0, 0x02, EMPTY)),
        synAck: ether(packet(ONLINE, CLIENT, 80, port, SRV_ISN, cs, 0x12, EMPTY)),
        tSynAck,
        req: ether(packet(CLIENT, ONLINE, port, 80, cs, ss, 0x18, REQUEST)),
        ans: ether(packet(ONLINE, CLIENT, 80, port, ss, ce, 0x19, ANSWER)),
        repHeader: rep.slice(0, 40),
        fin: ether(packet(CLIENT, ONLINE, port, 80, ce, ss + ANSWER.length + 1, 0x11, EMPTY)),
        out: {
          src: c,
          dst: tgt,
          seq: cs,
          ack: ts,
          flags: 0x18,
          window: 512,
          options: {},
          payload: REQUEST,
        },
        frames: frames.splice(0),
      });
    }
    const h0 = allocatedBytes(), t0 = cpuMs();
    for (const k of conns) {
      now += 1; // 1,000 connections/s
      r.onFrame(k.syn, LinkType.EN10MB, now * 1000, now);
      comparer?.onSessionOpen(k.c, tgt, { client: k.c, server: o }, 0, false, now);
      r.onFrame(k.synAck, LinkType.EN10MB, now * 1000 + 50, now);
      r.onReplyBytes(k.tSynAck, now);
      r.onFrame(k.req, LinkType.EN10MB, now * 1000 + 100, now);
      r.send(k.out);
      r.onFrame(k.ans, LinkType.EN10MB, now * 1000 + 300, now);
      r.onReplyBytes(k.repHeader, now);
      for (const fr of k.frames) {
        deliverAnswer(decoder, r, fr, now);
      }
      r.onFrame(k.fin, LinkType.EN10MB, now * 1000 + 400, now);
      comparer?.onSessionClose(k.c, tgt, now);
      done++;
    }
    r.compareTick(now + 5000); // (flows closed 5 s ago are forgotten)
    cpu += cpuMs() - t0;
    bytes += allocatedBytes() - h0;
  }
  const t0 = cpuMs();
  r.compareTick(now + 10_000);
  cpu += cpuMs() - t0;
  return {
    tcpcopy: (cpu * 1e6) / done,
    intercept: 0,
    compared: comparer?.stats.snapshot().compared ?? 0,
    alloc: bytes / done,
  };
}

const pass = values.short ? runShort : run;
pass(); // warm-up
if (values["alloc-sites"]) {
  const sampler = await allocSampler({ collected: true, top: 60 });
  pass();
  await sampler.report(REQUESTS);
}
const res = [];
for (let i = 0; i < 5; i++) res.push(pass());
console.log(
  `${baseline ? "baseline" : "compare"}: tcpcopy ${
    median(res.map((x) => x.tcpcopy)).toFixed(0)
  } ns/req, intercept ${median(res.map((x) => x.intercept)).toFixed(0)} ns/req, compared ${
    res[0].compared
  } of ${REQUESTS * TARGETS}; tcpcopy heap bytes allocated per request ${
    median(res.map((x) => x.alloc)).toFixed(0)
  }`,
);
