/**
 * intercept's command line (node:util parseArgs) -> a validated configuration, or a one-line
 * error naming the flag, the value and what is expected (the caller exits with code 2). The
 * flags and the --help text come from one table (intercept_flags.ts).
 */
import { parseArgs } from "node:util";
import { parseIp } from "../wire/addr.ts";
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_PEER_ROUTES,
  DEFAULT_MAX_PER_IP,
  DEFAULT_TUNNEL_PORT,
  MAX_REPLY_PREFIX,
} from "../tunnel/defaults.ts";
import {
  DEFAULT_DRAIN_SECONDS,
  DEFAULT_QUEUE_NUM,
  interceptParseOptions,
  renderInterceptHelp,
} from "./intercept_flags.ts";

export { DEFAULT_DRAIN_SECONDS, DEFAULT_QUEUE_NUM };
import { AllowList } from "../tunnel/access.ts";
import { type MetricsAddress, parseMetricsAddress } from "../metrics/server.ts";

/** Where replies are read from. */
export type CaptureMode =
  | {
    kind: "nfqueue";
    ports: number[];
    queueNum: number;
    /** --queue-maxlen; 0: sized by lib/io/nfq_sizing.ts (52,428 for the default copy range) */
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
  /**
   * --compare: answer summaries for authenticated peers that ask (Cap.ANSWERS); the capture
   * keeps whole payloads (needs --secret-file).
   */
  compare: boolean;
}

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
  | { kind: "run"; config: InterceptConfig }
  | { kind: "help" | "version" }
  | { kind: "doctor"; request: DoctorRequest }
  | { kind: "cleanup"; all: boolean }
  | { kind: "error"; message: string };

/** The --help text: every flag with an example (generated from the flag table). */
export const HELP = renderInterceptHelp();

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
      kind: "error",
      message: `doctor: ${msg} (accepted: --json, --port, -i, -F, --allow, --secret-file)`,
    };
  }
  const v = parsed.values;
  try {
    const ports = list(v.port).map((p) => int("--port", p, 1, 65535, 0));
    const allow = parseAllow(v.allow);
    return {
      kind: "doctor",
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
    if (e instanceof UsageError) return { kind: "error", message: `doctor: ${e.message}` };
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
    return { kind: "cleanup", all: values.all === true };
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0];
    return { kind: "error", message: `cleanup: ${msg} (accepted: --all)` };
  }
}

/** The values `parseArgs` returns for a run. */
type Values = Record<string, string | boolean | string[] | undefined>;
const str = (v: Values, long: string) => v[long] as string | undefined;
const strs = (v: Values, long: string) => v[long] as string[] | undefined;

/** Parses intercept's arguments. Never throws. */
export function parseInterceptArgs(args: string[]): ParsedArgs {
  if (args[0] === "doctor") return parseDoctorArgs(args.slice(1));
  if (args[0] === "cleanup") return parseCleanupArgs(args.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: interceptParseOptions(),
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0].replace(/\. To specify a positional.*$/, "");
    return { kind: "error", message: `${msg} (see intercept --help)` };
  }
  const v = parsed.values as Values;
  if (v.help) return { kind: "help" };
  if (v.version) return { kind: "version" };
  try {
    if (parsed.positionals.length) {
      throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`);
    }
    return { kind: "run", config: runConfig(v, captureMode(v)) };
  } catch (e) {
    if (e instanceof UsageError) return { kind: "error", message: e.message };
    throw e;
  }
}

/** The capture mode: --port (NFQUEUE) or -i/-F (pcap), never both, never neither. */
function captureMode(v: Values): CaptureMode {
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
  return nfq ? nfqueueMode(v) : pcapMode(v);
}

/** NFQUEUE mode: ports, pass-list and the queue's settings. */
function nfqueueMode(v: Values): CaptureMode {
  const ports = list(strs(v, "port")).map((p) => int("--port", p, 1, 65535, 0));
  if (new Set(ports).size !== ports.length) {
    throw new UsageError(`--port ${v.port}: duplicate port`);
  }
  const pass = list(strs(v, "pass")).map((ip) => {
    const a = parseIp(ip);
    if (typeof a === "string") {
      throw new UsageError(`-x ${JSON.stringify(ip)}: expected an IPv4 or IPv6 address`);
    }
    return a.bytes;
  });
  return {
    kind: "nfqueue",
    ports,
    pass,
    queueNum: int("--queue-num", str(v, "queue-num"), 0, 65535, DEFAULT_QUEUE_NUM),
    queueMaxLen: int("--queue-maxlen", str(v, "queue-maxlen"), 1, 1 << 24, 0),
    coalesceMs: int("--coalesce-ms", str(v, "coalesce-ms"), 0, 10, pass.length ? 0 : 1),
    failOpen: v["fail-open"] === true,
  };
}

/** pcap mode (an assistant host): device and filter; the NFQUEUE-only flags are refused. */
function pcapMode(v: Values): CaptureMode {
  if (v.pass) throw new UsageError("-x works in NFQUEUE mode (--port) only");
  if (v["queue-num"] || v["queue-maxlen"] || v["coalesce-ms"]) {
    throw new UsageError("--queue-* need --port (NFQUEUE mode)");
  }
  if (v["fail-open"]) {
    throw new UsageError(
      "--fail-open works in NFQUEUE mode (--port) only: pcap mode installs no rules",
    );
  }
  const filter = str(v, "filter");
  if (!filter) {
    throw new UsageError(
      `-F missing: pcap mode needs a filter, e.g. -F 'tcp and src port 8080'`,
    );
  }
  const device = str(v, "device");
  if (device === "") throw new UsageError(`-i "": expected a device name, e.g. eth0 or any`);
  return { kind: "pcap", device: device ?? "any", filter };
}

/** --compare: only with --secret-file (answers go to authenticated peers only). */
function compareFlag(v: Values): boolean {
  if (v.compare !== true) return false;
  if (str(v, "secret-file") === undefined) {
    throw new UsageError(
      "--compare needs --secret-file: answer summaries go to authenticated tcpcopy peers only",
    );
  }
  return true;
}

/** The rest of a run's configuration: tunnel, limits and output. */
function runConfig(v: Values, mode: CaptureMode): InterceptConfig {
  const bind = str(v, "bind") ?? "0.0.0.0";
  if (typeof parseIp(bind) === "string") {
    throw new UsageError(`-b ${JSON.stringify(bind)}: expected an IPv4 or IPv6 address`);
  }
  if (v.log === "") throw new UsageError(`-l "": expected a file name`);
  let metrics: MetricsAddress | undefined;
  const metricsText = str(v, "metrics");
  if (metricsText !== undefined) {
    const m = parseMetricsAddress(metricsText);
    if ("error" in m) throw new UsageError(m.error);
    metrics = m;
  }
  const n = (flag: string, long: string, min: number, max: number, def: number) =>
    int(flag, str(v, long), min, max, def);
  return {
    mode,
    bind,
    tunnelPort: n("-p", "tunnel-port", 1, 65535, DEFAULT_TUNNEL_PORT),
    logFile: str(v, "log"),
    statsIntervalS: n("--stats-interval", "stats-interval", 0, 86400, 5),
    maxPrefix: n("--max-prefix", "max-prefix", 0, MAX_REPLY_PREFIX, 128),
    batch: n("-n", "batch", 1, 16, 16),
    routeTtlS: n("--route-ttl", "route-ttl", 1, 86400 * 7, 660),
    allow: parseAllow(strs(v, "allow")),
    secretFile: secretFileArg(str(v, "secret-file")),
    compare: compareFlag(v),
    maxConnsPerIp: n("--max-conns-per-ip", "max-conns-per-ip", 1, 1024, DEFAULT_MAX_PER_IP),
    maxPeerRoutes: n(
      "--max-peer-routes",
      "max-peer-routes",
      1,
      1_000_000,
      DEFAULT_MAX_PEER_ROUTES,
    ),
    idleTimeoutS: n("--idle-timeout", "idle-timeout", 1, 3600, DEFAULT_IDLE_TIMEOUT_MS / 1000),
    metrics,
    drainSeconds: n(
      "--drain-seconds",
      "drain-seconds",
      0,
      3600,
      mode.kind === "nfqueue" ? DEFAULT_DRAIN_SECONDS : 0,
    ),
  };
}
