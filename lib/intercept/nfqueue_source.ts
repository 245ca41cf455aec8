/**
 * NFQUEUE mode (intercept on the target): the OUTPUT rules (rules.ts) queue every reply from
 * the target ports; each one is read, routed, and DROPPED, or ACCEPTED when its destination
 * is on the pass-list. The copy range covers the largest IP and TCP headers plus the biggest
 * payload prefix a peer may be granted.
 */
import { NfQueue, Verdict } from "../io/nfqueue.ts";
import { sharedReactor } from "../io/reactor.ts";
import { type DrainCycle, NO_CYCLE, type ReplyHandler, type ReplySource } from "./source.ts";
import type { KernelCounters, VerdictCounters } from "./stats.ts";

/**
 * Packets in one drain that mean "busy": the next drain follows a sleep, not a poll. Above
 * the replies a few closed-loop flows have in flight (10 busy keep-alive connections, whose
 * replay speed is bound by this latency, never reach it) and below what an open-loop load of
 * short connections piles up per wake-up.
 */
export const BUSY_DRAIN = 12;

/**
 * How to wait before the next drain, given how many packets the last one returned: a sleep
 * of `coalesceMs` when busy and coalescing is on, else -1 (poll: wake on the next packet).
 */
export function sleepBeforeDrain(lastDrained: number, coalesceMs: number): number {
  return coalesceMs > 0 && lastDrained >= BUSY_DRAIN ? coalesceMs : -1;
}

/** An NFQUEUE reply source. */
class NfqueueSource implements ReplySource {
  notIp = 0;
  #stopped = false;

  constructor(readonly queue: NfQueue, readonly coalesceMs: number) {}

  /**
   * Waits for packets and drains them, one cycle per drain. An awaited poll() costs a
   * hand-off to a helper thread and back (the dearest part of a wake-up in Deno), so under
   * load, when a drain returned at least {@link BUSY_DRAIN} packets, the next drain comes
   * after a `coalesceMs` sleep instead, without polling; the first drain that finds fewer
   * goes back to polling. A lone reply is never held.
   */
  async run(onReply: ReplyHandler, cycle: DrainCycle = NO_CYCLE): Promise<void> {
    const q = this.queue;
    const handle = (_id: number, payload: Uint8Array) =>
      onReply(payload) ? Verdict.ACCEPT : Verdict.DROP;
    let sleepMs = -1;
    while (!this.#stopped) {
      if (sleepMs > 0) await sharedReactor().sleep(sleepMs);
      else if (!await q.wait(200)) break;
      let n = 0;
      cycle.begin();
      try {
        n = q.drain(handle);
      } finally {
        cycle.end();
      }
      sleepMs = sleepBeforeDrain(n, this.coalesceMs);
    }
  }

  stop(): void {
    this.#stopped = true;
    this.queue.stop();
  }

  close(): void {
    this.queue.close();
  }

  kernel(): KernelCounters {
    const s = this.queue.stats();
    return {
      pcap_drops: 0,
      nfq_queue_dropped: s.queueDropped ?? 0,
      nfq_user_dropped: s.userDropped ?? 0,
    };
  }

  verdicts(): VerdictCounters {
    const s = this.queue.stats();
    return { accept: s.accepted, drop: s.dropped };
  }
}

/** Binds the queue; throws IoError with a clear message (privilege, queue busy, library). */
export function openNfqueueSource(
  mode: { queueNum: number; queueMaxLen: number; coalesceMs: number },
  maxPrefix: number,
): ReplySource {
  const q = NfQueue.open({
    queue: mode.queueNum,
    maxLen: mode.queueMaxLen,
    copyRange: 60 + 60 + maxPrefix,
  });
  return new NfqueueSource(q, mode.coalesceMs);
}
