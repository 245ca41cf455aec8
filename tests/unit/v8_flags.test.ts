/**
 * The programs run with one list of V8 flags (lib/process/v8_flags.ts) in every form; from this
 * checkout (tests' `deno run`) they show it in `--version`. The built executables are checked by
 * tests/build/build.test.ts and launcher.test.ts; the heap-limit warning is budget.ts's.
 */
import assert from "node:assert/strict";
import { V8_FLAGS, v8FlagsArg } from "../../lib/process/v8_flags.ts";
import { heapLimitWarning } from "../../lib/engine/budget.ts";
import { runProgram } from "../helpers/program.ts";
import { heapLimitOf, heapLimitWith } from "../helpers/v8_flags.ts";

Deno.test("v8 flags: one list, a young generation smaller than V8's default", async () => {
  assert.ok(V8_FLAGS.length > 0 && V8_FLAGS.every((f) => /^--[a-z0-9-]+(=\S+)?$/.test(f)));
  assert.equal(v8FlagsArg(), `--v8-flags=${V8_FLAGS.join(",")}`);
  assert.equal(v8FlagsArg(["--expose-gc"]), `--v8-flags=${[...V8_FLAGS, "--expose-gc"].join(",")}`);
  // The flags change what V8 does: the limit with them is below V8's default one.
  assert.ok(await heapLimitWith() < await heapLimitWith([]));
});

Deno.test("v8 flags: both programs started by the tests run with them (--version)", async () => {
  const expected = await heapLimitWith();
  for (const program of ["tcpcopy", "intercept"] as const) {
    const r = await runProgram(program, ["--version"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(heapLimitOf(r.out), expected, r.out);
  }
});

Deno.test("heap limit warning: only when -m lets the heap need more than V8 allows", () => {
  const MiB = 1048576;
  assert.equal(heapLimitWarning(2048 * MiB, 4192 * MiB), undefined);
  assert.equal(heapLimitWarning(16384 * MiB, 4192 * MiB), undefined);
  const w = heapLimitWarning(32768 * MiB, 4192 * MiB);
  assert.ok(w !== undefined);
  assert.match(w, /^-m 32,768: .* 6,758 MiB of heap but V8's heap limit is 4,192 MiB/);
  assert.match(w, /--max-old-space-size/);
  // A small host (V8's limit is a quarter of its memory): -m 2048 on 2 GiB.
  assert.ok(heapLimitWarning(2048 * MiB, 560 * MiB) !== undefined);
});
