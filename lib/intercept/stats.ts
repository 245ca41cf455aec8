/**
 * intercept's stats record: one JSON object per line on stdout, every --stats-interval
 * seconds and once at exit (`final: true`). Field names are stable; tooling parses them.
 */
import type { DispatchCounters } from "../tunnel/dispatch.ts";
import { PROCESS_GAUGES, PROCESS_HELP, type PrometheusSchema } from "../stats/prometheus.ts";
import { memoryFields, type ProcessCounters } from "../stats/record.ts";

/** Counters of the capture back-end. */
export interface KernelCounters {
  pcap_drops: number;
  nfq_queue_dropped: number;
  nfq_user_dropped: number;
}

/** Verdicts given (NFQUEUE mode; zero in pcap mode). */
export interface VerdictCounters {
  accept: number;
  drop: number;
}

/** Everything the record is built from. */
export interface InterceptSnapshot {
  dispatch: DispatchCounters;
  /** Replies let through by the pass-list (never routed). */
  passed: number;
  /** Captured frames that were not IP (pcap mode). */
  notIp: number;
  peers: number;
  /** Tunnel connections accepted / closed for garbage since the start. */
  accepted: number;
  rejected: number;
  routes: number;
  /** Routes evicted because the table was full. */
  routesEvicted: number;
  /** Routes an owner lost to its own newer ones (per-peer quota). */
  routesOverQuota: number;
  /** What protects the tunnel (README "Security model"). */
  security: { auth: "secret" | "none"; allow: "any" | "list" };
  /** Tunnel access counters (lib/tunnel/server.ts ServerCounters). */
  access: {
    refusedAllow: number;
    refusedPerIp: number;
    authOk: number;
    authFailed: number;
    authRequired: number;
    idleClosed: number;
    protocolErrors: number;
    /** Peer event log lines not written one by one (rate limit). */
    logSuppressed: number;
  };
  kernel: KernelCounters;
  verdicts: VerdictCounters;
  batches: { frames: number; records: number; dropped: number };
  /** Answer summaries (--compare): lib/intercept/answers.ts counters and gauges. */
  answers: {
    sent: number;
    skipped: number;
    dropped: number;
    bytes: number;
    duplicateBytes: number;
    open: number;
    live: number;
    flows: number;
  };
  /** --fail-open: the rules let replies through while no intercept reads the queue. */
  failOpen: boolean;
  /** Between the first SIGTERM/SIGINT and the end of --drain-seconds. */
  draining: boolean;
  /** NFQUEUE rules installed now (iptables + ip6tables, one per port each). */
  rulesInstalled: number;
  /** Stale rules of a dead intercept replaced at start. */
  staleRulesReplaced: number;
  /** Memory and CPU (lib/process/memory.ts); absent: the record has no `process` object. */
  process?: ProcessCounters;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Builds the record; `nowMs`/`startMs` are wall-clock ms. */
export function interceptStatsRecord(
  s: InterceptSnapshot,
  nowMs: number,
  startMs: number,
  final: boolean,
) {
  const d = s.dispatch;
  return {
    type: "stats" as const,
    program: "intercept" as const,
    ts: new Date(nowMs).toISOString(),
    uptime_s: round3((nowMs - startMs) / 1000),
    final,
    replies: {
      seen: d.seen,
      forwarded: d.forwarded,
      dropped_no_route: d.droppedNoRoute,
      dropped_queue_full: d.droppedQueueFull,
      dropped_unsupported: d.droppedUnsupported,
      malformed: d.malformed + s.notIp,
      delayed: d.delayed,
      delayed_flushed: d.delayedFlushed,
      passed: s.passed,
    },
    security: { ...s.security },
    peers: {
      connected: s.peers,
      accepted: s.accepted,
      rejected: s.rejected,
      refused_allow: s.access.refusedAllow,
      refused_per_ip: s.access.refusedPerIp,
      auth_ok: s.access.authOk,
      auth_failed: s.access.authFailed,
      auth_required: s.access.authRequired,
      idle_closed: s.access.idleClosed,
      protocol_errors: s.access.protocolErrors,
      log_suppressed: s.access.logSuppressed,
    },
    routes: s.routes,
    routes_contested: d.routesContested,
    routes_reclaimed: d.routesReclaimed,
    routes_evicted: s.routesEvicted,
    routes_over_quota: s.routesOverQuota,
    kernel: { ...s.kernel },
    verdicts: { ...s.verdicts },
    batches: {
      count: s.batches.frames,
      avg_size: s.batches.frames ? round3(s.batches.records / s.batches.frames) : 0,
      dropped_queue_full: s.batches.dropped,
    },
    answers: {
      sent: s.answers.sent,
      skipped: s.answers.skipped,
      dropped: s.answers.dropped,
      bytes: s.answers.bytes,
      duplicate_bytes: s.answers.duplicateBytes,
      open: s.answers.open,
      live: s.answers.live,
      flows: s.answers.flows,
    },
    fail_open: s.failOpen,
    draining: s.draining,
    rules: { installed: s.rulesInstalled, stale_replaced: s.staleRulesReplaced },
    ...(s.process === undefined ? {} : {
      process: {
        ...memoryFields(s.process),
        cpu_user_s: round3(s.process.cpuUserS),
        cpu_system_s: round3(s.process.cpuSystemS),
      },
    }),
  };
}

/** How intercept's record is rendered for `--metrics` (see lib/stats/prometheus.ts). */
export const INTERCEPT_SCHEMA: PrometheusSchema = {
  prefix: "intercept",
  skip: new Set(["type", "program", "ts", "final"]),
  gauges: new Set([
    "uptime_s",
    "peers_connected",
    "routes",
    "batches_avg_size",
    "answers_open",
    "answers_live",
    "answers_flows",
    "rules_installed",
    "fail_open",
    "draining",
    ...PROCESS_GAUGES,
  ]),
  labelled: { verdicts: "verdict" },
  help: {
    uptime_s: "Seconds since intercept started.",
    replies_seen: "Target replies captured.",
    replies_forwarded: "Reply headers sent to a tcpcopy.",
    replies_dropped_no_route: "Replies for which no tcpcopy registered a route.",
    replies_dropped_queue_full: "Replies dropped because a tcpcopy's queue was full.",
    replies_dropped_unsupported: "Replies a peer cannot receive (IPv6 to a C tcpcopy).",
    replies_malformed: "Captured packets that were not valid IP/TCP.",
    replies_delayed: "Replies held until their route was registered.",
    replies_delayed_flushed: "Held replies sent once their route arrived.",
    replies_passed: "Replies let through by the pass-list.",
    peers_connected: "Tunnel connections currently up.",
    peers_accepted: "Tunnel connections accepted.",
    peers_rejected:
      "Tunnel connections refused or closed (allow-list, caps, protocol errors, auth, idle).",
    peers_refused_allow: "Tunnel connections refused at accept: address not in --allow.",
    peers_refused_per_ip: "Tunnel connections refused at accept: --max-conns-per-ip reached.",
    peers_auth_ok: "Tunnel peers that passed the shared-secret challenge.",
    peers_auth_failed: "Tunnel peers that failed the shared-secret challenge.",
    peers_auth_required: "Tunnel peers closed for not authenticating (not on --allow).",
    peers_idle_closed: "Tunnel connections closed by --idle-timeout.",
    peers_protocol_errors: "Tunnel connections closed for malformed or out-of-order messages.",
    peers_log_suppressed: "Peer event log lines only counted (log rate limit).",
    routes_reclaimed: "Routes an authenticated tcpcopy took from an unauthenticated peer.",
    routes_over_quota: "Routes a tcpcopy lost to its own newer ones (--max-peer-routes).",
    routes: "Routes currently registered.",
    routes_evicted: "Routes evicted because the route table was full.",
    batches_dropped_queue_full: "Tunnel frames dropped because a tcpcopy's queue was full.",
    routes_contested:
      "Route registrations refused: another tcpcopy held the tuple (hijack or shared tuples).",
    kernel_pcap_drops: "Packets dropped by the kernel before capture (pcap mode).",
    kernel_nfq_queue_dropped: "Packets dropped because the NFQUEUE was full.",
    kernel_nfq_user_dropped: "Packets dropped because the netlink socket buffer was full.",
    verdicts: "NFQUEUE verdicts given, by verdict.",
    batches_count: "Tunnel writes (batches of reply headers).",
    batches_avg_size: "Average reply headers per tunnel write.",
    answers_sent: "Answer summaries sent to tcpcopy peers (--compare).",
    answers_skipped: "Answers not summarised: a peer's live accumulators were at the cap.",
    answers_dropped: "Answer summaries dropped because a tcpcopy's queue was full.",
    answers_bytes: "Tunnel bytes spent on answer summaries.",
    answers_duplicate_bytes: "Retransmitted reply bytes not counted twice in answers.",
    answers_open: "Answers in progress (summarised or skipped).",
    answers_live: "Answer accumulators in use.",
    answers_flows: "Connections tracked for answer summaries.",
    fail_open: "1 when started with --fail-open (replies flow while intercept is gone).",
    draining: "1 between SIGTERM/SIGINT and the end of --drain-seconds.",
    rules_installed: "NFQUEUE rules installed now (iptables and ip6tables).",
    rules_stale_replaced: "Stale rules of a dead intercept replaced at start.",
    ...PROCESS_HELP,
  },
};
