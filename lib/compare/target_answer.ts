/**
 * The target's answer to one request as tcpcopy receives it from intercept (the contract
 * between the tunnel's answer extension and tcpcopy's turn pairing, issue 15).
 *
 * intercept sees the target's replies but not the requests. It cuts the reply byte stream of
 * each connection into answers at the advances of the reply's ACK number (the ACK a reply
 * carries is the end of the request bytes the target had received when it answered), and
 * also when an answer is complete by its own framing, when the connection closes, or after
 * a quiet period. For each answer it sends one {@link TargetAnswer}: at most N bytes and a
 * digest, however long the answer was.
 *
 * tcpcopy pairs it with the turn of the session on `client`/`target` whose request ends at
 * `ack` (the replayed stream's sequence space). Latencies are measured by tcpcopy from the
 * reply headers it receives (times are not carried here).
 */
import type { AnswerSummary } from "./answer.ts";

/** One end of a connection: raw address bytes (4 or 16) and a host-order port. */
export interface AnswerEndpoint {
  addr: Uint8Array;
  port: number;
}

/** A target answer summary delivered through the tunnel. */
export interface TargetAnswer {
  /** The emulated client (the rewritten address and port tcpcopy registered as a route). */
  client: AnswerEndpoint;
  /** The target (address and port the reply came from). */
  target: AnswerEndpoint;
  /** The reply's ACK number while the answer was sent: the end of the request it answers. */
  ack: number;
  /** The target's sequence number of the answer's first byte. */
  seq: number;
  /**
   * 0 for an answer; 1, 2 … for bytes with the same `ack` that came after the answer was
   * already sent (a late tail after a quiet period): tcpcopy merges them into the lengths
   * and marks the digest unknown.
   */
  part: number;
  /** First bytes, lengths and digest (`firstMs`/`lastMs` absent). */
  summary: AnswerSummary;
}
