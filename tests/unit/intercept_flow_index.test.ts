// intercept's flow index (lib/intercept/flow_index.ts): held to a Map<string, T> over random
// route keys of both families, with slots reused after removals.
import assert from "node:assert/strict";
import { FlowIndex, type Slotted } from "../../lib/intercept/flow_index.ts";
import { routeKey4, routeKey6 } from "../../lib/tunnel/route_key.ts";

/** A deterministic generator (xorshift32). */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

const T4 = new Uint8Array([10, 0, 0, 2]);
const T6 = new Uint8Array(16).fill(7);

/** Route keys for `n` clients, IPv4 and IPv6 alike. */
function keys(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const c4 = new Uint8Array([192, 168, i >> 8, i & 0xff]);
    out.push(routeKey4(c4, 0, 40000 + i, T4, 0, 80));
    const c6 = new Uint8Array(16);
    c6[15] = i & 0xff;
    c6[14] = i >> 8;
    out.push(routeKey6(c6, 0, 40000 + i, T6, 0, 443));
  }
  return out;
}

interface V extends Slotted {
  id: number;
}

Deno.test("flow index: the same answers as a Map over 20,000 random operations", () => {
  const ks = keys(300); // 600 keys: 6 and 18 code units
  const ix = new FlowIndex<V>();
  const map = new Map<string, V>();
  const next = rng(42);
  let made = 0;
  for (let op = 0; op < 20_000; op++) {
    const k = ks[Math.floor(next() * ks.length)];
    const r = next();
    if (r < 0.45) {
      if (!map.has(k)) {
        const v = { id: made++, slot: -1 };
        ix.set(k, v);
        map.set(k, v);
      }
    } else if (r < 0.75) {
      assert.equal(ix.delete(k), map.get(k));
      map.delete(k);
    } else {
      assert.equal(ix.get(k), map.get(k));
    }
    assert.equal(ix.size, map.size);
  }
  // every held value is at its slot, nothing else is
  let held = 0;
  for (let s = 0; s < ix.slots; s++) {
    const v = ix.at(s);
    if (v === undefined) continue;
    held++;
    assert.equal(v.slot, s);
  }
  assert.equal(held, map.size);
  for (const [k, v] of map) assert.equal(ix.get(k), v);
  // slots are reused: never more than the most values held at once
  assert.ok(ix.slots <= 600, `${ix.slots} slots`);
});

Deno.test("flow index: remove by value, clear, and misuse refused", () => {
  const [a, b] = keys(1);
  const ix = new FlowIndex<V>();
  const va = { id: 1, slot: -1 }, vb = { id: 2, slot: -1 };
  ix.set(a, va);
  ix.set(b, vb);
  assert.throws(() => ix.set(a.slice(0, 5) + "x", va), /held already/);
  ix.remove(va);
  assert.equal(va.slot, -1);
  assert.equal(ix.get(a), undefined);
  assert.equal(ix.get(b), vb);
  assert.throws(() => ix.remove(va), /not held/);
  assert.equal(ix.get("short"), undefined); // a length never filed
  assert.equal(ix.delete("short"), undefined);
  ix.clear();
  assert.equal(ix.size, 0);
  assert.equal(vb.slot, -1);
  assert.equal(ix.get(b), undefined);
  ix.set(b, vb); // usable again
  assert.equal(ix.get(b), vb);
  assert.throws(() => ix.set("", { id: 3, slot: -1 }), RangeError);
});

Deno.test("flow index: an index emptied after a burst starts over small", () => {
  const ks = keys(3000); // 6,000 keys
  const ix = new FlowIndex<V>();
  const vs = ks.map((k, id) => {
    const v = { id, slot: -1 };
    ix.set(k, v);
    return v;
  });
  assert.equal(ix.slots, 6000);
  for (const v of vs.slice(1)) ix.remove(v);
  assert.equal(ix.slots, 6000, "one value held: the slots stay");
  ix.remove(vs[0]);
  assert.equal(ix.slots, 0, "empty: started over");
  ix.set(ks[5], vs[5]);
  assert.equal(ix.get(ks[5]), vs[5]);
  assert.equal(ix.get(ks[6]), undefined);
});
