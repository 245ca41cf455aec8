// Reused packet objects keep one hidden class whatever their sequence numbers
// (tests/helpers/seq_field_shape_probe.ts).
import assert from "node:assert/strict";

Deno.test("reused packet objects: one hidden class below and above 2^31", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--allow-natives-syntax",
      new URL("../helpers/seq_field_shape_probe.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.ok(out.success, dec.decode(out.stderr));
  assert.deepEqual(JSON.parse(dec.decode(out.stdout)), {
    p: true,
    cap: true,
    reply: true,
    repr: true,
  });
});
