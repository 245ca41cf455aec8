/**
 * The lab of the end-to-end benchmark (bench/e2e_replication.ts): the namespaces of
 * tests/helpers/lab.ts (client → online host → target), nginx on the online host and the target
 * with an HTTP/1.1 port and an HTTP/2 (h2c, `listen ... http2`) port, sized for tens of thousands
 * of held connections, and a replication pair that is either ours (tcpcopy from this checkout,
 * intercept in NFQUEUE or pcap mode on the target) or the C original built outside the repo (C
 * tcpcopy on the online host, C intercept in pcap mode capturing the target's replies: they then
 * die on the online host, which does not forward, as on an assistant host).
 *
 * @module
 */
import { type Cleanup, type Netns, waitFor } from "../tests/helpers/netns.ts";
import { statTimes } from "../lib/process/memory.ts";
import {
  buildLab,
  countLines,
  cpuSeconds,
  type Lab,
  type OnlineHost,
} from "../tests/helpers/lab.ts";
import {
  interceptCmd,
  readText,
  type Started,
  startLogged,
  tcpcopyCmd,
} from "../tests/helpers/replication.ts";

/** The HTTP/1.1 port of every nginx in the lab. */
export const H1_PORT = 80;
/** The HTTP/2 (prior knowledge, h2c) port of every nginx in the lab. */
export const H2_PORT = 8080;
/** The port intercept listens on for tcpcopy (both implementations' default). */
const TUNNEL_PORT = 36524;

/** Which implementation a pair runs. */
export type Impl = "ours" | "c";

/** Paths of the C original's programs (built outside the repo). */
export interface CPrograms {
  tcpcopy: string;
  intercept: string;
}

/** How to start a pair. */
export interface PairOptions {
  impl: Impl;
  /** Ours: intercept's capture mode. */
  interceptMode: "nfqueue" | "pcap";
  /** Ours: extra tcpcopy flags. */
  tcpcopyArgs: string[];
  /** Required when impl is "c". */
  c: CPrograms | null;
  /**
   * Ours: `--compare` (issue 15) on both programs, with `--secret-file` (intercept sends answer
   * summaries to authenticated peers only); tcpcopy logs mismatches to a file in the lab.
   */
  compare?: boolean;
  /**
   * Ours: tcpcopy and intercept each run their own copy of the deno executable (in the lab
   * folder), as on production hosts where nothing else maps it. With a shared executable the
   * kernel keeps code pages other processes map too, so the start-up code pages
   * (lib/process/memory.ts pageOutStartupCode) stay in RSS. Also as the built programs run
   * (build.sh: the launcher's `deno run` and `deno compile` both take `--no-code-cache`): without
   * V8's code cache, whose SQLite file in DENO_DIR a `deno run` keeps mapped (2.8 MiB of
   * tcpcopy's RSS at the mixed workload's peak).
   */
  privateDeno?: boolean;
}

/**
 * `cmd` (`deno run ...`) with its deno executable replaced by a private copy `<dir>/deno-<who>`
 * (made once) and `--no-code-cache` after `run`, as the built programs run.
 */
async function privateDeno(cmd: string[], dir: string, who: string): Promise<string[]> {
  const copy = `${dir}/deno-${who}`;
  try {
    await Deno.stat(copy);
  } catch {
    await Deno.copyFile(cmd[0], copy);
    await Deno.chmod(copy, 0o755);
  }
  return cmd[1] === "run"
    ? [copy, cmd[1], "--no-code-cache", ...cmd.slice(2)]
    : [copy, ...cmd.slice(1)];
}

/** `cmd` as it is, or on a private deno copy with `opts.privateDeno`. */
function ownDeno(opts: PairOptions, b: BenchLab, who: string, cmd: string[]): Promise<string[]> {
  return opts.privateDeno ? privateDeno(cmd, b.lab.dir, who) : Promise.resolve(cmd);
}

/** A running tcpcopy + intercept. */
export interface Pair {
  impl: Impl;
  tcpcopy: Started;
  intercept: Started;
}

/** The lab with its servers up and a pair running. */
export interface BenchLab {
  lab: Lab;
  on: OnlineHost;
  /** The target's address on the link to the online host. */
  target: string;
  /** The target's interface towards the online host (C intercept captures there). */
  targetIf: string;
  onlineLog: string;
  targetLog: string;
  pair: Pair;
  /** Counter to give every started process its own log files. */
  starts: number;
}

/**
 * nginx for the benchmark: `return 200` on an HTTP/1.1 port and an h2c port of `ip`, four
 * workers with their own listening sockets (`reuseport`) and enough descriptors for 20,000 held
 * connections, keep-alive connections never closed for their request count.
 */
export function benchNginxConfig(dir: string, ip: string): string {
  const server = (port: number, h2: boolean) => `
  server {
    listen ${ip}:${port}${h2 ? " http2" : ""} backlog=8192 reuseport;
    location / { return 200 "ok\\n"; }
  }`;
  return `worker_processes 4;
worker_rlimit_nofile 20000;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 10000; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  http2_idle_timeout 300s;${server(H1_PORT, false)}${server(H2_PORT, true)}
}
`;
}

/** True when `ns` accepts a TCP connection on `ip`:`port`. */
async function accepts(ns: Netns, ip: string, port: number): Promise<boolean> {
  const r = await ns.exec(["bash", "-c", `exec 3<>/dev/tcp/${ip}/${port}`], { check: false });
  return r.code === 0;
}

/** Starts the benchmark's nginx in `ns` on `ip`; returns its access log. */
async function startBenchNginx(env: Cleanup, ns: Netns, dir: string, ip: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const conf = `${dir}/nginx.conf`;
  await Deno.writeTextFile(conf, benchNginxConfig(dir, ip));
  env.child(ns.spawn(["nginx", "-c", conf, "-e", `${dir}/error.log`], { stderr: "null" }));
  const up = await waitFor(
    async () => (await accepts(ns, ip, H1_PORT)) && (await accepts(ns, ip, H2_PORT)),
    10_000,
    50,
  );
  if (!up) throw new Error(`nginx did not start: ${await readText(`${dir}/error.log`)}`);
  return `${dir}/access.log`;
}

/** The interface of `ns` that holds `ip`. */
async function interfaceOf(ns: Netns, ip: string): Promise<string> {
  const out = (await ns.exec(["ip", "-o", "-4", "addr", "show"])).stdout;
  for (const line of out.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[3]?.startsWith(`${ip}/`)) return f[1].replace(/@.*$/, "");
  }
  throw new Error(`no interface holds ${ip}`);
}

/** Builds the lab, starts nginx on both hosts and a pair. */
export async function startBenchLab(env: Cleanup, opts: PairOptions): Promise<BenchLab> {
  const lab = await buildLab(env, 1);
  const on = lab.online[0];
  // many short connections from one client IP: reuse TIME_WAIT ports, as a busy client would
  await on.client.exec(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
  await on.client.exec(["sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65000"]);
  for (const ns of [on.ns, lab.target]) {
    await ns.exec(["sysctl", "-qw", "net.core.somaxconn=8192"]);
  }
  const targetLog = await startBenchNginx(env, lab.target, `${lab.dir}/target`, lab.targetIp);
  const onlineLog = await startBenchNginx(env, on.ns, `${lab.dir}/online`, on.ip);
  const b: BenchLab = {
    lab,
    on,
    target: lab.targetIp,
    targetIf: await interfaceOf(lab.target, lab.targetIp),
    onlineLog,
    targetLog,
    pair: undefined as unknown as Pair,
    starts: 0,
  };
  b.pair = await startPair(env, b, opts);
  return b;
}

/** The shared secret of a `--compare` pair (written once per lab, mode 0600). */
async function secretFile(b: BenchLab): Promise<string> {
  const path = `${b.lab.dir}/secret`;
  await Deno.writeTextFile(path, "bench compare secret, 32 bytes..\n", { mode: 0o600 });
  await Deno.chmod(path, 0o600);
  return path;
}

/** `-x` for both ports. */
function transfers(b: BenchLab): string {
  return [H1_PORT, H2_PORT].map((p) => `${b.on.ip}:${p}-${b.target}:${p}`).join(",");
}

/** Starts intercept, waits until it listens, then starts tcpcopy and waits until it runs. */
export async function startPair(env: Cleanup, b: BenchLab, opts: PairOptions): Promise<Pair> {
  const n = b.starts++;
  const base = `${b.lab.dir}/${opts.impl}`;
  const filter = `tcp and (src port ${H1_PORT} or src port ${H2_PORT})`;
  let interceptArgv: string[];
  if (opts.impl === "c") {
    if (opts.c === null) {
      throw new Error("the C pair needs --c-prefix or --c-tcpcopy/--c-intercept");
    }
    interceptArgv = [
      opts.c.intercept,
      "-i",
      b.targetIf,
      "-F",
      filter,
      "-l",
      `${base}-intercept${n}.log`,
    ];
  } else {
    const mode = opts.interceptMode === "nfqueue"
      ? ["--port", `${H1_PORT},${H2_PORT}`]
      : ["-i", b.targetIf, "-F", filter];
    interceptArgv = await ownDeno(
      opts,
      b,
      "intercept",
      interceptCmd([
        ...mode,
        "--stats-interval",
        "1",
        "--drain-seconds",
        "0",
        ...(opts.compare ? ["--secret-file", await secretFile(b), "--compare"] : []),
      ]),
    );
  }
  const intercept = startLogged(env, b.lab.target, interceptArgv, `${base}-intercept${n}`);
  const listening = await waitFor(() => accepts(b.on.ns, b.target, TUNNEL_PORT), 20_000, 100);
  if (!listening) throw new Error(`intercept did not start: ${await readText(intercept.err)}`);
  let tcpcopy: Started;
  if (opts.impl === "c") {
    const log = `${base}-tcpcopy${n}.log`;
    const argv = [opts.c!.tcpcopy, "-x", transfers(b), "-s", b.target, "-l", log];
    tcpcopy = startLogged(env, b.on.ns, argv, `${base}-tcpcopy${n}`);
    // C tcpcopy is up once it holds its tunnel connection to intercept
    const up = await waitFor(async () => await tunnelUp(b.on.ns, b.target), 10_000, 50);
    if (!up) throw new Error(`C tcpcopy did not start: ${await readText(log)}`);
  } else {
    const argv = await ownDeno(
      opts,
      b,
      "tcpcopy",
      tcpcopyCmd([
        "-x",
        transfers(b),
        "-s",
        b.target,
        "-i",
        b.on.clientSideIf,
        "--stats-interval",
        "1",
        ...(opts.compare
          ? [
            "--secret-file",
            await secretFile(b),
            "--compare",
            "--compare-log",
            `${base}-compare${n}.ndjson`,
          ]
          : []),
        ...opts.tcpcopyArgs,
      ]),
    );
    tcpcopy = startLogged(env, b.on.ns, argv, `${base}-tcpcopy${n}`);
    // up once it replicates and has printed a stats line (the drop counters' starting point)
    const up = await waitFor(
      async () =>
        /\] replicating/.test(await readText(tcpcopy.err)) &&
        (await lastStats(tcpcopy)) !== null,
      20_000,
      50,
    );
    if (!up) throw new Error(`tcpcopy did not start: ${await readText(tcpcopy.err)}`);
    const stats = await waitFor(async () => (await lastStats(intercept)) !== null, 5000, 50);
    if (!stats) {
      throw new Error(`intercept printed no stats line: ${await readText(intercept.err)}`);
    }
  }
  return { impl: opts.impl, tcpcopy, intercept };
}

/** True when `ns` has an established connection to `target`'s tunnel port. */
async function tunnelUp(ns: Netns, target: string): Promise<boolean> {
  const r = await ns.exec(
    ["ss", "-Htn", "state", "established", "dst", `${target}:${TUNNEL_PORT}`],
    {
      check: false,
    },
  );
  return r.stdout.trim() !== "";
}

/** Stops a started process by its PID (`signal`, then SIGKILL after 5 s). */
export async function stopStarted(s: Started, signal: Deno.Signal): Promise<void> {
  try {
    s.child.kill(signal);
  } catch {
    return;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = await Promise.race([
    s.child.status.then(() => true),
    new Promise<boolean>((r) => timer = setTimeout(() => r(false), 5000)),
  ]);
  clearTimeout(timer);
  if (!done) {
    try {
      s.child.kill("SIGKILL");
    } catch { /* gone meanwhile */ }
    await s.child.status;
  }
}

/** Replaces the running pair with fresh processes. */
export async function restartPair(env: Cleanup, b: BenchLab, opts: PairOptions): Promise<void> {
  await stopStarted(b.pair.tcpcopy, "SIGINT");
  await stopStarted(b.pair.intercept, "SIGTERM");
  b.pair = await startPair(env, b, opts);
}

/** What a process has used so far. */
export interface Usage {
  cpuS: number;
  /** Of cpuS: in the kernel (stime), and on the main thread (the other threads: V8's compiler
   * and GC workers, Deno's helpers). */
  sysS: number;
  mainS: number;
  /**
   * The main thread's voluntary context switches (each one a sleep: with one wake-up per
   * sleep, the wake-ups) and involuntary ones (preempted).
   */
  sleeps: number;
  preempted: number;
  /** Resident memory now and at its peak (VmHWM), MiB. */
  rssMiB: number;
  peakMiB: number;
}

/** Reads {@link Usage} of `pid` from /proc. */
export async function usage(pid: number): Promise<Usage> {
  const status = await readText(`/proc/${pid}/status`);
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  const all = statTimes(await readText(`/proc/${pid}/stat`));
  const main = statTimes(await readText(`/proc/${pid}/task/${pid}/stat`));
  // /proc/PID/status counts the main thread's switches (the thread group leader's)
  const ctx = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1]);
  return {
    cpuS: await cpuSeconds(pid),
    sysS: all.sys,
    mainS: main.user + main.sys,
    sleeps: ctx("voluntary_ctxt_switches"),
    preempted: ctx("nonvoluntary_ctxt_switches"),
    rssMiB: kb("VmRSS") / 1024,
    peakMiB: kb("VmHWM") / 1024,
  };
}

/** Requests served so far on the online host and on the target. */
export async function servedCounts(b: BenchLab): Promise<{ online: number; target: number }> {
  return { online: await countLines(b.onlineLog), target: await countLines(b.targetLog) };
}

/** The last JSON stats line a process of ours printed (null when none yet). */
async function lastStats(s: Started): Promise<Record<string, unknown> | null> {
  const lines = (await readText(s.out)).split("\n").filter((l) => l.startsWith("{"));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i]);
    } catch { /* a line being written */ }
  }
  return null;
}

/** Sums the `drops` column of /proc/net/raw in `ns` (C tcpcopy's raw capture socket). */
async function rawSocketDrops(ns: Netns): Promise<number> {
  const text = (await ns.exec(["cat", "/proc/net/raw"], { check: false })).stdout;
  let sum = 0;
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 12) sum += Number(f[f.length - 1]) || 0;
  }
  return sum;
}

/**
 * Packets the kernel dropped before the process read them, so far: ours from its stats line
 * (tcpcopy `kernel_drops`; intercept's pcap and NFQUEUE counters), C tcpcopy from its raw
 * socket's `drops` in /proc/net/raw; null for C intercept (libpcap's count is not visible from
 * outside the process).
 */
export async function kernelDrops(
  b: BenchLab,
  which: "tcpcopy" | "intercept",
): Promise<number | null> {
  if (b.pair.impl === "c") return which === "tcpcopy" ? await rawSocketDrops(b.on.ns) : null;
  const s = await lastStats(which === "tcpcopy" ? b.pair.tcpcopy : b.pair.intercept);
  if (s === null) return null;
  if (which === "tcpcopy") return Number(s.kernel_drops ?? NaN);
  const k = (s.kernel ?? {}) as Record<string, number>;
  return (k.pcap_drops ?? 0) + (k.nfq_queue_dropped ?? 0) + (k.nfq_user_dropped ?? 0);
}

/** What our tcpcopy's stats line says about requests not (yet) replayed. */
export interface ReplayState {
  /** `lost.*` counters (cumulative since the start). */
  lost: Record<string, number>;
  /** Requests captured and not sent (yet, or ever: the lost ones are among them). */
  unsent: number;
}

/**
 * Our tcpcopy's own account of what it has not replayed (null for the C original): tells a
 * loss in the row (the target's access log when it stopped growing for a while) that tcpcopy
 * lost apart from requests it still held when the bench stopped waiting.
 */
export async function replayState(b: BenchLab): Promise<ReplayState | null> {
  if (b.pair.impl === "c") return null;
  const s = await lastStats(b.pair.tcpcopy);
  if (s === null) return null;
  const req = (s.requests ?? {}) as Record<string, number>;
  return {
    lost: { ...(s.lost ?? {}) as Record<string, number> },
    unsent: (req.captured ?? 0) - (req.sent ?? 0),
  };
}
