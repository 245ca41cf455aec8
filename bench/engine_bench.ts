/**
 * Engine cost per packet on a realistic mix: keep-alive HTTP-like connections (10 requests
 * each) and short connections (1 request), replies produced by a minimal responder that
 * answers each request with 3 response segments. Each bench iteration replays the whole
 * workload; divide by the packet count printed below for the per-packet cost.
 *
 *   deno bench -A bench/engine_bench.ts
 */

import type { CapturedSegment, OutSegment, ReplySegment } from "../lib/engine/mod.ts";
import { ACK, Engine, FIN, PSH, RST, SYN } from "../lib/engine/mod.ts";
import { mergeTraces, onlineConnection } from "../tests/sim/online.ts";

const server = { addr: "198.51.100.1", port: 80 };

function workload(keepAlive: number, short: number): CapturedSegment[] {
  const traces = [];
  for (let i = 0; i < keepAlive + short; i++) {
    const reqs = i < keepAlive ? 10 : 1;
    traces.push(onlineConnection({
      client: { addr: `192.0.2.${1 + (i % 200)}`, port: 20000 + i },
      server,
      clientIsn: (i * 2654435761) >>> 0,
      serverIsn: (i * 40503) >>> 0,
      start: 1000 + i * 0.5,
      rttMs: 0.3,
      exchanges: Array.from({ length: reqs }, (_, k) => ({
        id: k,
        responseLength: 3000,
        pad: 300,
      })),
    }));
  }
  return mergeTraces(traces);
}

/** Replays `segs` through a fresh engine; returns [captured, replies] processed. */
function replay(segs: CapturedSegment[]): [number, number] {
  const pending: OutSegment[] = [];
  const engine = new Engine(
    { transfers: [{ online: { addr: "", port: 80 }, target: { addr: "10.9.0.2", port: 8080 } }] },
    { send: (s) => pending.push(s), routeAdd() {}, routeDel() {} },
    1000,
  );
  const isn = new Map<string, number>();
  let replies = 0;
  const reply = (r: ReplySegment, now: number) => {
    replies++;
    engine.onReply(r, now);
  };
  const respond = (now: number) => {
    for (let n = 0; n < pending.length; n++) {
      const s = pending[n];
      const k = `${s.src.addr}|${s.src.port}`;
      const base = { src: s.dst, dst: s.src, window: 512, options: {}, payloadLength: 0 };
      if (s.flags & SYN) {
        const i = (s.seq ^ 0x5bd1e995) >>> 0;
        isn.set(k, (i + 1) >>> 0);
        reply(
          { ...base, seq: i, ack: (s.seq + 1) >>> 0, flags: SYN | ACK, options: { mss: 1460 } },
          now,
        );
      } else if (s.flags & RST) {
        isn.delete(k);
      } else if (s.payload.length > 0 || s.flags & FIN) {
        let nxt = isn.get(k);
        if (nxt === undefined) continue;
        const ack = (s.seq + s.payload.length + (s.flags & FIN ? 1 : 0)) >>> 0;
        if (s.flags & FIN) {
          reply({ ...base, seq: nxt, ack, flags: FIN | ACK }, now);
          isn.set(k, (nxt + 1) >>> 0);
          continue;
        }
        for (let j = 0; j < 3; j++) {
          const len = 1000;
          reply(
            { ...base, seq: nxt, ack, flags: ACK | (j === 2 ? PSH : 0), payloadLength: len },
            now,
          );
          nxt = (nxt + len) >>> 0;
        }
        isn.set(k, nxt);
      }
    }
    pending.length = 0;
  };
  for (const seg of segs) {
    engine.onCaptured(seg, seg.timeMs);
    respond(seg.timeMs);
    const d = engine.nextDeadline();
    if (d !== undefined && d <= seg.timeMs) engine.tick(seg.timeMs);
  }
  engine.closeAll("shutdown", 1e9);
  if (engine.stats.requests.answered < engine.stats.requests.captured * 0.99) {
    throw new Error(`bench workload not replayed: ${JSON.stringify(engine.stats.requests)}`);
  }
  return [segs.length, replies];
}

const mix = workload(200, 400);
const [captured, replies] = replay(mix);
console.log(
  `engine_bench workload: ${captured} captured + ${replies} replies = ${
    captured + replies
  } packets per iteration`,
);

Deno.bench(`engine: keep-alive + short mix (${captured + replies} packets)`, () => {
  replay(mix);
});
