// Code optimized for one connection's stream, close record and SYN options stays valid for the
// next connection after full collections with none of them alive
// (tests/helpers/shape_keepsake_probe.ts).
import assert from "node:assert/strict";
import { V8_FLAGS } from "../../lib/process/v8_flags.ts";

Deno.test("hidden classes of streams and SYN options outlive their objects", async () => {
  const flags = [...V8_FLAGS.tcpcopy, "--allow-natives-syntax", "--expose-gc", "--trace-deopt"];
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `--v8-flags=${flags.join(",")}`,
      new URL("../helpers/shape_keepsake_probe.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.ok(out.success, dec.decode(out.stderr));
  const lines = dec.decode(out.stdout).trim().split("\n");
  const result = lines.find((l) => l.startsWith('{"before"'));
  assert.ok(result, dec.decode(out.stdout));
  assert.deepEqual(JSON.parse(result), {
    before: { stream: true, options: true, openStream: true },
  });
  // V8's deopt trace of the readers (a line may be cut by another thread's: match loosely)
  const thrownAway = lines.filter((l) => /read(Stream|Options|OpenStream)\b/.test(l));
  assert.deepEqual(thrownAway, []);
});
