/**
 * JIT warm-up, end to end (issue 14: "the first 10,000 requests cost at most 1.3× the warm
 * figure"): fresh tcpcopy and intercept of ours in the lab of bench/e2e_lab.ts, HTTP/2 with one
 * connection and one stream at a time (h2load against nginx's h2c port), `--requests` in all
 * (default 30,000) in chunks of `--bucket` (default 1,000), one h2load per chunk. After each chunk,
 * once the target has served it (its access log), the CPU time of both processes is read, summed
 * over their threads from /proc/PID/task/TID/schedstat (nanoseconds; the main thread apart from
 * the others: V8's background compilers and GC helpers), with their minor page faults
 * (/proc/PID/stat). The table gives the CPU µs per target request of each chunk, the mean over
 * the first 10,000, and the warm figure: the median chunk of the last third. The CPU the
 * processes spent before the first request (start-up) is printed too. (Chunks rather than
 * sampling one long h2load: a sampler in this process stalled for up to 1.7 s on the loaded VM.)
 *
 *   sudo deno run -A bench/e2e_warmup.ts [--requests 30000] [--bucket 1000] [--runs 1] [--json]
 *
 * Extra deno/V8 flags for an experiment: $TCPCOPY_DENO_FLAGS and $INTERCEPT_DENO_FLAGS (e.g.
 * `--v8-flags=--max-semi-space-size=16,--max-lazy`: repeat the programs' list,
 * lib/process/v8_flags.ts); $TCPCOPY_MAIN runs another tree's main.ts (before/after);
 * $E2E_WARMUP_KEEP=DIR copies the last pair's stdout and stderr there (e.g. `--trace-opt` output).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { isRoot, withNetns } from "../tests/helpers/netns.ts";
import { settle } from "../tests/helpers/replication.ts";
import { type BenchLab, restartPair, startBenchLab, stopStarted } from "./e2e_lab.ts";
import { runLoad } from "./e2e_workloads.ts";
import { printTable } from "./table.ts";

/**
 * CPU seconds of a process: main thread and all threads, from schedstat (ns precision); and its
 * minor page faults so far (/proc/PID/stat: first touches of memory).
 */
interface Cpu {
  main: number;
  all: number;
  minflt: number;
}

/** One sample: time, requests served by the target, CPU of tcpcopy and intercept. */
interface Sample {
  t: number;
  served: number;
  tcpcopy: Cpu;
  intercept: Cpu;
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

/** Counts the lines of a growing file, reading only what was appended since the last call. */
function lineCounter(path: string): () => number {
  let offset = 0, lines = 0;
  const buf = new Uint8Array(1 << 20);
  return () => {
    let f: Deno.FsFile;
    try {
      f = Deno.openSync(path);
    } catch {
      return lines;
    }
    try {
      f.seekSync(offset, Deno.SeekMode.Start);
      for (let i = 0; i < 1000; i++) {
        const n = f.readSync(buf);
        if (n === null || n === 0) break;
        offset += n;
        for (let j = 0; j < n; j++) if (buf[j] === 10) lines++;
      }
    } finally {
      f.close();
    }
    return lines;
  };
}

/**
 * One run on a fresh pair: `requests` in chunks of `bucket`, each its own h2load (one connection,
 * one stream); after each chunk, once the target has served it, a sample.
 */
async function run(
  b: BenchLab,
  requests: number,
  bucket: number,
): Promise<{ samples: Sample[]; startCpu: Cpu[] }> {
  const count = lineCounter(b.targetLog);
  const base = count();
  const tp = b.pair.tcpcopy.pid, ip = b.pair.intercept.pid;
  const startCpu = [threadCpu(tp), threadCpu(ip)];
  const samples: Sample[] = [];
  const sample = () =>
    samples.push({
      t: performance.now(),
      served: count() - base,
      tcpcopy: threadCpu(tp),
      intercept: threadCpu(ip),
    });
  sample();
  for (let done = 0; done < requests; done += bucket) {
    const load = { kind: "h2load" as const, requests: bucket, clients: 1, streams: 1 };
    await runLoad(b.on.client, load, b.on.ip);
    await settle(() => Promise.resolve(count() - base), done + bucket, 30_000, 300);
    sample();
  }
  return { samples, startCpu };
}

/**
 * Per bucket, per target request: CPU µs of [tcpcopy all threads, tcpcopy main, intercept all,
 * intercept main], then minor page faults of [tcpcopy, intercept].
 */
function buckets(samples: Sample[]): number[][] {
  const picks: [(s: Sample) => number, number][] = [
    [(s) => s.tcpcopy.all, 1e6],
    [(s) => s.tcpcopy.main, 1e6],
    [(s) => s.intercept.all, 1e6],
    [(s) => s.intercept.main, 1e6],
    [(s) => s.tcpcopy.minflt, 1],
    [(s) => s.intercept.minflt, 1],
  ];
  const out: number[][] = [];
  for (let k = 1; k < samples.length; k++) {
    const n = Math.max(1, samples[k].served - samples[k - 1].served);
    out.push(picks.map(([p, scale]) => (p(samples[k]) - p(samples[k - 1])) * scale / n));
  }
  return out;
}

/** The median of `v`. */
function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      requests: { type: "string", default: "30000" },
      bucket: { type: "string", default: "1000" },
      runs: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
    },
    strict: true,
  });
  const int = (flag: string, text: string, min: number, max: number) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) {
      console.error(`e2e_warmup: --${flag} ${text}: expected an integer from ${min} to ${max}`);
      Deno.exit(2);
    }
    return n;
  };
  const requests = int("requests", values.requests, 3000, 1_000_000);
  const bucket = int("bucket", values.bucket, 100, requests / 3);
  const runs = int("runs", values.runs, 1, 10);
  if (!isRoot()) {
    console.error("e2e_warmup: needs root (network namespaces)");
    Deno.exit(2);
  }
  const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  const before = load();
  const opts = {
    impl: "ours" as const,
    interceptMode: "nfqueue" as const,
    tcpcopyArgs: [],
    c: null,
  };
  await withNetns(async (env) => {
    const b = await startBenchLab(env, opts);
    for (let r = 1; r <= runs; r++) {
      if (r > 1) await restartPair(env, b, opts);
      const { samples, startCpu } = await run(b, requests, bucket);
      const rows = buckets(samples);
      const warmFrom = Math.floor(rows.length * 2 / 3);
      const warm = [0, 1, 2, 3, 4, 5].map((i) => median(rows.slice(warmFrom).map((x) => x[i])));
      const firstN = Math.min(rows.length, Math.floor(10_000 / bucket));
      const first = [0, 1, 2, 3, 4, 5].map((i) =>
        rows.slice(0, firstN).reduce((s, x) => s + x[i], 0) / firstN
      );
      const f = (v: number) => v.toFixed(0);
      const table = rows.map((x, k) => [
        `${k * bucket}–${(k + 1) * bucket}`,
        `${f(x[0])} (${f(x[1])})`,
        `${f(x[2])} (${f(x[3])})`,
        `${(x[0] / warm[0]).toFixed(2)}× / ${(x[2] / warm[2]).toFixed(2)}×`,
        `${x[4].toFixed(2)} / ${x[5].toFixed(2)}`,
      ]);
      table.push([
        `first ${firstN * bucket}`,
        `${f(first[0])} (${f(first[1])})`,
        `${f(first[2])} (${f(first[3])})`,
        `${(first[0] / warm[0]).toFixed(2)}× / ${(first[2] / warm[2]).toFixed(2)}×`,
        `${first[4].toFixed(2)} / ${first[5].toFixed(2)}`,
      ]);
      table.push([
        `warm (median of buckets from ${warmFrom * bucket})`,
        `${f(warm[0])} (${f(warm[1])})`,
        `${f(warm[2])} (${f(warm[3])})`,
        "1×",
        `${warm[4].toFixed(2)} / ${warm[5].toFixed(2)}`,
      ]);
      console.log(
        `\nrun ${r}: start-up CPU before the first request, all threads (main):` +
          ` tcpcopy ${(startCpu[0].all * 1000).toFixed(0)} ms (${
            (startCpu[0].main * 1000).toFixed(0)
          }),` +
          ` intercept ${(startCpu[1].all * 1000).toFixed(0)} ms (${
            (startCpu[1].main * 1000).toFixed(0)
          })`,
      );
      printTable([
        "target requests",
        "tcpcopy µs CPU/req all threads (main)",
        "intercept µs CPU/req all (main)",
        "÷ warm tcpcopy / intercept",
        "minor faults/req tcpcopy / intercept",
      ], table);
      if (values.json) {
        console.log(JSON.stringify({ run: r, startCpu, buckets: rows, warm, first }));
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
  console.log(`(load averages 1/5/15 min: before ${before}, after ${load()})`);
}
