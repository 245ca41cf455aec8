/**
 * intercept's route table keeps its routes in typed arrays (issue 14): a hash index of key code
 * units (key_index.ts) and slots reused through a free list, grown and rebuilt smaller. These
 * tests check the index against a Map, slot reuse, and that growing and shrinking keep every
 * route, the expiry order and each owner's order.
 */
import assert from "node:assert/strict";
import { KeyIndex } from "../../lib/tunnel/key_index.ts";
import { RouteTable } from "../../lib/tunnel/routing.ts";
import { routeKeyOf } from "../../lib/tunnel/route_key.ts";
import { PAGE_SLOTS, SlotPages } from "../../lib/tunnel/slot_pages.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";

const T = { addr: new Uint8Array([10, 0, 0, 2]), port: 80 };
/** Route key of client port `p` (IPv4) or of an IPv6 client. */
const key4 = (p: number) => routeKeyOf({ addr: new Uint8Array([10, 1, p >> 16, 0]), port: p }, T);

Deno.test("key index: agrees with a Map through inserts, removals and slot reuse (seeded)", () => {
  const int = randomInt(mulberry32(0x5eed));
  const slots = 256;
  const ix = new KeyIndex(3, slots);
  const model = new Map<string, number>(); // key -> slot
  const free: number[] = Array.from({ length: slots }, (_, i) => slots - 1 - i);
  // few distinct keys with short code units: many share a table entry, so probe runs are long
  const keyOf = (n: number) => String.fromCharCode(n % 7, (n >> 3) % 5, n);
  for (let step = 0; step < 50_000; step++) {
    const k = keyOf(int(400));
    const held = model.get(k);
    if (held === undefined && free.length > 0 && int(3) > 0) {
      const slot = free.pop()!;
      ix.insert(k, slot);
      model.set(k, slot);
    } else if (held !== undefined && int(2) === 0) {
      ix.remove(held);
      model.delete(k);
      free.push(held);
    }
    assert.equal(ix.find(k), model.get(k) ?? -1, `step ${step}`);
    if (step % 997 === 0) {
      for (let n = 0; n < 400; n++) assert.equal(ix.find(keyOf(n)), model.get(keyOf(n)) ?? -1);
    }
  }
  assert.equal(ix.size, model.size);
  // renumbered into fewer slots: every key found under its new number, removed ones gone
  const renum = new Int32Array(slots).fill(-1);
  let to = 0;
  for (const [k, slot] of model) {
    if (to < 50) renum[slot] = to++;
    else ix.remove(slot), model.delete(k);
  }
  ix.renumber(renum, 64);
  for (const [k, slot] of model) assert.equal(ix.find(k), renum[slot]);
  assert.equal(ix.size, model.size);
  assert.equal(ix.find(keyOf(401)), -1);
});

Deno.test("slot pages: grow by pages without moving what they hold", () => {
  const p = new SlotPages(Int32Array, 3);
  p.grow(1);
  assert.equal(p.capacity, PAGE_SLOTS);
  p.set(PAGE_SLOTS - 1, 7, 2);
  const first = p.pages[0];
  p.grow(3 * PAGE_SLOTS + 1);
  assert.equal(p.capacity, 4 * PAGE_SLOTS);
  assert.equal(p.pages[0], first, "the first page stays where it was");
  assert.equal(p.get(PAGE_SLOTS - 1, 2), 7);
  p.set(3 * PAGE_SLOTS, -5, 0);
  assert.equal(p.get(3 * PAGE_SLOTS), -5);
  assert.equal(p.get(3 * PAGE_SLOTS, 1), 0);
  assert.equal(p.bytes, 4 * PAGE_SLOTS * 3 * 4);
});

Deno.test("route table: a deleted route's slot is reused, the old key stays gone", () => {
  const t = new RouteTable<string>(1000);
  for (let p = 1; p <= PAGE_SLOTS; p++) t.set(key4(p), "a", 0); // every slot of a first page
  assert.equal(t.capacity, PAGE_SLOTS);
  assert.equal(t.delete(key4(3), "a"), true);
  t.set(key4(PAGE_SLOTS + 1), "b", 1);
  assert.equal(t.get(key4(3), 2), undefined);
  assert.equal(t.get(key4(PAGE_SLOTS + 1), 2), "b");
  for (let p = 1; p <= PAGE_SLOTS; p++) if (p !== 3) assert.equal(t.get(key4(p), 2), "a");
  assert.equal(t.size, PAGE_SLOTS);
  assert.equal(t.capacity, PAGE_SLOTS, "no growth: the freed slot was taken");
});

Deno.test("route table: growing and shrinking keep every route, the expiry order and owners' order", () => {
  const a = { id: "a" }, b = { id: "b" };
  const owners = new Map([["a1", a], ["a2", a], ["b1", b]]);
  const t = new RouteTable<string>(100_000, 1_000_000, 1_000_000, (p) => owners.get(p) ?? p);
  // 20,000 routes at times 0..19,999 ms over three connections of two owners: the arrays grow
  for (let i = 0; i < 20_000; i++) t.set(key4(i), i % 3 === 0 ? "b1" : i % 2 ? "a1" : "a2", i);
  assert.ok(t.capacity >= 20_000);
  assert.equal(t.size, 20_000);
  assert.equal(t.countOf("a1"), 13_333);
  // keep every 50th route alive, delete the rest: the table is rebuilt smaller at the sweep
  const kept: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const peer = i % 3 === 0 ? "b1" : i % 2 ? "a1" : "a2";
    if (i % 50 === 0) kept.push(i);
    else assert.equal(t.delete(key4(i), peer), true, `route ${i}`);
  }
  assert.equal(t.size, kept.length);
  t.expire(20_000);
  assert.equal(t.capacity, PAGE_SLOTS, "rebuilt smaller");
  for (const i of kept) assert.ok(t.peek(key4(i), 20_000) !== undefined, `route ${i} kept`);
  // expiry order kept: at each time only the route placed 100 s before goes
  for (const i of kept) {
    assert.equal(t.expire(i + 100_000), 1, `route ${i} expires at ${i + 100_000}, not before`);
    assert.equal(t.peek(key4(i), i + 100_000), undefined);
  }
  assert.equal(t.size, 0);
  // owners' order kept through a rebuild: the quota still evicts the oldest registration
  const q = new RouteTable<string>(1_000_000, 1_000_000, 5000, (p) => owners.get(p) ?? p);
  for (let i = 0; i < 10_000; i++) q.set(key4(i), "b1", i);
  for (let i = 0; i < 4990; i++) q.delete(key4(i + 5000), "b1");
  q.expire(20_000); // 10 routes (9990..9999) in 5 pages: rebuilt
  assert.equal(q.capacity, PAGE_SLOTS);
  for (let i = 0; i < 4990; i++) q.set(key4(20_000 + i), "b1", 20_001);
  assert.equal(q.overQuota, 5000, "at the quota, nothing more evicted yet");
  q.set(key4(30_000), "b1", 20_002);
  assert.equal(q.overQuota, 5001);
  assert.equal(q.peek(key4(9990), 20_003), undefined, "the oldest registration went");
  assert.equal(q.peek(key4(9991), 20_003), "b1");
  assert.equal(q.peek(key4(24_989), 20_003), "b1");
  const small = new RouteTable<string>(1_000_000, 1_000_000, 3);
  for (let i = 0; i < 4000; i++) small.set(key4(i), `p${i}`, i); // grows, one route per owner
  for (let i = 0; i < 3998; i++) small.delete(key4(i), `p${i}`);
  small.expire(5000); // rebuilt
  assert.equal(small.capacity, PAGE_SLOTS);
  small.set(key4(5000), "p3999", 5001);
  small.set(key4(5001), "p3999", 5002);
  small.set(key4(5002), "p3999", 5003);
  assert.equal(small.peek(key4(3999), 5004), undefined, "p3999's oldest went at its quota");
  assert.equal(small.peek(key4(5000), 5004), "p3999");
  assert.equal(small.peek(key4(3998), 5004), "p3998");
});

Deno.test("route table: a connection's routes registered before it authenticated go with it", () => {
  const conn: { owner?: object } = {};
  const t = new RouteTable<typeof conn>(1000, 1000, 1000, (p) => p.owner ?? p);
  t.set(key4(1), conn, 0);
  conn.owner = { id: "instance" }; // authenticated later (a peer on --allow may do that)
  t.set(key4(2), conn, 1);
  assert.equal(t.deletePeer(conn), 2);
  assert.equal(t.size, 0);
});

Deno.test("route table: IPv4 and IPv6 keys side by side", () => {
  const t = new RouteTable<string>(1000);
  const v6 = (p: number) =>
    routeKeyOf(
      { addr: new Uint8Array(16).fill(p & 255), port: p },
      { addr: new Uint8Array(16).fill(9), port: 443 },
    );
  for (let p = 0; p < 500; p++) {
    t.set(key4(p), "v4", p);
    t.set(v6(p), "v6", p);
  }
  for (let p = 0; p < 500; p += 2) t.delete(v6(p), "v6");
  for (let p = 0; p < 500; p++) {
    assert.equal(t.get(key4(p), 600), "v4");
    assert.equal(t.get(v6(p), 600), p % 2 ? "v6" : undefined);
  }
  assert.throws(() => t.set("", "x", 0), RangeError);
});
