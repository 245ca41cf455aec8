/**
 * Memory per session and CPU per request at scale, with no network (issue 14): keep-alive
 * connections (real handshakes and requests with their answers, from
 * tests/helpers/keepalive_rig.ts) through the replicator and engine on a fake clock, a sender
 * that sends nothing and a mini target that answers through the replicator's reply path.
 *
 * Each level (1k, 10k, 100k live sessions by default) runs in a fresh process of its own:
 *
 * 1. the empty rig's memory after forced GCs (the baseline);
 * 2. N connections opened, each with two requests answered, all held open and idle for
 *    `--idle` ms of fake time (the engine's timers run; default 12000, past the engine's idle
 *    sweep after 10 s): RSS, V8 heap used and memory outside the heap (ArrayBuffer backing stores,
 *    e.g. the per-connection slabs) after forced GCs, and their growth from the baseline per
 *    live session (a held idle keep-alive session);
 * 3. a warm-up, then a fixed number of requests on random live sessions, timed: process CPU
 *    time (user + system) per request and per packet (captured frames + reply headers + packets
 *    sent), i.e. the cost of a request with N sessions live, the median of five batches (the
 *    JSON has each batch and the mean); then the heap per session again
 *    (the sessions of a small level have now served many requests each).
 *
 *   deno run -A bench/engine_scale.ts [--levels 1000,10000,100000] [--requests 100000]
 *       [--warmup 50000] [--idle 12000] [--gap MS] [--json] [--snapshot file.heapsnapshot]
 *       [--snapshot-held file.heapsnapshot]
 *       [--v8-flags=LIST]
 *       [-- -m 65536 --max-sessions 2000000 --max-flows 4000000]
 *
 * Fake time moves 0.01 ms per request (and per connection opened) at every level, so a session
 * of a small level is asked again before its delayed ACK is due (the next request carries the
 * ACK: 3 packets per request at 100 sessions) and one of a large level is not (its delayed-ACK
 * timer fires on a cold session: 4 packets); the `packets/request` column shows which. `--gap MS`
 * makes the work per request the same at every level: fake time moves `MS / level` per request,
 * so a session's requests are `MS` apart on average at every level (e.g. `--gap 1000`: each
 * session asks once a second, the delayed ACK always fires on its own).
 *
 * Flags after `--` are tcpcopy's (`-x 80-10.0.0.2:8080 -s 10.0.0.2` is implied); without them
 * the default `-m` caps the sessions and the live-sessions column says so ("(of N)").
 * With `ENGINE_SCALE_MARK=1` a child prints `@@ timed start` / `@@ timed end` to stderr around
 * the timed requests, to cut a `--v8-flags=--trace-gc` log of one child to them (GC count and
 * time per request at a level: run the child's command line by hand, stdout unbuffered);
 * `ENGINE_SCALE_MARK=wait` also waits 1.5 s after the start mark (to attach `perf record -p`);
 * `ENGINE_SCALE_MARK=alloc` prints the bytes allocated per timed request by function (V8's
 * sampling heap profiler, objects the GC took included: independent of the load;
 * `ENGINE_SCALE_MARK=retained`: those of them still live at the end of the timed requests). The timed
 * requests run in `timedBatches`, so a `deno run --cpu-prof` profile of a child can be cut to
 * them.
 * `--snapshot` writes a V8 heap snapshot of the last level after step 3 (open it in Chrome's
 * DevTools, Memory tab, to see what the bytes are); `--snapshot-held` one after step 2, with the
 * sessions held and idle (what the held-session columns measure; written after their RSS split:
 * the CPU and "after" figures of such a run are not comparable, the snapshot takes memory and
 * time). The children run with the programs' V8 flags (lib/process/v8_flags.ts) plus
 * `--expose-gc,--max-old-space-size=16384` (a million sessions take ~0.9 GB of heap, 2.1 GB
 * before issue 14's slab work); `--v8-flags LIST` replaces the programs' flags (e.g.
 * `--v8-flags=--max-semi-space-size=16` to compare young-generation sizes, `--v8-flags=` for
 * V8's defaults). The rig's sequence numbers are above 2^31, like half
 * of real ones (tests/helpers/keepalive_rig.ts).
 *
 * `--private-deno` runs the children on a private copy of the deno executable and has each
 * child do what tcpcopy's start does for memory (`schedulePageOut` of lib/process/memory.ts:
 * the runtime's start-up code paged out, malloc trimmed every second): the RSS then counts the
 * executable as a production host's tcpcopy does, where no other process maps it (the same
 * option of bench/e2e_replication.ts). Without it the children share the executable with this
 * process and keep ~40 MiB of it in RSS.
 */
import { benchArgs, intArg } from "./args.ts";
import process from "node:process";
import v8 from "node:v8";
import { allocSampler } from "./alloc_sampler.ts";
import { keepAliveRig } from "../tests/helpers/keepalive_rig.ts";
import { mulberry32 } from "../tests/helpers/prng.ts";
import { printTable } from "./table.ts";
import { V8_FLAGS } from "../lib/process/v8_flags.ts";
import { smapsBreakdown } from "./mem_trace.ts";
import { schedulePageOut, TCPCOPY_TRIM_EVERY_S } from "../lib/process/memory.ts";

const { values, positionals } = benchArgs(import.meta.url, {
  args: Deno.args,
  options: {
    levels: { type: "string", default: "1000,10000,100000" },
    requests: { type: "string", default: "100000" },
    warmup: { type: "string", default: "50000" },
    idle: { type: "string", default: "12000" },
    gap: { type: "string" },
    json: { type: "boolean", default: false },
    snapshot: { type: "string" },
    "snapshot-held": { type: "string" },
    "v8-flags": { type: "string", default: V8_FLAGS.tcpcopy.join(",") },
    /** Internal: run one level in this process and print its JSON. */
    child: { type: "boolean", default: false },
    "private-deno": { type: "boolean", default: false },
    /** Internal: the child pages out its start-up code and trims malloc as tcpcopy does. */
    "program-memory": { type: "boolean", default: false },
  },
  allowPositionals: true,
});

/** A whole-number flag value of at least `min` (else one line and exit 2: bench/args.ts). */
const count = (flag: string, text: string, min = 1) => intArg(import.meta.url, flag, text, min);
const LEVELS = values.levels.split(",").map((t) => count("levels", t.trim()));
const REQUESTS = count("requests", values.requests);
const WARMUP = count("warmup", values.warmup, 0);
const IDLE_MS = count("idle", values.idle, 0);

/** Fake time between two connections opened, and between two requests (ms), without `--gap`. */
const STEP_MS = 0.01;
/** Fake time between two runs of the engine's timers (ms): a timer fires at most this late. */
const TICK_MS = 256 * STEP_MS;
/** With `--gap`: the mean fake time between two requests of one session (ms). */
const GAP_MS = values.gap === undefined ? undefined : count("gap", values.gap);
/** The timed requests are timed in this many batches (see runLevel). */
const BATCHES = 5;
const REQUEST = new TextEncoder().encode("GET /k HTTP/1.1\r\nHost: target\r\n\r\n");

/** What one level measured (one child process). */
interface Level {
  level: number;
  sessions: number;
  flows: number;
  /** After step 2 (held sessions, two requests each). */
  rss: number;
  heapUsed: number;
  /** V8 heap committed (used + free space in its pages). */
  heapTotal: number;
  external: number;
  heapPerSession: number;
  externalPerSession: number;
  rssPerSession: number;
  /** Heap growth per session after step 3. */
  heapPerSessionAfter: number;
  requestsPerSession: number;
  /** Median over the batches; the batches; the mean over all timed requests. */
  cpuPerRequestUs: number;
  cpuPerRequestBatchesUs: number[];
  cpuPerRequestMeanUs: number;
  cpuPerPacketUs: number;
  packetsPerRequest: number;
  answered: number;
  timed: number;
  lost: number;
  base: { rss: number; heapUsed: number; heapTotal: number; external: number };
  /** Where the RSS is after step 2 and after step 3 (see {@link RssSplit}). */
  split: RssSplit;
  splitAfter: RssSplit;
  /** The process's peak RSS (VmHWM) at the end. */
  peakRss: number;
}

/**
 * A process's RSS by owner, bytes: `heap` is V8's heap pages in RAM (its committed spaces:
 * used objects plus free room in their pages, `heapFree` of it); `malloc` the allocator's
 * heap and arenas (ArrayBuffer backing stores such as the slab rows, V8's own malloc'ed
 * tables, Rust's allocations); `otherAnon` the rest of the anonymous memory (thread stacks,
 * V8's reservations outside its spaces); `files` the executable's and the libraries' pages.
 * heap + malloc + otherAnon + files = rss. `pooled` (part of `otherAnon`): RSS in V8-sized pages
 * (anonymous 256 KiB mappings) beyond what V8 counts in its paged spaces: pages V8 freed but
 * keeps in its pool or has not unmapped yet (the main run-to-run spread, 0-15 MiB at 100,000
 * sessions).
 */
interface RssSplit {
  rss: number;
  heap: number;
  heapFree: number;
  malloc: number;
  otherAnon: number;
  files: number;
  pooled: number;
  /** V8's count of bytes in ArrayBuffer backing stores (mostly in `malloc`). */
  external: number;
}

/** V8's page size: its paged spaces map memory in pieces of this size. */
const V8_PAGE = 256 * 1024;

/** RSS of the anonymous read-write mappings of exactly one V8 page (/proc/self/smaps text). */
function v8PageRss(text: string): number {
  let sum = 0, page = false;
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) rw-p \S+ \S+ 0\s*$/.exec(line);
    if (head !== null) {
      page = parseInt(head[2], 16) - parseInt(head[1], 16) === V8_PAGE;
      continue;
    }
    if (/^[0-9a-f]+-/.test(line)) page = false;
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m !== null && page) sum += Number(m[1]) * 1024;
  }
  return sum;
}

/** The RSS split of this process now (after a settle). */
function rssSplit(): RssSplit {
  const text = Deno.readTextFileSync("/proc/self/smaps");
  const b = smapsBreakdown(text, Deno.execPath());
  const h = v8.getHeapStatistics();
  const heap = Math.min(h.total_physical_size, b.anon - b.malloc);
  const paged = v8.getHeapSpaceStatistics().filter((s) => !s.space_name.includes("large_object"))
    .reduce((a, s) => a + s.physical_space_size, 0);
  return {
    pooled: Math.max(0, v8PageRss(text) - paged),
    rss: b.rss,
    heap,
    heapFree: heap - h.used_heap_size,
    malloc: b.malloc,
    otherAnon: b.anon - b.malloc - heap,
    files: b.rss - b.anon,
    external: h.external_memory,
  };
}

/** VmHWM of this process (bytes). */
function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** Process CPU time so far (user + system), µs. */
function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Forced full GCs with a quiet moment between them; returns Deno.memoryUsage() after. */
async function settledMemory(gc: () => void): Promise<Deno.MemoryUsage> {
  for (let n = 0; n < 3; n++) {
    gc();
    await new Promise((r) => setTimeout(r, 100));
  }
  return Deno.memoryUsage();
}

/** Lets the event loop (and the GC's idle tasks) run, like the capture loop between drains. */
const yieldLoop = () => new Promise((r) => setTimeout(r, 0));

/** Runs one level in this process (steps 1-3 above). */
async function runLevel(level: number): Promise<Level> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("engine_scale: --child needs --v8-flags=--expose-gc");
  const ka = keepAliveRig(positionals, REQUEST);
  const step = GAP_MS === undefined ? STEP_MS : GAP_MS / level;
  const { rig } = ka;
  const engine = rig.engine, counters = rig.replicator.counters;
  // Per connection, its next request's index (allocated before the baseline: not per session).
  const nextRequest = new Uint32Array(level);
  const rnd = mulberry32(0x5ca1e);
  // The engine's timers run every TICK_MS of fake time (every 256 requests without --gap).
  let sinceTick = 0;
  const request = async (j: number, i: number) => {
    rig.advance(step);
    ka.request(i, nextRequest[i]++);
    sinceTick += step;
    if (sinceTick >= TICK_MS - 1e-9) {
      ka.tick(0);
      sinceTick = 0;
    }
    if ((j & 2047) === 2047) await yieldLoop();
  };
  const settle = () => {
    for (let n = 0; n < 10; n++) ka.tick(50); // delayed ACKs and anything else due
  };
  const packets = () => counters.frames + counters.replies + engine.stats.packets_sent;

  const base = await settledMemory(gc);
  for (let i = 0; i < level; i++) {
    rig.advance(step);
    ka.open(i);
    await request(i, i);
  }
  settle();
  for (let i = 0; i < level; i++) await request(i, i);
  settle();
  for (let t = 0; t < IDLE_MS; t += 100) ka.tick(Math.min(100, IDLE_MS - t));
  const held = await settledMemory(gc);
  const split = rssSplit();
  if (values["snapshot-held"] !== undefined) v8.writeHeapSnapshot(values["snapshot-held"]);
  const sessions = engine.stats.sessions.active;

  for (let j = 0; j < WARMUP; j++) await request(j, Math.floor(rnd() * level));
  settle();
  const mark = Deno.env.get("ENGINE_SCALE_MARK");
  if (mark) console.error("@@ timed start");
  if (mark === "wait") await new Promise((r) => setTimeout(r, 1500)); // time to attach perf
  const sampler = mark === "alloc" || mark === "retained"
    ? await allocSampler({ collected: mark === "alloc", print: console.error, prefix: "@@ " })
    : undefined;
  const answered0 = ka.target.answers, p0 = packets(), c0 = cpuMicros();
  // Timed in BATCHES batches: the median batch is the figure (a GC cycle or a re-compilation
  // that lands in one batch does not make the level).
  // A named function: a CPU profile (`--cpu-prof`) of a child tells the timed requests apart by it.
  const timedBatches = async (): Promise<number[]> => {
    const perBatch: number[] = [];
    for (let b = 0, j = 0; b < BATCHES; b++) {
      const cb = cpuMicros(), end = Math.round(REQUESTS * (b + 1) / BATCHES), n = end - j;
      for (; j < end; j++) await request(j, Math.floor(rnd() * level));
      perBatch.push((cpuMicros() - cb) / n);
    }
    return perBatch;
  };
  const perBatch = await timedBatches();
  settle();
  const cpu = cpuMicros() - c0, pk = packets() - p0;
  if (sampler !== undefined) await sampler.report(REQUESTS);
  if (mark) console.error("@@ timed end");
  const answered = ka.target.answers - answered0;
  const median = perBatch.toSorted((a, b) => a - b)[Math.floor(BATCHES / 2)];
  const after = await settledMemory(gc);
  const splitAfter = rssSplit();
  if (values.snapshot !== undefined) v8.writeHeapSnapshot(values.snapshot);
  const st = engine.stats;
  return {
    level,
    sessions,
    flows: engine.flowCount,
    rss: held.rss,
    heapUsed: held.heapUsed,
    heapTotal: held.heapTotal,
    external: held.external,
    heapPerSession: (held.heapUsed - base.heapUsed) / sessions,
    externalPerSession: (held.external - base.external) / sessions,
    rssPerSession: (held.rss - base.rss) / sessions,
    heapPerSessionAfter: (after.heapUsed - base.heapUsed) / st.sessions.active,
    requestsPerSession: 2 + (WARMUP + REQUESTS) / level,
    cpuPerRequestUs: median,
    cpuPerRequestBatchesUs: perBatch,
    cpuPerPacketUs: median * REQUESTS / pk,
    cpuPerRequestMeanUs: cpu / REQUESTS,
    packetsPerRequest: pk / REQUESTS,
    answered,
    timed: REQUESTS,
    lost: Object.values(st.lost).reduce((a: number, b: number) => a + b, 0),
    base: {
      rss: base.rss,
      heapUsed: base.heapUsed,
      heapTotal: base.heapTotal,
      external: base.external,
    },
    split,
    splitAfter,
    peakRss: peakRss(),
  };
}

/** Runs `level` in a fresh process of this script, on `deno` (an executable path). */
async function childLevel(level: number, snapshot: boolean, deno: string): Promise<Level> {
  const args = [
    "run",
    "-A",
    `--v8-flags=${
      [values["v8-flags"], "--expose-gc,--max-old-space-size=16384"].filter((f) => f).join(",")
    }`,
    new URL(import.meta.url).pathname,
    "--child",
    ...(deno === Deno.execPath() ? [] : ["--program-memory"]),
    "--levels",
    String(level),
    "--requests",
    String(REQUESTS),
    "--warmup",
    String(WARMUP),
    "--idle",
    String(IDLE_MS),
    ...(GAP_MS === undefined ? [] : ["--gap", String(GAP_MS)]),
    ...(snapshot && values.snapshot !== undefined ? ["--snapshot", values.snapshot] : []),
    ...(snapshot && values["snapshot-held"] !== undefined
      ? ["--snapshot-held", values["snapshot-held"]]
      : []),
    "--",
    ...positionals,
  ];
  const out = await new Deno.Command(deno, { args, stderr: "inherit" }).output();
  if (!out.success) throw new Error(`engine_scale: level ${level}: child exited ${out.code}`);
  return JSON.parse(new TextDecoder().decode(out.stdout)) as Level;
}

if (values.child) {
  if (values["program-memory"]) schedulePageOut(TCPCOPY_TRIM_EVERY_S);
  console.log(JSON.stringify(await runLevel(LEVELS[0])));
  Deno.exit(0);
}
/** The executable the children run: a private copy with `--private-deno`, removed at the end. */
const privateDir = values["private-deno"] ? Deno.makeTempDirSync({ prefix: "engine_scale" }) : "";
const deno = privateDir === "" ? Deno.execPath() : `${privateDir}/deno`;
if (privateDir !== "") {
  Deno.copyFileSync(Deno.execPath(), deno);
  Deno.chmodSync(deno, 0o755);
}
const results: Level[] = [];
try {
  for (const [n, level] of LEVELS.entries()) {
    results.push(await childLevel(level, n === LEVELS.length - 1, deno));
  }
} finally {
  if (privateDir !== "") Deno.removeSync(privateDir, { recursive: true });
}
const first = results[0], last = results[results.length - 1];
const cpuRatio = last.cpuPerRequestUs / first.cpuPerRequestUs;
const flat = Math.abs(cpuRatio - 1) <= 0.15;
const flags = (positionals.join(" ") || "(defaults)") +
  `; V8 flags "${values["v8-flags"]}"` +
  (privateDir === "" ? "" : "; private deno copy, start-up code paged out as tcpcopy does");
const mib = (x: number) => (x / 1048576).toFixed(1);
const int = (x: number) => Math.round(x).toLocaleString("en-US");
if (values.json) {
  console.log(JSON.stringify({
    flags,
    requests: REQUESTS,
    warmup: WARMUP,
    levels: results,
    cpu_ratio_last_first: cpuRatio,
    cpu_flat_within_15pct: flat,
  }));
} else {
  console.log(
    `engine_scale: tcpcopy flags "${flags}"; per level a fresh process; ` +
      `held sessions idle ${int(IDLE_MS)} ms; ` +
      (GAP_MS === undefined
        ? `fake time ${STEP_MS} ms per request; `
        : `a session's requests ${int(GAP_MS)} ms apart on average; `) +
      `${int(REQUESTS)} timed requests after ${int(WARMUP)} warm-up; ` +
      `empty rig: RSS ${mib(first.base.rss)} MiB, heap used ${mib(first.base.heapUsed)} MiB`,
  );
  printTable(
    [
      "live sessions",
      "flow records",
      "RSS MiB",
      "heap used MiB",
      "heap B/session",
      "external B/session",
      "RSS B/session",
      "CPU µs/request",
      "CPU µs/packet",
      "packets/request",
      "heap B/session after timed requests (requests/session)",
      "answered / timed",
    ],
    results.map((r) => [
      int(r.sessions) + (r.sessions < r.level ? ` (of ${int(r.level)})` : ""),
      int(r.flows),
      mib(r.rss),
      mib(r.heapUsed),
      int(r.heapPerSession),
      int(r.externalPerSession),
      int(r.rssPerSession),
      r.cpuPerRequestUs.toFixed(2),
      r.cpuPerPacketUs.toFixed(2),
      r.packetsPerRequest.toFixed(2),
      `${int(r.heapPerSessionAfter)} (${int(r.requestsPerSession)})`,
      `${int(r.answered)} / ${int(r.timed)}`,
    ]),
  );
  console.log(
    `CPU per request, ${int(last.sessions)} vs ${int(first.sessions)} sessions: ` +
      `×${cpuRatio.toFixed(2)} (${flat ? "flat" : "not flat"}: within 15 % is flat); ` +
      `${last.packetsPerRequest.toFixed(1)} packets per request; lost requests: ${last.lost}`,
  );
  console.log(
    "Where the RSS is (MiB), held = after step 2, after = after the timed requests: V8 heap " +
      "pages (free room in them), malloc (V8's external bytes), other anonymous (V8 pages " +
      "freed but still mapped), files; peak = VmHWM",
  );
  const cell = (x: RssSplit) =>
    `${mib(x.rss)} = ${mib(x.heap)} (${mib(x.heapFree)}) + ${mib(x.malloc)} (${
      mib(x.external)
    }) + ${mib(x.otherAnon)} (${mib(x.pooled)}) + ${mib(x.files)}`;
  printTable(
    [
      "live sessions",
      "held: rss = heap (free) + malloc (external) + other (pooled) + files",
      "after",
      "peak",
    ],
    results.map((r) => [int(r.sessions), cell(r.split), cell(r.splitAfter), mib(r.peakRss)]),
  );
}
