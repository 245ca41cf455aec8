/**
 * End-to-end replication benchmark (root): the workloads the C tcpcopy 1.3 was measured with,
 * run through the lab of tests/helpers/replication.ts (real nginx, ab, intercept in NFQUEUE mode). For each
 * workload it prints requests served online and by the target, the loss ratio from the access
 * logs, the wall time the target needed, and the CPU microseconds per request of tcpcopy and
 * intercept (deltas of /proc/PID/stat over the workload, start-up excluded).
 *
 *   sudo deno run -A bench/e2e_replication.ts [--scale 1] [--only paced,burst,single,parallel]
 *
 * `--only` picks workloads by the last part of their path; `--rounds N` runs the list N times
 * against the same tcpcopy (later rounds show the cost once the JIT has warmed up). To profile tcpcopy, set
 * TCPCOPY_DENO_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof": tcpcopy is stopped with SIGINT at
 * the end, so the profile is written. `--keep DIR` copies tcpcopy's stdout and stderr there
 * (e.g. for `--v8-flags=--trace-deopt` output). `--perf DIR` records each workload with
 * `perf record -g` into DIR/<workload>.data (add `--v8-flags=--perf-basic-prof` to
 * TCPCOPY_DENO_FLAGS for JS names); `--perf-cmd "trace -s"` runs another perf command instead
 * (its text output goes to DIR/<workload>.txt); `--perf-of intercept` records intercept instead.
 * `--tcpcopy "-C 1"` passes extra flags to tcpcopy.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { isRoot, withNetns } from "../tests/helpers/netns.ts";
import { ab, cpuSeconds } from "../tests/helpers/lab.ts";
import {
  HTTP_PORT,
  served,
  settle,
  startReplication,
  stopTcpcopy,
} from "../tests/helpers/replication.ts";

interface Workload {
  name: string;
  path: string;
  requests: number;
  concurrency: number;
  keepAlive: boolean;
  /** C tcpcopy 1.3 figures from the issue, for the table. */
  c: string;
}

/** One row of the result table. */
export interface Row {
  name: string;
  online: number;
  target: number;
  loss: number;
  clientReqPerS: number;
  targetDoneS: number;
  tcpcopyUsPerReq: number;
  /** The system-time part of tcpcopyUsPerReq. */
  tcpcopySysUsPerReq: number;
  /** Context switches of all tcpcopy threads per request (a proxy for wake-ups). */
  tcpcopySwitchesPerReq: number;
  /** tcpcopy CPU µs per request by thread name. */
  tcpcopyThreads: Record<string, number>;
  interceptUsPerReq: number;
  c: string;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    scale: { type: "string", default: "1" },
    only: { type: "string", default: "" },
    keep: { type: "string", default: "" },
    perf: { type: "string", default: "" },
    rounds: { type: "string", default: "1" },
    "perf-cmd": { type: "string", default: "" },
    "perf-of": { type: "string", default: "tcpcopy" },
    tcpcopy: { type: "string", default: "" },
  },
  strict: true,
});
const scale = Number(values.scale);
const only = values.only === "" ? null : new Set(values.only.split(","));

const WORKLOADS: Workload[] = [
  {
    name: "short connections, 2 at a time",
    path: "/paced",
    requests: 3000,
    concurrency: 2,
    keepAlive: false,
    c: "0% loss; ~130 µs tcpcopy, ~70 µs intercept",
  },
  {
    name: "burst of short connections, one client IP, 20 at a time",
    path: "/burst",
    requests: 8000,
    concurrency: 20,
    keepAlive: false,
    c: "8-15% loss",
  },
  {
    name: "one keep-alive connection at full speed",
    path: "/single",
    requests: 5000,
    concurrency: 1,
    keepAlive: true,
    c: "94% loss",
  },
  {
    name: "10 parallel keep-alive connections",
    path: "/parallel",
    requests: 30000,
    concurrency: 10,
    keepAlive: true,
    c: "0% loss; ~23 µs tcpcopy, ~12 µs intercept",
  },
];

/** CPU seconds and context switches of a process, in total and per thread name. */
interface Load {
  user: number;
  sys: number;
  switches: number;
  /** CPU seconds by thread name ("deno" is the JS thread; live threads only). */
  threads: Record<string, number>;
}

/** Reads {@link Load} of `pid` from /proc. */
async function processLoad(pid: number): Promise<Load> {
  const read = (path: string) => Deno.readTextFile(path).catch(() => "");
  const fields = (stat: string) => stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const f = fields(await read(`/proc/${pid}/stat`));
  let switches = 0;
  const threads: Record<string, number> = {};
  try {
    for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
      const dir = `/proc/${pid}/task/${t.name}`;
      const status = await read(`${dir}/status`);
      for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) {
        switches += Number(m[1]);
      }
      const stat = await read(`${dir}/stat`);
      const name = /\((.*)\)/.exec(stat)?.[1] ?? "?";
      const tf = fields(stat);
      threads[name] = (threads[name] ?? 0) + (Number(tf[11]) + Number(tf[12])) / 100;
    }
  } catch { /* exited */ }
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100, switches, threads };
}

/** Per-thread-name CPU µs per request between two loads. */
function threadUs(a: Load, b: Load, requests: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.threads)) {
    out[k] = Math.round((v - (a.threads[k] ?? 0)) / requests * 1e6);
  }
  return out;
}

async function main(): Promise<Row[]> {
  if (!isRoot()) {
    console.error("e2e_replication: needs root (network namespaces, raw sockets)");
    Deno.exit(1);
  }
  return await withNetns(async (env) => {
    const extra = values.tcpcopy.split(" ").filter((a) => a !== "");
    const rep = await startReplication(env, { tcpcopyArgs: () => extra });
    const on = rep.online[0];
    const rows: Row[] = [];
    const rounds = Math.max(1, Number(values.rounds) || 1);
    for (const w of Array.from({ length: rounds }, () => WORKLOADS).flat()) {
      if (only !== null && !only.has(w.path.slice(1))) continue;
      const requests = Math.max(100, Math.round(w.requests * scale));
      const before = await served(rep.targetLog);
      const onlineBefore = await served(on.accessLog);
      const load0 = await processLoad(on.tcpcopy.pid);
      const cpu0 = await cpuSeconds(on.tcpcopy.pid), icpu0 = await cpuSeconds(rep.intercept.pid);
      let perf: Deno.ChildProcess | null = null;
      if (values.perf !== "") {
        perf = new Deno.Command("perf", {
          args: [
            ...(values["perf-cmd"] === ""
              ? ["record", "-q", "-F", "1999", "-g"]
              : values["perf-cmd"].split(" ")),
            "-p",
            String(values["perf-of"] === "intercept" ? rep.intercept.pid : on.tcpcopy.pid),
            "-o",
            `${values.perf}/${w.path.slice(1)}.${values["perf-cmd"] === "" ? "data" : "txt"}`,
          ],
          stdout: "null",
          stderr: "null",
        }).spawn();
        await new Promise((r) => setTimeout(r, 300));
      }
      const t0 = Date.now();
      const done = await ab(on.client, `http://${on.ip}:${HTTP_PORT}${w.path}`, {
        requests,
        concurrency: w.concurrency,
        keepAlive: w.keepAlive,
        timeoutS: 60,
      });
      const clientS = (Date.now() - t0) / 1000;
      const online = (await served(on.accessLog)) - onlineBefore;
      const target = await settle(
        async () => (await served(rep.targetLog)) - before,
        online,
        120_000,
        5000,
      );
      const targetDoneS = (Date.now() - t0) / 1000;
      const cpu = (await cpuSeconds(on.tcpcopy.pid)) - cpu0;
      const icpu = (await cpuSeconds(rep.intercept.pid)) - icpu0;
      const load = await processLoad(on.tcpcopy.pid);
      if (perf !== null) {
        perf.kill("SIGINT");
        await perf.status;
      }
      const row: Row = {
        name: w.name,
        online,
        target,
        loss: online === 0 ? 0 : (online - target) / online,
        clientReqPerS: Math.round(done / clientS),
        targetDoneS: Math.round(targetDoneS * 10) / 10,
        tcpcopyUsPerReq: Math.round(cpu / online * 1e6),
        tcpcopySysUsPerReq: Math.round((load.sys - load0.sys) / online * 1e6),
        tcpcopySwitchesPerReq: Math.round((load.switches - load0.switches) / online * 100) / 100,
        tcpcopyThreads: threadUs(load0, load, online),
        interceptUsPerReq: Math.round(icpu / online * 1e6),
        c: w.c,
      };
      console.error(JSON.stringify(row));
      rows.push(row);
    }
    await stopTcpcopy(on.tcpcopy); // SIGINT: a clean exit (and a profile, when asked for)
    if (values.keep !== "") {
      await Deno.copyFile(on.tcpcopy.out, `${values.keep}/tcpcopy.out`);
      await Deno.copyFile(on.tcpcopy.err, `${values.keep}/tcpcopy.err`);
    }
    return rows;
  });
}

if (import.meta.main) {
  const rows = await main();
  console.log(
    "| workload | online | target | loss | client req/s | target done after | tcpcopy µs CPU/req (sys) | tcpcopy switches/req | intercept µs CPU/req | C 1.3 (issue) |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.online} | ${r.target} | ${(r.loss * 100).toFixed(2)}% | ` +
        `${r.clientReqPerS} | ${r.targetDoneS} s | ${r.tcpcopyUsPerReq} (${r.tcpcopySysUsPerReq}) | ` +
        `${r.tcpcopySwitchesPerReq} | ` +
        `${r.interceptUsPerReq} | ${r.c} |`,
    );
  }
}
