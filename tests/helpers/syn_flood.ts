/**
 * The SYN-flood rig shared by the budget test (tests/unit/engine_budget.test.ts) and the
 * footprint benchmark (bench/syn_flood.ts): a replicator and an engine configured from a tcpcopy
 * command line (`-x 80-10.0.0.2:8080 -s 10.0.0.2` plus the given flags) on a fake clock, a
 * sender that keeps nothing, and spoofed SYNs from random sources outside the real clients'
 * 192.0.2.0/24.
 *
 * @module
 */
import type { OutSegment } from "../../lib/engine/segment.ts";
import { ACK, SYN } from "../../lib/wire/tcp.ts";
import { Engine } from "../../lib/engine/engine.ts";
import { type CliResult, parseTcpcopyArgs } from "../../lib/cli/tcpcopy.ts";
import { engineConfigOf } from "../../lib/tcpcopy/convert.ts";
import { Replicator } from "../../lib/tcpcopy/replicator.ts";
import { Logger } from "../../lib/stats/logger.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../../lib/wire/build.ts";
import { LinkType } from "../../lib/wire/link.ts";
import { mulberry32 } from "./prng.ts";

/** tcpcopy's parsed configuration. */
type TcpcopyConfig = Extract<CliResult, { kind: "run" }>["config"];

/** The target every rig replicates to. */
export const FLOOD_TARGET = { addr: "10.0.0.2", port: 8080 };

/** A replicator + engine pair on a fake clock (ms), fed with raw IP frames. */
export interface FloodRig {
  engine: Engine;
  replicator: Replicator;
  config: TcpcopyConfig;
  /** The bytes of the last packet the replicator built (valid until the next one). */
  lastPacket(): Uint8Array;
  now(): number;
  advance(ms: number): number;
  /** Feeds one captured frame (raw IP) at the current time. */
  feed(frame: Uint8Array): void;
}

/**
 * Builds the rig from tcpcopy `flags`; `onSend` sees every segment the engine sends, after the
 * replicator built it (so {@link FloodRig.lastPacket} is that segment's packet).
 */
export function floodRig(flags: string[], onSend: (seg: OutSegment) => void = () => {}): FloodRig {
  const cli = parseTcpcopyArgs(["-x", "80-10.0.0.2:8080", "-s", "10.0.0.2", ...flags]);
  if (cli.kind !== "run") throw new Error(`not a run command line: ${JSON.stringify(cli)}`);
  let now = 1_000_000;
  const buf = new Uint8Array(65536);
  let lastLen = 0;
  const sender = {
    pending: 0,
    slot(len: number) {
      this.pending++;
      lastLen = len;
      return buf.subarray(0, len);
    },
    flush() {
      const n = this.pending;
      this.pending = 0;
      return n;
    },
  };
  const replicator = new Replicator({
    v4: sender,
    v6: null,
    log: new Logger(() => {}),
    now: () => now,
    routes: { addRoute: () => true, delRoute: () => true },
  });
  const out = {
    send(seg: OutSegment) {
      replicator.send(seg);
      onSend(seg);
    },
    routeAdd: (c: OutSegment["src"], t: OutSegment["dst"]) => replicator.routeAdd(c, t),
    routeDel: (c: OutSegment["src"], t: OutSegment["dst"]) => replicator.routeDel(c, t),
  };
  const engine = new Engine(engineConfigOf(cli.config), out, now);
  replicator.attach(engine);
  return {
    engine,
    replicator,
    config: cli.config,
    lastPacket: () => buf.subarray(0, lastLen),
    now: () => now,
    advance: (ms: number) => now += ms,
    feed: (frame) => replicator.onFrame(frame, LinkType.RAW, now * 1000, now),
  };
}

/** An IPv4 TCP packet from `src`:`port` to 10.0.0.1:80 (MSS 1460; ACK 7001 when ACK is set). */
export function clientFrame(
  src: string,
  port: number,
  flags: number,
  seq: number,
  payload = "",
): Uint8Array {
  const repr = {
    ...addressPair(src, "10.0.0.1"),
    srcPort: port,
    dstPort: 80,
    seq,
    ack: flags & ACK ? 7001 : 0,
    flags,
    window: 64240,
    options: { sackPermitted: false, sackBlocks: [], unknown: [], mss: 1460 },
    payload: new TextEncoder().encode(payload),
  };
  const b = new Uint8Array(tcpPacketLength(repr));
  if (buildTcpPacket(repr, b) !== b.length) throw new Error("clientFrame: packet not built");
  return b;
}

/**
 * Spoofed SYNs: one template packet whose source address (11.x.y.z to 74.x.y.z, never the real
 * clients' 192.0.2.0/24) and source port are patched in place by {@link next}.
 */
export class SpoofedSyns {
  readonly #tpl = clientFrame("11.0.0.1", 1024, SYN, 1);
  readonly #rnd: () => number;

  constructor(seed: number) {
    this.#rnd = mulberry32(seed);
  }

  /** The next SYN (the same array each time, patched). */
  next(): Uint8Array {
    const tpl = this.#tpl;
    const a = this.#u32();
    tpl[12] = 11 + (a & 63);
    tpl[13] = (a >>> 8) & 255;
    tpl[14] = (a >>> 16) & 255;
    tpl[15] = this.#u32() & 255;
    const p = 1024 + (this.#u32() % 64000);
    tpl[20] = p >> 8;
    tpl[21] = p & 255;
    return tpl;
  }

  #u32(): number {
    return Math.floor(this.#rnd() * 4294967296) >>> 0;
  }
}
