/**
 * The keep-alive rig for the scale benchmark (bench/engine_scale.ts): the replicator + engine of
 * {@link floodRig} (fake clock, a sender that keeps nothing) fed with many real-looking client
 * connections and answered by a mini target, with no network.
 *
 * Client connection `i` comes from 100.64.0.0 + ⌊i / 16384⌋, port 20000 + i mod 16384 (so a
 * million connections use 62 addresses), to 10.0.0.1:80 (the online server), ISN `CLIENT_ISN`;
 * the online server's ISN is `ONLINE_ISN` and it answers every request with
 * {@link RESPONSE_BYTES} bytes. Captured per connection: SYN, the handshake's ACK, then request
 * `k` (0, 1, ...) at client sequence `CLIENT_ISN + 1 + k × len` with online ACK
 * `ONLINE_ISN + 1 + k × RESPONSE_BYTES` (so each request is a turn of its own, released once
 * the target answered the previous one). The ISNs are above 2^31, like half of real ones.
 *
 * The mini target answers what the engine sends, through the replicator's reply path
 * (`onReplyBytes`, as the tunnel delivers them): a SYN with a SYN-ACK (ISN `TARGET_ISN`), a
 * segment with payload with {@link RESPONSE_BYTES} bytes of answer at
 * `TARGET_ISN + 1 + k × RESPONSE_BYTES`, where `k`
 * follows from the segment's sequence number (the engine keeps the client's). It keeps no state
 * per connection: replies wait in a small pool of reused buffers until {@link KeepAliveRig.drain}.
 *
 * @module
 */
import type { OutSegment } from "../../lib/engine/segment.ts";
import { ACK, PSH, SYN } from "../../lib/wire/tcp.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../../lib/wire/build.ts";
import { FLOOD_TARGET, type FloodRig, floodRig } from "./syn_flood.ts";

/** Bytes the online server (and the mini target) answer per request. */
export const RESPONSE_BYTES = 100;
/**
 * Client, online-server and target initial sequence numbers: above 2^31, as half of real ISNs
 * are (V8 keeps such a number in a field as a heap number of its own, a small one inline), so
 * the bench's bytes per session are those of real connections. A million requests of one
 * connection stay below 2^32.
 */
const CLIENT_ISN = 0xb5a27000, ONLINE_ISN = 0x9c3e1000, TARGET_ISN = 0xe14d5000;
/** Connections per client address. */
const PER_ADDRESS = 16384;
/** Replies that may wait for {@link KeepAliveRig.drain} (more is a bug in the caller's loop). */
const REPLY_POOL = 4096;

/**
 * An IPv4 packet from `src`:`sport` to `dst`:`dport`, built once and patched in place (this rig
 * and short_rig.ts).
 */
export function template(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  flags: number,
  payload: Uint8Array,
  mss?: number,
): Uint8Array {
  const repr = {
    ...addressPair(src, dst),
    srcPort: sport,
    dstPort: dport,
    seq: 0,
    ack: 0,
    flags,
    window: 64240,
    options: { sackPermitted: false, sackBlocks: [], unknown: [], mss },
    payload,
  };
  const b = new Uint8Array(tcpPacketLength(repr));
  if (buildTcpPacket(repr, b) !== b.length) throw new Error("keepalive_rig: packet not built");
  return b;
}

/** Writes `v` big-endian at `b[at..at + 4)` (a packet's sequence or ACK number). */
export function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 255;
  b[at + 2] = (v >>> 8) & 255;
  b[at + 3] = v & 255;
}

/** Writes connection `i`'s source address and port into an IPv4 packet (20-byte IP header). */
function putClient(b: Uint8Array, i: number): void {
  const a = Math.floor(i / PER_ADDRESS), port = 20000 + (i % PER_ADDRESS);
  b[12] = 100;
  b[13] = 64 + (a >>> 16);
  b[14] = (a >>> 8) & 255;
  b[15] = a & 255;
  b[20] = port >>> 8;
  b[21] = port & 255;
}

/** Counters of the mini target. */
export interface TargetCounters {
  synAcks: number;
  answers: number;
  /** Engine packets the target did not answer (pure ACKs, RSTs, FINs). */
  ignored: number;
}

/** The flood rig, keep-alive clients and the mini target. */
export interface KeepAliveRig {
  rig: FloodRig;
  target: TargetCounters;
  /** Captures connection `i`'s SYN and handshake ACK (answers drained). */
  open(i: number): void;
  /** Captures request `k` (0 = the first) on connection `i` (answers drained). */
  request(i: number, k: number): void;
  /** Hands the queued target replies to the replicator. */
  drain(): void;
  /** Advances the fake clock by `ms`, runs due timers, drains and flushes. */
  tick(ms: number): void;
}

/**
 * Builds the rig from tcpcopy `flags` (passed to {@link floodRig}); `request` is the payload of
 * every request.
 */
export function keepAliveRig(flags: string[], request: Uint8Array): KeepAliveRig {
  const len = request.length;
  const syn = template("100.64.0.1", "10.0.0.1", 20000, 80, SYN, new Uint8Array(0), 1460);
  const ack = template("100.64.0.1", "10.0.0.1", 20000, 80, ACK, new Uint8Array(0));
  const req = template("100.64.0.1", "10.0.0.1", 20000, 80, ACK | PSH, request);
  putU32(syn, 24, CLIENT_ISN);
  putU32(ack, 24, CLIENT_ISN + 1);
  putU32(ack, 28, ONLINE_ISN + 1);
  const tgt = FLOOD_TARGET;
  const synAck = template(
    tgt.addr,
    "100.64.0.1",
    tgt.port,
    20000,
    SYN | ACK,
    new Uint8Array(0),
    1460,
  );
  putU32(synAck, 24, TARGET_ISN);
  const answer = template(
    tgt.addr,
    "100.64.0.1",
    tgt.port,
    20000,
    ACK | PSH,
    new Uint8Array(RESPONSE_BYTES),
  );
  const pool: Uint8Array[] = [];
  for (let n = 0; n < REPLY_POOL; n++) pool.push(new Uint8Array(answer.length));
  const poolLen = new Int32Array(REPLY_POOL);
  let pending = 0;
  const target: TargetCounters = { synAcks: 0, answers: 0, ignored: 0 };

  /** Queues `tpl` patched for the emulated client of `seg` (its address from `pkt`). */
  const reply = (tpl: Uint8Array, pkt: Uint8Array, seg: OutSegment, seq: number, ackNo: number) => {
    if (pending === REPLY_POOL) {
      throw new Error("keepalive_rig: reply pool full (drain more often)");
    }
    const b = pool[pending];
    b.set(tpl);
    poolLen[pending++] = tpl.length;
    b[16] = pkt[12], b[17] = pkt[13], b[18] = pkt[14], b[19] = pkt[15];
    b[22] = seg.src.port >>> 8;
    b[23] = seg.src.port & 255;
    putU32(b, 24, seq);
    putU32(b, 28, ackNo);
  };
  const rig: FloodRig = floodRig(flags, (seg) => {
    const pkt = rig.lastPacket();
    const n = seg.payload.length;
    if (seg.flags & SYN) {
      target.synAcks++;
      reply(synAck, pkt, seg, TARGET_ISN, (seg.seq + 1) >>> 0);
    } else if (n > 0) {
      const k = Math.floor(((seg.seq - CLIENT_ISN - 1) >>> 0) / len);
      target.answers++;
      reply(answer, pkt, seg, TARGET_ISN + 1 + k * RESPONSE_BYTES, (seg.seq + n) >>> 0);
    } else {
      target.ignored++;
    }
  });
  const drain = () => {
    for (let n = 0; n < pending; n++) {
      rig.replicator.onReplyBytes(pool[n].subarray(0, poolLen[n]), rig.now());
    }
    pending = 0;
  };
  return {
    rig,
    target,
    open(i) {
      putClient(syn, i);
      rig.feed(syn);
      drain();
      putClient(ack, i);
      rig.feed(ack);
      drain();
    },
    request(i, k) {
      putClient(req, i);
      putU32(req, 24, CLIENT_ISN + 1 + k * len);
      putU32(req, 28, ONLINE_ISN + 1 + k * RESPONSE_BYTES);
      rig.feed(req);
      drain();
    },
    drain,
    tick(ms) {
      const now = rig.advance(ms);
      rig.engine.tick(now);
      drain();
      rig.replicator.flush();
    },
  };
}
