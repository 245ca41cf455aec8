import assert from "node:assert/strict";
import { SchedPolicy } from "../../lib/io/sched.ts";

const SCHED = new URL("../../lib/io/sched.ts", import.meta.url).href;

/** Runs `code` in a fresh deno process (its policy, not this test runner's, changes). */
async function child(code: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", `import * as s from "${SCHED}";\n${code}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

/** Field 41 of /proc/thread-self/stat (after the parenthesised name): the thread's policy. */
const KERNEL_POLICY =
  `Deno.readTextFileSync("/proc/thread-self/stat").split(") ")[1].split(" ")[38]`;

Deno.test("sched: setThreadPolicy moves the calling thread from SCHED_OTHER to SCHED_BATCH", async () => {
  const out = await child(
    `s.setThreadPolicy(s.SchedPolicy.OTHER); // as a process started from a SCHED_BATCH shell\n` +
      `const before = [s.threadPolicy(), ${KERNEL_POLICY}];\n` +
      `const ok = s.setThreadPolicy();\n` +
      `console.log(JSON.stringify({ before, ok, after: [s.threadPolicy(), ${KERNEL_POLICY}] }));`,
  );
  const r = JSON.parse(out);
  assert.deepEqual(r.before, [SchedPolicy.OTHER, String(SchedPolicy.OTHER)]);
  assert.equal(r.ok, true);
  assert.deepEqual(r.after, [SchedPolicy.BATCH, String(SchedPolicy.BATCH)]);
});

Deno.test("sched: back to SCHED_OTHER, and an invalid policy is refused without a change", async () => {
  const out = await child(
    `s.setThreadPolicy();\n` +
      `const bad = s.setThreadPolicy(99 as never);\n` +
      `const still = s.threadPolicy();\n` +
      `const back = s.setThreadPolicy(s.SchedPolicy.OTHER);\n` +
      `console.log(JSON.stringify({ bad, still, back, now: s.threadPolicy() }));`,
  );
  assert.deepEqual(JSON.parse(out), {
    bad: false,
    still: SchedPolicy.BATCH,
    back: true,
    now: SchedPolicy.OTHER,
  });
});
