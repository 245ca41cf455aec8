/**
 * `./build.sh setup TARGET`: the targets it accepts (tools/setup.ts), including `bench`.
 */
import assert from "node:assert/strict";
import { findProgram, offPathDirs } from "../../lib/setup/probe.ts";

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

Deno.test({
  name: "setup: programs Debian keeps off PATH (PostgreSQL's initdb) are found in their folder" +
    (offPathDirs().length === 0 ? " (ignored: no /usr/lib/postgresql/N/bin here)" : ""),
  ignore: offPathDirs().length === 0,
  fn: () => {
    // a PATH without the folder (as on a fresh Debian host): still found, in the newest version
    const found = findProgram("initdb", "/nonexistent");
    assert.equal(found, `${offPathDirs()[0]}/initdb`);
    assert.ok(offPathDirs().every((d) => /^\/usr\/lib\/postgresql\/\d+\/bin$/.test(d)));
  },
});
