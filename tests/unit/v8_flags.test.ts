/**
 * Each program runs with its own list of V8 flags (lib/process/v8_flags.ts) in every form; from
 * this checkout (tests' `deno run`) they show it in `--version`. The built executables are
 * checked by tests/build/build.test.ts and launcher.test.ts; the heap-limit warning is budget.ts's.
 */
import assert from "node:assert/strict";
import { V8_FLAGS, v8FlagsArg, v8Program } from "../../lib/process/v8_flags.ts";
import { heapLimitWarning } from "../../lib/engine/budget.ts";
import { runProgram } from "../helpers/program.ts";
import { heapLimitOf, heapLimitWith } from "../helpers/v8_flags.ts";

const PROGRAMS = ["tcpcopy", "intercept"] as const;

Deno.test("v8 flags: a list per program, a young generation smaller than V8's default", async () => {
  const none = await heapLimitWith([]);
  for (const program of PROGRAMS) {
    const flags = V8_FLAGS[program];
    assert.ok(flags.length > 0 && flags.every((f) => /^--[a-z0-9-]+(=\S+)?$/.test(f)), program);
    assert.equal(v8FlagsArg(program), `--v8-flags=${flags.join(",")}`);
    assert.equal(
      v8FlagsArg(program, ["--expose-gc"]),
      `--v8-flags=${[...flags, "--expose-gc"].join(",")}`,
    );
    // The flags change what V8 does: the limit with them is below V8's default one.
    assert.ok(await heapLimitWith(flags) < none, program);
  }
  assert.equal(v8Program("intercept"), "intercept");
  assert.equal(v8Program("deno"), undefined);
});

Deno.test("v8 flags: the file prints one program's list for build.sh, rejects other names", async () => {
  const file = new URL("../../lib/process/v8_flags.ts", import.meta.url).pathname;
  const printFor = (name: string) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", file, name],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
  for (const program of PROGRAMS) {
    const out = await printFor(program);
    assert.equal(out.code, 0);
    assert.equal(new TextDecoder().decode(out.stdout).trim(), V8_FLAGS[program].join(","));
  }
  const bad = await printFor("both");
  assert.equal(bad.code, 2);
  assert.match(
    new TextDecoder().decode(bad.stderr),
    /program "both": expected tcpcopy or intercept/,
  );
});

Deno.test("v8 flags: both programs started by the tests run with their own (--version)", async () => {
  for (const program of PROGRAMS) {
    const expected = await heapLimitWith(V8_FLAGS[program]);
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
