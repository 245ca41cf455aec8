/**
 * JIT warm-up, end to end (issue 14: "the first 10,000 requests cost at most 1.3× the warm
 * figure"): fresh tcpcopy and intercept of ours in the lab of bench/e2e_lab.ts, HTTP/2 with one
 * connection and one stream at a time (h2load against nginx's h2c port), `--requests` in all
 * (default 30,000) in chunks of `--bucket` (default 1,000), one h2load per chunk. After each chunk,
 * once the target has served it (its access log), the CPU time of both processes is read, summed
 * over their threads from /proc/PID/task/TID/schedstat (nanoseconds; the main thread apart from
 * the others: V8's background compilers and GC helpers), with their minor page faults
 * (/proc/PID/stat). (Chunks rather than sampling one long h2load: a sampler in this process
 * stalled for up to 1.7 s on the loaded VM.)
 *
 * The figures, per program: the mean CPU per request over the first 10,000 requests and the warm
 * figure, the mean over the last third of the run (total CPU ÷ requests: a mean like the first
 * figure, so the periodic GC and compile spikes count on both sides; the median chunk, the
 * figure before, dropped them from the warm side only and leaned the ratio by ~0.1), their ratio,
 * and the excess: the CPU the first 10,000 cost above 10,000 warm requests (ms), with the CPU the
 * process spent before the first request (start-up). `--runs N` repeats all of it on fresh
 * pairs and prints each run's summary, the median of the summaries and the median of each chunk
 * over the runs: single chunks range ±40 % on the shared 2-core VM, one run's ratio ±0.2. As a
 * yardstick for that noise, the CPU of both nginx (master and workers, online and target: the same
 * work per request all along, no JIT) is read with each sample; the ratio is also given with each
 * side divided by nginx's CPU per request over the same requests.
 *
 * `--jit` adds `--trace-opt,--trace-deopt` to both programs and counts, per chunk and in all,
 * the Maglev and TurboFan compiles and the deopts in their output (bench/jit_trace.ts): a
 * deterministic proxy of the warm-up work (tracing costs CPU itself: the CPU figures of such a
 * run are not comparable with those without it), and the functions compiled three times or more
 * with the most frequent deopt reasons (deopt loops).
 *
 *   sudo deno run -A bench/e2e_warmup.ts [--requests 30000] [--bucket 1000] [--runs 1] [--jit] [--json]
 *
 * Extra deno/V8 flags for an experiment: $TCPCOPY_DENO_FLAGS and $INTERCEPT_DENO_FLAGS (e.g.
 * `--v8-flags=--max-semi-space-size=16,--max-lazy`: a later --v8-flags adds to the programs' list
 * of lib/process/v8_flags.ts); $TCPCOPY_MAIN runs another tree's main.ts (before/after);
 * $E2E_WARMUP_KEEP=DIR copies the last pair's stdout and stderr there (e.g. `--trace-opt` output).
 *
 * @module
 */
import { benchArgs, intArg } from "./args.ts";
import { isRoot, withNetns } from "../tests/helpers/netns.ts";
import { settle } from "../tests/helpers/replication.ts";
import { type BenchLab, restartPair, startBenchLab, stopStarted } from "./e2e_lab.ts";
import { runLoad } from "./e2e_workloads.ts";
import {
  appendedReader,
  emptyJitCounts,
  type JitCounts,
  jitDelta,
  jitFollower,
  topEntries,
} from "./jit_trace.ts";
import { printTable } from "./table.ts";
import { median } from "./median.ts";

/**
 * CPU seconds of a process: main thread and all threads, from schedstat (ns precision); and its
 * minor page faults so far (/proc/PID/stat: first touches of memory).
 */
interface Cpu {
  main: number;
  all: number;
  minflt: number;
}

/** The two programs, in the order of every per-program array below. */
const PROGRAMS = ["tcpcopy", "intercept"] as const;

/**
 * One sample: time, requests served by the target, CPU (and JIT counts) of both programs, and
 * the CPU seconds of both nginx (the reference: the same work per request all along, no JIT).
 */
interface Sample {
  t: number;
  served: number;
  cpu: [Cpu, Cpu];
  jit: [JitCounts, JitCounts];
  nginx: number;
}

/** Reads the CPU seconds of every thread of `pid` (0 when gone; synchronous: no queued ops). */
function threadCpu(pid: number): Cpu {
  let main = 0, all = 0, minflt = 0;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    minflt = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
    for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const ns = Number(
          Deno.readTextFileSync(`/proc/${pid}/task/${e.name}/schedstat`)
            .split(" ")[0],
        );
        if (!Number.isFinite(ns)) continue;
        all += ns / 1e9;
        if (e.name === String(pid)) main = ns / 1e9;
      } catch { /* the thread ended meanwhile */ }
    }
  } catch { /* the process ended */ }
  return { main, all, minflt };
}

/**
 * The processes of the nginx whose pid file is `dir`/nginx.pid: its master and its workers (the
 * master's children); none when it cannot be read.
 */
function nginxPids(dir: string): number[] {
  try {
    const master = Number(Deno.readTextFileSync(`${dir}/nginx.pid`).trim());
    const children = Deno.readTextFileSync(`/proc/${master}/task/${master}/children`);
    return [master, ...children.trim().split(/\s+/).filter((x) => x !== "").map(Number)];
  } catch {
    return [];
  }
}

/** Counts the lines of a growing file, reading only what was appended since the last call. */
function lineCounter(path: string): () => number {
  let lines = 0;
  const read = appendedReader(path, (bytes) => {
    for (let j = 0; j < bytes.length; j++) if (bytes[j] === 10) lines++;
  });
  return () => {
    read();
    return lines;
  };
}

/** What one run measured: the samples (the first taken before the first request). */
interface Run {
  samples: Sample[];
}

/**
 * One run on a fresh pair: `requests` in chunks of `bucket`, each its own h2load (one connection,
 * one stream); after each chunk, once the target has served it, a sample.
 */
async function run(b: BenchLab, requests: number, bucket: number, jit: boolean): Promise<Run> {
  const count = lineCounter(b.targetLog);
  const base = count();
  const pids = [b.pair.tcpcopy.pid, b.pair.intercept.pid];
  const none = () => emptyJitCounts();
  const follow = jit
    ? [jitFollower(b.pair.tcpcopy.out), jitFollower(b.pair.intercept.out)]
    : [none, none];
  const dir = (log: string) => log.slice(0, log.lastIndexOf("/"));
  const refs = [...nginxPids(dir(b.onlineLog)), ...nginxPids(dir(b.targetLog))];
  const samples: Sample[] = [];
  const sample = () =>
    samples.push({
      t: performance.now(),
      served: count() - base,
      cpu: [threadCpu(pids[0]), threadCpu(pids[1])],
      jit: [follow[0](), follow[1]()],
      nginx: refs.reduce((sum, pid) => sum + threadCpu(pid).all, 0),
    });
  sample();
  for (let done = 0; done < requests; done += bucket) {
    const load = { kind: "h2load" as const, requests: bucket, clients: 1, streams: 1 };
    await runLoad(b.on.client, load, b.on.ip);
    await settle(() => Promise.resolve(count() - base), done + bucket, 30_000, 300);
    sample();
  }
  return { samples };
}

/**
 * One chunk of one program: per target request, CPU µs (all threads, main), minor faults, and the
 * CPU µs of both nginx (the same in each chunk on an idle machine: how much slower the machine ran
 * this chunk).
 */
interface Chunk {
  requests: number;
  all: number;
  main: number;
  minflt: number;
  jit: JitCounts;
  nginx: number;
}

/** The chunks of program `p` (0 tcpcopy, 1 intercept) in `r`. */
function chunks(r: Run, p: 0 | 1): Chunk[] {
  const out: Chunk[] = [];
  for (let k = 1; k < r.samples.length; k++) {
    const a = r.samples[k - 1], b = r.samples[k];
    const n = Math.max(1, b.served - a.served);
    out.push({
      requests: n,
      all: (b.cpu[p].all - a.cpu[p].all) * 1e6 / n,
      main: (b.cpu[p].main - a.cpu[p].main) * 1e6 / n,
      minflt: (b.cpu[p].minflt - a.cpu[p].minflt) / n,
      jit: jitDelta(b.jit[p], a.jit[p]),
      nginx: (b.nginx - a.nginx) * 1e6 / n,
    });
  }
  return out;
}

/** One program's figures in one run (CPU µs per request unless named otherwise). */
interface Summary {
  startupMs: number;
  first: number;
  firstMain: number;
  warm: number;
  warmMain: number;
  /** The warm figure as before: the median chunk of the last third. */
  warmMedian: number;
  ratio: number;
  ratioMedian: number;
  /** CPU of the first 10,000 above as many warm requests, ms. */
  excessMs: number;
  /**
   * The ratio with each side divided by the nginx CPU per request of the same requests: a
   * machine that runs everything slower in one part of the run (other load) leans it less.
   */
  ratioNginx: number;
  /** JIT counts: before the first request, in the first 10,000, after (only with --jit). */
  jitStart: JitCounts;
  jitFirst: JitCounts;
  jitLater: JitCounts;
}

/** The mean CPU per request (all threads, main, nginx) of `cs`, weighted by their requests. */
function meanOf(cs: Chunk[]): { all: number; main: number; nginx: number } {
  let n = 0, all = 0, main = 0, nginx = 0;
  for (const c of cs) {
    n += c.requests;
    all += c.all * c.requests;
    main += c.main * c.requests;
    nginx += c.nginx * c.requests;
  }
  return { all: all / n, main: main / n, nginx: nginx / n };
}

/** The summary of program `p` in run `r` (chunks of `bucket` requests). */
function summarize(r: Run, p: 0 | 1, bucket: number): Summary {
  const cs = chunks(r, p);
  const firstN = Math.min(cs.length, Math.floor(10_000 / bucket));
  const warmFrom = Math.floor(cs.length * 2 / 3);
  const first = meanOf(cs.slice(0, firstN)), warm = meanOf(cs.slice(warmFrom));
  const warmMedian = median(cs.slice(warmFrom).map((c) => c.all));
  const s0 = r.samples[0], sF = r.samples[firstN], sL = r.samples[r.samples.length - 1];
  return {
    startupMs: s0.cpu[p].all * 1000,
    first: first.all,
    firstMain: first.main,
    warm: warm.all,
    warmMain: warm.main,
    warmMedian,
    ratio: first.all / warm.all,
    ratioMedian: first.all / warmMedian,
    excessMs: (first.all - warm.all) * firstN * bucket / 1000,
    ratioNginx: (first.all / first.nginx) / (warm.all / warm.nginx),
    jitStart: s0.jit[p],
    jitFirst: jitDelta(sF.jit[p], s0.jit[p]),
    jitLater: jitDelta(sL.jit[p], sF.jit[p]),
  };
}

const f0 = (v: number) => v.toFixed(0);
const f2 = (v: number) => v.toFixed(2);

/** "M maglev / T turbofan, D deopts" of `c`. */
function jitText(c: JitCounts): string {
  return `${c.maglev} M / ${c.turbofan} T, ${c.deopts} deopt`;
}

/** Prints the chunks' medians over `runs` for both programs. */
function printChunks(runs: Run[], bucket: number, jit: boolean): void {
  const per = PROGRAMS.map((_, p) => runs.map((r) => chunks(r, p as 0 | 1)));
  const n = Math.min(...per[0].map((cs) => cs.length));
  const warm = PROGRAMS.map((_, p) =>
    median(runs.map((r) => summarize(r, p as 0 | 1, bucket).warm))
  );
  const rows: string[][] = [];
  for (let k = 0; k < n; k++) {
    const m = (p: number, pick: (c: Chunk) => number) => median(per[p].map((cs) => pick(cs[k])));
    const row = [
      `${k * bucket}–${(k + 1) * bucket}`,
      `${f0(m(0, (c) => c.all))} (${f0(m(0, (c) => c.main))})`,
      `${f0(m(1, (c) => c.all))} (${f0(m(1, (c) => c.main))})`,
      `${f2(m(0, (c) => c.all) / warm[0])}× / ${f2(m(1, (c) => c.all) / warm[1])}×`,
      `${f2(m(0, (c) => c.minflt))} / ${f2(m(1, (c) => c.minflt))}`,
      f0(m(0, (c) => c.nginx)),
    ];
    if (jit) {
      const j = (p: number) =>
        `${m(p, (c) => c.jit.maglev)}/${m(p, (c) => c.jit.turbofan)}/${m(p, (c) => c.jit.deopts)}`;
      row.push(`${j(0)} · ${j(1)}`);
    }
    rows.push(row);
  }
  const head = [
    "target requests",
    "tcpcopy µs CPU/req all threads (main)",
    "intercept µs CPU/req all (main)",
    "÷ warm mean tcpcopy / intercept",
    "minor faults/req tcpcopy / intercept",
    "both nginx µs/req",
  ];
  if (jit) head.push("Maglev/TurboFan/deopts tcpcopy · intercept");
  console.log(runs.length > 1 ? `\nmedian of each chunk over ${runs.length} runs:` : "");
  printTable(head, rows);
}

/** Prints one summary row per run and program, then the medians. */
function printSummaries(runs: Run[], bucket: number, jit: boolean): void {
  const head = [
    "run",
    "program",
    "start-up ms",
    "first 10,000 µs/req (main)",
    "warm µs/req (main)",
    "first ÷ warm mean (÷ median chunk)",
    "excess ms",
    "ratio ÷ nginx's",
  ];
  if (jit) head.push("compiles before / first 10,000 / after", "TurboFan ms first / after");
  const rows: string[][] = [];
  const all = PROGRAMS.map((_, p) => runs.map((r) => summarize(r, p as 0 | 1, bucket)));
  const row = (label: string, name: string, s: Summary): string[] => {
    const r = [
      label,
      name,
      f0(s.startupMs),
      `${f0(s.first)} (${f0(s.firstMain)})`,
      `${f0(s.warm)} (${f0(s.warmMain)})`,
      `${f2(s.ratio)}× (${f2(s.ratioMedian)}×)`,
      f0(s.excessMs),
      `${f2(s.ratioNginx)}×`,
    ];
    if (jit) {
      r.push(
        `${jitText(s.jitStart)} · ${jitText(s.jitFirst)} · ${jitText(s.jitLater)}`,
        `${f0(s.jitFirst.turbofanMs)} / ${f0(s.jitLater.turbofanMs)}`,
      );
    }
    return r;
  };
  runs.forEach((_, i) =>
    PROGRAMS.forEach((name, p) => rows.push(row(`${i + 1}`, name, all[p][i])))
  );
  if (runs.length > 1) {
    PROGRAMS.forEach((name, p) => {
      const m = (pick: (s: Summary) => number) => median(all[p].map(pick));
      const mj = (pick: (s: Summary) => JitCounts): JitCounts => ({
        ...emptyJitCounts(),
        maglev: m((s) => pick(s).maglev),
        turbofan: m((s) => pick(s).turbofan),
        deopts: m((s) => pick(s).deopts),
        turbofanMs: m((s) => pick(s).turbofanMs),
      });
      rows.push(row("median", name, {
        startupMs: m((s) => s.startupMs),
        first: m((s) => s.first),
        firstMain: m((s) => s.firstMain),
        warm: m((s) => s.warm),
        warmMain: m((s) => s.warmMain),
        warmMedian: m((s) => s.warmMedian),
        ratio: m((s) => s.ratio),
        ratioMedian: m((s) => s.ratioMedian),
        excessMs: m((s) => s.excessMs),
        ratioNginx: m((s) => s.ratioNginx),
        jitStart: mj((s) => s.jitStart),
        jitFirst: mj((s) => s.jitFirst),
        jitLater: mj((s) => s.jitLater),
      }));
    });
  }
  console.log("\nper run (warm: mean of the last third of the chunks):");
  printTable(head, rows);
  if (jit) {
    for (const [p, name] of PROGRAMS.entries()) {
      const last = runs[runs.length - 1].samples.at(-1)!.jit[p];
      console.log(
        `${name}, last run: compiled 3 times or more: ${
          topEntries(last.perFunction, 12, 3).join(", ") || "none"
        }; most frequent deopts: ${topEntries(last.deoptReasons, 8).join(", ") || "none"}`,
      );
    }
  }
}

if (import.meta.main) {
  const { values } = benchArgs(import.meta.url, {
    args: Deno.args,
    options: {
      requests: { type: "string", default: "30000" },
      bucket: { type: "string", default: "1000" },
      runs: { type: "string", default: "1" },
      jit: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    strict: true,
  });
  const int = (flag: string, text: string, min: number, max: number) =>
    intArg(import.meta.url, flag, text, min, max);
  const requests = int("requests", values.requests, 3000, 1_000_000);
  const bucket = int("bucket", values.bucket, 100, requests / 3);
  const runs = int("runs", values.runs, 1, 10);
  if (!isRoot()) {
    console.error("e2e_warmup: needs root (network namespaces)");
    Deno.exit(2);
  }
  if (values.jit) {
    for (const v of ["TCPCOPY_DENO_FLAGS", "INTERCEPT_DENO_FLAGS"]) {
      Deno.env.set(v, `${Deno.env.get(v) ?? ""} --v8-flags=--trace-opt,--trace-deopt`.trim());
    }
  }
  const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  const before = load();
  const opts = {
    impl: "ours" as const,
    interceptMode: "nfqueue" as const,
    tcpcopyArgs: [],
    c: null,
  };
  const done: Run[] = [];
  await withNetns(async (env) => {
    const b = await startBenchLab(env, opts);
    for (let r = 1; r <= runs; r++) {
      if (r > 1) await restartPair(env, b, opts);
      done.push(await run(b, requests, bucket, values.jit));
      if (values.json) {
        const s = PROGRAMS.map((_, p) => summarize(done[r - 1], p as 0 | 1, bucket));
        const totals = (c: JitCounts) => ({
          ...c,
          perFunction: undefined,
          deoptReasons: undefined,
        });
        const drop = (x: Summary) => ({
          ...x,
          jitStart: totals(x.jitStart),
          jitFirst: totals(x.jitFirst),
          jitLater: totals(x.jitLater),
        });
        console.log(JSON.stringify({
          run: r,
          chunks: PROGRAMS.map((_, p) =>
            chunks(done[r - 1], p as 0 | 1).map((c) => ({ ...c, jit: totals(c.jit) }))
          ),
          summary: s.map(drop),
        }));
      }
    }
    await stopStarted(b.pair.tcpcopy, "SIGINT");
    const keep = Deno.env.get("E2E_WARMUP_KEEP"); // a directory for the last pair's output
    if (keep) {
      for (
        const [name, s] of [["tcpcopy", b.pair.tcpcopy], ["intercept", b.pair.intercept]] as const
      ) {
        await Deno.copyFile(s.out, `${keep}/${name}.out`);
        await Deno.copyFile(s.err, `${keep}/${name}.err`);
      }
    }
  });
  printChunks(done, bucket, values.jit);
  printSummaries(done, bucket, values.jit);
  console.log(`(load averages 1/5/15 min: before ${before}, after ${load()})`);
}
