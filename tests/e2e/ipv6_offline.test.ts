/**
 * Offline replay of an IPv6 recording: tcpdump records real IPv6 clients (ab -6) talking to
 * nginx on the online host; `tcpcopy --offline` replays the file to nginx on the target over
 * IPv6, with `-c` giving the replay its own IPv6 client address (so its lines in the target's
 * access log are told apart from the live replication that runs meanwhile). The target must
 * serve exactly the recorded requests.
 */
import assert from "node:assert/strict";
import { isRoot, waitFor, withNetns } from "../helpers/netns.ts";
import { ab, HTTP_PORT } from "../helpers/lab.ts";
import { readText, startLogged, stopTcpcopy, tcpcopyCmd } from "../helpers/replication.ts";
import { startReplication6 } from "../helpers/replication_ipv6.ts";

/** The quoted requests of the access log lines whose client address is `addr`, sorted. */
async function requests(log: string, addr: string): Promise<string[]> {
  const out: string[] = [];
  for (const line of (await readText(log)).split("\n")) {
    if (!line.startsWith(`${addr} `)) continue;
    const m = /"([A-Z]+ [^"]*)"/.exec(line);
    if (m) out.push(m[1]);
  }
  return out.sort();
}

Deno.test({
  name: "ipv6 e2e: tcpcopy --offline replays an IPv6 recording to the target, request for request",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication6(env);
      const on = rep.on, dir = rep.lab.dir;
      const file = `${dir}/ipv6.pcap`;
      const dump = startLogged(env, on.ns, [
        "tcpdump",
        "-n",
        "-U",
        "--immediate-mode",
        "-s",
        "4096",
        "-i",
        on.clientSideIf,
        "-w",
        file,
        `ip6 and tcp port ${HTTP_PORT}`,
      ], `${dir}/tcpdump`);
      const up = await waitFor(async () => /listening on/.test(await readText(dump.err)), 5000);
      assert.ok(up, `tcpdump did not start: ${await readText(dump.err)}`);
      const short = await ab(on.client, rep.url("/rec-short"), { requests: 40, concurrency: 2 });
      const keep = await ab(on.client, rep.url("/rec-keep"), {
        requests: 40,
        concurrency: 2,
        keepAlive: true,
      });
      await new Promise((r) => setTimeout(r, 300));
      dump.child.kill("SIGTERM");
      await dump.child.status;
      assert.match(await readText(dump.err), /\n0 packets dropped by kernel/);
      const online = await requests(rep.onlineLog, on.clientIp6);
      assert.equal(online.length, short + keep);

      const client = on.ip6.replace(/::1$/, "::301");
      const t = startLogged(
        env,
        on.ns,
        tcpcopyCmd([
          "-x",
          `[${on.ip6}]:${HTTP_PORT}-[${rep.target6}]:${HTTP_PORT}`,
          "-s",
          rep.lab.targetIp,
          "--offline",
          file,
          "-c",
          client,
          "-a",
          "5",
          "--stats-interval",
          "0",
        ]),
        `${dir}/offline`,
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        t.child.status,
        new Promise<null>((r) => timer = setTimeout(() => r(null), 30_000)),
      ]);
      clearTimeout(timer);
      const log = await readText(t.err);
      assert.ok(status !== null, `the offline replay did not end by itself: ${log}`);
      assert.equal(status.code, 0, log);
      await waitFor(async () => (await requests(rep.targetLog, client)).length >= online.length);
      const replayed = await requests(rep.targetLog, client);
      console.log(`[ipv6 offline] recorded=${online.length} replayed=${replayed.length}`);
      assert.deepEqual(replayed, online, "the target served exactly the recorded requests");
      // the live replication next to it lost nothing either
      await waitFor(async () =>
        (await requests(rep.targetLog, on.clientIp6)).length >= online.length
      );
      await stopTcpcopy(rep.tcpcopy);
      assert.deepEqual(await requests(rep.targetLog, on.clientIp6), online);
    }),
});
