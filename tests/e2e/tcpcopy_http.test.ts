/**
 * tcpcopy end to end over HTTP: real clients (ab, curl) -> nginx on the online host, tcpcopy
 * replicating to nginx on the target, intercept (NFQUEUE) on the target. Loss is measured from
 * the two servers' access logs, as the seed does.
 */
import assert from "node:assert/strict";
import { isRoot, waitFor, withNetns } from "../helpers/netns.ts";
import { ab, pipelineClient, sh } from "../helpers/lab.ts";
import {
  HTTP_PORT,
  interceptCpu,
  report,
  served,
  settle,
  startReplication,
  stopTcpcopy,
} from "../helpers/replication.ts";

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
      // the live capture is the packet ring, received packets only
      assert.match(stop.log, /capture on \S+: ring, received packets only/);
    }),
});

Deno.test({
  name: "tcpcopy e2e: pipelined requests and port-reuse bursts of short connections",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env);
      const on = rep.online[0];
      const url = (path: string) => `http://${on.ip}:${HTTP_PORT}${path}`;

      const piped = await on.client.exec(pipelineClient(on.ip, 20));
      assert.equal(piped.stdout.trim(), "20");

      // 100 source ports for 2,000 short connections: every port is reused ~20 times
      await on.client.exec(["sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40099"]);
      await on.client.exec(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
      const burst = await ab(on.client, url("/burst"), { requests: 2000, concurrency: 8 });

      const online = await served(on.accessLog);
      const target = await settle(() => served(rep.targetLog), online);
      const icpu = await interceptCpu(rep);
      const stop = await stopTcpcopy(on.tcpcopy);
      console.log(report("pipelined+port-reuse", online, target, online, {
        tcpcopy: stop.cpuS,
        intercept: icpu,
      }));
      console.log(`[stats] ${JSON.stringify(stop.stats.at(-1))}`);
      assert.equal(await served(rep.targetLog, /GET \/pipe\d+ /), 20);
      assert.equal(await served(rep.targetLog, /GET \/burst /), burst);
      assert.equal(target, online, "loss ratio must be 0");
      assert.equal(stop.code, 0);
    }),
});
