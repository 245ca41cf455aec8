/**
 * What an offline replay tells its user (pure): the `offline` object of the JSON stats line,
 * the progress line for a terminal, the final summary, and the line that explains a replay
 * that replicated nothing.
 *
 * @module
 */
import type { EngineStats } from "../engine/stats.ts";
import type { FeedCounters } from "./feed.ts";

/** The state an offline report is built from. */
export interface OfflineState {
  file: string;
  feed: FeedCounters;
  /** Current pass, from 0. */
  pass: number;
  passes: number;
  gapsCollapsed: number;
  truncatedRecords: number;
}

/** The `offline` object added to every JSON stats line in offline mode. */
export function offlineStats(s: OfflineState) {
  return {
    file: s.file,
    packets_read: s.feed.packetsRead,
    packets_matched: s.feed.packetsMatched,
    pass: s.pass + 1,
    passes: s.passes,
    gaps_collapsed: s.gapsCollapsed,
    truncated_records: s.truncatedRecords,
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * The progress line: packets replayed, share of the replay read, elapsed time and the
 * estimated time left (linear in the share read).
 */
export function progressLine(
  s: OfflineState,
  fraction: number,
  elapsedMs: number,
): string {
  const pct = (100 * Math.min(1, Math.max(0, fraction))).toFixed(1);
  const eta = fraction > 0 && fraction < 1 ? seconds(elapsedMs * (1 - fraction) / fraction) : "-";
  const pass = s.passes > 1 ? ` (pass ${s.pass + 1}/${s.passes})` : "";
  return `offline: ${s.feed.packetsMatched} packets replayed, ${pct}% of the file${pass}, ` +
    `elapsed ${seconds(elapsedMs)}, ETA ${eta}`;
}

/** Requests neither answered nor counted lost when the replay ended. */
export function unfinishedRequests(e: EngineStats): number {
  const lost = Object.values(e.lost).reduce((a, b) => a + b, 0);
  return Math.max(0, e.requests.captured - e.requests.answered - lost);
}

/** The final summary, a few lines: the file, sessions and requests, losses by reason. */
export function summaryLines(s: OfflineState, e: EngineStats): string[] {
  const lost = Object.entries(e.lost).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  const truncated = s.truncatedRecords > 0
    ? `, ${s.truncatedRecords} truncated record(s) skipped`
    : "";
  return [
    `offline replay of ${s.file}: ${s.pass + 1}/${s.passes} pass(es), ` +
    `${s.feed.packetsRead} packets read, ${s.feed.packetsMatched} replayed, ` +
    `${s.gapsCollapsed} gap(s) collapsed${truncated}`,
    `sessions: ${s.feed.connections} client connection(s) in the file, ` +
    `${e.sessions.created} replayed, ${e.handshakes.established} established, ` +
    `${e.handshakes.failed} handshake failure(s)`,
    `requests: ${e.requests.captured} from the file (all passes and copies), ` +
    `${e.requests.sent} sent, ${e.requests.answered} answered; lost: ` +
    `${lost.length > 0 ? lost.join(", ") : "none"}; unfinished at the end: ` +
    `${unfinishedRequests(e)}`,
  ];
}

/**
 * Why a finished replay replicated nothing (the process then exits 1), or null when it
 * replicated something. `otherPorts` lists the TCP destination ports seen instead.
 */
export function nothingReplicated(
  s: OfflineState,
  e: EngineStats,
  transfers: string,
  otherPorts: string,
): string | null {
  if (s.feed.packetsMatched === 0) {
    const seen = otherPorts === "" ? "no TCP packets at all" : `TCP to port(s) ${otherPorts}`;
    return `nothing to replicate: no packet in ${s.file} matched -x ${transfers} ` +
      `(${s.feed.packetsRead} packets read: ${seen})`;
  }
  if (e.handshakes.established > 0 || e.requests.sent > 0) return null;
  if (e.sessions.created === 0) {
    return `nothing to replicate: the ${s.feed.packetsMatched} matching packets in ${s.file} ` +
      `carry no client data (only ACKs, FINs or resets of connections opened before the recording)`;
  }
  return `nothing could be replicated: ${e.sessions.created} session(s) opened, none reached ` +
    `the target (${e.handshakes.failed} handshake failure(s)); is the target up and intercept ` +
    `running next to it?`;
}
