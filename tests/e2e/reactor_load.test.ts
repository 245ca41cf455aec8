/**
 * Under load, the reactor still gives Deno's event loop its turn (lib/io/reactor.ts): while 10
 * keep-alive clients drive tcpcopy and intercept as fast as they can, tcpcopy's --metrics
 * endpoint answers, its stats timer keeps printing, and SIGTERM ends it promptly with loss 0
 * for what was replayed until then.
 */
import assert from "node:assert/strict";
import { isRoot, withNetns } from "../helpers/netns.ts";
import { ab, sh } from "../helpers/lab.ts";
import { HTTP_PORT, startReplication, startTcpcopy, stopTcpcopy } from "../helpers/replication.ts";

Deno.test({
  name: "reactor under load: --metrics answers, stats lines keep coming, SIGTERM is prompt",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env, { deferTcpcopy: true });
      const on = rep.online[0];
      const port = 20000 + Math.floor(Math.random() * 20000);
      on.tcpcopy = await startTcpcopy(env, rep, 0, [
        "--metrics",
        `127.0.0.1:${port}`,
        "--stats-interval",
        "1",
      ]);
      // bounded load: at most 200,000 requests or 8 s, whichever ends first
      const load = ab(on.client, `http://${on.ip}:${HTTP_PORT}/load`, {
        requests: 200_000,
        concurrency: 10,
        keepAlive: true,
        timeoutS: 8,
      });
      await new Promise((r) => setTimeout(r, 1500));
      const scrapes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const metrics = await sh(
          on.ns,
          `curl -s --max-time 5 http://127.0.0.1:${port}/metrics`,
          10_000,
        );
        scrapes.push(performance.now() - t0);
        assert.match(metrics, /^tcpcopy_captured_total \d+$/m, "a full scrape under load");
        await new Promise((r) => setTimeout(r, 200));
      }
      const stop = await stopTcpcopy(on.tcpcopy, "SIGTERM");
      const served = await load;
      console.log(
        `scrapes under load: ${scrapes.map((ms) => ms.toFixed(0)).join(", ")} ms; ` +
          `${served} requests by the clients; SIGTERM -> exit in ${stop.exitMs} ms; ` +
          `${stop.stats.length} stats lines`,
      );
      assert.equal(stop.code, 0);
      assert.ok(served > 5_000, `the load ran (${served} requests)`);
      // a functional bound, not a speed target: a starved event loop would miss these by far
      assert.ok(Math.max(...scrapes) < 3_000, `every scrape answered within 3 s: ${scrapes}`);
      assert.ok(stop.exitMs < 2_000, `exit within 2 s of SIGTERM (${stop.exitMs} ms)`);
      assert.ok(stop.stats.length >= 3, `a stats line every second under load`);
      const final = stop.stats.at(-1) as { final?: boolean };
      assert.equal(final.final, true);
    }),
});
