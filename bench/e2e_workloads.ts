/**
 * The workloads of bench/e2e_replication.ts and the clients that drive them (ab, h2load, the
 * held-connection client), all run in the lab's client namespace against the online host.
 *
 * Where do I change X: a workload's size or shape → {@link WORKLOADS}; a new kind of client →
 * {@link Load} and {@link runLoad}.
 *
 * @module
 */
import { denoCmd, type Netns } from "../tests/helpers/netns.ts";
import { ab } from "../tests/helpers/lab.ts";
import { H1_PORT, H2_PORT } from "./e2e_lab.ts";

/** What drives a workload. */
export type Load =
  /** ab: HTTP/1.1, `requests` in all, `concurrency` at a time, keep-alive or one connection each. */
  | { kind: "ab"; requests: number; concurrency: number; keepAlive: boolean }
  /**
   * h2load: `clients` connections, `streams` requests in flight on each; `h1` speaks HTTP/1.1
   * instead of h2c; `rps` paces each connection; `connRate` opens that many connections per
   * second, one request each (short connections).
   */
  | {
    kind: "h2load";
    requests: number;
    clients: number;
    streams: number;
    h1?: boolean;
    rps?: number;
    connRate?: number;
  }
  /**
   * Held connections: one request each, `idleS` idle with all open, one more request each;
   * `perProcess` connections per client process, opened at `openRate` per second in all.
   */
  | { kind: "held"; connections: number; idleS: number; perProcess: number; openRate: number };

/** One workload of the list. */
export interface Workload {
  /** Name for `--only` (and the table). */
  id: string;
  /** What the table says it is. */
  name: string;
  load: Load;
  /** Start fresh tcpcopy and intercept processes before it. */
  fresh?: boolean;
  /** Run this many requests of the same load first, unmeasured (JIT warm-up). */
  warmup?: number;
  /** Only with `--only` (the older rows, kept for their figures in README). */
  extra?: boolean;
}

/** short1k's load: 10,000 short connections opened at 1,000 per second, one request each. */
const SHORT1K_LOAD: Load = {
  kind: "h2load",
  requests: 10_000,
  clients: 10_000,
  streams: 1,
  h1: true,
  connRate: 1000,
};

/**
 * The list, in the order it runs. The first four are issue 14's memory sequence (peak RSS
 * accumulates over them), then the held-connection row and the CPU rows in fresh processes.
 */
export const WORKLOADS: readonly Workload[] = [
  {
    id: "short1k",
    name: "10 s of 1,000 short connections/s (fresh processes)",
    load: SHORT1K_LOAD,
    fresh: true,
  },
  {
    id: "ka20k",
    name: "+ 20,000 keep-alive requests on 10 connections (ab -k -c 10)",
    load: { kind: "ab", requests: 20_000, concurrency: 10, keepAlive: true },
  },
  {
    id: "abshort",
    name: "+ 20,000 short connections, ab bursts (ab -c 20)",
    load: { kind: "ab", requests: 20_000, concurrency: 20, keepAlive: false },
  },
  {
    id: "held10k",
    name: "+ 10,000 connections held open (opened at 2,000/s, one request, 15 s idle, one more)",
    load: { kind: "held", connections: 10_000, idleS: 15, perProcess: 5000, openRate: 2000 },
  },
  {
    id: "held20k",
    name: "20,000 connections held open, same (fresh processes)",
    load: { kind: "held", connections: 20_000, idleS: 15, perProcess: 5000, openRate: 2000 },
    fresh: true,
  },
  {
    id: "h2fresh",
    name: "HTTP/2 (h2load), 1 connection, 1 stream, fresh processes, 5,000 requests",
    load: { kind: "h2load", requests: 5000, clients: 1, streams: 1 },
    fresh: true,
  },
  {
    id: "h2",
    name: "HTTP/2 (h2load), 1 connection, 1 stream, warm (after 10,000)",
    load: { kind: "h2load", requests: 20_000, clients: 1, streams: 1 },
    warmup: 10_000,
  },
  {
    id: "h2x10",
    name: "HTTP/2, 10 connections × 10 streams",
    load: { kind: "h2load", requests: 100_000, clients: 10, streams: 10 },
  },
  {
    id: "kapaced",
    name: "keep-alive paced at 2,000 req/s over 10 connections (h2load --h1 --rps)",
    load: { kind: "h2load", requests: 20_000, clients: 10, streams: 1, h1: true, rps: 200 },
  },
  {
    // short1k's load after short1k's own 10 s unmeasured in the same fresh processes: the
    // cost of short connections once the JIT has compiled their path (short1k's fresh 10 s
    // include the warm-up; a production tcpcopy runs for days)
    id: "short1kwarm",
    name: "10 s of 1,000 short connections/s, warm (after 10,000, fresh processes)",
    load: SHORT1K_LOAD,
    fresh: true,
    warmup: 10_000,
    extra: true,
  },
  {
    id: "paced",
    name: "short connections, 2 at a time (ab -c 2)",
    load: { kind: "ab", requests: 3000, concurrency: 2, keepAlive: false },
    extra: true,
  },
  {
    id: "burst",
    name: "burst of short connections, one client IP, 20 at a time",
    load: { kind: "ab", requests: 8000, concurrency: 20, keepAlive: false },
    extra: true,
  },
  {
    id: "single",
    name: "one keep-alive connection at full speed (ab -k -c 1)",
    load: { kind: "ab", requests: 5000, concurrency: 1, keepAlive: true },
    extra: true,
  },
  {
    id: "parallel",
    name: "10 parallel keep-alive connections (ab -k -c 10)",
    load: { kind: "ab", requests: 30_000, concurrency: 10, keepAlive: true },
    extra: true,
  },
];

/** `load` with its counts multiplied by `scale` (at least 100 requests, 10 connections). */
export function scaled(load: Load, scale: number, requests?: number): Load {
  const n = (x: number, min: number) => Math.max(min, Math.round(x * scale));
  switch (load.kind) {
    case "ab":
      return { ...load, requests: requests ?? n(load.requests, 100) };
    case "h2load": {
      const total = requests ?? n(load.requests, 100);
      // short connections: one request per connection
      return load.connRate
        ? { ...load, requests: total, clients: total }
        : { ...load, requests: total };
    }
    case "held":
      return { ...load, connections: requests ?? n(load.connections, 10) };
    default: {
      const never: never = load;
      return never;
    }
  }
}

/** The h2load command line of `load`. */
export function h2loadArgs(load: Extract<Load, { kind: "h2load" }>, host: string): string[] {
  const args = ["h2load", "-n", String(load.requests), "-c", String(load.clients)];
  args.push("-m", String(load.streams));
  if (load.h1) args.push("--h1");
  if (load.rps !== undefined) args.push(`--rps=${load.rps}`);
  if (load.connRate !== undefined) {
    // -r N per --rate-period: a tenth of the rate every 100 ms, smoother than N every second
    args.push("-r", String(Math.max(1, Math.round(load.connRate / 10))), "--rate-period=100ms");
  }
  args.push(`http://${host}:${load.h1 ? H1_PORT : H2_PORT}/h2load`);
  return args;
}

/** Runs h2load in `client`; returns the requests that succeeded. */
async function h2load(client: Netns, load: Extract<Load, { kind: "h2load" }>, host: string) {
  const out = await client.exec(h2loadArgs(load, host), { check: false, timeoutMs: 180_000 });
  const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(out.stdout);
  if (!m) throw new Error(`h2load failed: ${(out.stderr || out.stdout).trim().slice(-400)}`);
  return Number(m[1]);
}

/** Runs the held-connection clients (several processes) in `client`; returns answers read. */
async function held(client: Netns, load: Extract<Load, { kind: "held" }>, host: string) {
  const script = new URL("./held_client.ts", import.meta.url).pathname;
  const procs: Promise<{ stdout: string; stderr: string; code: number }>[] = [];
  const processes = Math.ceil(load.connections / load.perProcess);
  const rate = String(load.openRate / processes);
  for (let left = load.connections; left > 0; left -= load.perProcess) {
    const n = Math.min(load.perProcess, left);
    const argv = denoCmd(script, [host, String(H1_PORT), String(n), String(load.idleS), rate]);
    procs.push(
      client.exec(argv, {
        check: false,
        timeoutMs: (load.idleS + 120 + load.connections / load.openRate) * 1000,
      }),
    );
  }
  let answers = 0;
  for (const r of await Promise.all(procs)) {
    const last = r.stdout.trim().split("\n").pop() ?? "";
    if (!last.startsWith("{")) {
      throw new Error(`held client failed: ${r.stderr.trim().slice(-400)}`);
    }
    const j = JSON.parse(last) as { first: number; second: number };
    answers += j.first + j.second;
  }
  return answers;
}

/** Runs `load` from `client` against `host`; returns the requests answered. */
export function runLoad(client: Netns, load: Load, host: string): Promise<number> {
  switch (load.kind) {
    case "ab":
      return ab(client, `http://${host}:${H1_PORT}/ab`, {
        requests: load.requests,
        concurrency: load.concurrency,
        keepAlive: load.keepAlive,
        timeoutS: 120,
      });
    case "h2load":
      return h2load(client, load, host);
    case "held":
      return held(client, load, host);
    default: {
      const never: never = load;
      return never;
    }
  }
}
