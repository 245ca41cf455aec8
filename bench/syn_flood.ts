/**
 * The SYN-flood footprint: N spoofed SYNs (random source addresses and ports, nothing else)
 * through the replicator into the engine, configured from a tcpcopy command line, on a fake
 * clock and a sender that sends nothing. One real client connection every `--real-every`
 * SYNs is interleaved (SYN, then a request a few ms later) and answered by a minimal target,
 * so the figures also say whether real connections still replicate. Prints one JSON line:
 * process RSS and heap, sessions, flows, the engine's accounted footprint and the counters.
 *
 *   deno run -A --v8-flags=--expose-gc,--max-semi-space-size=16 bench/syn_flood.ts
 *       [--count 1000000] [--rate 100000] [--real-every 10000] [-- tcpcopy flags, e.g. -m 256]
 *
 * Run it as its own process (RSS is the whole process's): `./build.sh`'s Deno is fine. Give it
 * the programs' V8 flags (lib/process/v8_flags.ts) to measure what they would hold;
 * `heap_limit_mib` in the output shows which young generation it ran with.
 */
import { benchArgs } from "./args.ts";
import v8 from "node:v8";
import type { ReplySegment } from "../lib/engine/segment.ts";
import { addrText } from "../lib/engine/endpoint.ts";
import { ep } from "../tests/helpers/endpoints.ts";
import { ACK, PSH, SYN } from "../lib/wire/tcp.ts";
import { ParsedTcp, parseIpTcp } from "../lib/wire/packet.ts";
import { clientFrame, FLOOD_TARGET, floodRig, SpoofedSyns } from "../tests/helpers/syn_flood.ts";

const { values, positionals } = benchArgs(import.meta.url, {
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
const REAL_CLIENT = "192.0.2.1";

const TARGET = ep(FLOOD_TARGET);
const parsed = new ParsedTcp();
/** Real clients' rewritten ports whose packets the mini target answers. */
const realPorts = new Set<number>();
const answered = { requests: 0 };
const pendingReplies: ReplySegment[] = [];
// The mini target: looks at every packet built (the last one) right after the engine's send.
const rig = floodRig(positionals, (seg) => {
  if (addrText(seg.src) !== REAL_CLIENT || !realPorts.has(seg.src.port)) return;
  if (parseIpTcp(rig.lastPacket(), 0, parsed) !== null) return;
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
});
const { engine, replicator, config } = rig;
const syns = new SpoofedSyns(0x12345678);
const step = 1000 / RATE;
let realSent = 0;
const t0 = performance.now();
const drain = () => {
  while (pendingReplies.length > 0) engine.onReply(pendingReplies.shift()!, rig.now());
};
for (let i = 0; i < COUNT; i++) {
  rig.advance(step);
  rig.feed(syns.next());
  if (REAL_EVERY > 0 && i % REAL_EVERY === REAL_EVERY / 2) {
    const port = 30000 + realSent++;
    realPorts.add(port);
    rig.feed(clientFrame(REAL_CLIENT, port, SYN, 7000));
    drain();
    rig.feed(clientFrame(REAL_CLIENT, port, ACK | PSH, 7001, "GET / HTTP/1.1\r\n\r\n"));
    drain();
  }
  if ((i & 255) === 0) {
    engine.tick(rig.now());
    drain();
    replicator.flush();
  }
  // Like the capture loop, which waits for the ring between drains of up to 2048 packets: the
  // event loop (and with it the garbage collector's idle tasks) gets a turn.
  if ((i & 2047) === 2047) await new Promise((r) => setTimeout(r, 0));
}
engine.tick(rig.now());
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
  heap_limit_mib: mib(v8.getHeapStatistics().heap_size_limit),
  external_mib: mib(mem.external),
  sessions_active: st.sessions.active,
  flows: engine.flowCount,
  footprint_mib: "footprint_bytes" in st
    ? mib((st as { footprint_bytes: number }).footprint_bytes)
    : null,
  max_memory_mib: config.maxMemoryMiB,
  real_connections: realSent,
  real_requests_answered: answered.requests,
  lost: st.lost,
  sessions: st.sessions,
  elapsed_s: Math.round(elapsedS * 10) / 10,
}));
