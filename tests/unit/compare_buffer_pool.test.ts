// The --compare buffer pool (lib/tcpcopy/buffer_pool.ts): buffers of one size, cut from slabs,
// never overlapping while taken, reused when given back, kept up to a count.
import assert from "node:assert/strict";
import { BufferPool, SLAB_BYTES } from "../../lib/tcpcopy/buffer_pool.ts";

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
