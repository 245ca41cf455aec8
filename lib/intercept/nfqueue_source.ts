/**
 * NFQUEUE mode (intercept on the target): the OUTPUT rules (rules.ts) queue every reply from
 * the target ports; each one is read, routed, and DROPPED, or ACCEPTED when its destination
 * is on the pass-list. The copy range covers the largest IP and TCP headers plus the biggest
 * payload prefix a peer may be granted, or whole packets with `--compare` (answer summaries
 * digest every reply byte).
 */
import { NfQueue, Verdict } from "../io/nfqueue.ts";
import { PollEvents, sharedReactor } from "../io/reactor.ts";
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
  #finish: (() => void) | null = null;

  constructor(readonly queue: NfQueue, readonly coalesceMs: number) {}

  /**
   * Drains the queue from the reactor, one cycle per drain, straight from the round that saw
   * the socket readable (no promise per wake-up). Under load, when a drain returned at least
   * {@link BUSY_DRAIN} packets, the socket is left unwatched for `coalesceMs` and drained by a
   * timer instead; the first drain that finds fewer goes back to watching. A lone reply is
   * never held. Resolves after stop(); rejects when the queue fails.
   */
  run(onReply: ReplyHandler, cycle: DrainCycle = NO_CYCLE): Promise<void> {
    const q = this.queue;
    const reactor = sharedReactor();
    const handle = (_id: number, payload: Uint8Array) =>
      onReply(payload) ? Verdict.ACCEPT : Verdict.DROP;
    return new Promise<void>((resolve, reject) => {
      if (this.#stopped) return resolve();
      const drain = () => {
        let n = 0;
        cycle.begin();
        try {
          n = q.drain(handle);
          // a short drain is read once more before the cycle's tunnel write, after letting
          // the segments our verdicts released go out: the target's next reply segment (an
          // HTTP/2 response's DATA frame, held by the kernel behind its HEADERS until their
          // verdict) then shares this wake-up, here and on tcpcopy's side
          if (n > 0 && n < BUSY_DRAIN) {
            q.releaseHeldSends();
            n += q.drain(handle);
          }
        } catch (e) {
          finish();
          reject(e);
          return;
        } finally {
          cycle.end();
        }
        if (sleepBeforeDrain(n, this.coalesceMs) > 0) {
          watch.setEvents(0);
          timer.armIn(this.coalesceMs);
        } else watch.setEvents(PollEvents.IN);
      };
      // after the tunnel connections of the same round: their CLIENT_ADDs route these replies
      const watch = reactor.watch(q.fd, PollEvents.IN, drain, "last");
      const timer = reactor.timer(drain);
      const finish = () => {
        watch.remove();
        timer.cancel();
        this.#finish = null;
      };
      this.#finish = () => {
        finish();
        resolve();
      };
    });
  }

  stop(): void {
    this.#stopped = true;
    this.queue.stop();
    this.#finish?.();
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

/** The NFQUEUE copy range: headers and the largest prefix, or whole packets (--compare). */
export function copyRangeFor(maxPrefix: number, wholePackets: boolean): number {
  return wholePackets ? 65535 : 60 + 60 + maxPrefix;
}

/** Binds the queue; throws IoError with a clear message (privilege, queue busy, library). */
export function openNfqueueSource(
  mode: { queueNum: number; queueMaxLen: number; coalesceMs: number },
  maxPrefix: number,
  wholePackets = false,
): ReplySource {
  const q = NfQueue.open({
    queue: mode.queueNum,
    maxLen: mode.queueMaxLen || undefined, // 0: sized for the copy range (lib/io/nfq_sizing.ts)
    copyRange: copyRangeFor(maxPrefix, wholePackets),
  });
  return new NfqueueSource(q, mode.coalesceMs);
}
