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
 * How long after a busy drain a drain that found fewer replies (but some) still sleeps before
 * the next one (ms): a burst of short connections is not a steady stream but groups whose
 * SYN-ACKs, responses and FINs come back a few at a time, 0.1-0.2 ms apart, as the replay
 * sends them; polled, each few cost intercept a round (reads, verdicts, a tunnel write) and
 * tcpcopy a tunnel read. A closed-loop keep-alive load never drains {@link BUSY_DRAIN} and is
 * never held; an empty drain ends the spell at once.
 */
export const BUSY_SPELL_MS = 20;

/**
 * How to wait before the next drain, given how many packets the last one returned and the
 * time since the last busy drain: a sleep of `coalesceMs` when busy, or when the last drain
 * found some replies within {@link BUSY_SPELL_MS} of a busy one, and coalescing is on; else
 * -1 (poll: wake on the next packet).
 */
export function sleepBeforeDrain(
  lastDrained: number,
  coalesceMs: number,
  sinceBusyMs = Infinity,
): number {
  if (coalesceMs <= 0 || lastDrained === 0) return -1;
  return lastDrained >= BUSY_DRAIN || sinceBusyMs < BUSY_SPELL_MS ? coalesceMs : -1;
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
   * {@link BUSY_DRAIN} packets (or some within {@link BUSY_SPELL_MS} of such a drain), the
   * socket is left unwatched for `coalesceMs` and drained by a timer instead; the first drain
   * that finds none, or fewer outside the spell, goes back to watching. Outside a spell a lone
   * reply is never held. Resolves after stop(); rejects when the queue fails.
   */
  run(onReply: ReplyHandler, cycle: DrainCycle = NO_CYCLE): Promise<void> {
    const q = this.queue;
    const reactor = sharedReactor();
    const handle = (_id: number, payload: Uint8Array) =>
      onReply(payload) ? Verdict.ACCEPT : Verdict.DROP;
    return new Promise<void>((resolve, reject) => {
      if (this.#stopped) return resolve();
      let lastBusy = -Infinity; // reactor time of the last busy drain
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
        const now = reactor.now();
        if (n >= BUSY_DRAIN) lastBusy = now;
        if (sleepBeforeDrain(n, this.coalesceMs, now - lastBusy) > 0) {
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
