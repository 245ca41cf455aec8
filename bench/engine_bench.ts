/**
 * Engine cost per packet on a realistic mix: keep-alive HTTP-like connections (10 requests
 * each) and short connections (1 request), replies produced by a minimal responder that
 * answers each request with 3 response segments.
 *
 * Two figures:
 *
 * - "engine only": the exact sequence of engine inputs (captured segments, reply headers,
 *   timer ticks) of one full run is recorded once, then replayed into a fresh engine whose
 *   output is discarded. This is the engine's own cost; divide by the packet count printed
 *   below (captured + replies) for the per-packet figure.
 * - "with responder": the engine plus the bench's reply generator, as before.
 *
 *   deno bench -A bench/engine_bench.ts
 */

import type { CapturedSegment, EngineOutput, OutSegment, ReplySegment } from "../lib/engine/mod.ts";
import { ACK, addrText, Engine, FIN, PSH, RST, SYN } from "../lib/engine/mod.ts";
import { mergeTraces, onlineConnection } from "../tests/sim/online.ts";

const server = { addr: "198.51.100.1", port: 80 };
const transfers = [{ online: { addr: "", port: 80 }, target: { addr: "10.9.0.2", port: 8080 } }];

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

/** One recorded engine input: a captured segment, a reply header or a timer tick. */
type Input =
  | { kind: "captured"; seg: CapturedSegment; now: number }
  | { kind: "reply"; reply: ReplySegment; now: number }
  | { kind: "tick"; now: number };

interface Result {
  captured: number;
  replies: number;
  sent: number;
  answered: number;
  inputs: Input[];
}

/** Replays `segs` through a fresh engine and the responder; optionally records the inputs. */
function replay(segs: CapturedSegment[], record: boolean): Result {
  const pending: OutSegment[] = [];
  const inputs: Input[] = [];
  const engine = new Engine(
    { transfers },
    { send: (s) => pending.push(s), routeAdd() {}, routeDel() {} },
    1000,
  );
  const isn = new Map<string, number>();
  let replies = 0;
  const reply = (r: ReplySegment, now: number) => {
    replies++;
    if (record) inputs.push({ kind: "reply", reply: r, now });
    engine.onReply(r, now);
  };
  const respond = (now: number) => {
    for (let n = 0; n < pending.length; n++) {
      const s = pending[n];
      const k = `${addrText(s.src)}|${s.src.port}`;
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
    if (record) inputs.push({ kind: "captured", seg, now: seg.timeMs });
    engine.onCaptured(seg, seg.timeMs);
    respond(seg.timeMs);
    const d = engine.nextDeadline();
    if (d !== undefined && d <= seg.timeMs) {
      if (record) inputs.push({ kind: "tick", now: seg.timeMs });
      engine.tick(seg.timeMs);
      respond(seg.timeMs);
    }
  }
  engine.closeAll("shutdown", 1e9);
  const st = engine.stats;
  if (st.requests.answered < st.requests.captured * 0.99) {
    throw new Error(`bench workload not replayed: ${JSON.stringify(st.requests)}`);
  }
  return {
    captured: segs.length,
    replies,
    sent: st.packets_sent,
    answered: st.requests.answered,
    inputs,
  };
}

const discard: EngineOutput = { send() {}, routeAdd() {}, routeDel() {} };

/** Feeds recorded inputs to a fresh engine whose output goes nowhere. */
function engineOnly(inputs: Input[]): Engine {
  const engine = new Engine({ transfers }, discard, 1000);
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i];
    if (x.kind === "captured") engine.onCaptured(x.seg, x.now);
    else if (x.kind === "reply") engine.onReply(x.reply, x.now);
    else engine.tick(x.now);
  }
  engine.closeAll("shutdown", 1e9);
  return engine;
}

const mix = workload(200, 400);
const full = replay(mix, true);
const packets = full.captured + full.replies;
// The recording must drive the engine exactly as the live run did.
const check = engineOnly(full.inputs).stats;
if (check.packets_sent !== full.sent || check.requests.answered !== full.answered) {
  throw new Error(
    `recorded replay diverged: sent ${check.packets_sent}/${full.sent}, answered ${check.requests.answered}/${full.answered}`,
  );
}
console.log(
  `engine_bench workload: ${full.captured} captured + ${full.replies} replies = ${packets} packets per iteration; ${full.sent} packets sent; us/packet = time/iter / ${packets}`,
);

// Many iterations after a long warm-up: the VM is shared, single runs vary a lot.
Deno.bench({
  name: `engine only: recorded keep-alive + short mix (${packets} packets)`,
  warmup: 30,
  n: 150,
  fn: () => {
    engineOnly(full.inputs);
  },
});

Deno.bench({
  name: `engine + responder: keep-alive + short mix (${packets} packets)`,
  warmup: 30,
  n: 150,
  fn: () => {
    replay(mix, false);
  },
});
