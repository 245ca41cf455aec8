/**
 * IPv6 replication with intercept in pcap mode (the assistant-host deployment: intercept
 * only reads the target's replies with a libpcap filter, the online host black-holes them),
 * tcpcopy capturing on `-i any`,
 * and a server-speaks-first line protocol next to HTTP: the greeting comes from the target
 * first, through the tunnel, before the replayed client speaks. Loss 0 for both. And in
 * NFQUEUE mode, the pass-list (`-x`) lets replies to a real IPv6 user of the target through.
 */
import assert from "node:assert/strict";
import { isRoot, stopChild, withNetns } from "../helpers/netns.ts";
import { ab, countLines, cpuSeconds, hostPart, LINE_PORT } from "../helpers/lab.ts";
import { readText, report, served, settle, stopTcpcopy } from "../helpers/replication.ts";
import { startReplication6 } from "../helpers/replication_ipv6.ts";

const LINE_CLIENT = new URL("../helpers/line_client.ts", import.meta.url).pathname;

Deno.test({
  name: "ipv6 e2e: intercept in pcap mode, HTTP and a server-speaks-first protocol, loss 0",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      // tcpcopy captures on every device here (-i any: Linux cooked frames carrying IPv6)
      const rep = await startReplication6(env, {
        interceptMode: "pcap",
        line: true,
        tcpcopyArgs: ["-i", "any"],
      });
      const lines = await rep.on.client.exec([
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        LINE_CLIENT,
        rep.on.ip6,
        String(LINE_PORT),
        "10",
        "20",
        "g",
      ], { timeoutMs: 30_000 });
      assert.equal(lines.stdout.trim(), "200");
      const short = await ab(rep.on.client, rep.url("/short"), { requests: 300, concurrency: 4 });
      const keep = await ab(rep.on.client, rep.url("/keep"), {
        requests: 600,
        concurrency: 4,
        keepAlive: true,
      });
      const onlineLines = await countLines(rep.onlineLineLog!, /^REQ g-/);
      assert.equal(onlineLines, 200);
      const online = await served(rep.onlineLog);
      assert.equal(online, short + keep);
      const target = await settle(() => served(rep.targetLog), online);
      const targetLines = await settle(
        () => countLines(rep.targetLineLog!, /^REQ g-/),
        onlineLines,
      );
      const icpu = await cpuSeconds(rep.intercept.pid);
      const stop = await stopTcpcopy(rep.tcpcopy);
      console.log(report("ipv6 pcap intercept, HTTP", online, target, online, {
        tcpcopy: stop.cpuS,
        intercept: icpu,
      }));
      console.log(
        report("ipv6 pcap intercept, server-speaks-first", onlineLines, targetLines, onlineLines, {
          tcpcopy: stop.cpuS,
          intercept: icpu,
        }),
      );
      assert.equal(target, online, "HTTP loss ratio must be 0");
      assert.equal(targetLines, onlineLines, "line protocol loss ratio must be 0");
      assert.match(await readText(rep.intercept.err), /capturing replies on any with filter "ip6/);
      assert.match(stop.log, /capture on any: /);
      assert.equal(stop.code, 0, stop.log);
      assert.deepEqual(stop.stats.at(-1)!.send_errors, {});
    }),
});

Deno.test({
  name: "ipv6 e2e: intercept's pass-list lets replies to a real IPv6 user through",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      // the online host's uplink address is a "real user" of the target; its client-side
      // address is not (replies to it are routed the same way, and must be dropped)
      const rep = await startReplication6(env, {
        interceptArgs: (_lab, on) => ["-x", on.uplinkIp6],
      });
      const url = `http://${hostPart(rep.target6)}/real`;
      const curl = (from: string) =>
        rep.on.ns.exec(
          [
            "curl",
            "-6",
            "-s",
            "-m",
            "2",
            "--interface",
            from,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            url,
          ],
          { check: false },
        );
      const real = await curl(rep.on.uplinkIp6);
      assert.equal(real.stdout, "200", "the pass-listed user gets its answer");
      const other = await curl(rep.on.ip6);
      assert.notEqual(other.code, 0, "replies to an address not on the pass-list are dropped");
      assert.notEqual(other.stdout, "200");
      // the replicated traffic still works next to it
      const short = await ab(rep.on.client, rep.url("/short"), { requests: 100 });
      const target = await settle(() => served(rep.targetLog, /GET \/short /), short);
      assert.equal(target, short, "loss ratio must be 0");
      await stopTcpcopy(rep.tcpcopy);
      const log = await readText(rep.intercept.err);
      assert.match(log, /pass-list: 1 address\(es\)/);
      // the ip6tables rule is intercept's own, and gone after SIGTERM
      const rules = async () =>
        (await rep.lab.target.exec(["ip6tables", "-w", "-S", "OUTPUT"])).stdout;
      assert.match(await rules(), /--sport 80 .*tcpcopy-intercept-\d+-\w+.*-j NFQUEUE/);
      await stopChild(rep.intercept.child, 3000);
      assert.doesNotMatch(await rules(), /tcpcopy-intercept/);
    }),
});
