/**
 * tcpcopy's command line: argument list -> validated TcpcopyConfig, or one line saying which
 * flag, which value and what is expected. Pure: no I/O, never exits, never throws.
 */
import { parseArgs } from "node:util";
import { type CompareConfig, DEFAULTS, type OfflineConfig, type TcpcopyConfig } from "./config.ts";
import { DEFAULT_TUNNEL_PORT } from "../tunnel/defaults.ts";
import { flagName, FLAGS, parseArgsOptions, renderHelp } from "./tcpcopy_flags.ts";
import { parseTransfers, type Transfer, TRANSFER_SYNTAX } from "./transfer.ts";
import { type HostPort, parseHostPort } from "./endpoint.ts";
import { parseClientIps } from "./client_ip.ts";
import { buildCaptureFilter } from "./filter.ts";
import { parseMac } from "./mac.ts";
import { parseDecimalInRange, parseIntInRange } from "./number.ts";
import type { Parsed } from "./result.ts";
import { EXIT_USAGE } from "../process/exit.ts";
import { lookupModule } from "../modules/registry.ts";
import { COMPARE_PROTOS, type CompareProto } from "../compare/sniff.ts";
import { DEFAULT_COMPARE_BYTES, MAX_COMPARE_BYTES, MIN_COMPARE_BYTES } from "../compare/answer.ts";
import { MAX_PENDING_TURNS, MAX_PENDING_TURNS_LIMIT } from "../tcpcopy/compare_flow.ts";

/** What the command line asks for. */
export type CliResult =
  | { kind: "run"; config: TcpcopyConfig }
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "doctor"; args: string[] }
  | { kind: "error"; message: string; exitCode: 2 };

/** Exit code for a bad command line (lib/process/exit.ts). */
export { EXIT_USAGE };
/** The help text, generated from the flag table (tcpcopy_flags.ts). */
export { renderHelp };

class UsageError {
  constructor(readonly message: string) {}
}

function usage(message: string): never {
  throw new UsageError(message);
}

function bad(long: string, value: string, expected: string): never {
  usage(`${flagName(long)} '${value}': ${expected}`);
}

function need<T>(long: string, value: string, parsed: Parsed<T>): T {
  if (!parsed.ok) bad(long, value, parsed.error);
  return parsed.value;
}

function oneLine(text: string): string {
  return text.split("\n").map((s) => s.trim()).filter((s) => s !== "").join(" ");
}

function translateParseArgsError(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const message = oneLine(String(e.message ?? error));
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION": {
      const flag = /'([^']+)'/.exec(message)?.[1] ?? message;
      return `unknown flag '${flag}' (see tcpcopy --help)`;
    }
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL": {
      const arg = /'([^']+)'/.exec(message)?.[1] ?? message;
      return `unexpected argument '${arg}': every value belongs to a flag (see tcpcopy --help)`;
    }
    default:
      return message;
  }
}

/** Parses tcpcopy's arguments (without the program name). Never throws. */
export function parseTcpcopyArgs(args: readonly string[]): CliResult {
  if (args[0] === "doctor") return { kind: "doctor", args: args.slice(1) };
  try {
    return parseOrThrow([...args]);
  } catch (error) {
    const message = error instanceof UsageError ? error.message : translateParseArgsError(error);
    return { kind: "error", message: `tcpcopy: ${message}`, exitCode: EXIT_USAGE };
  }
}

function parseOrThrow(args: string[]): CliResult {
  const { values } = parseArgs({
    args,
    options: parseArgsOptions(),
    strict: true,
    allowPositionals: false,
  });
  const v = values as Values;
  if (v.help) return { kind: "help" };
  if (v.version) return { kind: "version" };
  for (const f of FLAGS) {
    if (f.reserved && v[f.long] !== undefined) {
      usage(`${flagName(f.long)}: ${f.reserved} is not available in this version`);
    }
  }
  return { kind: "run", config: configOf(reader(v)) };
}

/** The values `parseArgs` returns. */
type Values = Record<string, string | boolean | string[] | undefined>;

/** Typed access to the parsed values; numbers checked against their range (or a usage error). */
interface Reader {
  v: Values;
  str(long: string): string | undefined;
  list(long: string): string[];
  int(long: string, def: number, min: number, max: number): number;
  dec(long: string, def: number, min: number, max: number, excl?: boolean): number;
}

function reader(v: Values): Reader {
  const str = (long: string): string | undefined => v[long] as string | undefined;
  return {
    v,
    str,
    list: (long) => (v[long] as string[] | undefined) ?? [],
    int: (long, def, min, max) => {
      const text = str(long);
      return text === undefined ? def : need(long, text, parseIntInRange(text, min, max));
    },
    dec: (long, def, min, max, excl = false) => {
      const text = str(long);
      return text === undefined ? def : need(long, text, parseDecimalInRange(text, min, max, excl));
    },
  };
}

/**
 * The whole configuration, flag group by flag group. The groups are checked in this order (the
 * first bad flag is the one reported), then the numbers in the order of the literal.
 */
function configOf(r: Reader): TcpcopyConfig {
  const transfers = transfersOf(r);
  const intercepts = interceptsOf(r);
  const filterText = r.str("filter");
  const interfaces = interfacesOf(r, filterText);
  const clientIps = clientIpsOf(r, transfers);
  const sessionTimeoutS = r.dec("session-timeout", DEFAULTS.sessionTimeoutS, 0, 604800, true);
  const { outInterface, nextHopMac } = sendPathOf(r, transfers);
  const metrics = metricsOf(r);
  const offline = parseOffline(r.v, r.dec, r.int);
  const secretFile = secretFileOf(r);
  const { authFile, readOnly, trustLogins } = modulesOf(r, transfers, secretFile);
  const compare = compareOf(r, secretFile);
  const config: TcpcopyConfig = {
    transfers,
    intercepts,
    connections: r.int("connections", DEFAULTS.connections, 1, 16),
    secretFile,
    interfaces,
    filter: filterText ?? buildCaptureFilter(transfers, compare !== null, !trustLogins),
    filterGenerated: filterText === undefined,
    bufferMiB: r.int("buffer", DEFAULTS.bufferMiB, 1, 4096),
    snaplen: r.int("snaplen", DEFAULTS.snaplen, 96, 262144),
    clientIps,
    copies: r.dec("copies", DEFAULTS.copies, 0, 1023, true),
    portShift: r.int("port-shift", DEFAULTS.portShift, 0, 1023),
    samplePct: r.dec("sample", DEFAULTS.samplePct, 1, 100),
    gradual: r.v.gradual === true,
    mtu: r.int("mtu", DEFAULTS.mtu, 576, 65535),
    mss: r.int("mss", DEFAULTS.mss, 88, 65495),
    sessionTimeoutS,
    keepaliveTimeoutS: r.dec(
      "keepalive-timeout",
      sessionTimeoutS + DEFAULTS.keepaliveExtraS,
      0,
      604800,
      true,
    ),
    onlyComplete: r.v["only-complete"] === true,
    noWait: r.v["no-wait"] === true,
    lonely: r.v.lonely === true,
    ...budgetOf(r),
    allowSelfTarget: r.v["allow-self-target"] === true,
    outInterface,
    nextHopMac,
    logFile: r.str("log") ?? null,
    statsIntervalS: r.dec("stats-interval", DEFAULTS.statsIntervalS, 0, 86400),
    metrics,
    offline,
    authFile,
    readOnly,
    trustLogins,
    compare,
  };
  if (config.logFile !== null && config.logFile.trim() === "") {
    bad("log", config.logFile, "expected a file path");
  }
  return config;
}

/** -x: required, at least one transfer. */
function transfersOf(r: Reader): Transfer[] {
  const transferText = r.list("transfer");
  if (transferText.length === 0) {
    usage(`missing required flag -x/--transfer; expected ${TRANSFER_SYNTAX}`);
  }
  return need("transfer", transferText.join(","), parseTransfers(transferText));
}

/** -s: required, 1..32 intercept servers, port 36524 by default. */
function interceptsOf(r: Reader): HostPort[] {
  const interceptText = r.list("intercept");
  if (interceptText.length === 0) {
    usage(`missing required flag -s/--intercept; expected host[:port][,...] (e.g. -s 10.0.0.3)`);
  }
  const intercepts: HostPort[] = [];
  for (const item of interceptText.flatMap((s) => s.split(","))) {
    const text = item.trim();
    const hp = parseHostPort(text, DEFAULT_TUNNEL_PORT, true);
    if (!hp.ok) bad("intercept", text, `${hp.error}; expected host[:port], e.g. 10.0.0.3:36524`);
    intercepts.push(hp.value);
  }
  if (intercepts.length > 32) bad("intercept", interceptText.join(","), "at most 32 servers");
  return intercepts;
}

/** -i devices (checked after -x and -s, as before) and a non-empty -F. */
function interfacesOf(r: Reader, filterText: string | undefined): string[] {
  const interfaces = r.list("interface").flatMap((s) => s.split(",")).map((s) => s.trim());
  for (const dev of interfaces) {
    if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(dev)) {
      bad("interface", dev, "expected a device name such as eth0 or any");
    }
  }
  if (filterText !== undefined && filterText.trim() === "") {
    bad("filter", filterText, "expected a non-empty BPF expression");
  }
  return interfaces.length > 0 ? interfaces : [DEFAULTS.interface];
}

/** -c: client address rewriting (never onto a target address). */
function clientIpsOf(r: Reader, transfers: readonly Transfer[]) {
  const targetIps = new Set(transfers.map((t) => t.targetIp));
  const clientText = r.list("client-ip");
  return clientText.length === 0
    ? []
    : need("client-ip", clientText.join(","), parseClientIps(clientText, targetIps));
}

/** -o and --next-hop-mac: link-layer send needs a next-hop MAC for every target. */
function sendPathOf(
  r: Reader,
  transfers: readonly Transfer[],
): { outInterface: string | null; nextHopMac: string | null } {
  const outInterface = r.str("out-interface") ?? null;
  if (outInterface !== null && !/^[A-Za-z0-9_.:@-]{1,15}$/.test(outInterface)) {
    bad("out-interface", outInterface, "expected a device name such as eth1");
  }
  let nextHopMac: string | null = null;
  const macText = r.str("next-hop-mac");
  if (macText !== undefined) {
    nextHopMac = parseMac(macText);
    if (nextHopMac === null) bad("next-hop-mac", macText, "expected a MAC like 02:00:00:00:00:02");
    if (outInterface === null) {
      bad("next-hop-mac", macText, "only used with -o/--out-interface DEV");
    }
  }
  if (outInterface !== null && nextHopMac === null) {
    const missing = transfers.find((t) => t.nextHopMac === null);
    if (missing) {
      bad(
        "out-interface",
        outInterface,
        `link-layer send needs --next-hop-mac MAC (or @mac after target ${missing.targetIp}:` +
          `${missing.targetPort} in -x)`,
      );
    }
  }
  return { outInterface, nextHopMac };
}

/** --metrics [host:]port (a bare port listens on 127.0.0.1). */
function metricsOf(r: Reader): HostPort | null {
  const metricsText = r.str("metrics");
  if (metricsText === undefined) return null;
  const text = /^[0-9]+$/.test(metricsText) ? `127.0.0.1:${metricsText}` : metricsText;
  const hp = parseHostPort(text, null, true);
  if (!hp.ok) bad("metrics", metricsText, `${hp.error}; expected [host:]port, e.g. 9120`);
  return hp.value;
}

/**
 * --module (every transfer without its own `@NAME`), --auth-file, --read-only,
 * --module-trust-logins. Module names must be built in; a module needs --secret-file
 * (intercept grants reply payload only to an authenticated tcpcopy); the other flags need a
 * module.
 */
function modulesOf(
  r: Reader,
  transfers: Transfer[],
  secretFile: string | null,
): { authFile: string | null; readOnly: boolean; trustLogins: boolean } {
  const all = r.str("module");
  if (all !== undefined) {
    const found = lookupModule(all);
    if (!found.ok) bad("module", all, found.error);
    for (const t of transfers) t.module ??= all;
  }
  for (const t of transfers) {
    if (t.module === null) continue;
    const found = lookupModule(t.module);
    if (!found.ok) {
      bad("transfer", `${t.targetIp}:${t.targetPort}@${t.module}`, found.error);
    }
  }
  const withModule = transfers.find((t) => t.module !== null);
  // Only a module that reads the target's replies needs the payload extension (and so the
  // shared secret): the Redis module rewrites and drops client bytes only.
  const needsReplies = transfers.find((t) => {
    const found = t.module === null ? undefined : lookupModule(t.module);
    return found?.ok === true && found.module.replyPrefix > 0;
  });
  const authFile = r.str("auth-file") ?? null;
  const readOnly = r.v["read-only"] === true;
  if (needsReplies && secretFile === null) {
    usage(
      `module '${needsReplies.module}' needs --secret-file FILE: intercept sends the target's ` +
        `reply payload only to a tcpcopy that authenticates with the shared secret`,
    );
  }
  if (authFile !== null) {
    if (authFile.trim() === "") bad("auth-file", authFile, "expected the path of a file");
    if (!withModule) bad("auth-file", authFile, "only used with --module NAME (or -x ...@NAME)");
  }
  if (readOnly && !withModule) {
    usage(`--read-only: only used with --module NAME (or -x ...@NAME)`);
  }
  const trustLogins = r.v["module-trust-logins"] === true;
  if (trustLogins && !withModule) {
    usage(`--module-trust-logins: only used with --module NAME (or -x ...@NAME)`);
  }
  return { authFile, readOnly, trustLogins };
}

/** The flags that only make sense with --compare. */
const COMPARE_ONLY = [
  "compare-proto",
  "compare-bytes",
  "compare-max-pending",
  "compare-ignore-header",
  "compare-log",
  "compare-all",
  "compare-fail-above",
];

/**
 * --compare and its flags; null when off. --compare needs --secret-file (intercept sends answer
 * summaries only to an authenticated peer); the other compare flags need --compare.
 */
function compareOf(r: Reader, secretFile: string | null): CompareConfig | null {
  if (r.v.compare !== true) {
    const stray = COMPARE_ONLY.find((long) => r.v[long] !== undefined);
    if (stray) {
      const value = r.v[stray];
      bad(
        stray,
        Array.isArray(value) ? value.join(",") : String(value),
        "only used with --compare",
      );
    }
    return null;
  }
  if (secretFile === null) {
    usage(
      "--compare needs --secret-file FILE: intercept sends the target's answers only to a " +
        "tcpcopy that authenticates with the shared secret",
    );
  }
  const protoText = r.str("compare-proto") ?? "auto";
  if (!COMPARE_PROTOS.includes(protoText as CompareProto)) {
    bad("compare-proto", protoText, `expected one of ${COMPARE_PROTOS.join(", ")}`);
  }
  const ignoreHeaders = r.list("compare-ignore-header").map((name) => {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/.test(name)) {
      bad("compare-ignore-header", name, "expected an HTTP header name such as X-Trace-Id");
    }
    return name.toLowerCase();
  });
  const log = r.str("compare-log") ?? null;
  if (log !== null && log.trim() === "") {
    bad("compare-log", log, "expected a file path, or - for stdout");
  }
  const all = r.v["compare-all"] === true;
  if (all && log === null) usage("--compare-all: only used with --compare-log FILE");
  const failText = r.str("compare-fail-above");
  return {
    proto: protoText as CompareProto,
    bytes: r.int("compare-bytes", DEFAULT_COMPARE_BYTES, MIN_COMPARE_BYTES, MAX_COMPARE_BYTES),
    maxPending: r.int("compare-max-pending", MAX_PENDING_TURNS, 1, MAX_PENDING_TURNS_LIMIT),
    ignoreHeaders,
    log,
    all,
    failAbove: failText === undefined ? null : r.dec("compare-fail-above", 0, 0, 1),
  };
}

/** --secret-file: a non-empty path (read at start). */
function secretFileOf(r: Reader): string | null {
  const secretFile = r.str("secret-file") ?? null;
  if (secretFile !== null && secretFile.trim() === "") {
    bad("secret-file", secretFile, "expected the path of a file holding the shared secret");
  }
  return secretFile;
}

/** The resource budget: -m, --max-sessions, --max-flows, --max-pps, --max-mbps. */
function budgetOf(r: Reader) {
  return {
    maxMemoryMiB: r.int("max-memory", DEFAULTS.maxMemoryMiB, 16, 1048576),
    maxSessions: r.str("max-sessions") === undefined
      ? null
      : r.int("max-sessions", 0, 1, 10_000_000),
    maxFlows: r.str("max-flows") === undefined ? null : r.int("max-flows", 0, 1, 100_000_000),
    maxPps: r.int("max-pps", 0, 0, 100_000_000),
    maxMbps: r.dec("max-mbps", 0, 0, 1_000_000),
  };
}

/** Flags that only make sense for a live capture. */
const LIVE_ONLY = ["interface", "filter", "buffer", "snaplen"];
/** Flags that only make sense for an offline replay. */
const OFFLINE_ONLY = ["accelerate", "skip-gap", "repeat"];

/** `--offline FILE` with its timing flags, or null for a live capture. */
function parseOffline(
  v: Values,
  dec: (long: string, def: number, min: number, max: number, excl?: boolean) => number,
  int: (long: string, def: number, min: number, max: number) => number,
): OfflineConfig | null {
  const file = v.offline as string | undefined;
  if (file === undefined) {
    const stray = OFFLINE_ONLY.find((long) => v[long] !== undefined);
    if (stray) bad(stray, String(v[stray]), "only used with --offline FILE");
    return null;
  }
  if (file.trim() === "") bad("offline", file, "expected the path of a pcap or pcapng file");
  const live = LIVE_ONLY.find((long) => v[long] !== undefined);
  if (live) {
    const value = Array.isArray(v[live]) ? (v[live] as string[]).join(",") : String(v[live]);
    bad(live, value, "not used with --offline (the file is the packet source)");
  }
  return {
    file,
    accelerate: dec("accelerate", DEFAULTS.accelerate, 0, 1_000_000, true),
    skipGapMs: int("skip-gap", DEFAULTS.skipGapMs, 0, 86_400_000),
    repeat: int("repeat", DEFAULTS.repeat, 1, 1_000_000),
  };
}
