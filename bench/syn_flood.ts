/**
 * The SYN-flood footprint: N spoofed SYNs (random source addresses and ports, nothing else)
 * through the replicator into the engine, configured from a tcpcopy command line, on a fake
 * clock and a sender that sends nothing. One real client connection every `--real-every`
 * SYNs is interleaved (SYN, then a request a few ms later) and answered by a minimal target,
 * so the figures also say whether real connections still replicate. Prints one JSON line:
 * process RSS and heap, sessions, flows, the engine's accounted footprint and the counters.
 *
 *   deno run -A --v8-flags=--expose-gc bench/syn_flood.ts [--count 1000000] [--rate 100000]
 *       [--real-every 10000] [-- tcpcopy flags, e.g. -m 256]
 *
 * Run it as its own process (RSS is the whole process's): `./build.sh`'s Deno is fine.
 */
import { parseArgs } from "node:util";
import { Engine } from "../lib/engine/engine.ts";
import type { OutSegment, ReplySegment } from "../lib/engine/segment.ts";
import { ACK, PSH, SYN } from "../lib/wire/tcp.ts";
import { parseTcpcopyArgs } from "../lib/cli/parse.ts";
import { engineConfigOf } from "../lib/tcpcopy/convert.ts";
import { Replicator } from "../lib/tcpcopy/replicator.ts";
import { Logger } from "../lib/stats/logger.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../lib/wire/build.ts";
import { LinkType } from "../lib/wire/link.ts";
import { ParsedTcp, parseIpTcp } from "../lib/wire/packet.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    count: { type: "string", default: "1000000" },
    rate: { type: "string", default: "100000" },
    "real-every": { type: "string", default: "10000" },
    settle: { type: "string", default: "2000" },
  },
  allowPositionals: true,
});
const COUNT = Number(values.count), RATE = Number(values.rate);
const REAL_EVERY = Number(values["real-every"]);
const SETTLE_MS = Number(values.settle);
const TARGET = { addr: "10.0.0.2", port: 8080 };

const cli = parseTcpcopyArgs(["-x", "80-10.0.0.2:8080", "-s", "10.0.0.2", ...positionals]);
if (cli.kind !== "run") throw new Error(JSON.stringify(cli));

let now = 1_000_000;
const slotBuf = new Uint8Array(65536);
const parsed = new ParsedTcp();
/** Real clients' rewritten ports whose packets the mini target answers. */
const realPorts = new Set<number>();
const answered = { requests: 0 };
const pendingReplies: ReplySegment[] = [];
let lastSlotLen = 0;
const sender = {
  pending: 0,
  slot(len: number) {
    this.pending++;
    lastSlotLen = len;
    return slotBuf.subarray(0, len);
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
// The mini target: looks at every packet built (the last slot) right after the engine's send.
const out = {
  send(seg: OutSegment) {
    replicator.send(seg);
    if (seg.src.addr !== "192.0.2.1" || !realPorts.has(seg.src.port)) return;
    if (parseIpTcp(slotBuf.subarray(0, lastSlotLen), 0, parsed) !== null) return;
    const len = seg.payload.length;
    const base = {
      src: TARGET,
      dst: { ...seg.src },
      window: 65535,
      options: {},
      payloadLength: 0,
    };
    if (seg.flags & SYN) {
      pendingReplies.push({ ...base, seq: 5000, ack: (seg.seq + 1) >>> 0, flags: SYN | ACK });
    } else if (len > 0) {
      pendingReplies.push({
        ...base,
        seq: 5001,
        ack: (seg.seq + len) >>> 0,
        flags: ACK | PSH,
        payloadLength: 100,
      });
      answered.requests++;
    }
  },
  routeAdd: (c: OutSegment["src"], t: OutSegment["dst"]) => replicator.routeAdd(c, t),
  routeDel: (c: OutSegment["src"], t: OutSegment["dst"]) => replicator.routeDel(c, t),
};

const engine = new Engine(engineConfigOf(cli.config), out, now);
replicator.attach(engine);

function frame(src: number, port: number, flags: number, seq: number, payload = ""): Uint8Array {
  const repr = {
    ...addressPair(
      `${src >>> 24}.${(src >> 16) & 255}.${(src >> 8) & 255}.${src & 255}`,
      "10.0.0.1",
    ),
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
  buildTcpPacket(repr, b);
  return b;
}

// One template SYN, its source address and port patched in place per packet.
const tpl = frame(0x0b000001, 1024, SYN, 1);
let rng = 0x12345678;
const rand = () => {
  rng ^= rng << 13;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  return rng >>> 0;
};
const step = 1000 / RATE;
let realSent = 0;
const t0 = performance.now();
const drain = () => {
  while (pendingReplies.length > 0) engine.onReply(pendingReplies.shift()!, now);
};
for (let i = 0; i < COUNT; i++) {
  now += step;
  const a = rand();
  tpl[12] = 11 + (a & 63); // 11.x.y.z..74.x.y.z: never the real clients' 192.0.2.0/24
  tpl[13] = (a >>> 8) & 255;
  tpl[14] = (a >>> 16) & 255;
  tpl[15] = rand() & 255;
  const p = 1024 + (rand() % 64000);
  tpl[20] = p >> 8;
  tpl[21] = p & 255;
  replicator.onFrame(tpl, LinkType.RAW, now * 1000, now);
  if (REAL_EVERY > 0 && i % REAL_EVERY === REAL_EVERY / 2) {
    const port = 30000 + realSent++;
    realPorts.add(port);
    replicator.onFrame(frame(0xc0000201, port, SYN, 7000), LinkType.RAW, now * 1000, now);
    drain();
    replicator.onFrame(
      frame(0xc0000201, port, ACK | PSH, 7001, "GET / HTTP/1.1\r\n\r\n"),
      LinkType.RAW,
      now * 1000,
      now,
    );
    drain();
  }
  if ((i & 255) === 0) {
    engine.tick(now);
    drain();
    replicator.flush();
  }
  // Like the capture loop, which waits for the ring between drains of up to 2048 packets: the
  // event loop (and with it the garbage collector's idle tasks) gets a turn.
  if ((i & 2047) === 2047) await new Promise((r) => setTimeout(r, 0));
}
engine.tick(now);
const elapsedS = (performance.now() - t0) / 1000;
const rssAtEnd = Deno.memoryUsage().rss;
await new Promise((r) => setTimeout(r, SETTLE_MS)); // the flood is over: a quiet moment
(globalThis as { gc?: () => void }).gc?.();
const mem = Deno.memoryUsage();
const st = engine.stats;
const mib = (x: number) => Math.round(x / 1048576 * 10) / 10;
/** Peak RSS of this process (VmHWM), bytes; 0 where /proc is missing. */
function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
console.log(JSON.stringify({
  flags: positionals.join(" ") || "(defaults)",
  syns: COUNT,
  rss_at_end_mib: mib(rssAtEnd),
  rss_settled_mib: mib(mem.rss),
  peak_rss_mib: mib(peakRss()),
  heap_used_mib: mib(mem.heapUsed),
  heap_total_mib: mib(mem.heapTotal),
  external_mib: mib(mem.external),
  sessions_active: st.sessions.active,
  flows: engine.flowCount,
  footprint_mib: "footprint_bytes" in st
    ? mib((st as { footprint_bytes: number }).footprint_bytes)
    : null,
  max_memory_mib: cli.config.maxMemoryMiB,
  real_connections: realSent,
  real_requests_answered: answered.requests,
  lost: st.lost,
  sessions: st.sessions,
  elapsed_s: Math.round(elapsedS * 10) / 10,
}));
