/**
 * End-to-end replication benchmark (root): the workloads the C tcpcopy 1.3 was measured with,
 * run through the lab of bench/e2e_lab.ts (real nginx, ab, intercept in NFQUEUE mode). For each
 * workload it prints requests served online and by the target, the loss ratio from the access
 * logs, the wall time the target needed, and the CPU microseconds per request of tcpcopy and
 * intercept (deltas of /proc/PID/stat over the workload, start-up excluded).
 *
 *   sudo deno run -A bench/e2e_replication.ts [--scale 1]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { isRoot, withNetns } from "../tests/helpers/netns.ts";
import { ab, cpuSeconds } from "../tests/helpers/lab.ts";
import { HTTP_PORT, served, settle, startReplication } from "./e2e_lab.ts";

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
  interceptUsPerReq: number;
  c: string;
}

const { values } = parseArgs({
  args: Deno.args,
  options: { scale: { type: "string", default: "1" } },
  strict: true,
});
const scale = Number(values.scale);

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

async function main(): Promise<Row[]> {
  if (!isRoot()) {
    console.error("e2e_replication: needs root (network namespaces, raw sockets)");
    Deno.exit(1);
  }
  return await withNetns(async (env) => {
    const rep = await startReplication(env);
    const on = rep.online[0];
    const rows: Row[] = [];
    for (const w of WORKLOADS) {
      const requests = Math.max(100, Math.round(w.requests * scale));
      const before = await served(rep.targetLog);
      const onlineBefore = await served(on.accessLog);
      const cpu0 = await cpuSeconds(on.tcpcopy.pid), icpu0 = await cpuSeconds(rep.intercept.pid);
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
      const row: Row = {
        name: w.name,
        online,
        target,
        loss: online === 0 ? 0 : (online - target) / online,
        clientReqPerS: Math.round(done / clientS),
        targetDoneS: Math.round(targetDoneS * 10) / 10,
        tcpcopyUsPerReq: Math.round(cpu / online * 1e6),
        interceptUsPerReq: Math.round(icpu / online * 1e6),
        c: w.c,
      };
      console.error(JSON.stringify(row));
      rows.push(row);
    }
    return rows;
  });
}

if (import.meta.main) {
  const rows = await main();
  console.log(
    "| workload | online | target | loss | client req/s | target done after | tcpcopy µs CPU/req | intercept µs CPU/req | C 1.3 (issue) |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.online} | ${r.target} | ${(r.loss * 100).toFixed(2)}% | ` +
        `${r.clientReqPerS} | ${r.targetDoneS} s | ${r.tcpcopyUsPerReq} | ` +
        `${r.interceptUsPerReq} | ${r.c} |`,
    );
  }
}
