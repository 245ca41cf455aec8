/**
 * tcpcopy end to end: a server-speaks-first protocol (greeting before the first request), and
 * a keep-alive connection that was already open before tcpcopy started (picked up mid-stream
 * with a synthesised handshake).
 */
import assert from "node:assert/strict";
import { denoEval, isRoot, withNetns } from "../helpers/netns.ts";
import { countLines } from "../helpers/lab.ts";
import {
  HTTP_PORT,
  interceptCpu,
  LINE_PORT,
  report,
  served,
  settle,
  startReplication,
  startTcpcopy,
  stopTcpcopy,
} from "../helpers/replication.ts";

const LINE_CLIENT = new URL("../helpers/line_client.ts", import.meta.url).pathname;

Deno.test({
  name: "tcpcopy e2e: server-speaks-first line protocol captured on -i any, loss 0",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      // capture on every device (-i any: Linux cooked frames) for this one
      const rep = await startReplication(env, { line: true, tcpcopyArgs: () => ["-i", "any"] });
      const on = rep.online[0];
      const r = await on.client.exec([
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        LINE_CLIENT,
        on.ip,
        String(LINE_PORT),
        "10",
        "20",
        "g",
      ], { timeoutMs: 30_000 });
      assert.equal(r.stdout.trim(), "200");
      const online = await countLines(on.lineLog!, /^REQ g-/);
      assert.equal(online, 200);
      const target = await settle(() => countLines(rep.targetLineLog!, /^REQ g-/), online);
      const icpu = await interceptCpu(rep);
      const stop = await stopTcpcopy(on.tcpcopy);
      console.log(report("server-speaks-first", online, target, online, {
        tcpcopy: stop.cpuS,
        intercept: icpu,
      }));
      assert.equal(target, online, "loss ratio must be 0");
      assert.equal(stop.code, 0);
    }),
});

/** A keep-alive client sending GET /pre<i> every `gapMs`, each after the previous answer. */
function slowKeepAlive(host: string, n: number, gapMs: number): string[] {
  return denoEval(`
const c = await Deno.connect({ hostname: "${host}", port: ${HTTP_PORT} });
const buf = new Uint8Array(65536), dec = new TextDecoder(), enc = new TextEncoder();
let answered = 0;
for (let i = 0; i < ${n}; i++) {
  await c.write(enc.encode("GET /pre" + i + " HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"));
  let got = "";
  const end = Date.now() + 5000;
  while (!got.includes("\\n", got.indexOf("\\r\\n\\r\\n") + 4) && Date.now() < end) {
    const k = await c.read(buf);
    if (k === null) break;
    got += dec.decode(buf.subarray(0, k));
  }
  if (got.startsWith("HTTP/1.1 200")) answered++;
  await new Promise((r) => setTimeout(r, ${gapMs}));
}
console.log(answered);
c.close();`);
}

Deno.test({
  name: "tcpcopy e2e: a connection open before tcpcopy started is picked up mid-stream",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env, { deferTcpcopy: true });
      const on = rep.online[0];
      const n = 120;
      const client = on.client.spawn(slowKeepAlive(on.ip, n, 40), { stdout: "piped" });
      const output = client.output();
      await new Promise((r) => setTimeout(r, 800)); // the connection is open and busy
      on.tcpcopy = await startTcpcopy(env, rep, 0);
      const answered = Number(new TextDecoder().decode((await output).stdout).trim());
      assert.equal(answered, n);
      assert.equal(await served(on.accessLog, /GET \/pre\d+ /), n);

      // the target must see a contiguous tail /preK ... /pre(n-1): nothing after pick-up lost
      await settle(async () => {
        const t = await Deno.readTextFile(rep.targetLog);
        return t.includes(`GET /pre${n - 1} `) ? 1 : 0;
      }, 1);
      const seen = (await Deno.readTextFile(rep.targetLog)).split("\n")
        .map((l) => /GET \/pre(\d+) /.exec(l)?.[1]).filter((x) => x !== undefined).map(Number);
      const icpu = await interceptCpu(rep);
      const stop = await stopTcpcopy(on.tcpcopy);
      const first = Math.min(...seen);
      console.log(report("picked up mid-stream", n - first, seen.length, n - first, {
        tcpcopy: stop.cpuS,
        intercept: icpu,
      }));
      assert.ok(seen.length >= n / 2, `only ${seen.length} of ${n} replicated`);
      assert.deepEqual(seen, Array.from({ length: n - first }, (_, i) => first + i));
      const last = stop.stats.at(-1)!;
      assert.ok((last.handshakes as { synthesized: number }).synthesized >= 1);
      assert.equal(stop.code, 0);
    }),
});
