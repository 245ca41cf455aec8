/**
 * IPv6 replication with the tunnel to intercept over IPv6 too (`intercept -b ::`, tcpcopy
 * `-s [target6]`), and `-c` rewriting client addresses into an IPv6 range, with `-n 2`: the target must serve
 * every request twice, from two addresses of that range (one per copy), none from the real
 * client, with loss 0. The transfer names no online address (`-x 80-[target6]:80`), so the
 * IPv4 requests the dual-stack online host also serves are captured too: they must not be
 * replayed (an IPv4 connection cannot go to an IPv6 target), nor break anything.
 */
import assert from "node:assert/strict";
import { isRoot, withNetns } from "../helpers/netns.ts";
import { ab, cpuSeconds } from "../helpers/lab.ts";
import { readText, report, served, settle, stopTcpcopy } from "../helpers/replication.ts";
import { startReplication6 } from "../helpers/replication_ipv6.ts";

Deno.test({
  name: "ipv6 e2e: tunnel over IPv6, -c with an IPv6 client range and -n 2, loss 0",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      // The lab's client network is fd00:N:1::/64 (routed back through the online host);
      // the range fd00:N:1::100..1ff lies inside it.
      const rep = await startReplication6(env, {
        tunnel: 6,
        anyOnlineAddress: true,
        tcpcopyArgs: (_lab, on) =>
          Promise.resolve(["-c", on.ip6.replace(/::1$/, "::100/120"), "-n", "2"]),
      });
      const short = await ab(rep.on.client, rep.url("/short"), { requests: 400, concurrency: 8 });
      const keep = await ab(rep.on.client, rep.url("/keep"), {
        requests: 1000,
        concurrency: 4,
        keepAlive: true,
      });
      const v4 = await ab(rep.on.client, `http://${rep.on.ip}/v4`, { requests: 50 });
      const online = await served(rep.onlineLog, /GET \/(short|keep) /);
      assert.equal(online, short + keep);
      assert.equal(await served(rep.onlineLog, /GET \/v4 /), v4);
      const expected = 2 * online;
      const target = await settle(() => served(rep.targetLog), expected);
      const icpu = await cpuSeconds(rep.intercept.pid);
      const stop = await stopTcpcopy(rep.tcpcopy);
      console.log(report("ipv6 tunnel6 + -c range + -n 2", online, target, expected, {
        tcpcopy: stop.cpuS,
        intercept: icpu,
      }));
      if (target !== expected) {
        console.log(JSON.stringify(stop.stats.at(-1)));
        console.log((await readText(rep.intercept.err)).split("\n").slice(-30).join("\n"));
        console.log(await readText(rep.intercept.out));
      }
      assert.equal(await served(rep.targetLog, /GET \/short /), 2 * short);
      assert.equal(await served(rep.targetLog, /GET \/keep /), 2 * keep);
      assert.equal(target, expected, "loss ratio must be 0");
      assert.equal(await served(rep.targetLog, /GET \/v4 /), 0, "IPv4 requests are not replayed");

      // every replicated request came from the -c range, none from the real client
      const prefix = rep.on.ip6.replace(/::1$/, "::1");
      const inRange = new RegExp(`^${prefix}[0-9a-f]{2} `);
      assert.equal(await served(rep.targetLog, inRange), target);
      assert.equal(await served(rep.targetLog, new RegExp(`^${rep.on.clientIp6} `)), 0);
      const sources = new Set(
        (await readText(rep.targetLog)).split("\n").filter((l) => l !== "").map((l) =>
          l.split(" ")[0]
        ),
      );
      // one address per (client, copy): the two copies come from two addresses of the range
      assert.equal(sources.size, 2, `sources: ${[...sources]}`);

      // the tunnel ran over IPv6 with the IPv6 extension negotiated
      const ilog = await readText(rep.intercept.err);
      assert.match(ilog, /listening for tcpcopy on :::36524/);
      assert.match(ilog, /peer \[fd00:[0-9a-f:]+\]:\d+ connected/);
      const last = stop.stats.at(-1)!;
      assert.equal(stop.code, 0, stop.log);
      assert.deepEqual(last.send_errors, {});
      assert.equal((last.intercept as { reply_errors: number }).reply_errors, 0);
      const lost = last.lost as Record<string, number>;
      assert.ok(Object.values(lost).every((n) => n === 0), JSON.stringify(lost));
      assert.ok((last.ignored as { no_transfer: number }).no_transfer >= v4, "IPv4 ignored");
    }),
});
