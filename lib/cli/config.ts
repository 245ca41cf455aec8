/** The validated configuration of one tcpcopy run, as produced by the command-line parser. */
import type { Transfer } from "./transfer.ts";
import type { HostPort } from "./endpoint.ts";
import type { CompareProto } from "../compare/sniff.ts";

/** Defaults of every optional setting. */
export const DEFAULTS = {
  connections: 2,
  interface: "any",
  bufferMiB: 64,
  snaplen: 65535,
  copies: 1,
  portShift: 0,
  samplePct: 100,
  mtu: 1500,
  mss: 1460,
  sessionTimeoutS: 600,
  /** Added to the session timeout when `--keepalive-timeout` is not given (C: SESS_KEEPLIVE_ADD). */
  keepaliveExtraS: 120,
  maxMemoryMiB: 2048,
  statsIntervalS: 5,
  accelerate: 1,
  skipGapMs: 0,
  repeat: 1,
} as const;

/** Offline replay (`--offline FILE` with `-a`, `-I`, `-T`). */
export interface OfflineConfig {
  /** The pcap or pcapng file replayed instead of a live capture. */
  file: string;
  /** Speed factor: recorded gaps are divided by it. */
  accelerate: number;
  /** Idle gaps longer than this many ms are collapsed; 0 keeps every gap. */
  skipGapMs: number;
  /** Passes over the file. */
  repeat: number;
}

/** `--compare` and its flags. */
export interface CompareConfig {
  /** `--compare-proto`. */
  proto: CompareProto;
  /** `--compare-bytes`. */
  bytes: number;
  /** `--compare-max-pending`: most turns per connection waiting for the target's answer. */
  maxPending: number;
  /** `--compare-ignore-header` names (lower case), besides the defaults. */
  ignoreHeaders: string[];
  /** `--compare-log` path, "-" for stdout, null for none. */
  log: string | null;
  /** `--compare-all`. */
  all: boolean;
  /** `--compare-fail-above`, null when not given. */
  failAbove: number | null;
}

/** Everything `tcpcopy` needs to run, with defaults filled in. */
export interface TcpcopyConfig {
  transfers: Transfer[];
  intercepts: HostPort[];
  /** Tunnel connections per intercept server. */
  connections: number;
  /** The tunnel's shared secret file (`--secret-file`); null = no authentication. */
  secretFile: string | null;
  /** Capture devices; `["any"]` = all. */
  interfaces: string[];
  /** BPF capture filter (given with `-F` or generated from the transfers). */
  filter: string;
  filterGenerated: boolean;
  bufferMiB: number;
  snaplen: number;
  /** Source addresses to rewrite clients to (`-c`); empty = keep the original addresses. */
  clientIps: string[];
  /** Replication factor; fractions allowed (1.5 = every connection once, half of them twice). */
  copies: number;
  portShift: number;
  /** Percentage of connections replicated, 1..100. */
  samplePct: number;
  gradual: boolean;
  mtu: number;
  mss: number;
  sessionTimeoutS: number;
  keepaliveTimeoutS: number;
  onlyComplete: boolean;
  noWait: boolean;
  lonely: boolean;
  maxMemoryMiB: number;
  /** `--max-sessions`; null = derived from -m (see lib/engine/budget.ts). */
  maxSessions: number | null;
  /** `--max-flows`; null = derived from -m. */
  maxFlows: number | null;
  /** `--max-pps`: egress packets per second, 0 = no limit. */
  maxPps: number;
  /** `--max-mbps`: egress megabits per second, 0 = no limit. */
  maxMbps: number;
  /** `--allow-self-target`: a target address of this host is accepted (with a warning). */
  allowSelfTarget: boolean;
  /** Link-layer send device (`-o`); null = raw IP socket. */
  outInterface: string | null;
  /** Next-hop MAC for link-layer send (`--next-hop-mac`, or per transfer with `@mac`). */
  nextHopMac: string | null;
  logFile: string | null;
  /** Seconds between JSON stats lines; 0 = only the final line. */
  statsIntervalS: number;
  /** Where to serve Prometheus metrics (`--metrics`); null = off. */
  metrics: HostPort | null;
  /** Replay a capture file instead of capturing live (`--offline`); null = live. */
  offline: OfflineConfig | null;
  /**
   * `--auth-file`: `user:password` lines for the protocol modules (lib/modules/auth_file.ts);
   * null = none. The module of each transfer is `Transfer.module` (`--module` or `@NAME`).
   */
  authFile: string | null;
  /** `--read-only`: modules drop statements that change data. */
  readOnly: boolean;
  /**
   * `--module-trust-logins`: modules do not wait for production's verdict on a login (the
   * capture then takes client packets only). Default false.
   */
  trustLogins: boolean;
  /** `--compare` (issue 15); null = off. */
  compare: CompareConfig | null;
}
