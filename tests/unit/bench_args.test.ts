/** bench/args.ts: the benches' `--help` and one-line errors. */
import assert from "node:assert/strict";
import { usageOf } from "../../bench/args.ts";

const SYN_FLOOD = new URL("../../bench/syn_flood.ts", import.meta.url).href;

Deno.test("usageOf: a bench's leading doc comment without its stars", () => {
  const usage = usageOf(SYN_FLOOD);
  assert.ok(usage.length > 20, usage);
  assert.ok(!usage.includes("/**") && !/^\s*\*/m.test(usage), usage);
  assert.equal(usageOf("file:///nonexistent/bench.ts"), "");
});

async function runBench(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(SYN_FLOOD).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("benchArgs: --help prints the usage and exits 0; a bad option is one line, exit 2", async () => {
  const help = await runBench("--help");
  assert.equal(help.code, 0, help.stderr);
  assert.equal(help.stdout.trim(), usageOf(SYN_FLOOD));
  const bad = await runBench("--no-such-option");
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, "");
  assert.match(
    bad.stderr,
    /^syn_flood\.ts: Unknown option '--no-such-option'.*\(--help: the usage\)\n$/,
  );
});
