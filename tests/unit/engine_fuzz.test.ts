/**
 * Seeded fuzzing of the Engine: random but well-typed captured segments and reply headers
 * (sequence numbers anywhere in 2^32, any flag combination, zero windows, duplicate SYNs,
 * replies for unknown tuples, large payloads) plus random clock jumps in both directions.
 * After every step the engine's counters must stay consistent; every session that ends must
 * have released the target's socket (an RST or FIN sent, or the target reset it).
 */

import assert from "node:assert/strict";
import type {
  CapturedSegment,
  Endpoint,
  EngineConfig,
  OutSegment,
  ReplySegment,
  SegmentOptions,
  SessionEvent,
} from "../../lib/engine/mod.ts";
import { ACK, addrText, Engine, FIN, PSH, RST, SYN, URG } from "../../lib/engine/mod.ts";
import { mulberry32 } from "../helpers/prng.ts";
import { ep } from "../helpers/endpoints.ts";
import { keepSegment } from "../helpers/out_segment.ts";

const TARGET = { addr: "10.9.0.2", port: 8080 };
const SERVER = { addr: "198.51.100.1", port: 80 };

interface Tracked {
  /** The engine sent an RST or a FIN on this tuple since the session opened. */
  released: boolean;
  /** The target reset this tuple since the session opened. */
  targetReset: boolean;
  /** Highest sequence sent (for plausible reply ACKs). */
  seq: number;
  sentAnything: boolean;
}

interface Run {
  engine: Engine;
  ends: SessionEvent[];
  violations: string[];
  steps: number;
}

function key(c: Endpoint, t: Endpoint): string {
  return `${addrText(c)}:${c.port}>${addrText(t)}:${t.port}`;
}

function sumLost(e: Engine): number {
  return Object.values(e.stats.lost).reduce((a, b) => a + b, 0);
}

/** Checks the counters; returns a description of the first inconsistency. */
function checkInvariants(e: Engine, cfgMemory: number): string | undefined {
  const s = e.stats;
  if (s.sessions.active !== s.sessions.created - s.sessions.closed) {
    return `active ${s.sessions.active} != created ${s.sessions.created} - closed ${s.sessions.closed}`;
  }
  const live = e.liveSessions;
  if (live.size !== s.sessions.active) return `live ${live.size} != active ${s.sessions.active}`;
  if (s.queued_bytes < 0) return `queued_bytes ${s.queued_bytes} < 0`;
  if (s.queued_bytes > cfgMemory) return `queued_bytes ${s.queued_bytes} > cap ${cfgMemory}`;
  let held = 0;
  for (const x of live.values()) held += x.queuedBytes;
  if (held !== s.queued_bytes) return `sessions hold ${held}, queued_bytes says ${s.queued_bytes}`;
  if (s.requests.sent > s.requests.captured) {
    return `requests sent ${s.requests.sent} > captured ${s.requests.captured}`;
  }
  if (s.requests.answered > s.requests.sent) {
    return `requests answered ${s.requests.answered} > sent ${s.requests.sent}`;
  }
  const d = e.nextDeadline();
  if (d !== undefined && !Number.isFinite(d)) return `nextDeadline ${d}`;
  return undefined;
}

function randomOptions(r: () => number): SegmentOptions {
  const o: SegmentOptions = {};
  if (r() < 0.5) o.mss = Math.floor(r() * 70000);
  if (r() < 0.3) o.wscale = Math.floor(r() * 20);
  if (r() < 0.3) o.sackPermitted = true;
  if (r() < 0.4) {
    o.timestamp = { tsval: Math.floor(r() * 2 ** 32), tsecr: Math.floor(r() * 2 ** 32) };
  }
  return o;
}

function randomFlags(r: () => number): number {
  const x = r();
  if (x < 0.1) return SYN;
  if (x < 0.5) return ACK | PSH;
  if (x < 0.6) return ACK | FIN;
  if (x < 0.65) return RST;
  if (x < 0.7) return ACK;
  return Math.floor(r() * 64) & (FIN | SYN | RST | PSH | ACK | URG);
}

/** One fuzz run of `steps` steps with seed `seed`. */
function fuzz(seed: number, steps: number, extra: Partial<EngineConfig> = {}): Run {
  const r = mulberry32(seed);
  const memory = 96 * 1024;
  const cfg: EngineConfig = {
    transfers: [{ online: { addr: "", port: SERVER.port }, target: TARGET }],
    copies: [1, 1.5, 2][Math.floor(r() * 3)],
    clientIps: r() < 0.3 ? ["10.1.2.1", "10.1.2.2"] : [],
    portShift: r() < 0.3 ? 1 + Math.floor(r() * 8) : 0,
    maxMemoryBytes: memory,
    maxSessionBytes: 48 * 1024,
    sessionTimeoutMs: 20_000,
    keepaliveTimeoutMs: 30_000,
    gapTimeoutMs: 500,
    tupleQuarantineMs: r() < 0.5 ? 1000 : 0,
    noWait: r() < 0.2,
    onlyComplete: r() < 0.1,
    maxSessions: r() < 0.3 ? 8 : 200_000,
    maxFlows: r() < 0.3 ? 10 : 1_000_000,
    seed,
    ...extra,
  };
  const tracked = new Map<string, Tracked>();
  const ends: SessionEvent[] = [];
  const violations: string[] = [];
  const sent: OutSegment[] = [];
  let now = 1_000_000;
  const engine = new Engine(cfg, {
    send(seg) {
      const k = key(seg.src, seg.dst);
      const t = tracked.get(k);
      if (t) {
        if (seg.flags & (RST | FIN)) t.released = true;
        t.seq = (seg.seq + seg.payload.length + (seg.flags & (SYN | FIN) ? 1 : 0)) >>> 0;
        t.sentAnything = true;
      }
      if (sent.length > 64) sent.splice(0, 32);
      sent.push(keepSegment(seg));
    },
    routeAdd() {},
    routeDel() {},
    event(e) {
      const k = key(e.client, e.target);
      if (e.type === "open") {
        tracked.set(k, { released: false, targetReset: false, seq: 0, sentAnything: false });
      } else if (e.type === "close") {
        ends.push(e);
        const t = tracked.get(k);
        if (!t) violations.push(`close without open: ${k}`);
        else if (t.sentAnything && !t.released && !t.targetReset) {
          violations.push(`${k} ended (${e.reason}) without RST/FIN`);
        }
        tracked.delete(k);
      }
    },
  }, now);

  const clients = Array.from(
    { length: 6 },
    (_, i) => ({ addr: `192.0.2.${10 + i}`, port: 40000 + i }),
  );
  const seqs = clients.map(() => Math.floor(r() * 2 ** 32));
  const acks = clients.map(() => Math.floor(r() * 2 ** 32));

  for (let i = 0; i < steps; i++) {
    const x = r();
    if (x < 0.45) {
      // Captured client segment.
      const c = Math.floor(r() * clients.length);
      const flags = randomFlags(r);
      const big = r() < 0.02;
      const len = flags & SYN && r() < 0.8
        ? 0
        : big
        ? 20_000 + Math.floor(r() * 40_000)
        : r() < 0.3
        ? 0
        : Math.floor(r() * 1500);
      let seq = seqs[c];
      const y = r();
      if (y < 0.1) seq = Math.floor(r() * 2 ** 32);
      else if (y < 0.25) seq = (seq - Math.floor(r() * 3000)) >>> 0; // retransmission
      else if (y < 0.35) seq = (seq + Math.floor(r() * 3000)) >>> 0; // hole
      if (r() < 0.15) acks[c] = (acks[c] + Math.floor(r() * 5000)) >>> 0;
      const seg: CapturedSegment = {
        src: ep(r() < 0.05 ? { addr: "192.0.2.99", port: Math.floor(r() * 65536) } : clients[c]),
        dst: ep(r() < 0.05 ? { addr: SERVER.addr, port: 81 } : SERVER),
        seq,
        ack: r() < 0.05 ? Math.floor(r() * 2 ** 32) : acks[c],
        flags,
        window: r() < 0.1 ? 0 : Math.floor(r() * 65536),
        options: randomOptions(r),
        payload: new Uint8Array(len).fill(c + 1),
        ipId: r() < 0.5 ? Math.floor(r() * 65536) : undefined,
        timeMs: now,
      };
      if (seq === seqs[c] || r() < 0.5) seqs[c] = (seq + len + (flags & (SYN | FIN) ? 1 : 0)) >>> 0;
      engine.onCaptured(seg, now);
    } else if (x < 0.85) {
      // Reply header: mostly for a live tuple, sometimes for an unknown one.
      const live = [...tracked.keys()];
      let dst = { addr: "10.1.2.3", port: Math.floor(r() * 65536) };
      let src = TARGET;
      let ack = Math.floor(r() * 2 ** 32);
      if (live.length > 0 && r() < 0.9) {
        const k = live[Math.floor(r() * live.length)];
        const [c, t] = k.split(">");
        const ci = c.lastIndexOf(":"), ti = t.lastIndexOf(":");
        dst = { addr: c.slice(0, ci), port: Number(c.slice(ci + 1)) };
        src = { addr: t.slice(0, ti), port: Number(t.slice(ti + 1)) };
        const tr = tracked.get(k)!;
        if (r() < 0.8) ack = (tr.seq - (r() < 0.3 ? Math.floor(r() * 2000) : 0)) >>> 0;
      }
      const y = r();
      const flags = y < 0.2
        ? SYN | ACK
        : y < 0.25
        ? RST | ACK
        : y < 0.28
        ? RST
        : y < 0.35
        ? FIN | ACK
        : y < 0.9
        ? ACK
        : Math.floor(r() * 64);
      const reply: ReplySegment = {
        src: ep(src),
        dst: ep(dst),
        seq: Math.floor(r() * 2 ** 32),
        ack,
        flags,
        window: r() < 0.15 ? 0 : Math.floor(r() * 65536),
        options: randomOptions(r),
        payloadLength: r() < 0.5 ? 0 : Math.floor(r() * 70000),
      };
      if (flags & RST) {
        const t = tracked.get(key(reply.dst, reply.src));
        if (t) t.targetReset = true;
      }
      engine.onReply(reply, now);
    } else if (x < 0.97) {
      // Time passes: to the next deadline, a little, or a lot.
      const d = engine.nextDeadline();
      const y = r();
      if (y < 0.5 && d !== undefined) now = Math.max(now, d);
      else if (y < 0.9) now += Math.floor(r() * 500);
      else now += Math.floor(r() * 120_000);
      engine.tick(now);
    } else {
      // The clock jumps backwards (e.g. a wall clock stepped by NTP).
      now -= Math.floor(r() * 60_000);
      engine.tick(now);
    }
    const bad = checkInvariants(engine, memory);
    if (bad) {
      violations.push(`step ${i}: ${bad}`);
      break;
    }
    if (violations.length > 0) break;
  }
  // Shutdown: everything ends, nothing stays queued or live.
  engine.closeAll("shutdown", now);
  const bad = checkInvariants(engine, memory);
  if (bad) violations.push(`after closeAll: ${bad}`);
  const s = engine.stats;
  if (s.sessions.active !== 0) violations.push(`active ${s.sessions.active} after closeAll`);
  if (s.queued_bytes !== 0) violations.push(`queued ${s.queued_bytes} after closeAll`);
  // Every captured request was sent or counted lost.
  if (s.requests.captured > s.requests.sent + sumLost(engine)) {
    violations.push(
      `captured ${s.requests.captured} > sent ${s.requests.sent} + lost ${sumLost(engine)}`,
    );
  }
  return { engine, ends, violations, steps };
}

Deno.test("engine fuzz: random segments, replies and clock jumps keep the counters consistent", () => {
  const failures: string[] = [];
  for (let seed = 1; seed <= 60; seed++) {
    let run: Run;
    try {
      run = fuzz(seed, 3000);
    } catch (e) {
      failures.push(`seed ${seed}: threw ${(e as Error).stack}`);
      continue;
    }
    for (const v of run.violations) failures.push(`seed ${seed}: ${v}`);
  }
  assert.deepEqual(failures.slice(0, 10), []);
});

Deno.test("engine fuzz: the runs do exercise sessions, losses and replies", () => {
  let created = 0, ends = 0, replies = 0, lost = 0, answered = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const run = fuzz(seed, 3000);
    created += run.engine.stats.sessions.created;
    ends += run.ends.length;
    replies += run.engine.stats.replies - run.engine.stats.replies_unmatched;
    lost += sumLost(run.engine);
    answered += run.engine.stats.handshakes.established;
  }
  assert.ok(created > 100, `sessions created: ${created}`);
  assert.equal(ends, created);
  assert.ok(replies > 1000, `matched replies: ${replies}`);
  assert.ok(lost > 0, `lost: ${lost}`);
  assert.ok(answered > 10, `established: ${answered}`);
});
