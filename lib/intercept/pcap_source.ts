/**
 * pcap mode (intercept on an assistant host): libpcap capture with the user's filter. The
 * target routes replies for the client range to this host, which black-holes them
 * (ip_forward=0); intercept only reads them, so no verdicts are given.
 */
import { type LiveOptions, PcapCapture } from "../io/pcap.ts";
import { ipOffsetOf } from "../wire/link.ts";
import { type DrainCycle, NO_CYCLE, type ReplyHandler, type ReplySource } from "./source.ts";
import type { KernelCounters, VerdictCounters } from "./stats.ts";

/**
 * Headers plus the largest payload prefix a peer may be granted, or whole packets (up to a
 * 64 KiB GRO packet) when answer summaries digest every reply byte (--compare).
 */
export function snaplenFor(maxPrefix: number, wholePackets = false): number {
  return 20 /* SLL2/Ethernet+VLAN */ + (wholePackets ? 65535 : 60 + 60 + maxPrefix);
}

/**
 * The capture of replies: headers only (the default) in libpcap's immediate mode, each reply
 * handed over as it arrives. A replayed session waits for the answer before its next request, so
 * the buffered mode's ring-block timeout (1 ms) was one more millisecond per request of a serial
 * replay (h2, one stream: 20,000 requests replayed in 23.6 s, 5.7 s immediate). With whole packets
 * (--compare) the buffered mode stays: libpcap's immediate ring has one fixed-size frame per
 * packet, 64 KiB when offloads may aggregate, so 16 MiB hold ~250 packets (ab bursts dropped 10,857
 * replies in one run, against 2,482 buffered).
 */
export function replyCaptureOptions(
  device: string,
  filter: string,
  maxPrefix: number,
  wholePackets: boolean,
): LiveOptions {
  return {
    device,
    filter,
    snaplen: snaplenFor(maxPrefix, wholePackets),
    bufferSize: 16 << 20,
    timeoutMs: 1,
    immediate: !wholePackets,
    drainBufferSize: 4 << 20,
  };
}

/** A libpcap reply source. */
export class PcapSource implements ReplySource {
  notIp = 0;
  readonly #cap: PcapCapture;
  #stopped = false;

  /** Opens the capture; throws IoError with a clear message (device, filter, privilege). */
  constructor(device: string, filter: string, maxPrefix: number, wholePackets = false) {
    this.#cap = PcapCapture.openLive(replyCaptureOptions(device, filter, maxPrefix, wholePackets));
  }

  async run(onReply: ReplyHandler, cycle: DrainCycle = NO_CYCLE): Promise<void> {
    const cap = this.#cap;
    const link = cap.linkType;
    const handle = (frame: Uint8Array) => {
      const off = ipOffsetOf(link, frame);
      if (typeof off === "number") onReply(frame.subarray(off));
      else this.notIp++;
    };
    while (!this.#stopped && await cap.wait(200)) {
      cycle.begin();
      try {
        cap.drain(handle);
      } finally {
        cycle.end();
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#cap.stop();
  }

  close(): void {
    this.#cap.close();
  }

  kernel(): KernelCounters {
    const s = this.#cap.stats();
    return { pcap_drops: s.dropped + s.ifDropped, nfq_queue_dropped: 0, nfq_user_dropped: 0 };
  }

  verdicts(): VerdictCounters {
    return { accept: 0, drop: 0 };
  }
}
