/**
 * When an ended connection's state is let go (issue 14: a burst of short connections must not
 * leave its ended sessions in the heap): the eviction queue drops sessions that can no longer be
 * evicted as soon as they reach its front, the timers' stale entries of ended sessions are swept
 * soon, and a burst of short connections leaves nothing but the flows' tombstones, which go
 * after 10 s.
 */
import assert from "node:assert/strict";
import { OpenOrder } from "../../lib/engine/budget.ts";
import { shortRig } from "../helpers/short_rig.ts";

Deno.test("eviction queue: items that stopped being evictable leave from the front at once", () => {
  const q = new OpenOrder<{ live: boolean }>((x) => x.live);
  const items = Array.from({ length: 5000 }, () => ({ live: true }));
  for (const [i, it] of items.entries()) {
    q.push(it, 10);
    if (i >= 10) items[i - 10].live = false; // ended in the order they opened
    assert.ok(q.size <= 11, `after ${i + 1} pushes the queue holds ${q.size}`);
  }
  for (const it of items) it.live = false;
  q.prune();
  assert.equal(q.size, 0, "every item ended: nothing held");
  // an evictable item at the front keeps the ones behind it until it goes
  const a = { live: true }, b = { live: true };
  q.push(a, 2);
  q.push(b, 2);
  b.live = false;
  q.prune();
  assert.equal(q.size, 2, "b waits behind a");
  assert.equal(q.take(), a);
  assert.equal(q.size, 0);
});

Deno.test("short connections: ended sessions are let go at once, their flows after the tombstone time", () => {
  const r = shortRig([]);
  const engine = r.rig.engine;
  // 3,000 connections, 300 open at a time (100 opening, 100 asking, 100 closing per round)
  const third = 100, n = 3000;
  let maxQueued = 0;
  for (let i = 0; i < n + 2 * third; i += third) {
    for (let j = 0; j < third; j++) {
      if (i + j < n) r.step(i + j, 0);
      if (i - third + j >= 0 && i - third + j < n) r.step(i - third + j, 1);
      if (i - 2 * third + j >= 0 && i - 2 * third + j < n) r.step(i - 2 * third + j, 2);
    }
    r.tick(50);
    maxQueued = Math.max(maxQueued, engine.evictionQueued);
  }
  const st = engine.stats;
  assert.equal(st.sessions.closed, n);
  assert.equal(st.requests.answered, n);
  assert.equal(st.sessions.active, 0);
  // every session carried data at once: the queue never held more than the sessions opened
  // since the last request (a round's 100) and one at its front that got data since the last
  // push; before, ended ones piled up to 2 × live + 1,024 (here 1,096 at the end)
  assert.ok(maxQueued <= third + 1, `eviction queue held up to ${maxQueued}`);
  // the last round's sessions ended after the last push: they leave at the next one
  assert.ok(engine.evictionQueued <= third + 1, `${engine.evictionQueued} queued after the burst`);
  r.step(n, 0);
  assert.equal(engine.evictionQueued, 1, "only the new connection's session is queued");
  r.step(n, 1);
  r.step(n, 2);
  r.tick(50);
  // the timers' stale entries (each keeps its ended session alive until its deadline) are swept
  // once 256 + one per live session ended with entries filed; before: at 3 per live + 1,024
  assert.ok(
    engine.timerEntries <= 2 * 257,
    `timer entries after the burst: ${engine.timerEntries}`,
  );
  assert.equal(engine.tuplesTracked, 0, "no tuple held");
  assert.equal(st.sessions.closed, n + 1);
  assert.ok(engine.flowCount > 0, "the flows stay as tombstones for a while");
  for (let t = 0; t < 11_000; t += 100) r.tick(100);
  assert.equal(engine.flowCount, 0, "tombstones gone after 10 s");
  assert.ok(engine.timerEntries <= 3, `timer entries left: ${engine.timerEntries}`);
});
