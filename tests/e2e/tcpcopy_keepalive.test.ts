/**
 * tcpcopy end to end: one keep-alive connection sending 10,000 requests back to back (the C
 * original loses 94% of them), and ten parallel keep-alive connections. Loss from the access
 * logs must be 0. The replay of one connection is paced by the target's answers (each turn
 * waits for the reply header to come back through intercept), so the target may finish well
 * after the client: the test waits for it, bounded in time. Both programs' main threads run
 * under SCHED_BATCH by then.
 */
import assert from "node:assert/strict";
import { isRoot, withNetns } from "../helpers/netns.ts";
import { ab } from "../helpers/lab.ts";
import { SchedPolicy } from "../../lib/io/sched.ts";
import {
  HTTP_PORT,
  interceptCpu,
  report,
  served,
  settle,
  startReplication,
  stopTcpcopy,
} from "../helpers/replication.ts";

/** The scheduling policy of `pid`'s main thread (field 41 of /proc/PID/stat). */
async function policy(pid: number): Promise<number> {
  return Number((await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ")[38]);
}

Deno.test({
  name: "tcpcopy e2e: 10,000 requests on one keep-alive connection, then 10 parallel ones",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env);
      const on = rep.online[0];
      const t0 = Date.now();
      const single = await ab(on.client, `http://${on.ip}:${HTTP_PORT}/single`, {
        requests: 10_000,
        concurrency: 1,
        keepAlive: true,
      });
      const clientS = (Date.now() - t0) / 1000;
      const parallel = await ab(on.client, `http://${on.ip}:${HTTP_PORT}/parallel`, {
        requests: 5000,
        concurrency: 10,
        keepAlive: true,
      });
      const online = await served(on.accessLog);
      assert.equal(online, single + parallel);
      const target = await settle(() => served(rep.targetLog), online, 50_000, 5000);
      const replayS = (Date.now() - t0) / 1000;
      // both hot loops run under SCHED_BATCH once started (lib/io/sched.ts)
      assert.equal(await policy(rep.intercept.pid), SchedPolicy.BATCH, "intercept's policy");
      assert.equal(await policy(on.tcpcopy.pid), SchedPolicy.BATCH, "tcpcopy's policy");
      const icpu = await interceptCpu(rep);
      const stop = await stopTcpcopy(on.tcpcopy);
      console.log(report("single+parallel keep-alive", online, target, online, {
        tcpcopy: stop.cpuS,
        intercept: icpu,
      }));
      console.log(
        `[pace] client ${clientS.toFixed(1)} s for ${single} requests; target done after ` +
          `${replayS.toFixed(1)} s; tcpcopy ${
            (stop.cpuS / online * 1e6).toFixed(0)
          } µs CPU/request`,
      );
      assert.equal(await served(rep.targetLog, /GET \/single /), single);
      assert.equal(await served(rep.targetLog, /GET \/parallel /), parallel);
      assert.equal(target, online, "loss ratio must be 0");
      assert.equal(stop.code, 0);
    }),
});
