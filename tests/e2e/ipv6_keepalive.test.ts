/**
 * IPv6 replication under the workloads the C original loses requests on: one keep-alive
 * connection sending thousands of requests back to back, pipelined requests, and bursts of
 * short connections that reuse a small set of client source ports. Loss from the access logs
 * must be 0.
 */
import assert from "node:assert/strict";
import { isRoot, withNetns } from "../helpers/netns.ts";
import { ab, cpuSeconds, pipelineClient } from "../helpers/lab.ts";
import { report, served, settle, stopTcpcopy } from "../helpers/replication.ts";
import { startReplication6 } from "../helpers/replication_ipv6.ts";

Deno.test({
  name: "ipv6 e2e: one keep-alive connection back to back, pipelining, port-reuse bursts",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication6(env);
      const single = await ab(rep.on.client, rep.url("/single"), {
        requests: 5000,
        concurrency: 1,
        keepAlive: true,
      });
      const piped = await rep.on.client.exec(pipelineClient(rep.on.ip6, 20));
      assert.equal(piped.stdout.trim(), "20");
      // 100 source ports for 1,500 short connections: every port is reused ~15 times
      // (the port range sysctl is shared by IPv4 and IPv6)
      await rep.on.client.exec(["sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40099"]);
      await rep.on.client.exec(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
      const burst = await ab(rep.on.client, rep.url("/burst"), { requests: 1500, concurrency: 8 });

      const online = await served(rep.onlineLog);
      assert.equal(online, single + 20 + burst);
      const target = await settle(() => served(rep.targetLog), online, 40_000, 5000);
      const icpu = await cpuSeconds(rep.intercept.pid);
      const stop = await stopTcpcopy(rep.tcpcopy);
      console.log(report("ipv6 keep-alive+pipelined+port-reuse", online, target, online, {
        tcpcopy: stop.cpuS,
        intercept: icpu,
      }));
      console.log(`[stats] ${JSON.stringify(stop.stats.at(-1))}`);
      assert.equal(await served(rep.targetLog, /GET \/single /), single);
      assert.equal(await served(rep.targetLog, /GET \/pipe\d+ /), 20);
      assert.equal(await served(rep.targetLog, /GET \/burst /), burst);
      assert.equal(target, online, "loss ratio must be 0");
      assert.equal(stop.code, 0, stop.log);
      const last = stop.stats.at(-1)!;
      assert.deepEqual(last.send_errors, {});
      // one session per connection at least (a reused tuple may take a reconnect or two)
      assert.ok((last.sessions as { created: number }).created >= 1 + 1 + burst);
    }),
});
