/**
 * End-to-end replication benchmark (root): issue 14's workloads through the lab of
 * bench/e2e_lab.ts (real nginx with HTTP/1.1 and h2c ports, ab, h2load, held connections), for
 * ours (intercept in NFQUEUE mode on the target, or pcap with `--intercept-mode pcap`) and, with
 * `--c-prefix DIR` (or `--c-tcpcopy PATH --c-intercept PATH`), for the C original built outside
 * the repo (C tcpcopy on the online host, C intercept in pcap mode on the target's link) in the
 * same run. For each workload and implementation it prints the requests served online and by the
 * target, the loss ratio from the access logs, the kernel drops, the CPU microseconds per request
 * of tcpcopy and intercept (deltas of /proc/PID/stat over the workload and the target's catch-up;
 * divided once by the requests served online and once by those the target served: with loss,
 * the second is the cost per request actually replayed)
 * and their peak RSS (VmHWM: peak since the process started, so the first four rows accumulate
 * as issue 14's memory table does); then a table with the medians and ranges over the rounds
 * and the ours/C ratios, and one of where the CPU per request went (`CpuSplit`: kernel time,
 * threads other than the main one, the main thread's sleeps, i.e. wake-ups, and preemptions per
 * request, from /proc/PID/stat, /proc/PID/task/PID/stat and /proc/PID/status).
 *
 *   sudo deno run -A bench/e2e_replication.ts [--c-prefix /work/cbuild] [--rounds 2]
 *       [--only short1k,ka20k,...] [--scale 1] [--impl ours,c]
 *
 * Each round builds a fresh lab for each implementation (the order alternates between rounds);
 * rows marked fresh restart tcpcopy and intercept first, `h2` warms up on 10,000 requests first.
 * `--only` picks workloads by id (see bench/e2e_workloads.ts; `short1kwarm` (short1k's load after
 * 10,000 short connections unmeasured: the warm cost; `--warmup N` sets that count for the warm rows,
 * e.g. 40,000 for the cost once TurboFan has compiled the per-connection functions, which it
 * finishes only after ~16,000–19,000 connections) and `paced,burst,single,parallel` (the older
 * rows) run only when named); `--same-processes` runs every round against the same lab
 * and processes of ours (the older behaviour: later rounds show the warm cost).
 *
 * Profiling (ours): TCPCOPY_DENO_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (tcpcopy is stopped
 * with SIGINT, so the profile is written); `--keep DIR` copies tcpcopy's last stdout and stderr
 * there; `--perf DIR` records each workload with `perf record -g` into DIR/<impl>-<id>.data
 * (`--perf-cmd "trace -s"` runs another perf command, text into DIR/<impl>-<id>.txt;
 * `--perf-of intercept` records intercept instead). `--tcpcopy "-C 1"` passes extra flags to our
 * tcpcopy. `--compare` runs ours with `--compare` (and a `--secret-file`) on both programs, for
 * the cost of comparing responses (issue 15). `--private-deno` runs our tcpcopy and intercept
 * each on its own copy of the deno executable (as on a production host, where no other process
 * maps it: only then does the kernel page out the runtime's start-up code, see
 * lib/process/memory.ts; the RSS figures depend on it). `--mem-trace` samples ours' /proc/PID/smaps
 * during each workload and prints where the most RSS was (executable, capture rings, libraries,
 * anonymous; V8 heap from the stats line: bench/mem_trace.ts) and where the most anonymous memory
 * was (tcpcopy's "anon peak": the ring left out); every row also keeps VmHWM before
 * the workload (after a restart: the start-up peak). `--jit` runs ours with
 * `--v8-flags=--trace-opt,--trace-deopt` and counts the Maglev and TurboFan compiles and the
 * deopts of each program during each measured workload (warm-up excluded; bench/jit_trace.ts),
 * with the functions compiled and the deopt reasons of that interval: recurring compiles in a warm
 * process are what to fix (tracing costs CPU: the µs of such a run are not comparable).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Cleanup, isRoot, withNetns } from "../tests/helpers/netns.ts";
import { settle } from "../tests/helpers/replication.ts";
import {
  type BenchLab,
  type CPrograms,
  H1_PORT,
  type Impl,
  kernelDrops,
  type PairOptions,
  replayState,
  restartPair,
  servedCounts,
  startBenchLab,
  stopStarted,
  type Usage,
  usage,
} from "./e2e_lab.ts";
import { runLoad, scaled, type Workload, WORKLOADS } from "./e2e_workloads.ts";
import { printTable } from "./table.ts";
import { median } from "./median.ts";
import { usageOf } from "./args.ts";
import { describeSample, type MemSample, MemTrace } from "./mem_trace.ts";
import { countJitLine, emptyJitCounts, type JitCounts, topEntries } from "./jit_trace.ts";

/** One measured workload of one implementation in one round. */
export interface Row {
  id: string;
  impl: Impl;
  round: number;
  online: number;
  target: number;
  loss: number;
  clientReqPerS: number;
  targetDoneS: number;
  /** CPU µs per request served online (the load offered). */
  tcpcopyUsPerReq: number;
  interceptUsPerReq: number;
  /** CPU µs per request the target actually served (the replayed work; higher when requests are lost). */
  tcpcopyUsPerTargetReq: number;
  interceptUsPerTargetReq: number;
  /** VmHWM after the workload (peak since the process started), MiB. */
  tcpcopyPeakMiB: number;
  interceptPeakMiB: number;
  /** VmHWM before the workload (after a restart: the start-up peak), MiB. */
  tcpcopyPeakBeforeMiB: number;
  interceptPeakBeforeMiB: number;
  /** `--mem-trace`: where the most RSS during the workload was (bench/mem_trace.ts). */
  tcpcopyMem?: MemSample | null;
  /** `--mem-trace`: the sample with the most anonymous memory (heap, malloc; not the ring). */
  tcpcopyAnonMem?: MemSample | null;
  interceptMem?: MemSample | null;
  /** VmRSS after the workload, MiB. */
  tcpcopyRssMiB: number;
  interceptRssMiB: number;
  /** Kernel drops during the workload (null: not observable). */
  tcpcopyDrops: number | null;
  interceptDrops: number | null;
  /**
   * Ours: tcpcopy's `lost.*` counters that grew during the workload (only those), and the
   * requests it had captured but not sent when the row was taken (lost ones included: a loss
   * with unsent requests and no lost counter means the replay lagged more than the wait for the
   * target allowed, and the requests were lost only when the bench stopped tcpcopy).
   */
  tcpcopyLost?: Record<string, number>;
  tcpcopyUnsent?: number;
  /** Where tcpcopy's and intercept's CPU per online request went, and their wake-ups. */
  tcpcopySplit: CpuSplit;
  interceptSplit: CpuSplit;
  /** The machine's 1-minute load average after the workload (other work shares the 2 cores). */
  load1: number;
  /** `--jit`: compiles and deopts of tcpcopy and intercept during the measured workload. */
  tcpcopyJit?: JitText;
  interceptJit?: JitText;
}

/** One program's JIT work in one measured interval, as printed. */
export interface JitText {
  maglev: number;
  turbofan: number;
  deopts: number;
  /** "name#sfi/tier ×n", most compiled first. */
  compiled: string[];
  /** "name#sfi: reason ×n". */
  deoptReasons: string[];
  /** Where the interval began in the program's stdout (bytes; with `--keep`, in the kept copy). */
  fromByte: number;
}

/** The compiles and deopts in `lines` (trace output of one interval). */
export function jitOfLines(lines: string, fromByte: number): JitText {
  const c: JitCounts = emptyJitCounts();
  for (const line of lines.split("\n")) countJitLine(c, line);
  return {
    maglev: c.maglev,
    turbofan: c.turbofan,
    deopts: c.deopts,
    compiled: topEntries(c.perFunction, 400),
    deoptReasons: topEntries(c.deoptReasons, 400),
    fromByte,
  };
}

/** Follows `path` from its present end; `stop()` returns what was appended since (the interval's lines). */
function appendedText(path: string): { from: number; stop(): string } {
  const size = () => {
    try {
      return Deno.statSync(path).size;
    } catch {
      return 0;
    }
  };
  const from = size();
  return {
    from,
    stop() {
      const n = Math.max(0, size() - from);
      const buf = new Uint8Array(n);
      const f = Deno.openSync(path);
      let got = 0;
      try {
        f.seekSync(from, Deno.SeekMode.Start);
        for (let i = 0; i < 10_000 && got < n; i++) {
          const r = f.readSync(buf.subarray(got));
          if (r === null || r === 0) break;
          got += r;
        }
      } finally {
        f.close();
      }
      return new TextDecoder().decode(buf.subarray(0, got));
    },
  };
}

/**
 * One program's CPU per online request, split: µs in the kernel (stime), µs on threads other
 * than the main one (V8's compiler and GC workers, Deno's helpers; none for C), and the main
 * thread's sleeps (voluntary context switches: one per wake-up) and preemptions per request.
 */
export interface CpuSplit {
  sysUs: number;
  otherThreadsUs: number;
  sleepsPerReq: number;
  preemptedPerReq: number;
}

/** The {@link CpuSplit} between two usage readings over `requests`. */
export function cpuSplit(a: Usage, z: Usage, requests: number): CpuSplit {
  const n = Math.max(1, requests);
  const us = (s: number) => Math.round(s / n * 1e6);
  const per = (d: number) => Math.round(d / n * 100) / 100;
  return {
    sysUs: us(z.sysS - a.sysS),
    otherThreadsUs: us(z.cpuS - a.cpuS - (z.mainS - a.mainS)),
    sleepsPerReq: per(z.sleeps - a.sleeps),
    preemptedPerReq: per(z.preempted - a.preempted),
  };
}

/** The counters of `after` that grew since `before`. */
function grown(before: Record<string, number>, after: Record<string, number>) {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  }
  return out;
}

/** Parsed command line. */
interface Options {
  scale: number;
  /** `--warmup N`: unmeasured connections before a warm row (null: the workload's own). */
  warmup: number | null;
  rounds: number;
  only: Set<string> | null;
  impls: Impl[];
  c: CPrograms | null;
  interceptMode: "nfqueue" | "pcap";
  tcpcopyArgs: string[];
  /** `--compare`: ours runs with --compare and --secret-file on both programs (issue 15). */
  compare: boolean;
  /** `--private-deno`: ours run on their own deno copies, as on a production host. */
  privateDeno: boolean;
  /** `--mem-trace`: sample ours' smaps during each workload, print the peak's breakdown. */
  memTrace: boolean;
  sameProcesses: boolean;
  keep: string;
  perf: string;
  perfCmd: string;
  perfOf: "tcpcopy" | "intercept";
  /** `--jit`: ours traced with --trace-opt,--trace-deopt; compiles per measured workload. */
  jit: boolean;
}

/** Prints one error line and exits with status 2. */
function usageError(line: string): never {
  console.error(`e2e_replication: ${line}`);
  Deno.exit(2);
}

/** True when `path` is an executable file. */
function executable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Parses and checks the command line (one clear line and exit 2 on bad input). */
function parseOptions(args: string[]): Options {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usageOf(import.meta.url));
    Deno.exit(0);
  }
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        scale: { type: "string", default: "1" },
        warmup: { type: "string", default: "" },
        only: { type: "string", default: "" },
        rounds: { type: "string", default: "1" },
        impl: { type: "string", default: "" },
        "c-prefix": { type: "string", default: "" },
        "c-tcpcopy": { type: "string", default: "" },
        "c-intercept": { type: "string", default: "" },
        "intercept-mode": { type: "string", default: "nfqueue" },
        "same-processes": { type: "boolean", default: false },
        keep: { type: "string", default: "" },
        perf: { type: "string", default: "" },
        "perf-cmd": { type: "string", default: "" },
        "perf-of": { type: "string", default: "tcpcopy" },
        tcpcopy: { type: "string", default: "" },
        compare: { type: "boolean", default: false },
        "private-deno": { type: "boolean", default: false },
        "mem-trace": { type: "boolean", default: false },
        jit: { type: "boolean", default: false },
      },
      strict: true,
    }).values;
  } catch (e) {
    usageError((e as Error).message);
  }
  const warmup = values.warmup === "" ? null : Number(values.warmup);
  if (warmup !== null && !(Number.isInteger(warmup) && warmup > 0)) {
    usageError(`--warmup ${values.warmup}: expected a whole number above 0`);
  }
  const scale = Number(values.scale);
  if (!(scale > 0 && scale <= 100)) {
    usageError(`--scale ${values.scale}: expected a number in (0, 100]`);
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) {
    usageError(`--rounds ${values.rounds}: expected an integer from 1 to 20`);
  }
  const ids = new Set(WORKLOADS.map((w) => w.id));
  const only = values.only === "" ? null : new Set(values.only.split(","));
  for (const id of only ?? []) {
    if (!ids.has(id)) {
      usageError(`--only ${id}: unknown workload; expected some of ${[...ids].join(",")}`);
    }
  }
  let c: CPrograms | null = null;
  if (values["c-prefix"] !== "") {
    c = {
      tcpcopy: `${values["c-prefix"]}/tcpcopy/sbin/tcpcopy`,
      intercept: `${values["c-prefix"]}/intercept/sbin/intercept`,
    };
  }
  if (values["c-tcpcopy"] !== "" || values["c-intercept"] !== "") {
    if (values["c-tcpcopy"] === "" || values["c-intercept"] === "") {
      usageError("--c-tcpcopy and --c-intercept go together (or give --c-prefix DIR)");
    }
    c = { tcpcopy: values["c-tcpcopy"], intercept: values["c-intercept"] };
  }
  for (
    const [flag, path] of c === null ? [] : [["tcpcopy", c.tcpcopy], ["intercept", c.intercept]]
  ) {
    if (!executable(path)) {
      usageError(
        `C ${flag} ${path}: not an executable file (--c-prefix DIR expects DIR/${flag}/sbin/${flag})`,
      );
    }
  }
  const impls = (values.impl === "" ? (c === null ? "ours" : "ours,c") : values.impl).split(",");
  for (const i of impls) {
    if (i !== "ours" && i !== "c") usageError(`--impl ${i}: expected ours, c or ours,c`);
  }
  if (impls.includes("c") && c === null) {
    usageError("--impl c needs --c-prefix DIR or --c-tcpcopy/--c-intercept");
  }
  const mode = values["intercept-mode"];
  if (mode !== "nfqueue" && mode !== "pcap") {
    usageError(`--intercept-mode ${mode}: expected nfqueue or pcap`);
  }
  const perfOf = values["perf-of"];
  if (perfOf !== "tcpcopy" && perfOf !== "intercept") {
    usageError(`--perf-of ${perfOf}: expected tcpcopy or intercept`);
  }
  return {
    scale,
    warmup,
    rounds,
    only,
    impls: impls as Impl[],
    c,
    interceptMode: mode,
    tcpcopyArgs: values.tcpcopy.split(" ").filter((a) => a !== ""),
    compare: values.compare,
    privateDeno: values["private-deno"],
    memTrace: values["mem-trace"],
    sameProcesses: values["same-processes"],
    keep: values.keep,
    perf: values.perf,
    perfCmd: values["perf-cmd"],
    perfOf,
    jit: values.jit,
  };
}

/** The workloads to run: the default list, or the ones `--only` names, in list order. */
function selected(o: Options): Workload[] {
  return WORKLOADS.filter((w) => o.only === null ? !w.extra : o.only.has(w.id));
}

/** Starts `perf` on the measured process when asked; returns a stop function. */
async function startPerf(o: Options, b: BenchLab, w: Workload): Promise<() => Promise<void>> {
  if (o.perf === "") return () => Promise.resolve();
  const pid = o.perfOf === "intercept" ? b.pair.intercept.pid : b.pair.tcpcopy.pid;
  const out = `${o.perf}/${b.pair.impl}-${w.id}.${o.perfCmd === "" ? "data" : "txt"}`;
  const cmd = o.perfCmd === "" ? ["record", "-q", "-F", "1999", "-g"] : o.perfCmd.split(" ");
  const perf = new Deno.Command("perf", {
    args: [...cmd, "-p", String(pid), "-o", out],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 300));
  return async () => {
    perf.kill("SIGINT");
    await perf.status;
  };
}

/** Runs one workload on a running lab and measures it. */
async function measure(
  env: Cleanup,
  o: Options,
  pairOpts: PairOptions,
  b: BenchLab,
  w: Workload,
  round: number,
): Promise<Row> {
  if (w.fresh) await restartPair(env, b, pairOpts);
  if (w.warmup) {
    const c0 = await servedCounts(b);
    const n = Math.round((o.warmup ?? w.warmup) * o.scale);
    await runLoad(b.on.client, scaled(w.load, o.scale, n), b.on.ip);
    const online = (await servedCounts(b)).online - c0.online;
    await settle(async () => (await servedCounts(b)).target - c0.target, online, 60_000, 3000);
  }
  const c0 = await servedCounts(b);
  const t0u = await usage(b.pair.tcpcopy.pid), i0u = await usage(b.pair.intercept.pid);
  const t0d = await kernelDrops(b, "tcpcopy"), i0d = await kernelDrops(b, "intercept");
  const r0 = await replayState(b);
  const stopPerf = await startPerf(o, b, w);
  const jit = o.jit && b.pair.impl === "ours"
    ? [appendedText(b.pair.tcpcopy.out), appendedText(b.pair.intercept.out)]
    : null;
  const trace = o.memTrace && b.pair.impl === "ours"
    ? [
      new MemTrace(b.pair.tcpcopy.pid, b.pair.tcpcopy.out),
      new MemTrace(b.pair.intercept.pid, b.pair.intercept.out),
    ]
    : null;
  const start = Date.now();
  const answered = await runLoad(b.on.client, scaled(w.load, o.scale), b.on.ip);
  const clientS = (Date.now() - start) / 1000;
  const online = (await servedCounts(b)).online - c0.online;
  const target = await settle(
    async () => (await servedCounts(b)).target - c0.target,
    online,
    120_000,
    5000,
  );
  const targetDoneS = (Date.now() - start) / 1000;
  await new Promise((r) => setTimeout(r, 1100)); // one more stats line of ours
  const t1u = await usage(b.pair.tcpcopy.pid), i1u = await usage(b.pair.intercept.pid);
  const t1d = await kernelDrops(b, "tcpcopy"), i1d = await kernelDrops(b, "intercept");
  const r1 = await replayState(b);
  await stopPerf();
  const [tJit, iJit] = jit === null ? [] : jit.map((j) => jitOfLines(j.stop(), j.from));
  const [tMem, iMem] = trace === null ? [undefined, undefined] : [
    await trace[0].stop(),
    await trace[1].stop(),
  ];
  const tAnon = trace === null ? undefined : trace[0].anonPeak;
  const us = (s: number) => Math.round(s / Math.max(1, online) * 1e6);
  const usT = (s: number) => Math.round(s / Math.max(1, target) * 1e6);
  const delta = (a: number | null, z: number | null) => a === null || z === null ? null : z - a;
  return {
    id: w.id,
    impl: b.pair.impl,
    round,
    online,
    target,
    loss: online === 0 ? 0 : (online - target) / online,
    clientReqPerS: Math.round(answered / clientS),
    targetDoneS: Math.round(targetDoneS * 10) / 10,
    tcpcopyUsPerReq: us(t1u.cpuS - t0u.cpuS),
    interceptUsPerReq: us(i1u.cpuS - i0u.cpuS),
    tcpcopySplit: cpuSplit(t0u, t1u, online),
    interceptSplit: cpuSplit(i0u, i1u, online),
    tcpcopyUsPerTargetReq: usT(t1u.cpuS - t0u.cpuS),
    interceptUsPerTargetReq: usT(i1u.cpuS - i0u.cpuS),
    tcpcopyPeakMiB: Math.round(t1u.peakMiB),
    interceptPeakMiB: Math.round(i1u.peakMiB),
    tcpcopyPeakBeforeMiB: Math.round(t0u.peakMiB),
    interceptPeakBeforeMiB: Math.round(i0u.peakMiB),
    tcpcopyMem: tMem,
    tcpcopyAnonMem: tAnon,
    interceptMem: iMem,
    tcpcopyRssMiB: Math.round(t1u.rssMiB),
    interceptRssMiB: Math.round(i1u.rssMiB),
    tcpcopyDrops: delta(t0d, t1d),
    interceptDrops: delta(i0d, i1d),
    ...(r0 === null || r1 === null
      ? {}
      : { tcpcopyLost: grown(r0.lost, r1.lost), tcpcopyUnsent: r1.unsent }),
    load1: Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]),
    ...(tJit === undefined ? {} : { tcpcopyJit: tJit, interceptJit: iJit }),
  };
}

/** Runs the selected workloads on `b`, pushing each row to `rows` (and stderr). */
async function runList(
  env: Cleanup,
  o: Options,
  pairOpts: PairOptions,
  b: BenchLab,
  round: number,
  rows: Row[],
) {
  for (const w of selected(o)) {
    const row = await measure(env, o, pairOpts, b, w, round);
    const { tcpcopyJit, interceptJit, ...rest } = row;
    console.error(JSON.stringify(rest));
    for (const [who, j] of [["tcpcopy", tcpcopyJit], ["intercept", interceptJit]] as const) {
      if (j === undefined) continue;
      console.error(
        `  [${row.id}] ${who} JIT while measured: ${j.maglev} Maglev, ${j.turbofan} TurboFan, ${j.deopts} deopts (from byte ${j.fromByte} of its stdout)\n    compiled: ${
          j.compiled.join(", ") || "none"
        }\n    deopts: ${j.deoptReasons.join(", ") || "none"}`,
      );
    }
    if (row.tcpcopyMem !== undefined) {
      console.error(`  [${row.id}] tcpcopy peak: ${describeSample(row.tcpcopyMem)}`);
      console.error(
        `  [${row.id}] tcpcopy anon peak: ${describeSample(row.tcpcopyAnonMem ?? null)}`,
      );
      console.error(`  [${row.id}] intercept peak: ${describeSample(row.interceptMem ?? null)}`);
    }
    rows.push(row);
  }
}

/** Runs every round for every implementation; returns the rows. */
async function main(o: Options): Promise<Row[]> {
  const rows: Row[] = [];
  const pairOpts = (impl: Impl): PairOptions => ({
    impl,
    interceptMode: o.interceptMode,
    tcpcopyArgs: o.tcpcopyArgs,
    c: o.c,
    compare: o.compare,
    privateDeno: o.privateDeno,
  });
  /** One lab for `impl` running `rounds` (a list of round numbers) of the list. */
  const lab = (impl: Impl, rounds: number[]) =>
    withNetns(async (env) => {
      const b = await startBenchLab(env, pairOpts(impl));
      console.error(`[${impl}] lab up (${b.lab.dir})`);
      for (const round of rounds) await runList(env, o, pairOpts(impl), b, round, rows);
      await finish(o, b);
    });
  const all = Array.from({ length: o.rounds }, (_, i) => i + 1);
  if (o.sameProcesses) {
    for (const impl of o.impls) await lab(impl, all);
    return rows;
  }
  for (const round of all) {
    // alternate the order, so neither implementation always runs on a warmer machine
    for (const impl of round % 2 === 1 ? o.impls : [...o.impls].reverse()) await lab(impl, [round]);
  }
  return rows;
}

/** Stops tcpcopy with SIGINT (a clean exit, and a profile when asked for) and keeps its logs. */
async function finish(o: Options, b: BenchLab): Promise<void> {
  await stopStarted(b.pair.tcpcopy, "SIGINT");
  if (o.keep !== "") {
    await Deno.mkdir(o.keep, { recursive: true });
    for (
      const [who, s] of [["tcpcopy", b.pair.tcpcopy], ["intercept", b.pair.intercept]] as const
    ) {
      for (const [ext, path] of [["out", s.out], ["err", s.err]] as const) {
        await Deno.copyFile(path, `${o.keep}/${b.pair.impl}-${who}.${ext}`).catch(() => {});
      }
    }
  }
}

/** "12" for one value, "12 (10–14)" for several: the median and the range. */
export function spread(values: number[]): string {
  if (values.length === 0) return "–";
  const s = values.toSorted((a, b) => a - b);
  const med = Math.round(median(s) * 10) / 10;
  return s[0] === s[s.length - 1] ? `${med}` : `${med} (${s[0]}–${s[s.length - 1]})`;
}

/** "1.23×" for ours / C medians, "–" without a C figure. */
function ratio(ours: number[], c: number[]): string {
  const r = median(ours) / median(c);
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : "–";
}

/** Prints the summary tables: CPU and memory, ours vs C with ratios. */
function printSummary(o: Options, rows: Row[]): void {
  const ids = selected(o).map((w) => w.id);
  const names = new Map(WORKLOADS.map((w) => [w.id, w.name]));
  const of = (id: string, impl: Impl) => rows.filter((r) => r.id === id && r.impl === impl);
  const col = (rs: Row[], f: (r: Row) => number | null) =>
    spread(rs.map(f).filter((v): v is number => v !== null));
  const pct = (rs: Row[]) =>
    rs.length === 0 ? "–" : rs.map((r) => `${(r.loss * 100).toFixed(2)}%`).join(", ");
  const drops = (rs: Row[]) =>
    rs.length === 0
      ? "–"
      : rs.map((r) => `${r.tcpcopyDrops ?? "?"}/${r.interceptDrops ?? "?"}`).join(", ");
  const table: string[][] = [];
  for (const id of ids) {
    const us = of(id, "ours"), c = of(id, "c");
    table.push([
      names.get(id) ?? id,
      `${col(us, (r) => r.tcpcopyUsPerReq)} / ${col(us, (r) => r.interceptUsPerReq)}`,
      `${col(c, (r) => r.tcpcopyUsPerReq)} / ${col(c, (r) => r.interceptUsPerReq)}`,
      `${ratio(us.map((r) => r.tcpcopyUsPerReq), c.map((r) => r.tcpcopyUsPerReq))} / ${
        ratio(us.map((r) => r.interceptUsPerReq), c.map((r) => r.interceptUsPerReq))
      }`,
      `${col(us, (r) => r.tcpcopyUsPerTargetReq)} / ${col(us, (r) => r.interceptUsPerTargetReq)}`,
      `${col(c, (r) => r.tcpcopyUsPerTargetReq)} / ${col(c, (r) => r.interceptUsPerTargetReq)}`,
      `${ratio(us.map((r) => r.tcpcopyUsPerTargetReq), c.map((r) => r.tcpcopyUsPerTargetReq))} / ${
        ratio(us.map((r) => r.interceptUsPerTargetReq), c.map((r) => r.interceptUsPerTargetReq))
      }`,
      `${col(us, (r) => r.tcpcopyPeakMiB)} / ${col(us, (r) => r.interceptPeakMiB)}`,
      `${col(c, (r) => r.tcpcopyPeakMiB)} / ${col(c, (r) => r.interceptPeakMiB)}`,
      `${ratio(us.map((r) => r.tcpcopyPeakMiB), c.map((r) => r.tcpcopyPeakMiB))} / ${
        ratio(us.map((r) => r.interceptPeakMiB), c.map((r) => r.interceptPeakMiB))
      }`,
      `${pct(us)} | ${pct(c)}`,
      `${drops(us)} | ${drops(c)}`,
      `${col(us, (r) => r.online)}`,
      `${us.map((r) => r.load1).join(", ")} | ${c.map((r) => r.load1).join(", ")}`,
    ]);
  }
  printTable([
    "workload",
    "ours µs CPU/req tcpcopy / intercept",
    "C µs CPU/req",
    "ours/C CPU (per online req)",
    "ours µs CPU/target req tcpcopy / intercept",
    "C µs CPU/target req",
    "ours/C CPU (per target req)",
    "ours peak RSS MiB tcpcopy / intercept",
    "C peak RSS MiB",
    "ours/C RSS",
    "loss ours | C",
    "kernel drops tcpcopy/intercept ours | C",
    "requests",
    "load average (1 min) ours | C",
  ], table);
  console.log(
    `\n(${o.rounds} round(s); median (range); C intercept drops are not observable: "?";\n` +
      " CPU/req divides by requests served online, CPU/target req by requests the target served)",
  );
  printSplit(ids, names, rows);
}

/** Where the CPU per online request went: kernel, other threads, wake-ups (medians). */
function printSplit(ids: string[], names: Map<string, string>, rows: Row[]): void {
  const table: string[][] = [];
  const cell = (rs: Row[], f: (r: Row) => number) => rs.length === 0 ? "–" : spread(rs.map(f));
  for (const id of ids) {
    for (const impl of ["ours", "c"] as const) {
      const rs = rows.filter((r) => r.id === id && r.impl === impl);
      if (rs.length === 0) continue;
      const both = (f: (s: CpuSplit) => number) =>
        `${cell(rs, (r) => f(r.tcpcopySplit))} / ${cell(rs, (r) => f(r.interceptSplit))}`;
      table.push([
        names.get(id) ?? id,
        impl,
        both((s) => s.sysUs),
        both((s) => s.otherThreadsUs),
        both((s) => s.sleepsPerReq),
        both((s) => s.preemptedPerReq),
      ]);
    }
  }
  console.log();
  printTable([
    "workload",
    "impl",
    "kernel µs/req tcpcopy / intercept",
    "other threads µs/req",
    "sleeps (wake-ups)/req",
    "preemptions/req",
  ], table);
}

if (import.meta.main) {
  const o = parseOptions(Deno.args);
  if (!isRoot()) usageError("needs root (network namespaces, raw sockets)");
  if (o.jit) {
    for (const v of ["TCPCOPY_DENO_FLAGS", "INTERCEPT_DENO_FLAGS"]) {
      Deno.env.set(v, `${Deno.env.get(v) ?? ""} --v8-flags=--trace-opt,--trace-deopt`.trim());
    }
  }
  const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  const before = load();
  const rows = await main(o);
  printSummary(o, rows);
  console.log(`(load averages 1/5/15 min: before ${before}, after ${load()})`);
}

export { H1_PORT };
