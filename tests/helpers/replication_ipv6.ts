/**
 * The IPv6 replication set-up shared by tests/e2e/ipv6_*.test.ts: a dual-stack lab
 * (tests/helpers/lab.ts with `ipv6: true`), nginx listening on IPv4 and `[::]:80` on the
 * online host and the target, intercept in NFQUEUE mode (`--port 80`: iptables and ip6tables
 * rules) on the target, and tcpcopy on the online host replicating
 * `[online6]:80-[target6]:80`. The tunnel to intercept runs over IPv4 or IPv6, as asked.
 * Every process is started in its own namespace and stopped by PID.
 *
 * @module
 */
import { type Cleanup, denoCmd, type Netns, waitFor } from "./netns.ts";
import {
  buildLab,
  hostPart,
  HTTP_PORT,
  type Lab,
  LINE_PORT,
  type OnlineHost,
  startLineServer,
  startNginx,
} from "./lab.ts";
import { readText, type Started, startLogged, tcpcopyCmd } from "./replication.ts";

const INTERCEPT = new URL("../../intercept.ts", import.meta.url).pathname;

/** A running IPv6 replication. */
export interface Replication6 {
  lab: Lab;
  /** The online host (with its IPv6 addresses set). */
  on: Required<OnlineHost>;
  /** Target address over IPv6 (what `-x` names). */
  target6: string;
  /** Access logs of the online host's nginx and the target's. */
  onlineLog: string;
  targetLog: string;
  /** Logs of the line servers (with `line`), else null. */
  onlineLineLog: string | null;
  targetLineLog: string | null;
  intercept: Started;
  tcpcopy: Started;
  /** `http://[online6]:80${path}`. */
  url(path: string): string;
}

/** Options of {@link startReplication6}. */
export interface Replication6Options {
  /** Address family of the tunnel (tcpcopy's `-s`); default 4. */
  tunnel?: 4 | 6;
  /** Also replicate the server-speaks-first line protocol (port LINE_PORT). */
  line?: boolean;
  /**
   * How intercept takes the target's replies: "nfqueue" (`--port`, default) or "pcap"
   * (`-i any -F 'ip6 and ...'`: the replies then die on the online host, which does not
   * forward, as on an assistant host).
   */
  interceptMode?: "nfqueue" | "pcap";
  /**
   * A directory put first on intercept's PATH (a test that slows a tool down, e.g. an
   * `ip6tables` wrapper that delays the rule, as a starved machine does).
   */
  interceptPathFirst?: string;
  /** Extra intercept flags, made once the lab is built. */
  interceptArgs?: (lab: Lab, on: Required<OnlineHost>) => string[];
  /** `-x 80-[target6]:80` (any local address) instead of naming the online IPv6 address. */
  anyOnlineAddress?: boolean;
  /**
   * Extra tcpcopy flags, or a function that makes them once the lab is built. Capture is on
   * the online host's client-side veth unless they contain `-i`.
   */
  tcpcopyArgs?: string[] | ((lab: Lab, on: Required<OnlineHost>) => Promise<string[]>);
}

/** Builds the dual-stack lab, starts both nginx, intercept and tcpcopy. */
export async function startReplication6(
  env: Cleanup,
  opts: Replication6Options = {},
): Promise<Replication6> {
  const lab = await buildLab(env, 1, { ipv6: true });
  const on = lab.online[0] as Required<OnlineHost>;
  const target6 = lab.targetIp6!;
  const targetLog = await startNginx(env, lab.target, `${lab.dir}/target`, target6);
  const onlineLog = await startNginx(env, on.ns, `${lab.dir}/online`, on.ip6);
  let onlineLineLog: string | null = null, targetLineLog: string | null = null;
  if (opts.line) {
    targetLineLog = `${lab.dir}/line-target.log`;
    onlineLineLog = `${lab.dir}/line-online.log`;
    await startLineServer(env, lab.target, target6, targetLineLog);
    await startLineServer(env, on.ns, on.ip6, onlineLineLog);
  }
  const ports = opts.line ? [HTTP_PORT, LINE_PORT] : [HTTP_PORT];
  const sports = ports.map((p) => `src port ${p}`).join(" or ");
  const modeArgs = opts.interceptMode === "pcap"
    ? ["-i", "any", "-F", `ip6 and tcp and (${sports}) and src host ${target6}`]
    : ["--port", ports.join(",")];
  const tunnel6 = opts.tunnel === 6;
  const intercept = startLogged(
    env,
    lab.target,
    pathFirst(
      opts.interceptPathFirst,
      denoCmd(INTERCEPT, [
        ...modeArgs,
        "--stats-interval",
        "0",
        "--drain-seconds",
        "0", // tests stop intercept at the end; the drain has its own tests
        ...(tunnel6 ? ["-b", "::"] : []),
        ...(opts.interceptArgs?.(lab, on) ?? []),
      ]),
    ),
    `${lab.dir}/intercept`,
  );
  const tunnelAddr = tunnel6 ? target6 : lab.targetIp;
  // Ready once intercept logs "listening for tcpcopy": its rules are in and its queue bound.
  // Not when the tunnel port answers: it listens (and serves peers) before the rules go in,
  // and on a starved machine the ip6tables rule, installed last, came seconds after the port
  // (replies then left the target un-queued: tests/e2e/ipv6_slow_rules.test.ts).
  const listening = await waitFor(
    async () => /listening for tcpcopy/.test(await readText(intercept.err)),
    20_000,
    50,
  );
  if (!listening) throw new Error(`intercept did not start: ${await readText(intercept.err)}`);
  const online = opts.anyOnlineAddress ? "" : `[${on.ip6}]:`;
  const extra = typeof opts.tcpcopyArgs === "function"
    ? await opts.tcpcopyArgs(lab, on)
    : opts.tcpcopyArgs ?? [];
  const args = [
    "-x",
    ports.map((p) => `${online}${p}-[${target6}]:${p}`).join(","),
    "-s",
    hostPart(tunnelAddr),
    // capture on the client-side veth unless the extra flags name a device
    ...(extra.includes("-i") ? [] : ["-i", on.clientSideIf]),
    "--stats-interval",
    "1",
    ...extra,
  ];
  const tcpcopy = startLogged(env, on.ns, tcpcopyCmd(args), `${lab.dir}/tcpcopy`);
  const up = await waitFor(
    async () => /\] replicating/.test(await readText(tcpcopy.err)),
    20_000,
    50,
  );
  if (!up) throw new Error(`tcpcopy did not start: ${await readText(tcpcopy.err)}`);
  return {
    lab,
    on,
    target6,
    onlineLog,
    targetLog,
    onlineLineLog,
    targetLineLog,
    intercept,
    tcpcopy,
    url: (path) => `http://${hostPart(on.ip6)}:${HTTP_PORT}${path}`,
  };
}

/** `cmd` run with `dir` first on its PATH (unchanged without `dir`). */
function pathFirst(dir: string | undefined, cmd: string[]): string[] {
  return dir === undefined ? cmd : ["bash", "-c", 'PATH="$0:$PATH" exec "$@"', dir, ...cmd];
}

/** The device of `ns` that holds the IPv6 address `ip`, and its MAC address. */
export async function deviceOf6(ns: Netns, ip: string): Promise<{ dev: string; mac: string }> {
  const out = await ns.exec(["ip", "-o", "-6", "addr", "show", "to", `${ip}/128`]);
  const dev = out.stdout.trim().split(/\s+/)[1];
  if (!dev) throw new Error(`no device with ${ip} in ${ns.name}`);
  const mac = (await ns.exec(["cat", `/sys/class/net/${dev}/address`])).stdout.trim();
  return { dev, mac };
}
