import assert from "node:assert/strict";
import { median } from "../../bench/median.ts";

Deno.test("bench median: odd and even counts, unsorted input left as it was, empty is NaN", () => {
  const odd = [9, 1, 5];
  assert.equal(median(odd), 5);
  assert.deepEqual(odd, [9, 1, 5]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.equal(median([10, -2]), 4);
  assert.ok(Number.isNaN(median([])));
});

Deno.test("bench median: numeric order, not text order", () => {
  assert.equal(median([100, 9, 20]), 20);
});
