/**
 * `./build.sh setup TARGET`: the targets it accepts (tools/setup.ts), including `bench`.
 */
import assert from "node:assert/strict";

async function setup(...args: string[]): Promise<{ code: number; err: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      new URL("../../tools/setup.ts", import.meta.url).pathname,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, err: new TextDecoder().decode(out.stderr) };
}

Deno.test("setup: an unknown target is refused with the list, bench among them", async () => {
  const r = await setup("nonsense", "--check");
  assert.equal(r.code, 2);
  assert.match(r.err, /'nonsense': expected one of demo, test, tcpcopy, intercept, bench/);
});

Deno.test("setup: bench --check answers for the benchmarks' programs (0 all there, 1 missing)", async () => {
  const r = await setup("bench", "--check");
  assert.ok(r.code === 0 || r.code === 1, r.err);
  if (r.code === 1) assert.match(r.err, /benchmarks/);
});
