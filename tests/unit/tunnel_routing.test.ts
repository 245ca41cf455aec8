import assert from "node:assert/strict";
import { RouteTable } from "../../lib/tunnel/routing.ts";
import { DelayQueue } from "../../lib/tunnel/delay_queue.ts";
import { routeKeyOf } from "../../lib/tunnel/route_key.ts";
import { Dispatcher } from "../../lib/tunnel/dispatch.ts";
import { ReplyBatcher } from "../../lib/tunnel/batcher.ts";
import { inspectReply, newReplyInfo } from "../../lib/tunnel/reply_packet.ts";
import { F, segment } from "../helpers/tunnel_fixtures.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";

const ep = (a: number[], port: number) => ({ addr: new Uint8Array(a), port });
const C1 = [10, 0, 0, 1], C2 = [10, 0, 0, 3], T = [10, 0, 0, 2];

Deno.test("route key: exact tuple, no collisions between close tuples; replies map to it", () => {
  const keys = new Set<string>();
  for (const c of [C1, C2, [1, 0, 0, 10]]) {
    for (const cp of [1, 256, 40000]) {
      for (const tp of [80, 8080, 20480]) keys.add(routeKeyOf(ep(c, cp), ep(T, tp)));
    }
  }
  assert.equal(keys.size, 27);
  const reply = segment({ src: T, dst: C1, sport: 8080, dport: 40000 });
  const info = newReplyInfo();
  assert.equal(inspectReply(reply, info), undefined);
  assert.equal(info.key, routeKeyOf(ep(C1, 40000), ep(T, 8080)));
  const v6c = new Array(16).fill(0).map((_, i) => i), v6t = new Array(16).fill(9);
  const r6 = segment({ src: v6t, dst: v6c, sport: 443, dport: 5000 });
  assert.equal(inspectReply(r6, info), undefined);
  assert.equal(info.key, routeKeyOf(ep(v6c, 5000), ep(v6t, 443)));
  assert.notEqual(info.key, routeKeyOf(ep(v6c, 5000), ep(v6t, 444)));
});

Deno.test("inspectReply: malformed packets are reasons, not throws", () => {
  const info = newReplyInfo();
  const good = segment({ src: T, dst: C1, sport: 1, dport: 2 });
  assert.equal(inspectReply(new Uint8Array(0), info), "truncated");
  assert.equal(inspectReply(good.subarray(0, 30), info), "truncated");
  const udp = good.slice();
  udp[9] = 17;
  assert.equal(inspectReply(udp, info), "not_tcp");
  const badOff = good.slice();
  badOff[32] = 0x20;
  assert.equal(inspectReply(badOff, info), "bad_tcp_offset");
  const v5 = good.slice();
  v5[0] = 0x55;
  assert.equal(inspectReply(v5, info), "bad_ip_version");
});

Deno.test("inspectReply: an IPv6 reply with an extension header routes like one without", () => {
  const v6c = new Array(16).fill(0).map((_, i) => i), v6t = new Array(16).fill(9);
  const plain = segment({ src: v6t, dst: v6c, sport: 443, dport: 5000 });
  // the same reply with an 8-byte destination options header between IPv6 and TCP
  const ext = new Uint8Array(plain.length + 8);
  ext.set(plain.subarray(0, 40));
  ext.set(plain.subarray(40), 48);
  ext[6] = 60; // next header: destination options
  ext[40] = 6; // ... then TCP
  const plen = ((plain[4] << 8) | plain[5]) + 8;
  ext[4] = plen >> 8;
  ext[5] = plen & 0xff;
  const a = newReplyInfo(), b = newReplyInfo();
  assert.equal(inspectReply(plain, a), undefined);
  assert.equal(inspectReply(ext, b), undefined);
  assert.equal(b.key, a.key);
  assert.equal(b.l4, 48);
  assert.deepEqual([b.tcpLen, b.payloadLen, b.flags], [a.tcpLen, a.payloadLen, a.flags]);
});

Deno.test("route table: exact tuple, two peers, move, delete only by owner, peer removal", () => {
  const t = new RouteTable<string>(1000);
  const k1 = routeKeyOf(ep(C1, 40000), ep(T, 80));
  const k2 = routeKeyOf(ep(C2, 40000), ep(T, 80));
  t.set(k1, "a", 0);
  t.set(k2, "b", 0);
  assert.equal(t.get(k1, 1), "a");
  assert.equal(t.get(k2, 1), "b");
  assert.equal(t.get(routeKeyOf(ep(C1, 40001), ep(T, 80)), 1), undefined);
  assert.equal(t.delete(k1, "b"), false, "b cannot delete a's route");
  t.set(k1, "b", 2);
  assert.equal(t.countOf("a"), 0);
  assert.equal(t.countOf("b"), 2);
  assert.equal(t.delete(k1, "b"), true);
  assert.equal(t.get(k1, 3), undefined);
  assert.equal(t.deletePeer("b"), 1);
  assert.equal(t.size, 0);
});

Deno.test("route table: idle expiry; lookups keep a route alive", () => {
  const t = new RouteTable<string>(100);
  const busy = routeKeyOf(ep(C1, 1), ep(T, 80));
  const idle = routeKeyOf(ep(C1, 2), ep(T, 80));
  t.set(busy, "a", 0);
  t.set(idle, "a", 0);
  for (let now = 10; now <= 250; now += 10) {
    assert.equal(t.get(busy, now), "a");
    t.expire(now);
  }
  assert.equal(t.get(idle, 250), undefined);
  assert.equal(t.size, 1);
  assert.equal(t.expired, 1);
  assert.equal(t.countOf("a"), 1);
  assert.equal(t.get(busy, 400), undefined, "expired on lookup after 150 ms idle");
  assert.equal(t.size, 0);
});

Deno.test("delay queue: bounded per key and in keys, expires, taken once", () => {
  const q = new DelayQueue({ ttlMs: 30_000, maxKeys: 2, maxPerKey: 2 });
  const p = (n: number) => new Uint8Array([n]);
  assert.ok(q.add("k1", p(1), 0));
  assert.ok(q.add("k1", p(2), 0));
  assert.equal(q.add("k1", p(3), 0), false);
  assert.ok(q.add("k2", p(4), 10));
  assert.equal(q.add("k3", p(5), 10), false);
  assert.equal(q.droppedFull, 2);
  assert.deepEqual(q.take("k1", 5).map((x) => x[0]), [1, 2]);
  assert.deepEqual(q.take("k1", 5), []);
  assert.equal(q.size, 1);
  assert.equal(q.expire(30_009), 0);
  assert.equal(q.expire(30_010), 1);
  assert.equal(q.size, 0);
  assert.ok(q.add("k4", p(6), 0));
  assert.deepEqual(q.take("k4", 30_000), [], "stale on take");
  assert.equal(q.expired, 2);
});

class Peer {
  batcher = new ReplyBatcher({ flushMs: 2 });
  constructor(readonly name: string, readonly deletesRoutes = false) {}
}

function records(p: Peer): Uint8Array[] {
  p.batcher.flush();
  const out = p.batcher.takeOutput();
  if (!out) return [];
  const recs: Uint8Array[] = [];
  for (let at = 0; at < out.length;) {
    const n = (out[at] << 8) | out[at + 1];
    for (let i = 0; i < n; i++) recs.push(out.subarray(at + 2 + i * 64, at + 2 + (i + 1) * 64));
    at += 2 + n * 64;
  }
  return recs;
}

Deno.test("dispatcher: two peers get only their own replies; no route is counted", () => {
  const d = new Dispatcher<Peer>();
  const a = new Peer("a"), b = new Peer("b");
  d.addPeer(a);
  d.addPeer(b);
  d.addRoute(a, routeKeyOf(ep(C1, 5000), ep(T, 80)), 0);
  d.addRoute(b, routeKeyOf(ep(C2, 5000), ep(T, 80)), 0);
  const ra = segment({ src: T, dst: C1, sport: 80, dport: 5000, seq: 111 });
  const rb = segment({ src: T, dst: C2, sport: 80, dport: 5000, seq: 222 });
  const stray = segment({ src: T, dst: C1, sport: 80, dport: 5001, flags: F.ACK });
  assert.equal(d.reply(ra, 1), a);
  assert.equal(d.reply(rb, 1), b);
  assert.equal(d.reply(ra, 1), a);
  assert.equal(d.reply(stray, 1), undefined);
  assert.equal(d.reply(new Uint8Array([0x45, 0]), 1), undefined);
  const ga = records(a), gb = records(b);
  assert.equal(ga.length, 2);
  assert.equal(gb.length, 1);
  assert.deepEqual([...ga[0].subarray(0, 40)], [...ra]);
  assert.deepEqual([...gb[0].subarray(0, 40)], [...rb]);
  assert.deepEqual(
    [d.counters.seen, d.counters.forwarded, d.counters.droppedNoRoute, d.counters.malformed],
    [5, 3, 1, 1],
  );
  d.removePeer(a);
  assert.equal(d.reply(ra, 2), undefined, "routes go with their peer");
  assert.equal(d.routes.size, 1);
});

Deno.test("dispatcher: SYN-ACK before CLIENT_ADD is delayed and flushed on registration", () => {
  const d = new Dispatcher<Peer>();
  const a = new Peer("a");
  d.addPeer(a);
  const synAck = segment({ src: T, dst: C1, sport: 80, dport: 6000, flags: F.SYN | F.ACK });
  const ack = segment({ src: T, dst: C1, sport: 80, dport: 6000, flags: F.ACK });
  const rst = segment({ src: T, dst: C1, sport: 80, dport: 6001, flags: F.RST });
  assert.equal(d.reply(synAck, 0), undefined);
  assert.equal(d.reply(ack, 0), undefined);
  assert.equal(d.reply(rst, 0), undefined);
  assert.equal(d.counters.delayed, 2);
  assert.equal(d.counters.droppedNoRoute, 1);
  d.addRoute(a, routeKeyOf(ep(C1, 6000), ep(T, 80)), 5);
  const got = records(a);
  assert.equal(got.length, 1);
  assert.deepEqual([...got[0].subarray(0, 40)], [...synAck]);
  assert.equal(d.counters.delayedFlushed, 1);
  d.tick(30_001);
  assert.equal(d.delay.size, 0, "the RST expired after 30 s");
  d.addRoute(a, routeKeyOf(ep(C1, 6001), ep(T, 80)), 30_002);
  assert.equal(records(a).length, 0);
});

Deno.test("dispatcher: tick flushes due batches and expires idle routes", () => {
  const d = new Dispatcher<Peer>({ routeTtlMs: 1000 });
  const a = new Peer("a");
  d.addPeer(a);
  d.addRoute(a, routeKeyOf(ep(C1, 7000), ep(T, 80)), 0);
  d.reply(segment({ src: T, dst: C1, sport: 80, dport: 7000 }), 0);
  assert.deepEqual(d.tick(1), []);
  assert.deepEqual(d.tick(2), [a]);
  d.tick(2000);
  assert.equal(d.routes.size, 0);
});

Deno.test("dispatcher: another owner's live route is refused and counted, not taken", () => {
  const d = new Dispatcher<Peer>();
  const a = new Peer("a", true), b = new Peer("b", true), c = new Peer("c");
  for (const p of [a, b, c]) d.addPeer(p);
  const k1 = routeKeyOf(ep(C1, 7000), ep(T, 80)), k2 = routeKeyOf(ep(C1, 7001), ep(T, 80));
  assert.equal(d.addRoute(a, k1, 0), undefined);
  assert.equal(d.addRoute(a, k1, 1), undefined, "its own route again");
  assert.equal(d.addRoute(b, k1, 2), a, "b's registration refused: a holds the route");
  assert.equal(d.counters.routesContested, 1);
  const r = segment({ src: T, dst: C1, sport: 80, dport: 7000, flags: F.ACK });
  assert.equal(d.reply(r, 3), a, "the owner keeps its replies");
  assert.equal(d.deleteRoute(b, k1), false, "b cannot delete a's route");
  // A C tcpcopy's routes are its own too (owner = its connection).
  d.addRoute(c, k2, 4);
  assert.equal(d.addRoute(a, k2, 5), c);
  assert.equal(d.counters.routesContested, 2);
  // A peer that left no longer holds anything.
  d.removePeer(a);
  assert.equal(d.addRoute(b, k1, 6), undefined);
  assert.equal(d.reply(r, 7), b);
  // An expired route is free again.
  assert.equal(d.addRoute(a, k2, 4 + d.opts.routeTtlMs), undefined);
});

Deno.test("dispatcher: connections of one owner share its routes; the quota evicts its own", () => {
  const owner = { id: "instance" };
  const mk = (name: string, o?: object) => Object.assign(new Peer(name, true), { owner: o });
  const a1 = mk("a1", owner), a2 = mk("a2", owner), x = mk("x");
  const d = new Dispatcher<Peer>({ maxPeerRoutes: 10 });
  for (const p of [a1, a2, x]) d.addPeer(p);
  const k = (p: number) => routeKeyOf(ep(C1, p), ep(T, 80));
  assert.equal(d.addRoute(a1, k(1), 0), undefined);
  assert.equal(d.addRoute(a2, k(1), 1), undefined, "same instance, other connection: moved");
  assert.equal(d.reply(segment({ src: T, dst: C1, sport: 80, dport: 1 }), 2), a2);
  assert.equal(d.counters.routesContested, 0);
  for (let p = 100; p < 200; p++) d.addRoute(x, k(p), 3);
  assert.equal(d.routes.countOf(x), 10, "x holds its quota, no more");
  assert.equal(d.routes.overQuota, 90);
  assert.equal(d.routes.countOf(a1), 1, "the other owner's route survived x's flood");
  assert.equal(d.reply(segment({ src: T, dst: C1, sport: 80, dport: 199 }), 4), x, "newest kept");
  d.removePeer(a2);
  assert.equal(d.routes.countOf(a1), 0, "a2's connection took its routes along");
});

Deno.test("dispatcher: an authenticated peer reclaims a tuple an unauthenticated one pre-registered", () => {
  const d = new Dispatcher<Peer>();
  const stranger = new Peer("c"), other = new Peer("d");
  const ours = Object.assign(new Peer("ours", true), { authenticated: true, owner: { id: "x" } });
  const theirs = Object.assign(new Peer("theirs", true), {
    authenticated: true,
    owner: { id: "y" },
  });
  for (const p of [stranger, other, ours, theirs]) d.addPeer(p);
  const k = routeKeyOf(ep(C1, 9000), ep(T, 80));
  d.addRoute(stranger, k, 0);
  assert.equal(d.addRoute(other, k, 1), stranger, "unauthenticated: first come");
  assert.equal(d.addRoute(ours, k, 2), undefined, "authenticated takes it");
  assert.equal(d.counters.routesReclaimed, 1);
  assert.equal(d.reply(segment({ src: T, dst: C1, sport: 80, dport: 9000 }), 3), ours);
  assert.equal(d.addRoute(stranger, k, 4), ours, "and keeps it");
  assert.equal(d.addRoute(theirs, k, 5), ours, "against another authenticated instance too");
  assert.equal(d.counters.routesContested, 3);
});

Deno.test("route table: expiry, eviction and deletion agree with a simple model (seeded)", () => {
  const rnd = randomInt(mulberry32(7));
  const ttl = 50;
  const t = new RouteTable<string>(ttl, 30, 12);
  // the model: routes alive (seen within the TTL); the table may only have evicted some
  const model = new Map<string, { peer: string; seen: number }>();
  let now = 0;
  for (let step = 0; step < 20_000; step++) {
    now += rnd(3);
    const key = `k${rnd(400)}`, peer = `p${rnd(4)}`;
    switch (rnd(5)) {
      case 0:
      case 1:
        t.set(key, peer, now);
        model.set(key, { peer, seen: now });
        break;
      case 2: {
        const got = t.get(key, now);
        const m = model.get(key);
        const alive = m !== undefined && now - m.seen < ttl;
        assert.equal(got, alive ? m.peer : undefined, `step ${step}: ${key}`);
        if (alive) m.seen = now;
        break;
      }
      case 3:
        if (t.delete(key, peer) && model.has(key)) {
          assert.equal(model.get(key)!.peer, peer);
          model.delete(key);
        }
        break;
      case 4:
        t.expire(now);
        break;
    }
    for (const [k, m] of model) {
      const held = t.peek(k, now);
      if (now - m.seen >= ttl) {
        assert.equal(held, undefined, `step ${step}: ${k} expired`);
        model.delete(k);
      } else if (held === undefined) model.delete(k); // evicted (cap or quota)
      else assert.equal(held, m.peer, `step ${step}: ${k}`);
    }
    assert.ok(t.size <= 30);
    for (let p = 0; p < 4; p++) assert.ok(t.countOf(`p${p}`) <= 12);
  }
  assert.ok(t.evicted + t.overQuota > 0, "the caps were exercised");
  assert.ok(t.expired > 0, "expiry was exercised");
});
