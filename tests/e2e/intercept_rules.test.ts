// intercept's NFQUEUE rule handling (root, inside a private namespace): refusal on conflicts
// (iptables and native nft),
// a second intercept on the same queue refused, rules removed on SIGINT, usage errors exit 2.
import assert from "node:assert/strict";
import { denoCmd, isRoot, type Netns, stopChild, waitFor, withNetns } from "../helpers/netns.ts";

const INTERCEPT = new URL("../../intercept.ts", import.meta.url);

async function outputRules(ns: Netns): Promise<string> {
  return (await ns.exec(["iptables", "-S", "OUTPUT"])).stdout;
}

async function runToEnd(ns: Netns, args: string[]) {
  return await ns.exec(denoCmd(INTERCEPT, args), { check: false, timeoutMs: 20_000 });
}

Deno.test({
  name: "intercept refuses conflicting rules and a busy queue, removes its rules on SIGINT",
  ignore: !isRoot(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetns(async (env) => {
      const ns = await env.netns("ir");
      await ns.exec(["iptables", "-A", "OUTPUT", "-p", "tcp", "--sport", "8080", "-j", "ACCEPT"]);
      const before = await outputRules(ns);

      const refused = await runToEnd(ns, [
        "--port",
        "8080",
        "-b",
        "127.0.0.1",
        "--stats-interval",
        "0",
      ]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(
        refused.stderr,
        /conflicting rule: -A OUTPUT -p tcp -m tcp --sport 8080 -j ACCEPT/,
      );
      assert.equal(await outputRules(ns), before, "nothing added, nothing removed");

      // a native nft rule (invisible to iptables -S) on another port is found as well
      await ns.exec(["nft", "add", "table", "inet", "h5t"]);
      await ns.exec([
        "nft",
        "add",
        "chain",
        "inet",
        "h5t",
        "out",
        "{ type filter hook output priority 0; }",
      ]);
      await ns.exec([
        "nft",
        "add",
        "rule",
        "inet",
        "h5t",
        "out",
        "tcp",
        "sport",
        "{ 8090, 9000-9100 }",
        "accept",
      ]);
      const nftRefused = await runToEnd(ns, [
        "--port",
        "9050",
        "-b",
        "127.0.0.1",
        "--stats-interval",
        "0",
      ]);
      assert.equal(nftRefused.code, 1, nftRefused.stderr);
      assert.match(
        nftRefused.stderr,
        /nft ruleset already has a conflicting output rule: tcp sport/,
      );
      assert.equal(await outputRules(ns), before);

      const child = ns.spawn(
        denoCmd(INTERCEPT, ["--port", "8081,8082", "-b", "127.0.0.1", "--queue-num", "9"]),
        { stdout: "piped", stderr: "piped" },
      );
      env.defer(() => stopChild(child));
      const stdout = new Response(child.stdout).text();
      const stderr = new Response(child.stderr).text();
      assert.ok(
        await waitFor(async () => (await outputRules(ns)).includes("--sport 8082"), 15_000, 100),
        "rules installed",
      );
      const during = await outputRules(ns);
      assert.equal(during.match(/tcpcopy-intercept-\d+-\w+/g)?.length, 2, during);

      const second = await runToEnd(ns, [
        "--port",
        "8083",
        "-p",
        "36600",
        "-b",
        "127.0.0.1",
        "--queue-num",
        "9",
      ]);
      assert.equal(second.code, 1);
      assert.match(second.stderr, /conflicting rule: .*--queue-num 9/);

      child.kill("SIGINT");
      const status = await child.status;
      assert.equal(status.code, 0, await stderr);
      assert.equal(await outputRules(ns), before, "exactly our rules removed");
      const lines = (await stdout).trim().split("\n");
      assert.equal(JSON.parse(lines.at(-1)!).final, true);
      assert.match(await stderr, /SIGINT received/);
    }),
});

Deno.test({
  name: "intercept usage errors exit 2 with one line naming the flag",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const ns = await env.netns("iu");
      const r = await runToEnd(ns, ["--port", "8080", "--queue-maxlen", "lots"]);
      assert.equal(r.code, 2);
      assert.equal(r.stderr.trim().split("\n").length, 1);
      assert.match(r.stderr, /--queue-maxlen "lots": expected an integer/);
      assert.doesNotMatch(await outputRules(ns), /tcpcopy-intercept/);
    }),
});
