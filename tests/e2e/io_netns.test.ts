import assert from "node:assert/strict";
import { denoEval, isRoot, run, uniqueName, vethPair, withNetns } from "../helpers/netns.ts";

Deno.test("uniqueName: short, distinct, interface-safe", () => {
  const names = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const n = uniqueName("prefix-long");
    assert.ok(n.length <= 12, n);
    assert.match(n, /^[a-zA-Z0-9]+$/);
    names.add(n);
  }
  assert.equal(names.size, 200);
});

Deno.test({
  name: "netns helper: veth pair carries TCP between namespaces, teardown removes them",
  ignore: !isRoot(),
  fn: async () => {
    let names: string[] = [];
    await withNetns(async (env) => {
      const a = await env.netns("ha"), b = await env.netns("hb");
      names = [a.name, b.name];
      await vethPair(a, b, "10.201.0.1", "10.201.0.2");
      const server = b.spawn(
        denoEval(`const l = Deno.listen({ hostname: "10.201.0.2", port: 7001 });
          console.log("ready");
          const c = await l.accept(); await c.write(new TextEncoder().encode("hello")); c.close();`),
        { stdout: "piped" },
      );
      const reader = server.stdout.getReader();
      assert.match(new TextDecoder().decode((await reader.read()).value), /ready/);
      reader.releaseLock();
      const client = await a.exec(denoEval(`const c = await Deno.connect({ hostname: "10.201.0.2",
        port: 7001 }); const b = new Uint8Array(16); const n = await c.read(b);
        console.log(new TextDecoder().decode(b.subarray(0, n ?? 0)));`));
      assert.equal(client.stdout.trim(), "hello");
      const sleeper = b.spawn(["sleep", "30"]);
      assert.ok(sleeper.pid > 0);
    });
    const list = (await run(["ip", "netns", "list"])).stdout;
    for (const n of names) assert.ok(!list.includes(n), `${n} still exists`);
  },
});
