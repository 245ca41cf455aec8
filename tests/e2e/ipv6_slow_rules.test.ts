/**
 * Regression test of an intermittent IPv6 loss under heavy machine load: intercept accepts
 * tunnel peers as soon as it listens, before its NFQUEUE rules are in (they go in with one
 * `iptables`/`ip6tables` process each, `ip6tables` last, which take seconds on a starved
 * machine). Replies of replayed IPv6 sessions then leave the target un-queued, tcpcopy's
 * handshakes stall on SYN retransmissions, and a test that starts its traffic when the tunnel
 * port answers saw "0 of 2800" or "1010 of 2800" served. The harness
 * (tests/helpers/replication_ipv6.ts) must wait for intercept's "listening for tcpcopy" line
 * (printed once the rules are in and the queue is bound). Here an `ip6tables` wrapper first
 * on intercept's PATH delays the rule by 4 s, as the load did.
 */
import assert from "node:assert/strict";
import { isRoot, withNetns } from "../helpers/netns.ts";
import { ab, cpuSeconds } from "../helpers/lab.ts";
import { report, served, settle, stopTcpcopy } from "../helpers/replication.ts";
import { startReplication6 } from "../helpers/replication_ipv6.ts";

/** Seconds the wrapper holds `ip6tables -I` back. */
const DELAY_S = 4;

Deno.test({
  name: "ipv6 e2e: replication waits for intercept's rules (ip6tables slowed down 4 s), loss 0",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const dir = await Deno.makeTempDir({ prefix: "ipv6-slow-rules-" });
      env.defer(() => Deno.remove(dir, { recursive: true }));
      // the wrapper runs the real ip6tables with the PATH intercept was given, minus itself
      await Deno.writeTextFile(
        `${dir}/ip6tables`,
        [
          "#!/bin/sh",
          `echo "$*" >> ${dir}/calls`,
          `case " $* " in *" -I "*) sleep ${DELAY_S};; esac`,
          `PATH='${Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin"}' exec ip6tables "$@"`,
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      const t0 = Date.now();
      const rep = await startReplication6(env, { tunnel: 6, interceptPathFirst: dir });
      const readyMs = Date.now() - t0;
      const short = await ab(rep.on.client, rep.url("/short"), { requests: 200, concurrency: 8 });
      const online = await served(rep.onlineLog, /GET \/short /);
      assert.equal(online, short);
      const target = await settle(() => served(rep.targetLog), online);
      const icpu = await cpuSeconds(rep.intercept.pid);
      const stop = await stopTcpcopy(rep.tcpcopy);
      console.log(report("ipv6 slow ip6tables", online, target, online, {
        tcpcopy: stop.cpuS,
        intercept: icpu,
      }));
      assert.equal(target, online, JSON.stringify(stop.stats.at(-1)?.lost));
      assert.equal(stop.code, 0, stop.log);
      // the wrapper was used, and the harness returned only after the delayed rule went in
      assert.match(await Deno.readTextFile(`${dir}/calls`), / -I OUTPUT /);
      assert.ok(readyMs >= DELAY_S * 1000, `ready after ${readyMs} ms`);
    }),
});
