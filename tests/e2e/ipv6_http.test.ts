/**
 * IPv6 replication end to end over HTTP: real clients (ab, curl -6) -> nginx on the online
 * host's IPv6 address, tcpcopy replicating `[online6]:80-[target6]:80` through a raw IPv6
 * socket, intercept (NFQUEUE, ip6tables rule) on the target, the tunnel over IPv4. Loss is
 * measured from the two servers' access logs; no target reply may leave the target.
 */
import assert from "node:assert/strict";
import { isRoot, type Netns, withNetns } from "../helpers/netns.ts";
import { ab, sh } from "../helpers/lab.ts";
import { report, served, settle, stopTcpcopy } from "../helpers/replication.ts";
import { cpuSeconds } from "../helpers/lab.ts";
import { deviceOf6, startReplication6 } from "../helpers/replication_ipv6.ts";

/**
 * Counts, in `ns` (before routing, so also packets it will not forward), TCP packets from
 * `src` port 80 and every packet from `src`; returns a reader of both counters.
 */
async function countFrom(ns: Netns, src: string) {
  const chain = ["-t", "raw", "-A", "PREROUTING", "-s", src];
  await ns.exec(["ip6tables", "-w", ...chain, "-p", "tcp", "--sport", "80"]);
  await ns.exec(["ip6tables", "-w", ...chain]);
  return async () => {
    const out = await ns.exec([
      "ip6tables",
      "-w",
      "-t",
      "raw",
      "-L",
      "PREROUTING",
      "-v",
      "-x",
      "-n",
    ]);
    const rows = out.stdout.split("\n").filter((l) => /^\s*\d+\s+\d+/.test(l));
    const packets = rows.map((l) => Number(l.trim().split(/\s+/)[0]));
    return { replies: packets[0], all: packets[1] };
  };
}

Deno.test({
  name: "ipv6 e2e: short, keep-alive and a 200 KB POST reach the target with loss 0",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication6(env);
      const counters = await countFrom(rep.on.ns, rep.target6);
      const short = await ab(rep.on.client, rep.url("/short"), { requests: 300, concurrency: 4 });
      const keep = await ab(rep.on.client, rep.url("/keep"), {
        requests: 1000,
        concurrency: 4,
        keepAlive: true,
      });
      await sh(
        rep.on.client,
        `head -c 200000 /dev/zero | tr '\\0' 'a' > /tmp/post6.$$ && ` +
          `curl -6 -sf -o /dev/null -X POST --data-binary @/tmp/post6.$$ ${
            rep.url("/post")
          }; rc=$?; rm -f /tmp/post6.$$; exit $rc`,
      );
      // nginx writes the POST's log line after curl has its answer: wait for it (bounded)
      const online = await settle(() => served(rep.onlineLog), short + keep + 1, 5000, 1000);
      assert.equal(online, short + keep + 1);
      // the online server saw IPv6 clients only
      assert.equal(await served(rep.onlineLog, new RegExp(`^${rep.on.clientIp6} `)), online);
      const target = await settle(() => served(rep.targetLog), online);
      const icpu = await cpuSeconds(rep.intercept.pid);
      const stop = await stopTcpcopy(rep.tcpcopy);
      console.log(report("ipv6 short+keepalive+post", online, target, online, {
        tcpcopy: stop.cpuS,
        intercept: icpu,
      }));
      console.log(`[stats] ${JSON.stringify(stop.stats.at(-1))}`);
      assert.equal(await served(rep.targetLog, /GET \/short /), short);
      assert.equal(await served(rep.targetLog, /GET \/keep /), keep);
      assert.equal(await served(rep.targetLog, /"POST \/post HTTP\/1.1" 200 /), 1);
      // the target served the replicated requests from the original IPv6 client address
      assert.equal(await served(rep.targetLog, new RegExp(`^${rep.on.clientIp6} `)), target);
      assert.equal(target, online, "loss ratio must be 0");

      const last = stop.stats.at(-1)!;
      assert.equal(stop.code, 0, stop.log);
      assert.equal(last.final, true);
      // no send error: the 200 KB POST went out in segments that fit the 1,500-byte link with
      // 60-byte headers (a larger one would be refused with EMSGSIZE)
      assert.deepEqual(last.send_errors, {});
      const requests = last.requests as { captured: number; sent: number; answered: number };
      assert.ok(requests.sent >= online, JSON.stringify(last));
      assert.equal(requests.answered, requests.sent);
      assert.match(stop.log, /send: raw IPv6 socket/);
      // IPv6 endpoints are logged in brackets
      assert.match(stop.log, /transfer \[fd00:[0-9a-f:]+\]:80 -> \[fd00:[0-9a-f:]+\]:80/);
      // intercept took every reply: the online host never saw one, though it did see the target
      const seen = await counters();
      assert.equal(seen.replies, 0, "a target reply leaked to the online host");
      assert.ok(seen.all > 0, "the counter sees the target's other IPv6 packets");
    }),
});

Deno.test({
  name: "ipv6 e2e: link-layer send (-o) carries IPv6 frames to the next hop, loss 0",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication6(env, {
        tcpcopyArgs: async (lab, on) => {
          const uplink = await deviceOf6(on.ns, on.uplinkIp6);
          const target = await deviceOf6(lab.target, lab.targetIp6!);
          return ["-o", uplink.dev, "--next-hop-mac", target.mac];
        },
      });
      const short = await ab(rep.on.client, rep.url("/link-short"), {
        requests: 300,
        concurrency: 4,
      });
      const keep = await ab(rep.on.client, rep.url("/link-keep"), {
        requests: 600,
        concurrency: 4,
        keepAlive: true,
      });
      const online = await served(rep.onlineLog);
      assert.equal(online, short + keep);
      const target = await settle(() => served(rep.targetLog), online);
      const stop = await stopTcpcopy(rep.tcpcopy);
      console.log(report("ipv6 link-layer send", online, target, online, {
        tcpcopy: stop.cpuS,
        intercept: await cpuSeconds(rep.intercept.pid),
      }));
      assert.equal(target, online, "loss ratio must be 0");
      assert.equal(stop.code, 0, stop.log);
      assert.deepEqual(stop.stats.at(-1)!.send_errors, {});
      assert.match(stop.log, /send: link layer on \S+ to next hop [0-9a-f:]{17}/);
    }),
});
