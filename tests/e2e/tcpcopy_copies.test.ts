/**
 * tcpcopy end to end: multiplication and sampling. `-n 2` doubles the target's requests,
 * `-n 1.5` gives 1.5x (within four standard deviations of the random split), `-r 50` replays about half of the connections, `-c`
 * rewrites the client addresses into a range the target routes back. One lab; tcpcopy is
 * restarted with each setting and the phases are told apart by URL.
 */
import assert from "node:assert/strict";
import { isRoot, withNetns } from "../helpers/netns.ts";
import { ab } from "../helpers/lab.ts";
import {
  HTTP_PORT,
  interceptCpu,
  type Replication,
  report,
  served,
  settle,
  startReplication,
  startTcpcopy,
  stopTcpcopy,
} from "../helpers/replication.ts";
import type { Cleanup } from "../helpers/netns.ts";

/** Runs one phase: tcpcopy with `flags`, `requests` short connections to /`name`. */
async function phase(
  env: Cleanup,
  rep: Replication,
  name: string,
  flags: string[],
  requests: number,
  expected: (online: number) => number,
): Promise<{ online: number; target: number }> {
  const on = rep.online[0];
  const t = await startTcpcopy(env, rep, 0, flags, `tcpcopy-${name}`);
  const done = await ab(on.client, `http://${on.ip}:${HTTP_PORT}/${name}`, {
    requests,
    concurrency: 4,
  });
  assert.equal(done, requests);
  const online = await served(on.accessLog, new RegExp(`GET /${name} `));
  const want = expected(online);
  const target = await settle(
    () => served(rep.targetLog, new RegExp(`GET /${name} `)),
    Math.ceil(want),
  );
  const intercept = await interceptCpu(rep);
  const stop = await stopTcpcopy(t);
  console.log(report(flags.join(" "), online, target, want, { tcpcopy: stop.cpuS, intercept }));
  assert.equal(stop.code, 0);
  // every connection that was chosen was replayed in full: the engine lost nothing
  const last = stop.stats.at(-1)!;
  const lost = Object.values(last.lost as Record<string, number>).reduce((a, b) => a + b, 0);
  assert.equal(lost, 0, JSON.stringify(last.lost));
  return { online, target };
}

Deno.test({
  name: "tcpcopy e2e: -n 2, -n 1.5, -r 50 and -c",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env, { deferTcpcopy: true });
      const on = rep.online[0];

      const n2 = await phase(env, rep, "n2", ["-n", "2"], 500, (o) => 2 * o);
      assert.equal(n2.target, 2 * n2.online, "-n 2 doubles every request");

      const n15 = await phase(env, rep, "n15", ["-n", "1.5"], 1000, (o) => 1.5 * o);
      const ratio = n15.target / n15.online;
      // Each connection gets its second copy with probability 1/2 (a hash of its tuple, and the
      // client ports are random): over 1,000 connections the ratio's standard deviation is
      // 0.016, so 0.03 failed about one run in 16; 0.065 is four deviations, and still far from
      // a broken split (1.0 or 2.0).
      assert.ok(Math.abs(ratio - 1.5) <= 0.065, `-n 1.5 gave ${ratio.toFixed(3)}x`);

      const r50 = await phase(env, rep, "r50", ["-r", "50"], 1000, (o) => o / 2);
      const share = r50.target / r50.online;
      assert.ok(share >= 0.4 && share <= 0.6, `-r 50 replayed ${(share * 100).toFixed(1)}%`);

      // -c: a fake client range the target routes back through the online host
      const net = on.ip.split(".").slice(0, 2).join(".");
      const fake = `${net}.200`;
      await rep.lab.target.exec([
        "ip",
        "route",
        "add",
        `${fake}.0/24`,
        "via",
        rep.lab.online[0].uplinkIp,
      ]);
      const c = await phase(env, rep, "c", ["-c", `${fake}.x`], 300, (o) => o);
      assert.equal(c.target, c.online, "loss ratio must be 0");
      const sources = (await Deno.readTextFile(rep.targetLog)).split("\n")
        .filter((l) => l.includes("GET /c ")).map((l) => l.split(" ")[0]);
      assert.ok(sources.every((ip) => ip.startsWith(`${fake}.`)), sources.slice(0, 3).join(","));
    }),
});
