/**
 * tcpcopy's capture loop (lib/tcpcopy/captures.ts) on a fake capture that always has full drain
 * steps waiting, as a ring does for a reader the CPU starves under a burst: the reactor (tunnel
 * replies, timers) must still get rounds, and the sends released so far must be flushed.
 */
import assert from "node:assert/strict";
import type { OpenedCapture, PacketHandler } from "../../lib/io/capture.ts";
import { sharedReactor } from "../../lib/io/reactor.ts";
import {
  DRAIN_SLICE_MS,
  DRAIN_STEP,
  FIRST_RING_MIB,
  firstRingMiB,
  runCaptureLoop,
} from "../../lib/tcpcopy/captures.ts";
import { parseTcpcopyArgs } from "../../lib/cli/tcpcopy.ts";

/** A capture with `steps` full drain steps waiting; every drain step advances `clock` 5 ms. */
function backlog(steps: number, clock: { ms: number }): OpenedCapture & { drained: number } {
  const frame = new Uint8Array(60);
  return {
    device: "fake0",
    linkType: 1,
    snaplen: 65535,
    engine: "ring",
    direction: "inout",
    drained: 0,
    wait(): Promise<boolean> {
      return Promise.resolve(this.drained < steps);
    },
    drain(onPacket: PacketHandler, max = Infinity): number {
      if (this.drained >= steps) return 0;
      this.drained++;
      clock.ms += 5;
      const n = Math.min(max, DRAIN_STEP);
      for (let i = 0; i < n; i++) onPacket(frame, 0, frame.length);
      return n;
    },
    stats: () => ({ received: 0, dropped: 0, ifDropped: 0 }),
    stop() {},
    close() {},
  };
}

Deno.test("capture loop: a long backlog gives the reactor a round every drain slice", async () => {
  const clock = { ms: 0 };
  const steps = 200; // 1 s of drain steps on the fake clock
  const cap = backlog(steps, clock);
  const stepsAtTimer: number[] = [];
  let afterDrains = 0;
  // a reactor timer due at once, armed by the first packet (a retransmission timer, or a
  // tunnel read, stands for it)
  const timer = sharedReactor().timer(() => stepsAtTimer.push(cap.drained));
  let frames = 0;
  let failed = "";
  await runCaptureLoop(cap, {
    onFrame: () => {
      if (frames++ === 0) timer.armIn(0);
    },
    afterDrain: () => afterDrains++,
    stopping: () => false,
    now: () => clock.ms,
    failed: (why) => failed = why,
  });
  timer.cancel();
  assert.equal(failed, "");
  assert.equal(frames, steps * DRAIN_STEP);
  assert.equal(stepsAtTimer.length, 1);
  // before the fix the whole backlog was drained first (200 steps), the timer fired after it
  const perSlice = Math.ceil(DRAIN_SLICE_MS / 5) + 1;
  assert.ok(
    stepsAtTimer[0] <= perSlice,
    `the timer fired after ${stepsAtTimer[0]} drain steps (expected at most ${perSlice})`,
  );
  // the sends of each slice are flushed before the next one
  assert.ok(afterDrains >= steps / perSlice, `${afterDrains} flushes for ${steps} steps`);
  await sharedReactor().settled();
});

Deno.test("capture start ring: twice as large when it takes both directions, at most -B", () => {
  const config = (...extra: string[]) => {
    const r = parseTcpcopyArgs(["-x", "10.0.0.1:80-10.0.0.2:8080", "-s", "10.0.0.3", ...extra]);
    if (r.kind !== "run") throw new Error(JSON.stringify(r));
    return r.config;
  };
  const compare = ["--compare", "--secret-file", "/etc/tcpcopy/secret"];
  assert.equal(firstRingMiB(config()), FIRST_RING_MIB);
  assert.equal(firstRingMiB(config(...compare)), 2 * FIRST_RING_MIB);
  assert.equal(firstRingMiB(config(...compare, "-B", "16")), 16);
  assert.equal(firstRingMiB(config("-B", "8")), 8);
});
