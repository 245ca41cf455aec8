/**
 * Which recorded packets an offline replay sends, as what, and when (pure, no I/O).
 *
 * A record is replayed when it is a TCP packet to an online endpoint of a transfer (-x): the
 * client side of a recorded connection. Everything else is ignored: other flows, and the
 * server's own packets, which tell the engine nothing it uses (it learns the target's answers
 * from intercept). Pass `k` of a repeated replay moves every client port and initial sequence
 * number ({@link passPort}, {@link passSeq}) so its connections are new to the target. The
 * {@link ReplaySchedule} gives each replayed packet its wall-clock deadline; only replayed
 * packets drive the clock, so foreign traffic in the file never delays or stretches gaps.
 *
 * @module
 */
import type { Transfer } from "../engine/config.ts";
import { type ParsedTcp, parseTcpPacket } from "../wire/packet.ts";
import { passPort, passSeq, ReplaySchedule, type ReplayTiming } from "./schedule.ts";

/** Counters of an offline feed (all passes). */
export interface FeedCounters {
  /** Records read from the file. */
  packetsRead: number;
  /** Records replayed (client packets of a -x transfer). */
  packetsMatched: number;
  /** Records that are not TCP over IPv4/IPv6 (ARP, UDP, malformed). */
  notTcp: number;
  /** Client connections to a transfer seen in the first pass (distinct 4-tuples). */
  connections: number;
  /** Server→client records handed on for `--compare` (the recorded online answers). */
  answers?: number;
}

/** Most distinct other destination ports remembered for the "matched nothing" hint. */
const MAX_PORTS = 256;
/** Most distinct connections remembered for {@link FeedCounters.connections}. */
const MAX_FLOWS = 1_000_000;

/** Decides, rewrites and schedules the records of an offline replay. */
export class OfflineFeed {
  readonly counters: FeedCounters = {
    packetsRead: 0,
    packetsMatched: 0,
    notTcp: 0,
    connections: 0,
  };
  /** The current pass, from 0. */
  pass = 0;
  readonly schedule: ReplaySchedule;
  readonly #transfers: readonly Transfer[];
  readonly #otherPorts = new Map<number, number>();
  readonly #flows = new Set<string>();

  /**
   * `answers` (`--compare`): the server's packets of the transferred ports are handed on too
   * (the recorded online answers), rewritten for the pass like their clients'.
   */
  constructor(
    transfers: readonly Transfer[],
    timing: ReplayTiming,
    startWallMs: number,
    readonly answers = false,
  ) {
    this.#transfers = transfers;
    this.schedule = new ReplaySchedule(timing, startWallMs);
  }

  /**
   * Parses one record into `out`. Returns the wall-clock ms at which to send it, with `out`
   * rewritten for the current pass, or null when the record is not replayed.
   */
  accept(frame: Uint8Array, linkType: number, tsMicros: number, out: ParsedTcp): number | null {
    this.counters.packetsRead++;
    if (parseTcpPacket(frame, linkType, out) !== null) {
      this.counters.notTcp++;
      return null;
    }
    if (!this.#matches(out.dstText(), out.dstPort)) {
      if (this.answers && this.#matches(out.srcText(), out.srcPort)) {
        return this.#answer(out, tsMicros);
      }
      if (this.#otherPorts.size < MAX_PORTS || this.#otherPorts.has(out.dstPort)) {
        this.#otherPorts.set(out.dstPort, (this.#otherPorts.get(out.dstPort) ?? 0) + 1);
      }
      return null;
    }
    this.counters.packetsMatched++;
    if (this.pass === 0 && this.#flows.size < MAX_FLOWS) {
      const key = `${out.srcText()}|${out.srcPort}|${out.dstText()}|${out.dstPort}`;
      if (!this.#flows.has(key)) {
        this.#flows.add(key);
        this.counters.connections++;
      }
    }
    if (this.pass > 0) {
      out.srcPort = passPort(out.srcPort, this.pass);
      out.seq = passSeq(out.seq, this.pass);
    }
    return this.schedule.due(tsMicros);
  }

  /** A recorded server→client packet, rewritten for the pass (client port, client sequence). */
  #answer(out: ParsedTcp, tsMicros: number): number {
    this.counters.answers = (this.counters.answers ?? 0) + 1;
    if (this.pass > 0) {
      out.dstPort = passPort(out.dstPort, this.pass);
      out.ack = passSeq(out.ack, this.pass);
    }
    return this.schedule.due(tsMicros);
  }

  /** Starts the next pass: its first packet follows the last one of this pass. */
  nextPass(): void {
    this.pass++;
    this.schedule.nextPass(0);
  }

  /**
   * The destination ports of the TCP packets that were not replayed, most frequent first
   * (`"8080 (120), 22 (4)"`), for the message when the filter matched nothing.
   */
  otherPorts(max = 5): string {
    return [...this.#otherPorts].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, max)
      .map(([port, n]) => `${port} (${n})`).join(", ");
  }

  #matches(addr: string, port: number): boolean {
    for (const t of this.#transfers) {
      if (t.online.port !== port) continue;
      const a = t.online.addr;
      if (a === "" || a === "0.0.0.0" || a === "::" || a === addr) return true;
    }
    return false;
  }
}
