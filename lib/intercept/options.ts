/**
 * intercept's command line (node:util parseArgs) -> a validated configuration, or a one-line
 * error naming the flag, the value and what is expected (the caller exits with code 2).
 */
import { parseArgs } from "node:util";
import { parseIp } from "../wire/addr.ts";
import { DEFAULT_SERVER, DEFAULT_TUNNEL_PORT } from "../tunnel/server.ts";
import { AllowList } from "../tunnel/access.ts";
import { type MetricsAddress, parseMetricsAddress } from "../metrics/server.ts";

/** Where replies are read from. */
export type CaptureMode =
  | {
    kind: "nfqueue";
    ports: number[];
    queueNum: number;
    queueMaxLen: number;
    pass: Uint8Array[];
    /** Under load, sleep this long between reads instead of polling (0 = always poll). */
    coalesceMs: number;
    /**
     * --fail-open: the rules carry `--queue-bypass`, so replies flow (reach real clients)
     * while no intercept reads the queue. Default false: they are dropped (fail-closed).
     */
    failOpen: boolean;
  }
  | { kind: "pcap"; device: string; filter: string };

/** The validated configuration. */
export interface InterceptConfig {
  mode: CaptureMode;
  tunnelPort: number;
  bind: string;
  logFile?: string;
  statsIntervalS: number;
  maxPrefix: number;
  batch: number;
  routeTtlS: number;
  /** --allow: networks that may connect (empty = any). */
  allow: AllowList;
  /** --secret-file: the shared secret's file (read and checked at start). */
  secretFile?: string;
  /** --max-conns-per-ip. */
  maxConnsPerIp: number;
  /** --max-peer-routes. */
  maxPeerRoutes: number;
  /** --idle-timeout, seconds. */
  idleTimeoutS: number;
  /** --metrics: serve Prometheus text on http://host:port/metrics. */
  metrics?: MetricsAddress;
  /**
   * --drain-seconds: after SIGTERM/SIGINT, keep dropping (and forwarding) replies this long
   * before the rules go (0 = none; default 5 in NFQUEUE mode, 0 in pcap mode).
   */
  drainSeconds: number;
}

/** Default --drain-seconds in NFQUEUE mode. */
export const DEFAULT_DRAIN_SECONDS = 5;

/** `intercept doctor`: what to check. */
export interface DoctorRequest {
  json: boolean;
  /** The tunnel's protection as the run would have it (--allow, --secret-file). */
  allow: string[];
  secretFile?: string;
  ports: number[];
  devices: string[];
  /** pcap mode on an assistant host (-F given): ip_forward must be 0, no NFQUEUE rules. */
  assistant: boolean;
}

/** Outcome of parsing: run, print something and exit 0, or a usage error. */
export type ParsedArgs =
  | { action: "run"; config: InterceptConfig }
  | { action: "help" | "version" }
  | { action: "doctor"; request: DoctorRequest }
  | { action: "cleanup"; all: boolean }
  | { action: "error"; message: string };

/** Default NFQUEUE number (the tunnel port, so it rarely meets another user of queue 0). */
export const DEFAULT_QUEUE_NUM = DEFAULT_TUNNEL_PORT;

/** The --help text: every flag with an example. */
export const HELP =
  `intercept: capture the target's replies, drop them, and send their headers to tcpcopy.

Usage (pick one capture mode):
  intercept --port 8080[,8081] [-x IP,...]   on the target: NFQUEUE on the OUTPUT chain
  intercept -i DEV -F FILTER                 on an assistant host: libpcap capture
  intercept doctor [--json] [--port P] [-i DEV -F FILTER] [--allow CIDRS] [--secret-file FILE]
                                             check this host's set-up
  intercept cleanup [--all]   remove the NFQUEUE rules left by intercepts that are gone (all
                              tagged rules with --all), in iptables and ip6tables; prints each
                              one; exit 0 also when there was none (systemd ExecStopPost=)

Capture, NFQUEUE mode (installs and removes its own iptables/ip6tables rules):
  --port PORTS          target ports whose replies are taken       --port 8080,8443
  -x, --pass IPS        reply destinations let through (real users) -x 192.0.2.10,2001:db8::7
  --queue-num N         NFQUEUE number 0..65535 (default ${DEFAULT_QUEUE_NUM})   --queue-num 7
  --queue-maxlen N      kernel queue length (default 8192)         --queue-maxlen 65536
  --coalesce-ms N       under load (a read of 12+ replies) sleep N ms before the next read
                        instead of polling: less CPU, up to N ms more delay, 0..10; a lone
                        reply is never held (default 1, 0 with -x)  --coalesce-ms 0
  --fail-open           rules with --queue-bypass: while no intercept reads the queue
                        (crash, kill -9, stopped), replies reach the real clients instead
                        of being dropped. Default: fail-closed (the port's replies are
                        dropped until intercept runs again or "intercept cleanup")
                                                                   --fail-open
  --drain-seconds N     on SIGTERM/SIGINT: stop accepting tcpcopy peers, keep dropping
                        replies N s while tcpcopy resets its sessions, then remove the
                        rules; a second signal ends the drain (0..3600, default ${DEFAULT_DRAIN_SECONDS},
                        0 in pcap mode)                             --drain-seconds 10
Capture, pcap mode:
  -i, --device DEV      capture device (default any)               -i eth0
  -F, --filter FILTER   BPF filter for the replies (required)      -F 'tcp and src port 8080'
Tunnel:
  -p, --tunnel-port N   listen port for tcpcopy (default ${DEFAULT_TUNNEL_PORT})      -p 36524
  -b, --bind ADDR       listen address (default 0.0.0.0 = every address)  -b 10.0.0.9
  --allow CIDRS         only these networks may connect (checked at accept); with
                        --secret-file they may connect without authenticating (C tcpcopy)
                                                                   --allow 10.0.0.5/32,10.1.0.0/24
  --secret-file FILE    shared secret (mode 0600, not a symlink; the same file on tcpcopy):
                        peers not on --allow must pass a challenge-response (HMAC-SHA256)
                                                                   --secret-file /etc/tcpcopy/secret
                        With neither --allow nor --secret-file anyone who reaches the port may
                        register routes and read reply headers: intercept warns at start.
  --max-conns-per-ip N  tunnel connections at once from one address (default ${DEFAULT_SERVER.maxPerIp})
                                                                   --max-conns-per-ip 16
  --max-peer-routes N   routes one tcpcopy may hold; over it its own oldest route goes
                        (default ${DEFAULT_SERVER.maxPeerRoutes})
                                                                   --max-peer-routes 100000
  --idle-timeout S      close a connection without hello/authentication after S s, or a
                        heartbeat peer silent for S s (2..3 heartbeats; default ${
    DEFAULT_SERVER.idleTimeoutMs / 1000
  })
                                                                   --idle-timeout 5
  -n, --batch N         replies per tunnel write 1..16 (default 16) -n 8
  --max-prefix N        payload bytes granted to an authenticated tcpcopy that asks, 0..1024
                        (default 128; 0 for every unauthenticated peer)  --max-prefix 0
  --route-ttl S         idle route expiry in seconds (default 660) --route-ttl 120
Output:
  -l, --log FILE        log file instead of stderr, created 0640; a symlink is refused;
                        SIGHUP reopens it (logrotate)              -l /var/log/intercept.log
  --stats-interval S    JSON stats line on stdout every S s (default 5, 0 = only at exit)
                                                                   --stats-interval 30
  --metrics [HOST:]PORT Prometheus text on http://HOST:PORT/metrics (host default
                        127.0.0.1)                                  --metrics 9121
  -v, --version         print the version                          -v
  -h, --help            this text                                  -h
`;

const OPTIONS = {
  port: { type: "string", multiple: true },
  pass: { type: "string", short: "x", multiple: true },
  "queue-num": { type: "string" },
  "queue-maxlen": { type: "string" },
  "coalesce-ms": { type: "string" },
  "fail-open": { type: "boolean" },
  "drain-seconds": { type: "string" },
  device: { type: "string", short: "i" },
  filter: { type: "string", short: "F" },
  "tunnel-port": { type: "string", short: "p" },
  bind: { type: "string", short: "b" },
  allow: { type: "string", multiple: true },
  "secret-file": { type: "string" },
  "max-conns-per-ip": { type: "string" },
  "max-peer-routes": { type: "string" },
  "idle-timeout": { type: "string" },
  batch: { type: "string", short: "n" },
  "max-prefix": { type: "string" },
  "route-ttl": { type: "string" },
  log: { type: "string", short: "l" },
  "stats-interval": { type: "string" },
  metrics: { type: "string" },
  version: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} as const;

class UsageError extends Error {}

function int(
  flag: string,
  value: string | undefined,
  min: number,
  max: number,
  def: number,
): number {
  if (value === undefined) return def;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${flag} ${JSON.stringify(value)}: expected an integer ${min}..${max}`);
  }
  return Number(value);
}

function list(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(",")).map((s) => s.trim());
}

function parseAllow(values: string[] | undefined): AllowList {
  if (values === undefined) return new AllowList([]);
  const a = AllowList.parse(values);
  if (typeof a === "string") {
    throw new UsageError(
      `--allow ${JSON.stringify(values.join(","))}: ${a}; expected CIDR[,CIDR...], ` +
        `e.g. 10.0.0.5/32,2001:db8::/64`,
    );
  }
  return a;
}

function secretFileArg(value: string | undefined): string | undefined {
  if (value !== undefined && value.trim() === "") {
    throw new UsageError(`--secret-file "": expected the path of a file holding the secret`);
  }
  return value;
}

/** Parses `intercept doctor ...`: the capture-mode flags of a run, all optional. */
function parseDoctorArgs(args: string[]): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        json: { type: "boolean" },
        port: { type: "string", multiple: true },
        device: { type: "string", short: "i" },
        filter: { type: "string", short: "F" },
        allow: { type: "string", multiple: true },
        "secret-file": { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0];
    return {
      action: "error",
      message: `doctor: ${msg} (accepted: --json, --port, -i, -F, --allow, --secret-file)`,
    };
  }
  const v = parsed.values;
  try {
    const ports = list(v.port).map((p) => int("--port", p, 1, 65535, 0));
    const allow = parseAllow(v.allow);
    return {
      action: "doctor",
      request: {
        json: v.json === true,
        allow: allow.cidrs.length ? list(v.allow) : [],
        ...(v["secret-file"] !== undefined ? { secretFile: secretFileArg(v["secret-file"]) } : {}),
        ports,
        devices: v.device ? [v.device] : [],
        assistant: v.filter !== undefined || v.device !== undefined,
      },
    };
  } catch (e) {
    if (e instanceof UsageError) return { action: "error", message: `doctor: ${e.message}` };
    throw e;
  }
}

/** Parses `intercept cleanup [--all]`. */
function parseCleanupArgs(args: string[]): ParsedArgs {
  try {
    const { values } = parseArgs({
      args,
      options: { all: { type: "boolean" } },
      strict: true,
      allowPositionals: false,
    });
    return { action: "cleanup", all: values.all === true };
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0];
    return { action: "error", message: `cleanup: ${msg} (accepted: --all)` };
  }
}

/** Parses intercept's arguments. Never throws. */
export function parseInterceptArgs(args: string[]): ParsedArgs {
  if (args[0] === "doctor") return parseDoctorArgs(args.slice(1));
  if (args[0] === "cleanup") return parseCleanupArgs(args.slice(1));
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0].replace(/\. To specify a positional.*$/, "");
    return { action: "error", message: `${msg} (see intercept --help)` };
  }
  const v = parsed.values;
  if (v.help) return { action: "help" };
  if (v.version) return { action: "version" };
  try {
    if (parsed.positionals.length) {
      throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`);
    }
    const nfq = v.port !== undefined;
    const pcap = v.device !== undefined || v.filter !== undefined;
    if (nfq && pcap) {
      throw new UsageError("--port (NFQUEUE mode) cannot be combined with -i/-F (pcap mode)");
    }
    if (!nfq && !pcap) {
      throw new UsageError(
        "no capture mode: give --port PORT (NFQUEUE on this host) or -F FILTER (pcap)",
      );
    }
    let mode: CaptureMode;
    if (nfq) {
      const ports = list(v.port).map((p) => int("--port", p, 1, 65535, 0));
      if (new Set(ports).size !== ports.length) {
        throw new UsageError(`--port ${v.port}: duplicate port`);
      }
      const pass = list(v.pass).map((ip) => {
        const a = parseIp(ip);
        if (typeof a === "string") {
          throw new UsageError(`-x ${JSON.stringify(ip)}: expected an IPv4 or IPv6 address`);
        }
        return a.bytes;
      });
      mode = {
        kind: "nfqueue",
        ports,
        pass,
        queueNum: int("--queue-num", v["queue-num"], 0, 65535, DEFAULT_QUEUE_NUM),
        queueMaxLen: int("--queue-maxlen", v["queue-maxlen"], 1, 1 << 24, 8192),
        coalesceMs: int("--coalesce-ms", v["coalesce-ms"], 0, 10, pass.length ? 0 : 1),
        failOpen: v["fail-open"] === true,
      };
    } else {
      if (v.pass) throw new UsageError("-x works in NFQUEUE mode (--port) only");
      if (v["queue-num"] || v["queue-maxlen"] || v["coalesce-ms"]) {
        throw new UsageError("--queue-* need --port (NFQUEUE mode)");
      }
      if (v["fail-open"]) {
        throw new UsageError(
          "--fail-open works in NFQUEUE mode (--port) only: pcap mode installs no rules",
        );
      }
      if (!v.filter) {
        throw new UsageError(
          `-F missing: pcap mode needs a filter, e.g. -F 'tcp and src port 8080'`,
        );
      }
      if (v.device === "") throw new UsageError(`-i "": expected a device name, e.g. eth0 or any`);
      mode = { kind: "pcap", device: v.device ?? "any", filter: v.filter };
    }
    const bind = v.bind ?? "0.0.0.0";
    if (typeof parseIp(bind) === "string") {
      throw new UsageError(`-b ${JSON.stringify(bind)}: expected an IPv4 or IPv6 address`);
    }
    if (v.log === "") throw new UsageError(`-l "": expected a file name`);
    let metrics: MetricsAddress | undefined;
    if (v.metrics !== undefined) {
      const m = parseMetricsAddress(v.metrics);
      if ("error" in m) throw new UsageError(m.error);
      metrics = m;
    }
    return {
      action: "run",
      config: {
        mode,
        bind,
        tunnelPort: int("-p", v["tunnel-port"], 1, 65535, DEFAULT_TUNNEL_PORT),
        logFile: v.log,
        statsIntervalS: int("--stats-interval", v["stats-interval"], 0, 86400, 5),
        maxPrefix: int("--max-prefix", v["max-prefix"], 0, 1024, 128),
        batch: int("-n", v.batch, 1, 16, 16),
        routeTtlS: int("--route-ttl", v["route-ttl"], 1, 86400 * 7, 660),
        allow: parseAllow(v.allow),
        secretFile: secretFileArg(v["secret-file"]),
        maxConnsPerIp: int(
          "--max-conns-per-ip",
          v["max-conns-per-ip"],
          1,
          1024,
          DEFAULT_SERVER.maxPerIp,
        ),
        maxPeerRoutes: int(
          "--max-peer-routes",
          v["max-peer-routes"],
          1,
          1_000_000,
          DEFAULT_SERVER.maxPeerRoutes,
        ),
        idleTimeoutS: int(
          "--idle-timeout",
          v["idle-timeout"],
          1,
          3600,
          DEFAULT_SERVER.idleTimeoutMs / 1000,
        ),
        metrics,
        drainSeconds: int(
          "--drain-seconds",
          v["drain-seconds"],
          0,
          3600,
          mode.kind === "nfqueue" ? DEFAULT_DRAIN_SECONDS : 0,
        ),
      },
    };
  } catch (e) {
    if (e instanceof UsageError) return { action: "error", message: e.message };
    throw e;
  }
}
