/**
 * `./build.sh demo`: a short run replicates with zero loss and prints its summary; an
 * interrupted run (Ctrl-C) still removes every namespace it made.
 */
import assert from "node:assert/strict";
import { isRoot, waitFor } from "../helpers/netns.ts";

const root = new URL("../../", import.meta.url).pathname;

function spawnDemo(seconds: number): Deno.ChildProcess {
  const denoDir = Deno.execPath().replace(/\/[^/]+$/, "");
  return new Deno.Command("bash", {
    args: [`${root}build.sh`, "demo", "--seconds", String(seconds)],
    env: { PATH: `${denoDir}:${Deno.env.get("PATH")}` },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
}

/** Namespaces made by the demo process `pid` (see tests/helpers/netns.ts uniqueName). */
async function namespacesOf(pid: number): Promise<string[]> {
  const pid36 = (pid % 36 ** 4).toString(36);
  const out = await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split(" ")[0])
    .filter((n) => new RegExp(`^(tgt|on\\d|cl\\d)${pid36}`).test(n));
}

Deno.test({
  name: "demo: a short run replicates with loss 0, prints both programs' stats and a summary",
  ignore: !isRoot(),
  fn: async () => {
    const demo = spawnDemo(3);
    const timer = setTimeout(() => demo.kill("SIGKILL"), 120_000);
    const out = await demo.output();
    clearTimeout(timer);
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr.slice(-2000));
    // Piped, stdout is JSON lines only (what jq reads), no terminal control characters.
    assert.ok(!stdout.includes("\r") && !stdout.includes("\x1b"), "no terminal control on stdout");
    const records = stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.ok(records.some((r) => r.source === "tcpcopy" && r.program === "tcpcopy"));
    assert.ok(records.some((r) => r.source === "intercept" && r.type === "stats"));
    const summary = records.at(-1);
    assert.equal(summary.type, "demo_summary");
    assert.ok(summary.online_requests > 100, `online requests: ${summary.online_requests}`);
    assert.equal(summary.target_requests, summary.online_requests);
    assert.equal(summary.loss_ratio, 0);
    assert.ok(summary.cpu_seconds.tcpcopy > 0 && summary.rss_mib.intercept > 0);
    assert.match(
      stderr,
      /^demo: \d+s +online requests \d+ +target requests \d+$/m,
      "progress line",
    );
    assert.ok(!stderr.includes("\x1b"), "no line clearing when stderr is not a terminal");
    assert.deepEqual(await namespacesOf(demo.pid), []);
  },
});

Deno.test({
  name: "demo: Ctrl-C removes every namespace and process it started",
  ignore: !isRoot(),
  fn: async () => {
    const demo = spawnDemo(60);
    const output = demo.output();
    try {
      // Wait until the topology exists and replication runs, then interrupt.
      assert.ok(await waitFor(async () => (await namespacesOf(demo.pid)).length >= 3, 30_000, 100));
      await new Promise((r) => setTimeout(r, 4000));
      demo.kill("SIGINT");
      const timer = setTimeout(() => demo.kill("SIGKILL"), 30_000);
      const out = await output;
      clearTimeout(timer);
      assert.equal(out.code, 130, new TextDecoder().decode(out.stderr).slice(-1000));
      assert.deepEqual(await namespacesOf(demo.pid), []);
    } finally {
      try {
        demo.kill("SIGKILL");
      } catch { /* already gone */ }
    }
  },
});
