/** intercept's operator features on a real host (root, own namespace): --metrics and doctor. */
import assert from "node:assert/strict";
import { denoCmd, isRoot, stopChild, waitFor, withNetns } from "../helpers/netns.ts";

const INTERCEPT = new URL("../../intercept.ts", import.meta.url);

Deno.test({
  name: "intercept --metrics serves Prometheus text; intercept doctor judges the NFQUEUE rules",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const ns = await env.netns("iops");
      const child = env.child(ns.spawn(
        denoCmd(INTERCEPT, [
          "--port",
          "8080",
          "-b",
          "127.0.0.1",
          "--metrics",
          "127.0.0.1:9121",
          "--stats-interval",
          "0",
          "--drain-seconds",
          "0",
        ]),
        { stdout: "piped", stderr: "piped" },
      ));
      const scrape = () =>
        ns.exec(["curl", "-s", "--max-time", "2", "http://127.0.0.1:9121/metrics"], {
          check: false,
        });
      assert.ok(await waitFor(async () => (await scrape()).code === 0, 15_000, 100));
      const text = (await scrape()).stdout;
      assert.match(text, /^# TYPE intercept_replies_seen_total counter$/m);
      assert.match(text, /^intercept_replies_seen_total 0$/m);
      assert.match(text, /^intercept_peers_connected 0$/m);
      const missing = await ns.exec(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9121/x"],
        { check: false },
      );
      assert.equal(missing.stdout, "404");

      // The running intercept's own rule is recognised; a foreign rule on another port fails.
      const ownRule = await ns.exec(denoCmd(INTERCEPT, ["doctor", "--port", "8080"]), {
        check: false,
      });
      assert.equal(ownRule.code, 0, ownRule.stdout + ownRule.stderr);
      assert.match(ownRule.stdout, /^ok {4}nfqueue:8080: intercept's NFQUEUE rule .* running/m);
      await ns.exec(["iptables", "-A", "OUTPUT", "-p", "tcp", "--sport", "9090", "-j", "DROP"]);
      const foreign = await ns.exec(denoCmd(INTERCEPT, ["doctor", "--port", "9090", "--json"]), {
        check: false,
      });
      assert.equal(foreign.code, 1);
      const report = JSON.parse(foreign.stdout);
      const v = report.checks.find((c: { id: string }) => c.id === "nfqueue:9090");
      assert.equal(v.status, "fail");
      assert.equal(v.fix, "remove it: iptables -D OUTPUT -p tcp -m tcp --sport 9090 -j DROP");

      const t0 = Date.now();
      await stopChild(child, 5000);
      const status = await child.status;
      assert.equal(status.code, 0);
      assert.ok(Date.now() - t0 < 2000, "exits within 2 s of SIGTERM");
      await child.stdout.cancel();
      await child.stderr.cancel();
      const rules = (await ns.exec(["iptables", "-S", "OUTPUT"])).stdout;
      assert.doesNotMatch(rules, /tcpcopy-intercept/);
    }),
});
