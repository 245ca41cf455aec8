/**
 * node:crypto is loaded by the database modules on first use (lib/modules/node_crypto.ts), not
 * by a static import: no module of tcpcopy or intercept imports it at run time (a type import
 * only), and the lazily loaded module is node's crypto, loaded once.
 */

import assert from "node:assert/strict";
import { nodeCrypto } from "../../lib/modules/node_crypto.ts";

const ROOT = new URL("../../", import.meta.url);

/** Modules of `entry`'s graph with a run-time (not type-only) import of `specifier`. */
async function runtimeImporters(entry: string, specifier: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--no-lock", new URL(entry, ROOT).pathname],
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(out.code, 0, `deno info ${entry} failed`);
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; dependencies?: { specifier: string; code?: unknown }[] }[];
  };
  assert.ok(graph.modules.length > 50, `${graph.modules.length} modules: not tcpcopy's graph`);
  return graph.modules
    .filter((m) => m.dependencies?.some((d) => d.specifier === specifier && d.code !== undefined))
    .map((m) => m.specifier);
}

Deno.test("neither program imports node:crypto at start-up", async () => {
  for (const entry of ["main.ts", "intercept.ts"]) {
    assert.deepEqual(await runtimeImporters(entry, "node:crypto"), [], entry);
  }
});

Deno.test("nodeCrypto is node's crypto, loaded once", () => {
  const c = nodeCrypto();
  assert.equal(nodeCrypto(), c);
  assert.equal(c.createHash("md5").update("a").digest("hex"), "0cc175b9c0f1b6a831c399e269772661");
});
