/**
 * tcpcopy's live captures (`-i`, `-F`): `openCapture`'s TPACKET_V3 ring read straight from JS,
 * or libpcap when the ring cannot be set up; received packets only (both with `--compare` or
 * a protocol module). Each capture runs one loop:
 * one awaited wait per wake-up, then a synchronous drain in steps. With `--compare` the capture
 * keeps both directions: the online server's answers are packets this host sends.
 */
import type { TcpcopyConfig } from "../cli/config.ts";
import { openCapture, type OpenedCapture } from "../io/capture.ts";
import type { Logger } from "../stats/logger.ts";
import { describe } from "../process/exit.ts";
import { sharedReactor, YIELD_EVERY_MS } from "../io/reactor.ts";

/** Packets drained per step before the clock is read again. */
export const DRAIN_STEP = 2048;
/**
 * Longest synchronous drain before the reactor gets a round (tunnel replies, timers, the sends
 * they release): a reader the CPU starves finds full steps waiting for seconds under a burst
 * (twice the packets with `--compare`), and without a yield the replay stood still meanwhile
 * (ka20k --compare at load 12: no stats line for 7 s, 11 of 100,000 requests sent until the
 * capture was read to its end).
 */
export const DRAIN_SLICE_MS = YIELD_EVERY_MS;
/**
 * A capture ring starts at this many MiB (or -B, when smaller) and doubles up to -B as it fills:
 * the kernel maps the whole ring into the process, so a ring is its size in RSS from the start.
 * 12 MiB (96 blocks of 128 KiB, lib/io/ring_layout.ts) hold 3.8 s of light traffic and ~1.6 s
 * at 50,000 small packets/s (ab bursts of short connections) for a reader the CPU starves: 8 MiB
 * dropped 9,482 packets on abshort at load 12; tcpcopy's idle RSS stays under 60 MB.
 */
export const FIRST_RING_MIB = 12;

/**
 * The start ring's MiB: {@link FIRST_RING_MIB}, twice it when the capture takes both directions
 * (twice the packets: the same time held), at most -B. ka20k `--compare` with tcpcopy at nice 15
 * beside two busy loops: a 12 MiB start dropped 27,235 and 49,367 packets (54 and 64 % of the
 * requests lost to capture gaps) before the starved reader grew it; 24 MiB: 0 and 0 (peaks 22 and
 * 29 MiB).
 */
export function firstRingMiB(config: TcpcopyConfig): number {
  return Math.min(config.bufferMiB, FIRST_RING_MIB * (bothDirections(config) ? 2 : 1));
}

/**
 * Opens a capture per `-i` device into `out` (so the caller closes what was opened when a later
 * one throws); throws on a device or filter problem.
 */
export function openCaptures(config: TcpcopyConfig, log: Logger, out: OpenedCapture[]): void {
  for (const device of config.interfaces) {
    const cap = openCapture({
      device,
      filter: config.filter,
      snaplen: config.snaplen,
      bufferSize: firstRingMiB(config) * 1024 * 1024,
      maxBufferSize: config.bufferMiB * 1024 * 1024,
      // --compare, and modules (production's verdict on logins): the online server's answers
      // are packets this host sends
      direction: bothDirections(config) ? "inout" : "in",
    });
    out.push(cap);
    if (cap.fallbackReason !== undefined) {
      log.warn(`capture on ${device}: no packet ring (${cap.fallbackReason}); using libpcap`);
    }
    log.info(
      `capture on ${device}: ${cap.engine}, ${
        cap.direction === "in" ? "received packets only" : "both directions"
      }`,
    );
  }
}

/**
 * The capture takes the online server's packets too: `--compare`, or a transfer with a
 * protocol module (its login verdicts) unless `--module-trust-logins`.
 */
export function bothDirections(config: TcpcopyConfig): boolean {
  return config.compare !== null ||
    (!config.trustLogins && config.transfers.some((t) => t.module !== null));
}

/** What a capture loop feeds and asks. */
export interface CaptureLoopHooks {
  /** One captured frame, with the clock read before its drain step. */
  onFrame(frame: Uint8Array, linkType: number, tsMicros: number, now: number): void;
  /** After each wake-up's drain (flushes, re-arms the timer). */
  afterDrain(): void;
  stopping(): boolean;
  now(): number;
  /** The loop failed: the process stops with this reason. */
  failed(why: string): void;
  /** Gives the other work a turn after a full drain slice (default: one reactor round). */
  pause?(): Promise<void>;
}

/** Resolves from the reactor's next round: its handlers and due timers run first. */
function reactorRound(): Promise<void> {
  return sharedReactor().sleep(0);
}

/** Runs one capture's loop until stopping (not awaited by the caller). */
export async function runCaptureLoop(cap: OpenedCapture, h: CaptureLoopHooks): Promise<void> {
  const linkType = cap.linkType;
  let now = h.now();
  const onPacket = (frame: Uint8Array, tsMicros: number) =>
    h.onFrame(frame, linkType, tsMicros, now);
  const pause = h.pause ?? reactorRound;
  try {
    while (!h.stopping()) {
      if (!(await cap.wait(1000)) || h.stopping()) break;
      const start = h.now();
      let n: number;
      do {
        now = h.now();
        n = cap.drain(onPacket, DRAIN_STEP);
      } while (n === DRAIN_STEP && !h.stopping() && h.now() - start < DRAIN_SLICE_MS);
      if (h.stopping()) break;
      h.afterDrain();
      // packets still waiting: the next wait returns at once, so the others get a round first
      if (n === DRAIN_STEP) await pause();
    }
  } catch (e) {
    h.failed(`capture on ${cap.device} failed: ${describe(e)}`);
  }
}
