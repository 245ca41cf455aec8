/**
 * intercept's answer tracker files its flows by their route's slot in the route table (issue 15
 * cost: no second hash table per reply). Held to the tracker filing them by route key, as it did
 * before: the same dispatcher decisions (routes added, moved between connections of one owner,
 * deleted, expired, evicted, over quota, renumbered by a compaction; SYN-ACKs delayed before
 * their route) feed one tracker with slots and one without, and every ANSWER frame, counter and
 * flow count must be the same.
 */
import assert from "node:assert/strict";
import { AnswerTracker, newAnswerCounters } from "../../lib/intercept/answers.ts";
import { decodeAnswerBody, type TunnelAnswer } from "../../lib/tunnel/answer_frame.ts";
import { type AnswerSink, Dispatcher } from "../../lib/tunnel/dispatch.ts";
import { ReplyBatcher } from "../../lib/tunnel/batcher.ts";
import type { ReplyInfo } from "../../lib/tunnel/reply_packet.ts";
import { routeKeyOf } from "../../lib/tunnel/route_key.ts";
import { F, segment } from "../helpers/tunnel_fixtures.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";

const BYTES = 64;
const te = new TextEncoder();

/** One tracker fed with slots (the dispatcher's way) and one by key only, side by side. */
class Pair implements AnswerSink {
  readonly sent: [TunnelAnswer[], TunnelAnswer[]] = [[], []];
  readonly counters = [newAnswerCounters(), newAnswerCounters()];
  readonly bySlot: AnswerTracker;
  readonly byKey: AnswerTracker;
  constructor() {
    const make = (i: number) =>
      new AnswerTracker(
        { bytes: BYTES, mode: "auto", maxLive: 12, idleMs: 400 },
        this.counters[i],
        (frame) => {
          const a = decodeAnswerBody(frame.subarray(4), BYTES);
          if (typeof a === "string") throw new Error(a);
          this.sent[i].push(a);
          return true;
        },
      );
    this.bySlot = make(0);
    this.byKey = make(1);
  }
  reply(pkt: Uint8Array, info: ReplyInfo, now: number, slot: number): void {
    this.bySlot.reply(pkt, info, now, slot);
    this.byKey.reply(pkt, info, now);
  }
  routeDeleted(key: string, slot: number): void {
    this.bySlot.routeDeleted(key, slot);
    this.byKey.routeDeleted(key);
  }
  routeReleased(slot: number): void {
    this.bySlot.routeReleased(slot);
  }
  routesRenumbered(renum: Int32Array): void {
    this.bySlot.routesRenumbered(renum);
  }
  each(f: (t: AnswerTracker) => void): void {
    f(this.bySlot);
    f(this.byKey);
  }
  same(what: string): void {
    // per connection, in order (a sweep cuts idle flows in slot order: across connections the
    // two may interleave differently, which tcpcopy, pairing by tuple, does not see)
    assert.deepEqual(byConnection(this.sent[0]), byConnection(this.sent[1]), `${what}: frames`);
    assert.equal(this.sent[0].length, this.sent[1].length, `${what}: frame count`);
    assert.deepEqual(this.counters[0], this.counters[1], `${what}: counters`);
    assert.equal(this.bySlot.flows, this.byKey.flows, `${what}: flows`);
    assert.equal(this.bySlot.openAnswers, this.byKey.openAnswers, `${what}: open answers`);
  }
}

/** The frames of each connection (client address and port), in the order sent. */
function byConnection(sent: TunnelAnswer[]): Map<string, TunnelAnswer[]> {
  const m = new Map<string, TunnelAnswer[]>();
  for (const a of sent) {
    const k = `${a.client.addr.join(".")}:${a.client.port}`;
    const list = m.get(k);
    if (list === undefined) m.set(k, [a]);
    else list.push(a);
  }
  return new Map([...m].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)));
}

interface Peer {
  batcher: ReplyBatcher;
  owner: unknown;
  authenticated: boolean;
  deletesRoutes: boolean;
  answers: Pair;
}

const T4 = [10, 0, 0, 2], T6 = [0xfd, ...new Array(14).fill(0), 2];

function run(seed: number): { frames: number; renumbered: number; released: number } {
  const int = randomInt(mulberry32(seed));
  const d = new Dispatcher<Peer>({ routeTtlMs: 300, maxRoutes: 3000, maxPeerRoutes: 2800 });
  const ownerA = {}, ownerB = {};
  const peers: Peer[] = [ownerA, ownerA, ownerB].map((owner) => ({
    batcher: new ReplyBatcher({ ext: true, maxQueuedBytes: 1 << 30 }),
    owner,
    authenticated: true,
    deletesRoutes: true,
    answers: new Pair(),
  }));
  for (const p of peers) d.addPeer(p);
  // count what the slot side hears, to know the run exercised it
  let renumbered = 0, released = 0;
  for (const p of peers) {
    const pair = p.answers,
      rel = pair.routeReleased.bind(pair),
      ren = pair.routesRenumbered
        .bind(pair);
    pair.routeReleased = (slot) => (released++, rel(slot));
    pair.routesRenumbered = (renum) => (renumbered++, ren(renum));
  }
  let now = 0;
  const settle = () => {
    for (const p of peers) {
      p.answers.each((t) => t.settle());
      p.batcher.flush();
      const out = p.batcher.takeOutput();
      if (out !== undefined) p.batcher.written(out.length);
    }
  };
  // connections: client port, family, sequence state, route state
  interface Conn {
    port: number;
    v6: boolean;
    seq: number;
    ack: number;
    stage: number;
  }
  const conns: Conn[] = [];
  const endpoints = (c: Conn) => ({
    client: {
      addr: new Uint8Array(c.v6 ? [0xfd, ...new Array(14).fill(0), 1] : [10, 0, 0, 1]),
      port: c.port,
    },
    target: { addr: new Uint8Array(c.v6 ? T6 : T4), port: 80 },
  });
  const keyOf = (c: Conn) => {
    const e = endpoints(c);
    return routeKeyOf(e.client, e.target);
  };
  const send = (c: Conn, flags: number, payload?: Uint8Array) => {
    const e = endpoints(c);
    const pkt = segment({
      src: [...e.target.addr],
      dst: [...e.client.addr],
      sport: 80,
      dport: c.port,
      seq: c.seq >>> 0,
      ack: c.ack >>> 0,
      flags,
      payload,
    });
    d.reply(pkt, now);
  };
  const body = () => {
    const n = int(3);
    if (n === 0) return te.encode("+OK\r\n".repeat(1 + int(3)));
    const b = "x".repeat(int(90));
    return te.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n${b}`);
  };
  for (let step = 0; step < 5000; step++) {
    now += int(4) === 0 ? int(120) : int(3);
    const r = int(100);
    if (step === 2000) {
      // a burst of routes, most of them then deleted: the table compacts and renumbers
      const burst: string[] = [];
      for (let i = 0; i < 2600; i++) {
        const key = routeKeyOf({ addr: new Uint8Array([10, 9, i >> 8, i & 255]), port: 1000 + i }, {
          addr: new Uint8Array(T4),
          port: 80,
        });
        d.addRoute(peers[i % 3], key, now);
        burst.push(key);
      }
      for (let i = 0; i < burst.length; i++) d.deleteRoute(peers[i % 3], burst[i]);
      d.tick(now); // (expire: then compact)
    } else if (r < 12 || conns.length === 0) {
      // a new connection (a reused port now and then); its route before or after the SYN-ACK
      const c: Conn = {
        port: 20000 + int(40),
        v6: int(5) === 0,
        seq: int(0x1_0000_0000),
        ack: int(0x1_0000_0000),
        stage: 0,
      };
      conns.push(c);
      const peer = peers[int(3)];
      const early = int(3) !== 0;
      if (early) d.addRoute(peer, keyOf(c), now);
      send(c, F.SYN | F.ACK);
      c.seq = (c.seq + 1) >>> 0;
      if (!early) d.addRoute(peer, keyOf(c), now);
    } else if (r < 70) {
      const c = conns[int(conns.length)];
      const k = int(10);
      if (k < 6) {
        // an answer in 1-3 segments, sometimes after a new request (ack advance)
        if (int(2) === 0) c.ack = (c.ack + 1 + int(200)) >>> 0;
        const b = body();
        const parts = 1 + int(3);
        for (let i = 0; i < parts; i++) {
          const from = Math.floor((b.length * i) / parts),
            to = Math.floor((b.length * (i + 1)) / parts);
          send(c, F.ACK | F.PSH, b.subarray(from, to));
          if (int(2) === 0) settle();
        }
        c.seq = (c.seq + b.length) >>> 0;
      } else if (k < 7) {
        send(c, F.ACK); // a bare ACK
      } else if (k < 8) {
        send(c, F.ACK | F.FIN);
        c.seq = (c.seq + 1) >>> 0;
      } else if (k < 9) {
        // a retransmission of the last bytes
        const back = 1 + int(20);
        c.seq = (c.seq - back) >>> 0;
        send(c, F.ACK, te.encode("y".repeat(back)));
        c.seq = (c.seq + back) >>> 0;
      } else send(c, F.RST | F.ACK);
    } else if (r < 80) {
      // CLIENT_DEL by one of the peers (only the holder's works)
      const c = conns[int(conns.length)];
      d.deleteRoute(peers[int(3)], keyOf(c));
    } else if (r < 88) {
      // the route moves to the other connection of owner A, or is registered again
      const c = conns[int(conns.length)];
      d.addRoute(peers[int(2)], keyOf(c), now);
    } else if (r < 94) {
      d.tick(now); // route expiry
      for (const p of peers) p.answers.each((t) => t.tick(now, 30));
    } else {
      for (const p of peers) p.answers.each((t) => t.sweep(now));
    }
    settle();
    if (step % 97 === 0) {
      peers.forEach((p, i) => p.answers.same(`seed ${seed}, step ${step}, peer ${i}`));
    }
  }
  now += 1000;
  for (const p of peers) p.answers.each((t) => (t.tick(now, 30), t.sweep(now)));
  settle();
  let frames = 0;
  peers.forEach((p, i) => {
    p.answers.same(`seed ${seed}, end, peer ${i}`);
    frames += p.answers.sent[0].length;
  });
  return { frames, renumbered, released };
}

Deno.test("answers filed by route slot: the same frames as filed by key, over random route lives", () => {
  let frames = 0, renumbered = 0, released = 0;
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const r = run(0x51075 + seed);
    frames += r.frames;
    renumbered += r.renumbered;
    released += r.released;
  }
  // the runs exercised what slots add: frames, routes gone without CLIENT_DEL, renumbering
  assert.ok(frames > 500, `${frames} frames`);
  assert.ok(released > 100, `${released} slots released`);
  assert.ok(renumbered > 0, `${renumbered} renumberings`);
});
