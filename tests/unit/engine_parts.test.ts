import {
  BLOCK_ROWS,
  FLOAT_COLUMNS,
  floatStart,
  INT_COLUMNS,
  SCRATCH,
  SessionSlab,
  type SlabRow,
} from "../../lib/engine/session_slab.ts";
import assert from "node:assert/strict";
import { TupleAllocator, tupleKey, wrapPort } from "../../lib/engine/allocator.ts";
import { hash32, hashTuple, unit } from "../../lib/engine/hash.ts";
import { LONE_MAX, LoneArena, Slab, SLAB_MAX, SLAB_MIN, view } from "../../lib/engine/slab.ts";
import { TupleMap } from "../../lib/engine/tuple_map.ts";
import { GRAIN_MS, TimerQueue } from "../../lib/engine/timer_queue.ts";
import { SHRINK_MIN, TimerHeap } from "../../lib/engine/heap.ts";
import { mulberry32 } from "../helpers/prng.ts";
import { ip } from "../helpers/endpoints.ts";
import { internAddr } from "../../lib/engine/endpoint.ts";
import {
  emptyStats,
  type EndReason,
  isLossReason,
  lossRule,
  type LostStats,
} from "../../lib/engine/stats.ts";
import { ClientStream, CLOSE_FIN, DATA, DUPLICATE, OUT_OF_ORDER } from "../../lib/engine/stream.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("allocator: preferred tuple, deterministic probing, quarantine", () => {
  const a = new TupleAllocator(1000);
  assert.equal(a.take(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 80, 0), 5000);
  assert.equal(a.take(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 80, 0), 5001);
  assert.equal(a.take(ip("10.0.0.1"), 5000, ip("10.9.0.4"), 80, 0), 5000); // other target: no conflict
  a.release(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 80, 10);
  a.release(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 80, 10); // a second release changes nothing
  assert.equal(a.size, 2);
  assert.equal(a.take(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 80, 500), 5002); // still quarantined
  assert.equal(a.take(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 80, 1010), 5000);
  assert.equal(wrapPort(65536), 1024);
  assert.equal(wrapPort(65535), 65535);
});

Deno.test("hash: deterministic, seed-dependent, roughly uniform", () => {
  assert.equal(hash32("a|1|b|2", 7), hash32("a|1|b|2", 7));
  assert.notEqual(hash32("a|1|b|2", 7), hash32("a|1|b|2", 8));
  let below = 0;
  for (let i = 0; i < 10000; i++) if (unit(hash32(`c${i}`, 1), 2) < 0.5) below++;
  assert.ok(below > 4700 && below < 5300, `${below}`);
});

Deno.test("hash: hashTuple equals hash32 of the tuple key (the flow hash is unchanged)", () => {
  const addrs = ["10.0.0.1", "192.168.100.254", "2001:db8::1", "::", ""];
  const ports = [0, 1, 9, 10, 80, 99, 100, 1000, 9999, 10000, 12345, 65535];
  for (const a of addrs) {
    for (const b of addrs) {
      for (const ap of ports) {
        for (const bp of [0, 10, 8080, 65535]) {
          for (const seed of [0, 0x7c0c, 0xffffffff]) {
            assert.equal(hashTuple(a, ap, b, bp, seed), hash32(tupleKey(a, ap, b, bp), seed));
          }
        }
      }
    }
  }
});

Deno.test("tuple map: IPv6 tuples, and IPv4 and IPv6 kept apart", () => {
  const m = new TupleMap<string>();
  const c6 = ip("2001:db8::10"), t6 = ip("2001:db8::2");
  m.set(c6, 5000, t6, 80, "a");
  m.set(ip("2001:db8::10"), 5000, ip("2001:db8::3"), 80, "b"); // other server, same chain
  m.set(ip("2001:db8::11"), 5000, t6, 80, "c");
  m.set(ip("0.0.0.0"), 5000, ip("0.0.0.0"), 80, "v4"); // IPv4 zeros are not ::
  m.set(ip("::"), 5000, ip("::"), 80, "v6");
  assert.equal(m.size, 5);
  assert.equal(m.get(ip("2001:db8::10"), 5000, ip("2001:db8::2"), 80), "a"); // equal bytes
  assert.equal(m.get(c6, 5000, ip("2001:db8::3"), 80), "b");
  assert.equal(m.get(c6, 5001, t6, 80), undefined);
  assert.equal(m.get(c6, 5000, t6, 81), undefined);
  assert.equal(m.get(ip("0.0.0.0"), 5000, ip("0.0.0.0"), 80), "v4");
  assert.equal(m.get(ip("::"), 5000, ip("::"), 80), "v6");
  assert.equal(m.delete(c6, 5000, t6, 80), true);
  assert.equal(m.get(c6, 5000, ip("2001:db8::3"), 80), "b");
  assert.deepEqual([...m.values()].sort(), ["b", "c", "v4", "v6"]);
});

Deno.test("stream: turns by online ACK, trimming, reordering, FIN turn", () => {
  const s = new ClientStream(101);
  assert.equal(s.add({ seq: 101, data: bytes("GET /a\n"), ack: 9 }), 0);
  assert.equal(s.add({ seq: 108, data: bytes("GET /b\n"), ack: 9 }), 0); // pipelined, same turn
  assert.equal(s.add({ seq: 101, data: bytes("GET"), ack: 9 }), DUPLICATE);
  assert.equal(s.add({ seq: 121, data: bytes("\n"), ack: 50 }), OUT_OF_ORDER);
  assert.equal(s.add({ seq: 112, data: bytes("/b\nGET /c"), ack: 50 }), 0); // overlap trimmed
  s.fin(122, 60);
  assert.equal(s.end, 122);
  const kinds = s.turns.map((t) => [t.kind, t.start, t.end, t.ack]);
  assert.deepEqual(kinds, [[DATA, 101, 115, 9], [DATA, 115, 122, 50], [CLOSE_FIN, 122, 122, 60]]);
  const text = new TextDecoder().decode(
    new Uint8Array(s.chunks.flatMap((c) => [...c.data])),
  );
  assert.equal(text, "GET /a\nGET /b\nGET /c\n");
  assert.equal(s.requests, 2);
});

Deno.test("stream: out-of-order segments and the FIN share one record, either may come first", () => {
  // The FIN first, then a segment beyond a hole, then the hole filled.
  const a = new ClientStream(101);
  a.fin(120, 9);
  assert.deepEqual([a.finSeq, a.hasHole, a.ooo.length], [120, true, 0]);
  assert.equal(a.add({ seq: 110, data: bytes("0123456789"), ack: 9 }), OUT_OF_ORDER);
  assert.deepEqual([a.finSeq, a.ooo.length, a.bytes, a.closed], [120, 1, 10, false]);
  assert.equal(a.add({ seq: 101, data: bytes("GET /abc\n"), ack: 9 }), 0);
  assert.deepEqual([a.end, a.ooo.length, a.hasHole, a.closed, a.finSeq], [
    120,
    0,
    false,
    true,
    120,
  ]);
  // A segment beyond a hole first, then the FIN, then the hole filled: both kept.
  const b = new ClientStream(101);
  assert.equal(b.add({ seq: 105, data: bytes("/x\n"), ack: 9 }), OUT_OF_ORDER);
  assert.deepEqual([b.ooo.length, b.finSeq, b.rstSeq, b.hasHole], [1, undefined, undefined, true]);
  b.fin(108, 9);
  assert.deepEqual([b.ooo.length, b.finSeq, b.closed], [1, 108, false]);
  assert.equal(b.add({ seq: 101, data: bytes("GET "), ack: 9 }), 0);
  assert.deepEqual([b.end, b.ooo.length, b.hasHole, b.closed], [108, 0, false, true]);
  const text = new TextDecoder().decode(new Uint8Array(b.chunks.flatMap((c) => [...c.data])));
  assert.equal(text, "GET /x\n");
  // A stream that never had either has the shared empty list.
  const c = new ClientStream(1);
  assert.equal(c.add({ seq: 1, data: bytes("x"), ack: 9 }), 0);
  assert.deepEqual([c.ooo.length, c.finSeq, c.hasHole], [0, undefined, false]);
});

Deno.test("tuple map: exact 4-tuple match, chains, delete", () => {
  const m = new TupleMap<string>();
  m.set(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 80, "a");
  m.set(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 81, "b"); // same client port, other server port
  m.set(ip("10.0.0.1"), 5000, ip("10.9.0.3"), 80, "c"); // same client port, other server address
  m.set(ip("10.0.0.2"), 5000, ip("10.9.0.1"), 80, "d");
  assert.equal(m.size, 4);
  assert.equal(m.get(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 80), "a");
  assert.equal(m.get(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 81), "b");
  assert.equal(m.get(ip("10.0.0.1"), 5000, ip("10.9.0.3"), 80), "c");
  assert.equal(m.get(ip("10.0.0.1"), 5001, ip("10.9.0.1"), 80), undefined);
  m.set(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 81, "b2");
  assert.equal(m.size, 4);
  assert.equal(m.delete(ip("10.0.0.1"), 5000, ip("10.9.0.3"), 80), true); // head of the chain
  assert.equal(m.delete(ip("10.0.0.1"), 5000, ip("10.9.0.3"), 80), false);
  assert.equal(m.get(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 81), "b2");
  assert.equal(m.delete(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 80), true); // tail of the chain
  assert.deepEqual([...m.values()].sort(), ["b2", "d"]);
  assert.equal(m.delete(ip("10.0.0.1"), 5000, ip("10.9.0.1"), 81), true);
  assert.equal(m.delete(ip("10.0.0.2"), 5000, ip("10.9.0.1"), 80), true);
  assert.equal(m.size, 0);
  assert.deepEqual([...m.values()], []);
});

Deno.test("slab: copies are stable, separate and exact; large payloads stand alone", () => {
  const s = new Slab();
  const src = new Uint8Array(3000);
  const copies: Uint8Array[] = [];
  const want: number[][] = [];
  for (let i = 0; i < 40; i++) {
    const n = 1 + ((i * 97) % 700);
    src.fill(i, 0, n);
    const c = s.copy(src.subarray(0, n));
    copies.push(c);
    want.push(Array.from({ length: n }, () => i));
  }
  src.fill(255); // the capture buffer is reused: copies must not change
  for (let i = 0; i < copies.length; i++) assert.deepEqual(Array.from(copies[i]), want[i]);
  const big = new Uint8Array(SLAB_MAX).fill(9);
  const c = s.copy(big);
  assert.equal(c.length, SLAB_MAX);
  assert.equal(c.buffer.byteLength, SLAB_MAX); // a buffer of its own
  const v = view(c, 10, 20);
  assert.equal(v.length, 10);
  assert.equal(v.byteOffset, 10);
});

Deno.test("slab: trim keeps small buffers only, release forgets; views stay valid", () => {
  const s = new Slab();
  const a = s.copy(new Uint8Array(100).fill(1));
  assert.equal(s.capacity, SLAB_MIN);
  s.trim(); // small: kept
  assert.equal(s.capacity, SLAB_MIN);
  const big: Uint8Array[] = [];
  for (let i = 0; i < 8; i++) big.push(s.copy(new Uint8Array(3000).fill(2 + i)));
  assert.ok(s.capacity > SLAB_MIN, `${s.capacity}`);
  s.trim();
  assert.equal(s.capacity, 0);
  s.copy(new Uint8Array(10).fill(9));
  assert.equal(s.capacity, SLAB_MIN); // starts small again
  s.release();
  assert.equal(s.capacity, 0);
  assert.ok(a.every((b) => b === 1));
  big.forEach((v, i) => assert.ok(v.every((b) => b === 2 + i)));
});

Deno.test("stream: turnStartOf finds the turn holding a sequence number, across wrap-around", () => {
  // Reference: the last turn starting at or before seq, by a linear scan.
  const reference = (s: ClientStream, seq: number) => {
    for (let i = s.turns.length - 1; i >= s.turnHead; i--) {
      const t = s.turns[i];
      const le = ((seq - t.start) | 0) >= 0;
      if (le) return ((seq - t.end) | 0) < 0 || t.start === t.end ? t.start : seq;
    }
    return seq;
  };
  for (const start of [101, 0xffffff00]) {
    const s = new ClientStream(start);
    let seq = start, ack = 1;
    for (let i = 0; i < 200; i++) {
      const len = 1 + (i * 7919) % 300;
      s.add({ seq, data: new Uint8Array(len), ack });
      seq = (seq + len) >>> 0;
      ack += 10; // a new online ACK: every segment is a new turn
    }
    s.turnHead = 17;
    const first = s.turns[17].start;
    for (let k = -5; k < 40_000; k += 37) {
      const q = (first + k) >>> 0;
      assert.equal(s.turnStartOf(q), reference(s, q), `seq ${q}`);
    }
  }
});

Deno.test("end reasons: every lost.* counter is a loss reason, the normal ends are not", () => {
  const lossKeys = Object.keys(emptyStats().lost) as (keyof LostStats)[];
  for (const k of lossKeys) {
    assert.ok(isLossReason(k), k);
    assert.notEqual(lossRule(k), "none", k);
  }
  const normal: EndReason[] = ["closed", "client_reset", "idle", "evicted"];
  for (const r of normal) {
    assert.equal(isLossReason(r), false, r);
    assert.equal(lossRule(r), "none", r);
  }
  assert.equal(lossRule("shutdown"), "unsent"); // requests sent may still be served
  assert.equal(lossRule("timeout"), "unanswered");
});

Deno.test("tuple map: many IPv4 tuples, one port or one address, all found and removed", () => {
  const m = new TupleMap<number>();
  const t = ip("10.9.0.1");
  const near = (i: number) => ip(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  const addrs = Array.from({ length: 3000 }, (_, i) => near(i));
  for (let i = 0; i < 3000; i++) m.set(addrs[i], 40000, t, 80, i); // one port, many addresses
  for (let p = 0; p < 3000; p++) m.set(addrs[0], p, t, 80, -p - 1); // one address, many ports
  assert.equal(m.size, 6000);
  for (let i = 1; i < 3000; i++) assert.equal(m.get(near(i), 40000, t, 80), i);
  for (let p = 0; p < 3000; p++) assert.equal(m.get(addrs[0], p, t, 80), -p - 1);
  assert.equal(m.get(addrs[0], 40000, t, 80), 0);
  assert.equal(m.get(addrs[0], 40000, t, 81), undefined);
  assert.equal(m.get(ip("11.0.0.0"), 40000, t, 80), undefined);
  for (let i = 0; i < 3000; i++) assert.equal(m.delete(addrs[i], 40000, t, 80), true);
  for (let p = 0; p < 3000; p++) assert.equal(m.delete(addrs[0], p, t, 80), true);
  assert.equal(m.size, 0);
  assert.deepEqual([...m.values()], []);
});

Deno.test("tuple map: random sets and deletes agree with a Map (growth, shrinking, runs)", () => {
  const m = new TupleMap<number>();
  const ref = new Map<string, number>();
  let x = 12345;
  const rnd = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  const t = ip("10.9.0.1"), t6 = ip("2001:db8::2");
  for (let step = 0; step < 60_000; step++) {
    // Few distinct tuples (long probe runs after deletions), both families, mixed too.
    const a = rnd(40), port = 1024 + rnd(200), v6 = rnd(10) === 0, mixed = rnd(50) === 0;
    const near = v6 ? ip(`2001:db8::${a}`) : ip(`10.0.${a >> 4}.${a & 15}`);
    const far = mixed ? (v6 ? t : t6) : v6 ? t6 : t;
    const key = `${v6}|${mixed}|${a}|${port}`;
    const phase = Math.floor(step / 20_000); // fill, churn, empty
    const op = rnd(10);
    if (op < (phase === 0 ? 7 : phase === 1 ? 5 : 1)) {
      m.set(near, port, far, 80, step);
      ref.set(key, step);
    } else {
      assert.equal(m.delete(near, port, far, 80), ref.delete(key));
    }
    if (step % 97 === 0) assert.equal(m.get(near, port, far, 80), ref.get(key));
    assert.equal(m.size, ref.size);
  }
  assert.deepEqual([...m.values()].sort(), [...ref.values()].sort());
});

Deno.test("internAddr: equal bytes, never the caller's buffer, shared for a recurring address", () => {
  const buf = ip("192.0.2.7");
  const a = internAddr(buf);
  assert.notEqual(a, buf);
  assert.deepEqual([...a], [192, 0, 2, 7]);
  buf[3] = 8; // the parser reuses its buffer for the next packet
  assert.deepEqual([...a], [192, 0, 2, 7]);
  const b = internAddr(buf);
  assert.deepEqual([...b], [192, 0, 2, 8]);
  assert.equal(internAddr(ip("192.0.2.7")), a);
  const v6 = internAddr(ip("2001:db8::7"));
  assert.deepEqual(v6, ip("2001:db8::7"));
  assert.equal(internAddr(ip("2001:db8::7")), v6);
  // A zero IPv4 address and a zero IPv6 address are different addresses.
  assert.equal(internAddr(ip("0.0.0.0")).length, 4);
  assert.equal(internAddr(ip("::")).length, 16);
  for (let i = 0; i < 20_000; i++) {
    const x = ip(`10.${i >> 8 & 255}.${i & 255}.1`);
    assert.deepEqual(internAddr(x), x);
  }
});

Deno.test("session slab: rows zeroed, reused after release, blocks added, ended rows scratch", () => {
  const slab = new SessionSlab();
  const row = (): SlabRow => ({ ints: SCRATCH.ints, floats: SCRATCH.floats, ib: 0 });
  const rows = Array.from({ length: BLOCK_ROWS + 5 }, () => {
    const r = row();
    slab.take(r);
    return r;
  });
  assert.equal(slab.live, BLOCK_ROWS + 5);
  assert.equal(slab.bytes, 2 * BLOCK_ROWS * (INT_COLUMNS * 4 + FLOAT_COLUMNS * 8));
  // Every column of every row of a block is its own: a row's floats follow its integers and end
  // where the next row starts (a value at the last column of each is read back unchanged).
  for (let i = 0; i + 1 < BLOCK_ROWS; i++) {
    const r = rows[i], next = rows[i + 1];
    assert.equal(r.ints.buffer, r.floats.buffer);
    assert.equal(floatStart(r.ib) * 8, (r.ib + INT_COLUMNS) * 4);
    assert.equal((floatStart(r.ib) + FLOAT_COLUMNS) * 8, next.ib * 4);
  }
  for (const r of rows) {
    r.ints.fill(-1, r.ib, r.ib + INT_COLUMNS - 1); // all but the row number
    r.floats[floatStart(r.ib)] = 0.25;
    r.floats[floatStart(r.ib) + FLOAT_COLUMNS - 1] = -0.5;
  }
  for (const r of rows) {
    assert.equal(r.ints[r.ib], -1);
    assert.equal(r.ints[r.ib + INT_COLUMNS - 2], -1);
    assert.equal(r.floats[floatStart(r.ib)], 0.25);
    assert.equal(r.floats[floatStart(r.ib) + FLOAT_COLUMNS - 1], -0.5);
  }
  assert.notEqual(rows[0].ints, rows[BLOCK_ROWS].ints); // a second block
  const a = rows[7];
  a.ints[a.ib] = 42;
  a.floats[floatStart(a.ib) + 3] = 1.5;
  const block = a.ints, at = a.ib;
  slab.release(a);
  assert.equal(a.ints, SCRATCH.ints); // a late write goes nowhere that matters
  a.ints[a.ib] = 99;
  assert.equal(block[at], 42);
  slab.release(a); // twice: nothing
  assert.equal(slab.live, BLOCK_ROWS + 4);
  const b = row();
  slab.take(b); // the freed row again, zeroed
  assert.equal(b.ints, block);
  assert.equal(b.ib, at);
  assert.equal(b.ints[b.ib], 0);
  assert.equal(b.floats[floatStart(b.ib) + 3], 0);
  for (const r of rows) if (r !== a) slab.release(r);
  slab.release(b);
  assert.equal(slab.live, 0);
});

Deno.test("timer queue: pops in deadline order across heap and buckets, like a sorted list", () => {
  const rnd = mulberry32(0x71e3);
  const q = new TimerQueue<number>();
  const ref: { at: number; id: number }[] = [];
  let now = 0, id = 0, far = 0;
  for (let step = 0; step < 20_000; step++) {
    const r = rnd();
    if (r < 0.55) {
      // near (delayed ACK, RTO) and far (keep-alive) deadlines, fractions included
      const at = now + (rnd() < 0.5 ? rnd() * 300 : 5000 + rnd() * 60_000);
      q.push(at, id);
      ref.push({ at, id: id++ });
    } else if (r < 0.97) {
      now += rnd() * 50;
      for (;;) {
        const at = q.peek();
        if (at === undefined || at > now) break;
        ref.sort((a, b) => a.at - b.at);
        const want = ref.shift()!;
        assert.equal(at, want.at);
        assert.equal(q.peekItem(), want.id); // random fractions: no ties
        q.pop();
      }
      if (ref.length > 0) assert.equal(q.peek(), Math.min(...ref.map((e) => e.at)));
      // Far deadlines stay in their buckets until their grain comes (the heap stays small).
      assert.ok(q.farSize >= ref.filter((e) => e.at >= now + GRAIN_MS).length);
    } else {
      const keep = (_at: number, item: number) => item % 3 !== 0;
      q.retain(keep);
      for (let i = ref.length - 1; i >= 0; i--) if (!keep(ref[i].at, ref[i].id)) ref.splice(i, 1);
    }
    far = Math.max(far, q.farSize);
    assert.equal(q.size, ref.length);
  }
  assert.ok(far > 100, `far deadlines went to the buckets (${far})`);
});

Deno.test("timer queue: peekCurrent skips stale heap entries, moves no bucket", () => {
  const q = new TimerQueue<string>();
  q.push(100_000, "far");
  q.push(10, "stale");
  assert.equal(q.peek(), 10);
  assert.equal(q.peekItem(), "stale"); // takes the bucket at 10 into the heap
  q.push(20, "near");
  q.push(30, "stale");
  const live = (_at: number, s: string) => s !== "stale";
  assert.equal(q.peekCurrent(live), 20);
  q.pop();
  assert.equal(q.peekCurrent(live), 100_000);
  assert.equal(q.farSize, 1, "the far bucket is still a bucket");
  assert.equal(q.size, 1);
  assert.equal(q.peekItem(), "far");
  assert.equal(q.farSize, 0);
});

Deno.test("lone arena: copies are stable and exact, share bounded blocks, large ones stand alone", () => {
  const a = new LoneArena();
  const src = new Uint8Array(100);
  const copies: Uint8Array[] = [];
  for (let i = 0; i < 50; i++) {
    src.fill(i);
    copies.push(a.copy(src));
  }
  src.fill(255); // the capture buffer is reused: the copies must not change
  copies.forEach((c, i) => assert.deepEqual(c, new Uint8Array(100).fill(i)));
  assert.equal(copies[0].buffer, copies[1].buffer, "one block for several payloads");
  const blocks = new Set(copies.map((c) => c.buffer));
  assert.equal(blocks.size, Math.ceil(50 / Math.floor(SLAB_MIN / 100)));
  for (const b of blocks) assert.equal(b.byteLength, SLAB_MIN, "a block pins at most SLAB_MIN");
  const big = a.copy(new Uint8Array(LONE_MAX + 1).fill(7));
  assert.equal(big.buffer.byteLength, LONE_MAX + 1); // a buffer of its own
  assert.equal(a.copy(new Uint8Array(0)).length, 0);
});

Deno.test("timer heap: gives its room back once mostly empty, keeping the deadline order", () => {
  const h = new TimerHeap<number>();
  const rnd = mulberry32(7);
  const n = SHRINK_MIN * 4;
  const want: number[] = [];
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rnd() * 1e6) + rnd();
    h.push(at, i);
    want.push(at);
  }
  want.sort((a, b) => a - b);
  assert.equal(h.room, n);
  const got: number[] = [];
  for (let i = 0; i < n - 100; i++) {
    got.push(h.peek()!);
    h.pop();
  }
  // Shrunk along the way (down to at most SHRINK_MIN of room), not the n held before.
  assert.equal(h.size, 100);
  assert.ok(h.room < SHRINK_MIN, `room ${h.room}`);
  // Pushes after a shrink, then the rest in order.
  for (let i = 0; i < 50; i++) {
    const at = want[n - 1] + 1 + i;
    h.push(at, -1);
    want.push(at);
  }
  while (h.size > 0) {
    got.push(h.peek()!);
    h.pop();
  }
  assert.deepEqual(got, want);
  // A retain that leaves a few gives the room back too.
  for (let i = 0; i < n; i++) h.push(i, i);
  h.retain((_at, v) => v < 10);
  assert.equal(h.size, 10);
  assert.equal(h.room, 10);
  assert.deepEqual([h.peek(), h.peekItem()], [0, 0]);
});

Deno.test("tuple map: minSlots is a floor the table starts at and never shrinks below", () => {
  const slots = (m: TupleMap<number>) => (m as unknown as { mask: number }).mask + 1;
  const t = ip("10.9.0.1"), c = ip("10.0.0.7");
  const floored = new TupleMap<number>(512), plain = new TupleMap<number>();
  assert.equal(slots(floored), 512);
  for (const m of [floored, plain]) {
    for (let round = 0; round < 3; round++) { // ~100 in, all out: the comparer's ticks
      for (let p = 0; p < 100; p++) m.set(c, 1024 + p, t, 80, p);
      for (let p = 0; p < 100; p++) assert.equal(m.get(c, 1024 + p, t, 80), p);
      for (let p = 0; p < 100; p++) assert.equal(m.delete(c, 1024 + p, t, 80), true);
    }
  }
  assert.equal(slots(floored), 512);
  assert.equal(slots(plain), 16); // the default floor: an emptied map gives its room back
  assert.equal(slots(new TupleMap<number>(300)), 512); // rounded up to a power of two
});
