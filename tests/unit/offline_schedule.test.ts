import assert from "node:assert/strict";
import { passPort, passSeq, ReplaySchedule } from "../../lib/offline/schedule.ts";

Deno.test("schedule: real time keeps recorded gaps", () => {
  const s = new ReplaySchedule({ accelerate: 1, skipGapMs: 0 }, 1000);
  assert.equal(s.due(5_000_000), 1000);
  assert.equal(s.due(5_250_000), 1250);
  assert.equal(s.due(6_000_000), 2000);
  assert.equal(s.elapsedWallMs, 1000);
});

Deno.test("schedule: accelerate divides gaps, fractions slow down", () => {
  const fast = new ReplaySchedule({ accelerate: 10, skipGapMs: 0 }, 0);
  fast.due(0);
  assert.equal(fast.due(5_000_000), 500);
  const slow = new ReplaySchedule({ accelerate: 0.5, skipGapMs: 0 }, 0);
  slow.due(0);
  assert.equal(slow.due(1_000_000), 2000);
  assert.throws(() => new ReplaySchedule({ accelerate: 0, skipGapMs: 0 }, 0), RangeError);
});

Deno.test("schedule: gaps longer than skipGapMs collapse, each counted once", () => {
  const s = new ReplaySchedule({ accelerate: 1, skipGapMs: 100 }, 0);
  s.due(0);
  assert.equal(s.due(50_000), 50); // 50 ms gap kept
  assert.equal(s.due(10_050_000), 50); // 10 s idle gap collapsed
  assert.equal(s.due(10_080_000), 80);
  assert.equal(s.gapsCollapsed, 1);
  assert.equal(s.skippedMicros, 10_000_000);
});

Deno.test("schedule: backwards timestamps are a zero gap; passes continue after a pause", () => {
  const s = new ReplaySchedule({ accelerate: 2, skipGapMs: 0 }, 0);
  s.due(1_000_000);
  assert.equal(s.due(900_000), 0);
  assert.equal(s.due(1_900_000), 500);
  s.nextPass(100);
  assert.equal(s.due(1_000_000), 600);
  assert.equal(s.due(1_200_000), 700);
});

Deno.test("passPort is a bijection per pass and moves every port", () => {
  for (const pass of [1, 2, 3, 500]) {
    const seen = new Set<number>();
    for (let p = 1024; p <= 65535; p++) {
      const q = passPort(p, pass);
      assert.ok(q >= 1024 && q <= 65535);
      assert.notEqual(q, p);
      seen.add(q);
    }
    assert.equal(seen.size, 64512);
  }
  assert.equal(passPort(40000, 0), 40000);
  assert.equal(passPort(80, 3), 80);
  assert.notEqual(passSeq(1, 1), 1);
  assert.equal(passSeq(0xffffffff, 0), 0xffffffff);
  assert.ok(passSeq(0xffffffff, 7) >= 0 && passSeq(0xffffffff, 7) <= 0xffffffff);
});
