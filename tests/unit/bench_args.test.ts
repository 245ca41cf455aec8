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

Deno.test("intArg: a value out of range or not a whole number is one line naming the option, exit 2", async () => {
  const bench = new URL("../../bench/route_table_heap.ts", import.meta.url).pathname;
  for (
    const [args, expected] of [
      [
        ["--routes", "0"],
        "route_table_heap.ts: --routes 0: expected a whole number from 1 to 4000000\n",
      ],
      [
        ["--intercepts", "1.5"],
        "route_table_heap.ts: --intercepts 1.5: expected a whole number from 1 to 16\n",
      ],
      [
        ["--connections="],
        "route_table_heap.ts: --connections : expected a whole number from 1 to 11\n",
      ],
    ] as const
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", bench, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2, args.join(" "));
    assert.equal(new TextDecoder().decode(out.stderr), expected);
  }
});
