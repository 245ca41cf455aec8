/**
 * intercept's stats record: one JSON object per line on stdout, every --stats-interval
 * seconds and once at exit (`final: true`). Field names are stable; tooling parses them.
 */
import type { DispatchCounters } from "../tunnel/dispatch.ts";

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
  kernel: KernelCounters;
  verdicts: VerdictCounters;
  batches: { frames: number; records: number };
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
    peers: { connected: s.peers, accepted: s.accepted, rejected: s.rejected },
    routes: s.routes,
    kernel: { ...s.kernel },
    verdicts: { ...s.verdicts },
    batches: {
      count: s.batches.frames,
      avg_size: s.batches.frames ? round3(s.batches.records / s.batches.frames) : 0,
    },
  };
}
