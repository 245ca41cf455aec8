/**
 * Offline replay timing: when each recorded packet is due, given the recording's timestamps.
 *
 * - Real time by default: the gaps between packets are kept as recorded.
 * - `accelerate` N: every gap is divided by N (fractions allowed: 0.5 = half speed).
 * - `skipGapMs` M: an idle gap longer than M ms is collapsed to nothing; each gap is counted
 *   once in {@link ReplaySchedule.gapsCollapsed}.
 * - Timestamps that go backwards (merged captures) count as a zero gap.
 *
 * Pure: the caller passes the wall-clock start and compares {@link ReplaySchedule.due} with its
 * own clock.
 *
 * @module
 */

/** Timing options of an offline replay. */
export interface ReplayTiming {
  accelerate: number;
  skipGapMs: number;
}

/** Maps record timestamps to wall-clock deadlines, pass by pass. */
export class ReplaySchedule {
  #lastTsMicros: number | undefined;
  /** Elapsed replay time so far, in recorded microseconds (after gap collapsing). */
  #virtualMicros = 0;
  /** Idle gaps collapsed by `skipGapMs`. */
  gapsCollapsed = 0;
  /** Recorded microseconds removed by collapsing. */
  skippedMicros = 0;

  constructor(readonly timing: ReplayTiming, readonly startWallMs: number) {
    if (!(timing.accelerate > 0)) throw new RangeError("accelerate must be > 0");
  }

  /** Wall-clock ms at which the record with timestamp `tsMicros` is due. Call in file order. */
  due(tsMicros: number): number {
    if (this.#lastTsMicros !== undefined) {
      let gap = tsMicros - this.#lastTsMicros;
      if (!(gap > 0)) gap = 0;
      if (this.timing.skipGapMs > 0 && gap > this.timing.skipGapMs * 1000) {
        this.gapsCollapsed++;
        this.skippedMicros += gap;
        gap = 0;
      }
      this.#virtualMicros += gap;
    }
    this.#lastTsMicros = tsMicros;
    return this.startWallMs + this.#virtualMicros / 1000 / this.timing.accelerate;
  }

  /**
   * Starts the next pass of a repeated replay: its first record is due `pauseMs` after the
   * last record of the previous pass.
   */
  nextPass(pauseMs = 0): void {
    this.#lastTsMicros = undefined;
    this.#virtualMicros += pauseMs * 1000 * this.timing.accelerate;
  }

  /** Wall-clock span of what was scheduled so far. */
  get elapsedWallMs(): number {
    return this.#virtualMicros / 1000 / this.timing.accelerate;
  }
}

const PORT_STRIDE = 7919; // prime, co-prime with the 64512 ephemeral-range size
const SEQ_STRIDE = 0x9e3779b1; // odd: pass k moves every ISN by k * stride (mod 2^32)

/**
 * Source port of a client in replay pass `pass` (0 = as recorded). A bijection on
 * 1024..65535 for every pass, so distinct connections of one pass stay distinct, and a
 * connection gets a different port in every pass (for up to 64512 passes).
 */
export function passPort(port: number, pass: number): number {
  if (pass === 0 || port < 1024) return port;
  return 1024 + (port - 1024 + pass * PORT_STRIDE) % 64512;
}

/** Client sequence number in replay pass `pass` (fresh ISNs per pass). */
export function passSeq(seq: number, pass: number): number {
  return pass === 0 ? seq : (seq + Math.imul(pass, SEQ_STRIDE)) >>> 0;
}
