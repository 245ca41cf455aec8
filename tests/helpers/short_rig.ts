/**
 * Short connections through the replicator and engine with no network (bench/burst_heap.ts,
 * tests/unit/engine_lifetime.test.ts): the rig of {@link floodRig} (fake clock, a sender that
 * keeps nothing) fed with HTTP/1.0-like connections, answered by a mini target.
 *
 * Connection `i` comes from 100.64.0.(1 + ⌊i / 28,000⌋), port 32768 + i mod 28,000 (an ab
 * client's port range), to 10.0.0.1:80, in three steps ({@link ShortRig.step}): 0 = SYN and the
 * handshake's ACK, 1 = the request, 2 = the client's FIN (after the server's answer of
 * {@link ANSWER_BYTES} bytes and its FIN). The mini target answers what the engine sends
 * through the replicator's reply path at once: a SYN with a SYN-ACK, the request with the
 * answer and its FIN, the client's FIN with its ACK; so a connection ends `closed` after step 2.
 *
 * @module
 */
import type { OutSegment } from "../../lib/engine/segment.ts";
import { ACK, FIN, PSH, SYN } from "../../lib/wire/tcp.ts";
import { FLOOD_TARGET, type FloodRig, floodRig } from "./syn_flood.ts";
import { putU32, template } from "./keepalive_rig.ts";

const CLIENT_ISN = 0xb5a27000, ONLINE_ISN = 0x9c3e1000, TARGET_ISN = 0xe14d5000;
/** Bytes of the online server's and the mini target's answer. */
export const ANSWER_BYTES = 100;
const ANSWER = ANSWER_BYTES;
const REQUEST = new TextEncoder().encode("GET / HTTP/1.0\r\nHost: x\r\n\r\n");

/** Connection `i`: client 100.64.0.(1 + i / 28000), port 32768 + i mod 28000 (ab's range). */
function putClient(b: Uint8Array, i: number): void {
  const a = 1 + Math.floor(i / 28000), port = 32768 + (i % 28000);
  b[12] = 100, b[13] = 64, b[14] = 0, b[15] = a;
  b[20] = port >>> 8, b[21] = port & 255;
}

/** The short-connection rig. */
export interface ShortRig {
  rig: FloodRig;
  /** Step `k` (0: SYN + ACK, 1: request, 2: FIN) of connection `i`. */
  step(i: number, k: number): void;
  /**
   * Advances the fake clock by `ms`, runs due timers, drains and flushes, then asks the engine
   * for its next deadline (as tcpcopy's timer does after every wake-up).
   */
  tick(ms: number): void;
}

/** Builds the rig from tcpcopy `flags` (passed to {@link floodRig}). */
export function shortRig(flags: string[]): ShortRig {
  const none = new Uint8Array(0), client = "100.64.0.1";
  const syn = template(client, "10.0.0.1", 1, 80, SYN, none, 1460);
  const ack = template(client, "10.0.0.1", 1, 80, ACK, none);
  const req = template(client, "10.0.0.1", 1, 80, ACK | PSH, REQUEST);
  const fin = template(client, "10.0.0.1", 1, 80, ACK | FIN, none);
  putU32(syn, 24, CLIENT_ISN);
  putU32(ack, 24, CLIENT_ISN + 1), putU32(ack, 28, ONLINE_ISN + 1);
  putU32(req, 24, CLIENT_ISN + 1), putU32(req, 28, ONLINE_ISN + 1);
  putU32(fin, 24, CLIENT_ISN + 1 + REQUEST.length), putU32(fin, 28, ONLINE_ISN + 2 + ANSWER);
  const t = FLOOD_TARGET;
  const synAck = template(t.addr, client, t.port, 1, SYN | ACK, none, 1460);
  const answer = template(t.addr, client, t.port, 1, ACK | PSH | FIN, new Uint8Array(ANSWER));
  const finAck = template(t.addr, client, t.port, 1, ACK, none);
  const queue: Uint8Array[] = [];
  const reply = (tpl: Uint8Array, pkt: Uint8Array, seg: OutSegment, seq: number, ackNo: number) => {
    const b = tpl.slice();
    b[16] = pkt[12], b[17] = pkt[13], b[18] = pkt[14], b[19] = pkt[15];
    b[22] = seg.src.port >>> 8, b[23] = seg.src.port & 255;
    putU32(b, 24, seq), putU32(b, 28, ackNo);
    queue.push(b);
  };
  const rig: FloodRig = floodRig(flags, (seg) => {
    const pkt = rig.lastPacket();
    if (seg.flags & SYN) reply(synAck, pkt, seg, TARGET_ISN, (seg.seq + 1) >>> 0);
    else if (seg.payload.length > 0) {
      reply(answer, pkt, seg, TARGET_ISN + 1, (seg.seq + seg.payload.length) >>> 0);
    } else if (seg.flags & FIN) {
      reply(finAck, pkt, seg, TARGET_ISN + 2 + ANSWER, (seg.seq + 1) >>> 0);
    }
  });
  const drain = () => {
    while (queue.length > 0) rig.replicator.onReplyBytes(queue.shift()!, rig.now());
  };
  const feed = (b: Uint8Array, i: number) => {
    putClient(b, i);
    rig.feed(b);
    drain();
  };
  return {
    rig,
    step(i: number, k: number) {
      if (k === 0) feed(syn, i), feed(ack, i);
      else if (k === 1) feed(req, i);
      else feed(fin, i);
    },
    tick(ms: number) {
      const now = rig.advance(ms);
      rig.engine.tick(now);
      drain();
      rig.replicator.flush();
      rig.engine.nextDeadline();
    },
  };
}
