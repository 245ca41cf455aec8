/**
 * tcpcopy end to end over HTTP: real clients (ab, curl) -> nginx on the online host, tcpcopy
 * replicating to nginx on the target, intercept (NFQUEUE) on the target. Loss is measured from
 * the two servers' access logs, as the seed does.
 */
import assert from "node:assert/strict";
import { isRoot, waitFor, withNetns } from "../helpers/netns.ts";
import { ab, sh } from "../helpers/lab.ts";
import {
  HTTP_PORT,
  interceptCpu,
  report,
  served,
  settle,
  startReplication,
  stopTcpcopy,
} from "../../bench/e2e_lab.ts";

Deno.test({
  name: "tcpcopy e2e: short and keep-alive HTTP requests reach the target with loss 0",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env);
      const on = rep.online[0];
      const url = (path: string) => `http://${on.ip}:${HTTP_PORT}${path}`;

      // short connections, a few at a time
      const short = await ab(on.client, url("/short"), { requests: 300, concurrency: 4 });
      // keep-alive connections
      const keep = await ab(on.client, url("/keep"), {
        requests: 1000,
        concurrency: 4,
        keepAlive: true,
      });
      // a POST body > 64 KiB
      await sh(
        on.client,
        `head -c 200000 /dev/zero | tr '\\0' 'a' > /tmp/post.$$ && ` +
          `curl -s -o /dev/null -X POST --data-binary @/tmp/post.$$ ${
            url("/post")
          }; rm -f /tmp/post.$$`,
      );
      const online = await served(on.accessLog);
      assert.equal(online, short + keep + 1);
      const target = await settle(() => served(rep.targetLog), online);
      // at least one periodic stats line before the final one
      await waitFor(async () => (await Deno.readTextFile(on.tcpcopy.out)).includes("{"), 3000);
      const icpu = await interceptCpu(rep);
      const stop = await stopTcpcopy(on.tcpcopy);
      console.log(report("short+keepalive+post", online, target, online, {
        tcpcopy: stop.cpuS,
        intercept: icpu,
      }));
      console.log(`[exit] code=${stop.code} after ${stop.exitMs} ms`);
      console.log(`[stats] ${JSON.stringify(stop.stats.at(-1))}`);
      assert.equal(await served(rep.targetLog, /GET \/short /), short);
      assert.equal(await served(rep.targetLog, /GET \/keep /), keep);
      assert.equal(await served(rep.targetLog, /POST \/post /), 1);
      assert.equal(target, online, "loss ratio must be 0");

      // clean exit on SIGINT, with a final stats line
      assert.equal(stop.code, 0, stop.log);
      assert.ok(stop.exitMs < 1500, `exit took ${stop.exitMs} ms`);
      const last = stop.stats.at(-1)!;
      assert.equal(last.type, "stats");
      assert.equal(last.final, true);
      assert.ok((last.captured as number) > 0);
      const requests = last.requests as { captured: number; sent: number };
      assert.ok(requests.sent >= online, JSON.stringify(last));
      assert.ok(stop.stats.length >= 2, "periodic lines before the final one");
      assert.equal(stop.stats[0].final, false);
      assert.deepEqual(last.send_errors, {});
    }),
});
