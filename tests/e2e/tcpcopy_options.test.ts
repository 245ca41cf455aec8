/**
 * tcpcopy end to end: link-layer send (-o + --next-hop-mac), the Prometheus endpoint
 * (--metrics), SIGTERM, and the runtime failure modes: intercept unreachable (exit 1 with a
 * clear line) versus -L (keep running, reconnect).
 */
import assert from "node:assert/strict";
import { isRoot, type Netns, waitFor, withNetns } from "../helpers/netns.ts";
import { ab, sh } from "../helpers/lab.ts";
import {
  HTTP_PORT,
  interceptCpu,
  readText,
  report,
  served,
  settle,
  startLogged,
  startReplication,
  startTcpcopy,
  stopTcpcopy,
  tcpcopyCmd,
} from "../helpers/replication.ts";

/** The interface of `ns` that holds `ip`. */
async function deviceOf(ns: Netns, ip: string): Promise<string> {
  const out = await sh(
    ns,
    `ip -o -4 addr show | awk '$4 ~ /^${ip.replaceAll(".", "\\.")}\\// {print $2}'`,
  );
  const dev = out.trim().split("\n")[0];
  assert.ok(dev, `no device with ${ip}`);
  return dev;
}

Deno.test({
  name: "tcpcopy e2e: -o link-layer send with --next-hop-mac, --metrics scrape, SIGTERM",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env, { deferTcpcopy: true });
      const on = rep.online[0];
      const uplink = await deviceOf(on.ns, rep.lab.online[0].uplinkIp);
      const targetDev = await deviceOf(rep.lab.target, rep.lab.targetIp);
      const mac = (await sh(rep.lab.target, `cat /sys/class/net/${targetDev}/address`)).trim();
      const port = 20000 + Math.floor(Math.random() * 20000);
      on.tcpcopy = await startTcpcopy(env, rep, 0, [
        "-o",
        uplink,
        "--next-hop-mac",
        mac,
        "--metrics",
        `127.0.0.1:${port}`,
      ]);
      const url = `http://${on.ip}:${HTTP_PORT}`;
      const short = await ab(on.client, `${url}/link-short`, { requests: 300, concurrency: 4 });
      const keep = await ab(on.client, `${url}/link-keep`, {
        requests: 600,
        concurrency: 4,
        keepAlive: true,
      });
      const online = await served(on.accessLog);
      assert.equal(online, short + keep);
      const target = await settle(() => served(rep.targetLog), online);

      const metrics = await sh(on.ns, `curl -s http://127.0.0.1:${port}/metrics`);
      const value = (name: string) =>
        Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1]);
      assert.match(metrics, /# TYPE tcpcopy_captured_total counter/);
      assert.ok(value("tcpcopy_captured_total") > 0, metrics.slice(0, 400));
      assert.ok(value("tcpcopy_requests_answered_total") >= online);
      assert.equal(value("tcpcopy_intercept_connected"), 2);
      const missing = await sh(
        on.ns,
        `curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:${port}/x`,
      );
      assert.equal(missing, "404");

      const icpu = await interceptCpu(rep);
      const stop = await stopTcpcopy(on.tcpcopy, "SIGTERM");
      console.log(report("-o link layer", online, target, online, {
        tcpcopy: stop.cpuS,
        intercept: icpu,
      }));
      assert.equal(target, online, "loss ratio must be 0");
      assert.equal(stop.code, 0);
      assert.ok(stop.exitMs < 1500, `exit took ${stop.exitMs} ms`);
      assert.equal(stop.stats.at(-1)!.final, true);
    }),
});

Deno.test({
  name: "tcpcopy e2e: intercept lost or unreachable -> exit 1 with a clear line; -L keeps running",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env, { deferTcpcopy: true });
      const h = rep.lab.online[0];

      // intercept goes away under a running tcpcopy (no -L): exit 1 with a reason
      const running = await startTcpcopy(env, rep, 0, [], "tcpcopy-orphan");
      rep.intercept.child.kill("SIGTERM");
      let t1: ReturnType<typeof setTimeout> | undefined;
      const orphan = await Promise.race([
        running.child.status,
        new Promise<null>((r) => t1 = setTimeout(() => r(null), 15_000)),
      ]);
      clearTimeout(t1);
      assert.ok(orphan !== null, "tcpcopy must stop when every intercept connection is gone");
      assert.equal(orphan.code, 1);
      assert.match(await readText(running.err), /every intercept connection is gone/);

      const args = [
        "-x",
        `${h.ip}:${HTTP_PORT}-${rep.lab.targetIp}:${HTTP_PORT}`,
        "-s",
        rep.lab.targetIp, // intercept is gone: nothing listens on 36524 any more
        "-i",
        h.clientSideIf,
        "--stats-interval",
        "0",
      ];
      const plain = startLogged(env, h.ns, tcpcopyCmd(args), `${rep.lab.dir}/plain`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        plain.child.status,
        new Promise<null>((r) => timer = setTimeout(() => r(null), 15_000)),
      ]);
      clearTimeout(timer);
      assert.ok(status !== null, "tcpcopy must give up when intercept is unreachable");
      assert.equal(status.code, 1);
      const err = await readText(plain.err);
      assert.match(err, /\[error\] cannot connect to any intercept \(.*:36524\).*-L/);

      const lonely = startLogged(env, h.ns, tcpcopyCmd([...args, "-L"]), `${rep.lab.dir}/lonely`);
      assert.ok(
        await waitFor(async () => /\] replicating/.test(await readText(lonely.err)), 15_000),
      );
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(
        await Promise.race([lonely.child.status.then(() => "exited"), Promise.resolve("running")]),
        "running",
      );
      const stop = await stopTcpcopy(lonely, "SIGTERM");
      assert.equal(stop.code, 0);
      const last = stop.stats.at(-1)!;
      assert.equal((last.intercept as { connected: number }).connected, 0);
    }),
});
