import assert from "node:assert/strict";
import {
  seqAdd,
  seqAfter,
  seqBefore,
  seqGe,
  seqGt,
  seqInRange,
  seqLe,
  seqLt,
  seqMax,
  seqMin,
  seqSub,
} from "../../lib/wire/seq.ts";
import { mulberry32 } from "../helpers/prng.ts";

const MAX = 0xffffffff;

Deno.test("seqAdd wraps modulo 2^32 and stays unsigned", () => {
  assert.equal(seqAdd(MAX, 1), 0);
  assert.equal(seqAdd(MAX, 10), 9);
  assert.equal(seqAdd(0, -1), MAX);
  assert.equal(seqAdd(5, -10), MAX - 4);
  assert.equal(seqAdd(0x80000000, 0x80000000), 0);
  assert.equal(seqAdd(1, 2), 3);
});

Deno.test("seqSub gives the signed distance across wrap-around", () => {
  assert.equal(seqSub(0, MAX), 1);
  assert.equal(seqSub(MAX, 0), -1);
  assert.equal(seqSub(10, 5), 5);
  assert.equal(seqSub(5, 10), -5);
  assert.equal(seqSub(0x80000000, 0), -0x80000000); // the range is [-2^31, 2^31)
  assert.equal(seqSub(0x7fffffff, 0), 0x7fffffff);
});

Deno.test("comparisons are correct across wrap-around", () => {
  const a = MAX - 5;
  const b = 3; // 9 after a
  assert.ok(seqLt(a, b) && seqBefore(a, b) && seqLe(a, b));
  assert.ok(seqGt(b, a) && seqAfter(b, a) && seqGe(b, a));
  assert.ok(!seqLt(b, a) && !seqGt(a, b));
  assert.ok(seqLe(a, a) && seqGe(a, a) && !seqLt(a, a) && !seqGt(a, a));
  assert.equal(seqMax(a, b), b);
  assert.equal(seqMin(a, b), a);
  assert.equal(seqMax(b, a), b);
  assert.equal(seqMin(b, a), a);
});

Deno.test("seqInRange is a half-open window that may wrap", () => {
  const start = MAX - 1;
  const end = seqAdd(start, 4); // covers MAX-1, MAX, 0, 1
  assert.ok(seqInRange(MAX - 1, start, end));
  assert.ok(seqInRange(MAX, start, end));
  assert.ok(seqInRange(0, start, end));
  assert.ok(seqInRange(1, start, end));
  assert.ok(!seqInRange(2, start, end));
  assert.ok(!seqInRange(MAX - 2, start, end));
  assert.ok(!seqInRange(7, 7, 7), "empty window");
});

Deno.test("property: comparisons agree with the distance for random pairs near wrap", () => {
  const rnd = mulberry32(0xc0ffee);
  for (let i = 0; i < 20000; i++) {
    const a = Math.floor(rnd() * 2 ** 32);
    const d = Math.floor(rnd() * 2 ** 31) - 2 ** 30; // |d| < 2^30
    const b = seqAdd(a, d);
    assert.equal(seqSub(b, a), d);
    assert.equal(seqLt(a, b), d > 0);
    assert.equal(seqGt(a, b), d < 0);
    assert.equal(seqLe(a, b), d >= 0);
    assert.equal(seqGe(a, b), d <= 0);
    assert.equal(seqMax(a, b), d >= 0 ? b : a);
    assert.equal(seqMin(a, b), d >= 0 ? a : b);
    assert.ok(b >= 0 && b <= MAX && Number.isInteger(b));
    if (d > 0) {
      assert.ok(seqInRange(a, a, b));
      assert.ok(!seqInRange(b, a, b));
    }
  }
});
