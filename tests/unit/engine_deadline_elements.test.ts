// The engine's deadline arrays hold doubles from the start
// (tests/helpers/deadline_elements_probe.ts).
import assert from "node:assert/strict";

Deno.test("deadline arrays are double arrays before their first deadline", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--allow-natives-syntax",
      new URL("../helpers/deadline_elements_probe.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.ok(out.success, dec.decode(out.stderr));
  assert.deepEqual(JSON.parse(dec.decode(out.stdout)), { heap: true, queue: true, bucket: true });
});
