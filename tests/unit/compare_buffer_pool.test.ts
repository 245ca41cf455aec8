// The --compare buffer pool (lib/tcpcopy/buffer_pool.ts): buffers of one size, cut from slabs,
// never overlapping while taken, reused when given back, kept up to a count.
import assert from "node:assert/strict";
import { BufferPool, SLAB_BYTES } from "../../lib/tcpcopy/buffer_pool.ts";
import { prefixView } from "../../lib/compare/prefix_view.ts";

Deno.test("buffer pool: disjoint buffers of the size, reuse, bounded free list", () => {
  for (const size of [16, 1000, 1024, SLAB_BYTES + 1]) {
    const pool = new BufferPool(size, 3);
    const taken = Array.from({ length: 200 }, () => pool.take());
    taken.forEach((b, i) => {
      assert.equal(b.length, size);
      b.fill(i & 0xff);
    });
    // no two buffers share bytes: each still holds its own fill
    taken.forEach((b, i) => assert.ok(b.every((x) => x === (i & 0xff)), `buffer ${i}`));
    for (const b of taken.slice(0, 5)) pool.give(b);
    pool.give(new Uint8Array(size + 1)); // another size: ignored
    pool.give(null);
    assert.equal(pool.free, 3);
    const again = [pool.take(), pool.take(), pool.take()];
    assert.ok(again.every((b) => taken.includes(b)), "given buffers come back");
    assert.ok(!taken.includes(pool.take()), "then new ones");
  }
});

Deno.test("prefixView: one view per buffer and length, the buffer itself when whole", () => {
  const a = new Uint8Array(16), b = new Uint8Array(16);
  a.set([1, 2, 3, 4]);
  const v = prefixView(a, 4);
  assert.deepEqual([...v], [1, 2, 3, 4]);
  assert.equal(v.buffer, a.buffer);
  assert.equal(prefixView(a, 4), v); // the same object again: no view per turn
  assert.notEqual(prefixView(b, 4), v); // another buffer: its own view
  const w = prefixView(a, 5);
  assert.equal(w.length, 5);
  assert.notEqual(w, v);
  assert.equal(prefixView(a, 16), a);
  assert.equal(prefixView(a, 0).length, 0);
});
