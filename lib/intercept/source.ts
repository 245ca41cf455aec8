/**
 * Where intercept's replies come from. A source calls `onReply` with bytes starting at the
 * IP header and, in NFQUEUE mode, turns its return value into the packet's verdict:
 * true = accept (pass-list), false = drop. Sources run until `stop()`.
 */
import type { KernelCounters, VerdictCounters } from "./stats.ts";

/** Handler of one captured reply; returns true to let the packet through (NFQUEUE only). */
export type ReplyHandler = (ip: Uint8Array) => boolean;

/**
 * Brackets each drain of the capture queue (one wake-up): replies handled between `begin()`
 * and `end()` may be held and written together at `end()`.
 */
export interface DrainCycle {
  begin(): void;
  end(): void;
}

/** A DrainCycle that does nothing. */
export const NO_CYCLE: DrainCycle = { begin() {}, end() {} };

/** A capture back-end. */
export interface ReplySource {
  /** Reads replies until stop(); rejects on a capture failure. */
  run(onReply: ReplyHandler, cycle?: DrainCycle): Promise<void>;
  /** Makes run() return soon; safe from a signal handler. */
  stop(): void;
  /** Releases native resources (after run() returned). */
  close(): void;
  /** Kernel-side drop counters. */
  kernel(): KernelCounters;
  /** Verdicts given so far. */
  verdicts(): VerdictCounters;
  /** Frames that did not carry IP. */
  notIp: number;
}
