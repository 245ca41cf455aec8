import assert from "node:assert/strict";
import type { Usage } from "../../bench/e2e_lab.ts";
import { statTimes } from "../../lib/process/memory.ts";
import { cpuSplit } from "../../bench/e2e_replication.ts";

Deno.test("statTimes reads utime and stime after the command name, spaces in it too", () => {
  const line = "42 (deno (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 9 0 1 2 3";
  assert.deepEqual(statTimes(line), { user: 2.5, sys: 1.3 });
});

Deno.test("cpuSplit: kernel, other threads, sleeps and preemptions per request", () => {
  const a: Usage = {
    cpuS: 1,
    sysS: 0.5,
    mainS: 0.8,
    sleeps: 100,
    preempted: 10,
    rssMiB: 0,
    peakMiB: 0,
  };
  const z: Usage = { ...a, cpuS: 3, sysS: 1.5, mainS: 2.3, sleeps: 20_100, preempted: 5_010 };
  assert.deepEqual(cpuSplit(a, z, 20_000), {
    sysUs: 50,
    otherThreadsUs: 25,
    sleepsPerReq: 1,
    preemptedPerReq: 0.25,
  });
  // no requests: divided by one, not by zero
  assert.equal(cpuSplit(a, z, 0).sleepsPerReq, 20_000);
});
