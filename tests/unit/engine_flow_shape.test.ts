// Flows keep one hidden class when a client port is reused (tests/helpers/flow_shape_probe.ts).
import assert from "node:assert/strict";

Deno.test("a flow on a reused client tuple has the same hidden class as any other", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--allow-natives-syntax",
      new URL("../helpers/flow_shape_probe.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.ok(out.success, dec.decode(out.stderr));
  assert.deepEqual(JSON.parse(dec.decode(out.stdout)), { reused: true, old: true });
});
