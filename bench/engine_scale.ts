/**
 * Memory per session and CPU per request at scale, with no network (issue 14): keep-alive
 * connections (real handshakes, one request and its answer each, from
 * tests/helpers/keepalive_rig.ts) through the replicator and engine on a fake clock, a sender
 * that sends nothing and a mini target that answers through the replicator's reply path. The
 * connections are opened level by level (1k, 10k, 100k live sessions by default; the process
 * and its tables grow from one level to the next) and stay open. At each level, after a warm-up,
 * a fixed number of requests on random live sessions is timed: process CPU time (user + system)
 * per request and per packet (captured frames + reply headers + packets sent). Then, after a
 * forced GC: RSS and V8 heap used, and both as a delta from the empty rig per live session.
 *
 *   deno run -A --v8-flags=--expose-gc bench/engine_scale.ts [--levels 1000,10000,100000]
 *       [--requests 100000] [--warmup 50000] [--json] [--snapshot file.heapsnapshot]
 *       [-- -m 65536 --max-sessions 2000000 --max-flows 4000000]
 *
 * Flags after `--` are tcpcopy's (`-x 80-10.0.0.2:8080 -s 10.0.0.2` is implied); without them
 * the default `-m` caps the sessions and the table says so (column "held" below the level).
 * Run it as its own process: RSS is the whole process's. `--snapshot` writes a V8 heap snapshot
 * at the last level (open it in Chrome's DevTools, Memory tab, to see what the bytes are).
 */
import { parseArgs } from "node:util";
import process from "node:process";
import v8 from "node:v8";
import { keepAliveRig } from "../tests/helpers/keepalive_rig.ts";
import { mulberry32 } from "../tests/helpers/prng.ts";
import { printTable } from "./table.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    levels: { type: "string", default: "1000,10000,100000" },
    requests: { type: "string", default: "100000" },
    warmup: { type: "string", default: "50000" },
    json: { type: "boolean", default: false },
    snapshot: { type: "string" },
  },
  allowPositionals: true,
});

/** A positive integer flag value, or exit 2 with a one-line error. */
function count(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`engine_scale: --${flag} ${text}: expected a positive integer`);
    Deno.exit(2);
  }
  return n;
}
const LEVELS = values.levels.split(",").map((t) => count("levels", t.trim()));
const REQUESTS = count("requests", values.requests);
const WARMUP = Number(values.warmup) === 0 ? 0 : count("warmup", values.warmup);
if (LEVELS.some((n, i) => i > 0 && n <= LEVELS[i - 1])) {
  console.error(`engine_scale: --levels ${values.levels}: expected increasing counts`);
  Deno.exit(2);
}

/** Fake time between two connections opened, and between two requests (ms). */
const STEP_MS = 0.01;
const REQUEST = new TextEncoder().encode("GET /k HTTP/1.1\r\nHost: target\r\n\r\n");

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error("engine_scale: run with --v8-flags=--expose-gc (heap figures need a forced GC)");
  Deno.exit(2);
}
const ka = keepAliveRig(positionals, REQUEST);
const { rig } = ka;
const engine = rig.engine, counters = rig.replicator.counters;
/** Next request index per connection (allocated before the baseline: not counted per session). */
const nextRequest = new Uint32Array(LEVELS[LEVELS.length - 1]);
const rnd = mulberry32(0x5ca1e);

/** Lets the event loop (and the GC's idle tasks) run, like the capture loop between drains. */
const yieldLoop = () => new Promise((r) => setTimeout(r, 0));

/** Forced full GCs with a quiet moment between them; returns Deno.memoryUsage() after. */
async function settledMemory(): Promise<Deno.MemoryUsage> {
  for (let n = 0; n < 3; n++) {
    gc!();
    await new Promise((r) => setTimeout(r, 100));
  }
  return Deno.memoryUsage();
}

/** Process CPU time so far (user + system), µs. */
function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Opens connections [from, to) with their first request answered. */
async function openUpTo(from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    rig.advance(STEP_MS);
    ka.open(i);
    ka.request(i, 0);
    nextRequest[i] = 1;
    if ((i & 255) === 255) ka.tick(0);
    if ((i & 2047) === 2047) await yieldLoop();
  }
  // Delayed ACKs and anything else due.
  for (let n = 0; n < 10; n++) ka.tick(50);
}

/** `n` more requests, each on a random one of the first `live` connections. */
async function requests(n: number, live: number): Promise<void> {
  for (let j = 0; j < n; j++) {
    const i = Math.floor(rnd() * live);
    rig.advance(STEP_MS);
    ka.request(i, nextRequest[i]++);
    if ((j & 255) === 255) ka.tick(0);
    if ((j & 2047) === 2047) await yieldLoop();
  }
  for (let n = 0; n < 10; n++) ka.tick(50);
}

const packets = () => counters.frames + counters.replies + engine.stats.packets_sent;

interface Level {
  level: number;
  sessions: number;
  flows: number;
  rss: number;
  heapUsed: number;
  external: number;
  heapTotal: number;
  heapPerSession: number;
  rssPerSession: number;
  /** Growth from the previous level (the empty rig for the first) per session added. */
  heapPerAddedSession: number;
  rssPerAddedSession: number;
  cpuPerRequestUs: number;
  cpuPerPacketUs: number;
  packetsPerRequest: number;
  answered: number;
  timed: number;
  lost: number;
}

const base = await settledMemory();
const results: Level[] = [];
let opened = 0, prev = { mem: base, sessions: 0 };
for (const level of LEVELS) {
  await openUpTo(opened, level);
  opened = level;
  await requests(WARMUP, level);
  const answered0 = ka.target.answers, p0 = packets(), c0 = cpuMicros();
  await requests(REQUESTS, level);
  const cpu = cpuMicros() - c0, pk = packets() - p0;
  const answered = ka.target.answers - answered0;
  const mem = await settledMemory();
  const st = engine.stats;
  const sessions = st.sessions.active;
  const lost = Object.values(st.lost).reduce((a: number, b: number) => a + b, 0);
  results.push({
    level,
    sessions,
    flows: engine.flowCount,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    external: mem.external,
    heapTotal: mem.heapTotal,
    heapPerSession: (mem.heapUsed - base.heapUsed) / sessions,
    rssPerSession: (mem.rss - base.rss) / sessions,
    heapPerAddedSession: (mem.heapUsed - prev.mem.heapUsed) / (sessions - prev.sessions),
    rssPerAddedSession: (mem.rss - prev.mem.rss) / (sessions - prev.sessions),
    cpuPerRequestUs: cpu / REQUESTS,
    cpuPerPacketUs: cpu / pk,
    packetsPerRequest: pk / REQUESTS,
    answered,
    timed: REQUESTS,
    lost,
  });
  prev = { mem, sessions };
}

if (values.snapshot !== undefined) v8.writeHeapSnapshot(values.snapshot);
const first = results[0], last = results[results.length - 1];
const cpuRatio = last.cpuPerRequestUs / first.cpuPerRequestUs;
const flat = Math.abs(cpuRatio - 1) <= 0.15;
const mib = (x: number) => (x / 1048576).toFixed(1);
const int = (x: number) => Math.round(x).toLocaleString("en-US");
if (values.json) {
  console.log(JSON.stringify({
    flags: positionals.join(" ") || "(defaults)",
    requests: REQUESTS,
    warmup: WARMUP,
    base: { rss: base.rss, heap_used: base.heapUsed, external: base.external },
    levels: results,
    cpu_ratio_last_first: cpuRatio,
    cpu_flat_within_15pct: flat,
  }));
} else {
  console.log(
    `engine_scale: tcpcopy flags "${positionals.join(" ") || "(defaults)"}", ` +
      `${int(REQUESTS)} timed requests per level after ${int(WARMUP)} warm-up; ` +
      `empty rig: RSS ${mib(base.rss)} MiB, heap used ${mib(base.heapUsed)} MiB`,
  );
  printTable(
    [
      "live sessions",
      "flow records",
      "RSS MiB",
      "heap used MiB",
      "heap B/session",
      "RSS B/session",
      "heap / RSS B per added session",
      "CPU µs/request",
      "CPU µs/packet",
      "answered / timed",
    ],
    results.map((r) => [
      int(r.sessions) + (r.sessions < r.level ? ` (of ${int(r.level)})` : ""),
      int(r.flows),
      mib(r.rss),
      mib(r.heapUsed),
      int(r.heapPerSession),
      int(r.rssPerSession),
      `${int(r.heapPerAddedSession)} / ${int(r.rssPerAddedSession)}`,
      r.cpuPerRequestUs.toFixed(2),
      r.cpuPerPacketUs.toFixed(2),
      `${int(r.answered)} / ${int(r.timed)}`,
    ]),
  );
  console.log(
    `CPU per request, ${int(last.sessions)} vs ${int(first.sessions)} sessions: ` +
      `×${cpuRatio.toFixed(2)} (${flat ? "flat" : "not flat"}: within 15 % is flat); ` +
      `${last.packetsPerRequest.toFixed(1)} packets per request; lost requests: ${last.lost}`,
  );
}
