/**
 * JIT warm-up at start-up (issue 14: the first 10,000 requests should cost at most 1.3× the warm
 * figure): drives tcpcopy's hot path — the same {@link Replicator} and {@link Engine} classes,
 * wired as in lib/tcpcopy/run.ts — over synthetic keep-alive connections, so V8 compiles and
 * optimizes the per-packet functions before the first real packet would arrive.
 *
 * NOT called by tcpcopy: measured (bench/e2e_warmup.ts, README.md "JIT warm-up") it added
 * 100–350 ms of start-up CPU and left the first 10,000 real requests' cost unchanged within the
 * noise. Calling `warmUp(config)` in `TcpcopyProcess.run` between `createEngine` and
 * `openCaptures` is how it was tried.
 *
 * Nothing leaves it: the engine and replicator are private to the warm-up (a fresh pair, dropped
 * afterwards), the sender only hands the built packets to an in-memory mini target, route
 * registrations go nowhere, the log is silent, and the clock is a fake one. It needs no
 * permission (tests/unit/tcpcopy_warmup.test.ts runs it with none).
 *
 * The traffic: `connections` clients (their frames as Ethernet, every fourth connection's as raw IP) from 198.18.0.0/15 (the benchmarking range, RFC 2544) to
 * the first IPv4 transfer without a module; each opens (SYN, handshake ACK), sends `requests`
 * requests of {@link REQUEST_BYTES} bytes answered with {@link ANSWER_BYTES} bytes (the answer
 * goes through the replicator's reply path, as the tunnel delivers it) and acknowledged, then
 * closes (FIN both ways); timers run between connections.
 *
 * @module
 */
import type { TcpcopyConfig } from "../cli/config.ts";
import { Engine } from "../engine/engine.ts";
import { NO_MODULE_OPTIONS } from "../engine/module_bridge.ts";
import { Logger } from "../stats/logger.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../wire/build.ts";
import { LinkType } from "../wire/link.ts";
import { ACK, FIN, PSH, SYN } from "../wire/tcp.ts";
import { engineConfigOf } from "./convert.ts";
import { Replicator, type SenderLike } from "./replicator.ts";

/** Bytes of each synthetic request and answer (a small HTTP/2 frame exchange). */
export const REQUEST_BYTES = 60, ANSWER_BYTES = 120;
/** Initial sequence numbers: client, online server, target. */
const CLIENT_ISN = 70_000, ONLINE_ISN = 10_000, TARGET_ISN = 50_000;
/** Packets the fake sender holds between two flushes. */
const POOL = 64;
/** An Ethernet II header's length. */
const ETH_HEADER = 14;

/** What a warm-up did. */
export interface WarmUpResult {
  /** False when no transfer suits (IPv6 or module transfers only): nothing was run. */
  ran: boolean;
  /** Frames fed to the replicator (captured side). */
  frames: number;
  /** Packets the engine built for the (fake) target. */
  sent: number;
  /** Requests the mini target answered. */
  answered: number;
  /** Wall time it took (ms). */
  ms: number;
}

/** Default size: enough invocations for V8's optimizing tiers on the per-packet functions. */
export const WARMUP_CONNECTIONS = 40, WARMUP_REQUESTS = 100;

/** An IPv4 TCP packet template (addresses and ports patched by the callers). */
function packet(flags: number, payload: number, mss?: number): Uint8Array {
  const repr = {
    ...addressPair("198.18.0.1", "192.0.2.1"),
    srcPort: 40000,
    dstPort: 80,
    seq: 0,
    ack: 0,
    flags,
    window: 64240,
    options: { sackPermitted: false, sackBlocks: [], unknown: [], mss },
    payload: new Uint8Array(payload).fill(0x41),
  };
  const b = new Uint8Array(tcpPacketLength(repr));
  buildTcpPacket(repr, b);
  return b;
}

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 255;
  b[at + 2] = (v >>> 8) & 255;
  b[at + 3] = v & 255;
}

function getU32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/** Sets the 4 address bytes at `at` and the port at `portAt`. */
function putEndpoint(b: Uint8Array, at: number, addr: Uint8Array, portAt: number, port: number) {
  b.set(addr, at);
  b[portAt] = port >>> 8;
  b[portAt + 1] = port & 255;
}

/**
 * Runs the warm-up for `config` (see the module doc); `connections` × `requests` keep-alive
 * requests. Pure: touches no socket, file, route or state outside its own objects.
 */
export function warmUp(
  config: TcpcopyConfig,
  connections = WARMUP_CONNECTIONS,
  requests = WARMUP_REQUESTS,
): WarmUpResult {
  const t0 = performance.now();
  const transfer = config.transfers.find((t) =>
    t.module === null && t.targetFamily === 4 && (t.onlineIp === null || !t.onlineIp.includes(":"))
  );
  const result: WarmUpResult = { ran: false, frames: 0, sent: 0, answered: 0, ms: 0 };
  if (transfer === undefined) return result;
  const online = addressPair(transfer.onlineIp ?? "192.0.2.1", transfer.targetIp);
  const onlineAddr = online.srcAddr, targetAddr = online.dstAddr;
  let now = 1_000_000_000_000;

  // the mini target: answers what the fake sender was given, after each flush
  const slots: Uint8Array[] = Array.from({ length: POOL }, () => new Uint8Array(2048));
  const replies: Uint8Array[] = [];
  const synAck = packet(SYN | ACK, 0, 1460), answer = packet(ACK | PSH, ANSWER_BYTES);
  const finAck = packet(FIN | ACK, 0);
  for (const t of [synAck, answer, finAck]) {
    putEndpoint(t, 12, targetAddr, 20, transfer.targetPort);
  }
  let pending = 0;
  const sender: SenderLike = {
    get pending() {
      return pending;
    },
    slot(len: number): Uint8Array {
      if (pending === POOL) sender.flush();
      return slots[pending++].subarray(0, len);
    },
    flush(): number {
      const n = pending;
      for (let i = 0; i < n; i++) replies.push(...answerTo(slots[i]));
      pending = 0;
      return n;
    },
  };
  /** The target's answer to one packet the engine built (none for pure ACKs and RSTs). */
  const answerTo = (p: Uint8Array): Uint8Array[] => {
    result.sent++;
    const ihl = (p[0] & 15) * 4, flags = p[ihl + 13];
    const len = ((p[2] << 8) | p[3]) - ihl - (p[ihl + 12] >>> 4) * 4;
    const seq = getU32(p, ihl + 4);
    let tpl: Uint8Array, mySeq: number, ackNo: number;
    if (flags & SYN) [tpl, mySeq, ackNo] = [synAck, TARGET_ISN, seq + 1];
    else if (flags & FIN) [tpl, mySeq, ackNo] = [finAck, getU32(p, ihl + 8), seq + len + 1];
    else if (len > 0) {
      const k = Math.floor(((seq - CLIENT_ISN - 1) >>> 0) / REQUEST_BYTES);
      [tpl, mySeq, ackNo] = [answer, TARGET_ISN + 1 + k * ANSWER_BYTES, seq + len];
      result.answered++;
    } else return [];
    const r = tpl.slice();
    r.set(p.subarray(12, 16), 16); // to the emulated client's address and port
    r[22] = p[ihl];
    r[23] = p[ihl + 1];
    putU32(r, 24, mySeq >>> 0);
    putU32(r, 28, ackNo >>> 0);
    return [r];
  };

  const replicator = new Replicator({
    v4: sender,
    v6: null,
    routes: { addRoute: () => true, delRoute: () => true },
    log: new Logger(() => {}),
    now: () => now,
    mtu: config.mtu,
    compare: null,
    moduleOnline: null,
  });
  const engineConfig = engineConfigOf(config, {
    credentials: NO_MODULE_OPTIONS.credentials,
    readOnly: false,
    trustLogins: false,
  });
  const engine = new Engine(engineConfig, replicator, now);
  replicator.attach(engine);

  const syn = packet(SYN, 0, 1460), ack = packet(ACK, 0), req = packet(ACK | PSH, REQUEST_BYTES);
  const fin = packet(FIN | ACK, 0);
  for (const t of [syn, ack, req, fin]) putEndpoint(t, 16, onlineAddr, 22, transfer.onlinePort);
  const client = new Uint8Array([198, 18, 0, 1]);
  // captured frames as a named device gives them (Ethernet), every fourth connection as raw IP
  // (SOCK_DGRAM, e.g. `-i any`): both branches of the link parser see traffic
  const eth = new Uint8Array(2048);
  eth.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
  let ethernet = true;
  /** Feeds one captured frame, then the target's answers, then flushes (a reactor round). */
  const feed = (packet: Uint8Array) => {
    result.frames++;
    if (ethernet) {
      eth.set(packet, ETH_HEADER);
      const frame = eth.subarray(0, ETH_HEADER + packet.length);
      replicator.onFrame(frame, LinkType.EN10MB, now * 1000, now);
    } else {
      replicator.onFrame(packet, LinkType.RAW, now * 1000, now);
    }
    sender.flush();
    while (replies.length > 0) replicator.onReplyBytes(replies.shift()!, now);
    sender.flush();
    replicator.flush();
    now += 0.05;
  };
  for (let c = 0; c < connections; c++) {
    ethernet = c % 4 !== 3;
    client[2] = c >>> 8;
    client[3] = 1 + (c & 255);
    const port = 40000 + c;
    for (const t of [syn, ack, req, fin]) putEndpoint(t, 12, client, 20, port);
    putU32(syn, 24, CLIENT_ISN);
    feed(syn);
    putU32(ack, 24, CLIENT_ISN + 1);
    putU32(ack, 28, ONLINE_ISN + 1);
    feed(ack);
    for (let k = 0; k < requests; k++) {
      putU32(req, 24, CLIENT_ISN + 1 + k * REQUEST_BYTES);
      putU32(req, 28, ONLINE_ISN + 1 + k * ANSWER_BYTES);
      feed(req);
      putU32(ack, 24, CLIENT_ISN + 1 + (k + 1) * REQUEST_BYTES);
      putU32(ack, 28, ONLINE_ISN + 1 + (k + 1) * ANSWER_BYTES);
      feed(ack);
    }
    putU32(fin, 24, CLIENT_ISN + 1 + requests * REQUEST_BYTES);
    putU32(fin, 28, ONLINE_ISN + 1 + requests * ANSWER_BYTES);
    feed(fin);
    now += 10;
    replicator.tick(now);
  }
  now += 600_000; // past every idle and close timer
  replicator.tick(now);
  engine.closeAll("closed", now);
  sender.flush();
  result.ran = true;
  result.ms = performance.now() - t0;
  return result;
}
