/**
 * NFQUEUE mode (intercept on the target): the OUTPUT rules (rules.ts) queue every reply from
 * the target ports; each one is read, routed, and DROPPED, or ACCEPTED when its destination
 * is on the pass-list. The copy range covers the largest IP and TCP headers plus the biggest
 * payload prefix a peer may be granted.
 */
import { NfQueue, Verdict } from "../io/nfqueue.ts";
import { type DrainCycle, NO_CYCLE, type ReplyHandler, type ReplySource } from "./source.ts";
import type { KernelCounters, VerdictCounters } from "./stats.ts";

/** An NFQUEUE reply source. */
class NfqueueSource implements ReplySource {
  notIp = 0;
  #stopped = false;

  constructor(readonly queue: NfQueue, readonly coalesceMs: number) {}

  async run(onReply: ReplyHandler, cycle: DrainCycle = NO_CYCLE): Promise<void> {
    const q = this.queue;
    const handle = (_id: number, payload: Uint8Array) =>
      onReply(payload) ? Verdict.ACCEPT : Verdict.DROP;
    while (!this.#stopped && await q.wait(200)) {
      // verdicts are DROP for everything routed: holding the first packet a moment costs
      // nothing and lets one wake-up (tens of µs in Deno) serve many packets
      if (this.coalesceMs > 0) await new Promise((r) => setTimeout(r, this.coalesceMs));
      cycle.begin();
      try {
        q.drain(handle);
      } finally {
        cycle.end();
      }
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
