/**
 * Replication harness shared by the tcpcopy end-to-end tests (tests/e2e/*.test.ts)
 * and the end-to-end benchmark (bench/e2e_replication.ts): a lab from tests/helpers/lab.ts
 * with nginx (and optionally the line server) on every host, intercept in NFQUEUE mode on the
 * target, and tcpcopy from this checkout on each online host. Every process is started in its
 * own namespace and stopped by PID; loops are bounded in count and time.
 *
 * @module
 */
import { type Cleanup, denoCmd, type Netns, waitFor } from "./netns.ts";
import { v8FlagsArg, type V8Program } from "../../lib/process/v8_flags.ts";
import {
  buildLab,
  countLines,
  cpuSeconds,
  HTTP_PORT,
  type Lab,
  LINE_PORT,
  startLineServer,
  startNginx,
} from "./lab.ts";

const ROOT = new URL("../../", import.meta.url);
const MAIN = new URL("main.ts", ROOT).pathname;
const INTERCEPT = new URL("intercept.ts", ROOT).pathname;

/** A program started in a namespace with its stdout and stderr in files. */
export interface Started {
  child: Deno.ChildProcess;
  pid: number;
  out: string;
  err: string;
}

/** Starts `cmd` in `ns` with stdout/stderr redirected to `${base}.out` / `${base}.err`. */
export function startLogged(env: Cleanup, ns: Netns, cmd: string[], base: string): Started {
  const quoted = cmd.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const out = `${base}.out`, err = `${base}.err`;
  const child = env.child(ns.spawn(["bash", "-c", `exec ${quoted} >${out} 2>${err}`]));
  return { child, pid: child.pid, out, err };
}

async function readOr(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

/** One online host with its tcpcopy. */
export interface OnlineSide {
  ns: Netns;
  client: Netns;
  ip: string;
  clientIp: string;
  accessLog: string;
  lineLog: string | null;
  tcpcopy: Started;
}

/** A running replication set-up. */
export interface Replication {
  lab: Lab;
  online: OnlineSide[];
  targetLog: string;
  targetLineLog: string | null;
  intercept: Started;
}

/** Options of {@link startReplication}. */
export interface ReplicationOptions {
  onlineHosts?: number;
  /** Also run the server-speaks-first line server (port LINE_PORT) everywhere. */
  line?: boolean;
  /** Extra tcpcopy flags per online host (index i). */
  tcpcopyArgs?: (i: number, lab: Lab) => string[];
  /** Start tcpcopy later with {@link startTcpcopy} instead of now. */
  deferTcpcopy?: boolean;
  /**
   * How intercept takes the target's replies: "nfqueue" (`--port`, drops them on the target)
   * or "pcap" (`-i any -F ...` on the target; the replies then die on the online host, which
   * does not forward: the assistant black-hole set-up). Default: $TCPCOPY_E2E_INTERCEPT or
   * "nfqueue".
   */
  interceptMode?: "nfqueue" | "pcap";
  /** Extra intercept flags (after the defaults, so they win, e.g. `--drain-seconds 3`). */
  interceptArgs?: string[];
}

/** Builds the lab, starts the servers and intercept, then tcpcopy on every online host. */
export async function startReplication(
  env: Cleanup,
  opts: ReplicationOptions = {},
): Promise<Replication> {
  const lab = await buildLab(env, opts.onlineHosts ?? 1);
  const targetLog = await startNginx(env, lab.target, `${lab.dir}/target`, lab.targetIp);
  let targetLineLog: string | null = null;
  if (opts.line) {
    targetLineLog = `${lab.dir}/line-target.log`;
    await startLineServer(env, lab.target, lab.targetIp, targetLineLog);
  }
  const ports = opts.line ? [HTTP_PORT, LINE_PORT] : [HTTP_PORT];
  const mode = opts.interceptMode ??
    (Deno.env.get("TCPCOPY_E2E_INTERCEPT") === "pcap" ? "pcap" : "nfqueue");
  const hosts = lab.targetIps.map((ip) => `src host ${ip}`).join(" or ");
  const filter = `tcp and (${ports.map((p) => `src port ${p}`).join(" or ")}) and (${hosts})`;
  const modeArgs = mode === "nfqueue" ? ["--port", ports.join(",")] : ["-i", "any", "-F", filter];
  const intercept = startLogged(
    env,
    lab.target,
    // no drain on SIGTERM: tests stop intercept at the end (the drain has its own tests)
    interceptCmd([
      ...modeArgs,
      "--stats-interval",
      "0",
      "--drain-seconds",
      "0",
      ...opts.interceptArgs ?? [],
    ]),
    `${lab.dir}/intercept`,
  );
  const online: OnlineSide[] = [];
  for (let i = 0; i < lab.online.length; i++) {
    const h = lab.online[i];
    const accessLog = await startNginx(env, h.ns, `${lab.dir}/online${i}`, h.ip);
    let lineLog: string | null = null;
    if (opts.line) {
      lineLog = `${lab.dir}/line-online${i}.log`;
      await startLineServer(env, h.ns, h.ip, lineLog);
    }
    online.push({
      ns: h.ns,
      client: h.client,
      ip: h.ip,
      clientIp: h.clientIp,
      accessLog,
      lineLog,
      tcpcopy: undefined as unknown as Started,
    });
  }
  // ready once intercept logs "listening for tcpcopy" (its rules in, its queue bound), not when
  // the tunnel port answers: it listens before the rules go in (tests/e2e/ipv6_slow_rules.test.ts)
  const listening = await waitFor(
    async () => /listening for tcpcopy/.test(await readOr(intercept.err)),
    20_000,
    50,
  );
  if (!listening) {
    throw new Error(`intercept did not start: ${await readOr(intercept.err)}`);
  }
  const rep: Replication = { lab, online, targetLog, targetLineLog, intercept };
  if (!opts.deferTcpcopy) {
    for (let i = 0; i < online.length; i++) {
      online[i].tcpcopy = await startTcpcopy(env, rep, i, opts.tcpcopyArgs?.(i, lab) ?? []);
    }
  }
  return rep;
}

/**
 * The command line that runs tcpcopy from this checkout with `args`. Extra deno flags (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`) come from $TCPCOPY_DENO_FLAGS, space separated;
 * $TCPCOPY_MAIN runs another main.ts (e.g. an older tree, for before/after comparisons).
 */
export function tcpcopyCmd(args: string[]): string[] {
  return withDenoFlags(
    denoCmd(Deno.env.get("TCPCOPY_MAIN") || MAIN, args),
    "tcpcopy",
    "TCPCOPY_DENO_FLAGS",
  );
}

/** The intercept command line; extra deno flags come from $INTERCEPT_DENO_FLAGS. */
export function interceptCmd(args: string[]): string[] {
  return withDenoFlags(denoCmd(INTERCEPT, args), "intercept", "INTERCEPT_DENO_FLAGS");
}

/**
 * Inserts `program`'s V8 flags (lib/process/v8_flags.ts, as the built executables have them) and
 * the space-separated deno flags of $`envVar` after "deno run" in `cmd` (a later `--v8-flags`
 * adds to the first; the same V8 flag given again wins).
 */
function withDenoFlags(cmd: string[], program: V8Program, envVar: string): string[] {
  const flags = (Deno.env.get(envVar) ?? "").split(" ").filter((f) => f !== "");
  cmd.splice(2, 0, v8FlagsArg(program), ...flags);
  return cmd;
}

/** Reads a file, "" when it does not exist (yet). */
export function readText(path: string): Promise<string> {
  return readOr(path);
}

/**
 * Starts tcpcopy on online host `i`, capturing on its client-side interface unless `extra`
 * has its own `-i`.
 */
export async function startTcpcopy(
  env: Cleanup,
  rep: Replication,
  i: number,
  extra: string[] = [],
  name = `tcpcopy${i}`,
): Promise<Started> {
  const h = rep.lab.online[i];
  const target = rep.lab.targetIps[i];
  const transfers = [`${h.ip}:${HTTP_PORT}-${target}:${HTTP_PORT}`];
  if (rep.targetLineLog !== null) transfers.push(`${h.ip}:${LINE_PORT}-${target}:${LINE_PORT}`);
  const args = [
    "-x",
    transfers.join(","),
    "-s",
    target,
    ...(extra.includes("-i") ? [] : ["-i", h.clientSideIf]),
    "--stats-interval",
    "1",
    ...extra,
  ];
  const t = startLogged(env, h.ns, tcpcopyCmd(args), `${rep.lab.dir}/${name}`);
  const up = await waitFor(async () => /\] replicating/.test(await readOr(t.err)), 20_000, 50);
  if (!up) throw new Error(`tcpcopy did not start: ${await readOr(t.err)}`);
  return t;
}

/** Waits until `count()` reaches `want` or stops changing for `quietMs`; returns the count. */
export async function settle(
  count: () => Promise<number>,
  want: number,
  timeoutMs = 20_000,
  quietMs = 3000,
): Promise<number> {
  const end = Date.now() + timeoutMs;
  let last = -1, since = Date.now();
  while (Date.now() < end) {
    const n = await count();
    if (n >= want) return n;
    if (n !== last) {
      last = n;
      since = Date.now();
    } else if (Date.now() - since > quietMs) {
      return n;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return await count();
}

/** The result of stopping tcpcopy with SIGINT. */
export interface Stopped {
  code: number;
  /** Milliseconds from SIGINT to exit. */
  exitMs: number;
  /** CPU seconds used, read just before the signal. */
  cpuS: number;
  /** Every JSON stats line printed. */
  stats: Record<string, unknown>[];
  log: string;
}

/** Sends SIGINT (or `signal`) to a started tcpcopy, waits (bounded) for it to exit and reads its output. */
export async function stopTcpcopy(
  t: Started,
  signal: Deno.Signal = "SIGINT",
): Promise<Stopped> {
  const cpuS = await cpuSeconds(t.pid);
  const t0 = Date.now();
  t.child.kill(signal);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    t.child.status,
    new Promise<null>((r) => timer = setTimeout(() => r(null), 5000)),
  ]);
  clearTimeout(timer);
  const exitMs = Date.now() - t0;
  const stats = (await readOr(t.out)).split("\n").filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l)
  );
  return { code: status?.code ?? -1, exitMs, cpuS, stats, log: await readOr(t.err) };
}

/** Counts served HTTP requests in an access log, optionally only those matching `re`. */
export function served(log: string, re?: RegExp): Promise<number> {
  return countLines(log, re);
}

/** CPU seconds of intercept so far. */
export function interceptCpu(rep: Replication): Promise<number> {
  return cpuSeconds(rep.intercept.pid);
}

/** One line for the test log: counts, loss ratio and CPU. */
export function report(
  name: string,
  online: number,
  target: number,
  expected: number,
  cpu: { tcpcopy: number; intercept: number },
): string {
  const ratio = expected === 0 ? 0 : (expected - target) / expected;
  return `[${name}] online=${online} target=${target} expected=${expected} ` +
    `loss=${ratio.toFixed(4)} cpu tcpcopy=${cpu.tcpcopy.toFixed(2)}s ` +
    `intercept=${cpu.intercept.toFixed(2)}s`;
}

export { HTTP_PORT, LINE_PORT };
