/**
 * One connection's reply stream cut into answers (intercept side of issue 15), pure: no I/O,
 * no clock (times are arguments).
 *
 * intercept sees the target's replies, not the requests. The ACK number a reply carries is
 * the end of the request bytes the target had received when it sent it, so an advance of it
 * means a new request: the answer in progress ends there. An answer also ends when it is
 * complete by its own framing (`settle()`, at the end of a capture cycle, so pipelined
 * responses that leave together stay together), at FIN or RST, after a quiet period (the
 * caller's `cut(…, "quiet")`), or when the route goes (`"route"`). Bytes with the same ACK
 * after an answer was sent start another one with `part + 1`.
 *
 * Sequence numbers make it exact: the next expected byte is tracked, so retransmitted and
 * overlapping segments are not counted twice (only their new bytes are), and a hole becomes
 * `gap(n)` (the digest is then unknown). A payload cut short by the capture (snaplen, copy
 * range) counts its missing tail as a gap too.
 */
import type { AnswerAccumulator, AnswerSummary } from "../compare/answer.ts";
import type { AnswerEndpoint } from "../compare/target_answer.ts";
import type { AnswerEnd } from "../tunnel/answer_frame.ts";
import { ACK, FIN, RST, SYN } from "../wire/tcp.ts";

/** What a flow needs from its owner (the per-peer tracker): accumulators and the output. */
export interface FlowHost {
  /** An accumulator, reset; undefined when over the cap (the owner counts it). */
  acquire(): AnswerAccumulator | undefined;
  /** Gives an accumulator back. */
  release(acc: AnswerAccumulator): void;
  /**
   * One finished answer (its first bytes are a view valid only during the call; a known
   * digest's 8 bytes are in `digest`, the accumulator's `digestBytes`).
   */
  emit(flow: AnswerFlow, summary: AnswerSummary, end: AnswerEnd, digest: Uint8Array): void;
  /** The flow has an open answer now / no longer (`open` changed). */
  opened(flow: AnswerFlow, open: boolean): void;
  /** A summary object to fill for {@link emit} (reused: valid only during that call). */
  readonly summary: AnswerSummary;
}

/** One TCP segment of a reply, as the flow needs it. */
export interface ReplySegment {
  seq: number;
  ack: number;
  flags: number;
  /** The payload bytes captured: `bytes[from, to)`. */
  bytes: Uint8Array;
  from: number;
  to: number;
  /** The payload's length on the wire (more than `to - from` when the capture cut it). */
  payloadLen: number;
}

/** Signed distance a - b in 32-bit sequence space. */
function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** The answer state of one connection (client tuple ↔ target). */
export class AnswerFlow {
  /** The next sequence number expected from the target (valid when `synced`). */
  nextSeq = 0;
  synced = false;
  /** The highest ACK number seen (valid when `ackKnown`): the answer in progress answers it. */
  ack = 0;
  ackKnown = false;
  /** Part number of the next answer with this ack. */
  part = 0;
  /** The open answer's accumulator (null: none, or skipped over the cap). */
  acc: AnswerAccumulator | null = null;
  /** The open answer is being skipped (no accumulator was available); its bytes only count. */
  skipping = false;
  /** Sequence number of the open answer's first byte. */
  startSeq = 0;
  /** When the last reply bytes came (the quiet period counts from here). */
  lastMs = 0;
  /** When any reply of the flow came (idle expiry). */
  seenMs = 0;
  /** FIN or RST seen: later segments are retransmissions (a new SYN starts over). */
  closed = false;
  /** Bytes that were already seen (retransmissions), not counted again. */
  duplicateBytes = 0;
  /** Listed in the tracker's list of flows that got bytes in this cycle. */
  touched = false;
  /** Index in the tracker's list of flows with an open answer (-1: not listed). */
  openIndex = -1;
  /** Slot in the tracker's flow index (flow_index.ts; -1: not filed). */
  slot = -1;
  /** Slot of its route in the route table, where the tracker files it (-1: not so filed). */
  routeSlot = -1;
  /** Its route key (the tracker files it by key when its route goes without CLIENT_DEL). */
  key = "";

  /**
   * The client (the reply's destination) and the target (its source). The objects are the
   * flow's own and stay with it when it is reused ({@link reuse}): their addresses are
   * rewritten in place (an encoder reads them at once, nothing keeps them).
   */
  readonly client: AnswerEndpoint = { addr: new Uint8Array(4), port: 0 };
  readonly target: AnswerEndpoint = { addr: new Uint8Array(4), port: 0 };

  /**
   * A flow for the reply `pkt` (an IPv4 or IPv6 packet whose TCP header starts at `l4`): the
   * client is its destination, the target its source.
   */
  constructor(pkt: Uint8Array, v4: boolean, l4: number) {
    this.#endpoints(pkt, v4, l4);
  }

  /**
   * Makes a forgotten flow (no open answer: cut or discarded first) a new one for the reply
   * `pkt`, as the constructor would: the tracker pools flows, a short connection allocates
   * none.
   */
  reuse(pkt: Uint8Array, v4: boolean, l4: number): void {
    this.nextSeq =
      this.ack =
      this.part =
      this.startSeq =
      this.lastMs =
      this.seenMs =
        0;
    this.duplicateBytes = 0;
    this.synced =
      this.ackKnown =
      this.skipping =
      this.closed =
      this.touched =
        false;
    this.acc = null;
    this.openIndex = -1;
    this.routeSlot = -1;
    this.key = "";
    this.#endpoints(pkt, v4, l4);
  }

  #endpoints(pkt: Uint8Array, v4: boolean, l4: number): void {
    const n = v4 ? 4 : 16;
    setAddr(this.client, pkt, v4 ? 16 : 24, n);
    setAddr(this.target, pkt, v4 ? 12 : 8, n);
    this.client.port = (pkt[l4 + 2] << 8) | pkt[l4 + 3];
    this.target.port = (pkt[l4] << 8) | pkt[l4 + 1];
  }

  /** An answer is in progress (counted or skipped). */
  get open(): boolean {
    return this.acc !== null || this.skipping;
  }

  /** The open answer ends at a message boundary by its own framing. */
  get atMessageEnd(): boolean {
    return this.acc !== null && this.acc.atMessageEnd;
  }

  /** Takes one reply segment; returns true when it carried new answer bytes. */
  segment(host: FlowHost, s: ReplySegment, now: number): boolean {
    this.seenMs = now;
    if (s.flags & SYN) return this.#syn(host, s), false;
    if (this.closed) return false;
    if (s.flags & ACK && (!this.ackKnown || seqDiff(s.ack, this.ack) > 0)) {
      if (this.ackKnown) this.cut(host, "ack");
      this.ack = s.ack;
      this.ackKnown = true;
      this.part = 0;
    }
    const fresh = s.payloadLen > 0 && this.#payload(host, s, now);
    if (s.flags & (FIN | RST)) {
      this.cut(host, s.flags & RST ? "rst" : "fin");
      this.closed = true;
    }
    return fresh;
  }

  /** A SYN-ACK: a new connection on this tuple (a retransmitted one changes nothing). */
  #syn(host: FlowHost, s: ReplySegment): void {
    const next = (s.seq + 1) >>> 0;
    if (this.synced && !this.closed && next === this.nextSeq) return;
    this.cut(host, "rst");
    this.nextSeq = next;
    this.synced = true;
    this.closed = false;
    this.ack = s.ack;
    this.ackKnown = (s.flags & ACK) !== 0;
    this.part = 0;
  }

  /** Payload bytes: the new ones go to the open answer; holes become gaps. */
  #payload(host: FlowHost, s: ReplySegment, now: number): boolean {
    if (!this.synced) {
      this.nextSeq = s.seq;
      this.synced = true;
    }
    const d = seqDiff(s.seq, this.nextSeq);
    if (d + s.payloadLen <= 0) {
      this.duplicateBytes += s.payloadLen;
      return false;
    }
    const skip = d < 0 ? -d : 0;
    if (skip > 0) this.duplicateBytes += skip;
    if (!this.open) this.#start(host, this.nextSeq); // the first new byte, or the hole's
    const acc = this.acc;
    if (acc !== null) {
      if (d > 0) acc.gap(d, now);
      const captured = s.to - s.from;
      if (skip < captured) acc.push(s.bytes, now, s.from + skip, s.to);
      const lost = s.payloadLen - Math.max(captured, skip);
      if (lost > 0) acc.gap(lost, now);
    }
    this.nextSeq = (s.seq + s.payloadLen) >>> 0;
    this.lastMs = now;
    return true;
  }

  #start(host: FlowHost, seq: number): void {
    this.startSeq = seq;
    this.acc = host.acquire() ?? null;
    this.skipping = this.acc === null;
    host.opened(this, true);
  }

  /**
   * Ends the open answer (if any): emitted unless it was skipped; the next bytes with the same
   * ack are `part + 1`.
   */
  cut(host: FlowHost, end: AnswerEnd): void {
    if (!this.open) return;
    const acc = this.acc;
    this.acc = null;
    this.skipping = false;
    host.opened(this, false);
    if (acc !== null) {
      // encoded at once: no copy of the first bytes, the host's reused summary object, the
      // digest as bytes (no bigint)
      host.emit(this, acc.finishViewBytes(false, host.summary), end, acc.digestBytes);
      host.release(acc);
    }
    this.part++;
  }

  /** Drops the open answer without emitting it (the peer is gone). */
  discard(host: FlowHost): void {
    if (!this.open) return;
    const acc = this.acc;
    this.acc = null;
    this.skipping = false;
    host.opened(this, false);
    if (acc !== null) host.release(acc);
  }
}

/** `e.addr` = `pkt[at, at + n)`, copied into `e`'s own array (a new one only for a new size). */
function setAddr(e: AnswerEndpoint, pkt: Uint8Array, at: number, n: number): void {
  let a = e.addr;
  if (a.length !== n) e.addr = a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = pkt[at + i];
}
