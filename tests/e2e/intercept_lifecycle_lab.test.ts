/**
 * intercept's lifecycle under replication (root, the namespace lab of tests/helpers/lab.ts):
 * kill -9 intercept and start it again (the stale rule is replaced, replication resumes, one
 * rule per family), and SIGTERM during load (no reply reaches a client address while the
 * drain runs; the rules are gone after). A counter on the online host (raw PREROUTING, the
 * way back to the real clients) counts every target reply that escaped intercept.
 */
import assert from "node:assert/strict";
import { isRoot, type Netns, waitFor, withNetns } from "../helpers/netns.ts";
import { ab } from "../helpers/lab.ts";
import {
  HTTP_PORT,
  interceptCmd,
  readText,
  type Replication,
  served,
  settle,
  startLogged,
  startReplication,
  stopTcpcopy,
} from "../helpers/replication.ts";

const TAG_RE = /tcpcopy-intercept-(\d+)-\d+-[0-9a-z]+/g;

async function owners(ns: Netns, tool: string): Promise<number[]> {
  const out = (await ns.exec([tool, "-w", "-S", "OUTPUT"])).stdout;
  return [...out.matchAll(TAG_RE)].map((m) => Number(m[1]));
}

/** Packets taken by the NFQUEUE rules of `ns` (iptables counters). */
async function queued(ns: Netns): Promise<number> {
  const out = (await ns.exec(["iptables", "-w", "-L", "OUTPUT", "-v", "-x", "-n"])).stdout;
  return out.split("\n").filter((l) => l.includes("NFQUEUE"))
    .reduce((n, l) => n + Number(l.trim().split(/\s+/)[0]), 0);
}

/**
 * Counts packets from the target that reach the online host on their way to the real clients
 * (any protocol: the target sends nothing else to those addresses).
 */
async function leakCounter(rep: Replication): Promise<() => Promise<number>> {
  const on = rep.online[0];
  const clientNet = on.clientIp.replace(/\.\d+$/, ".0/24");
  await on.ns.exec([
    "iptables",
    "-w",
    "-t",
    "raw",
    "-I",
    "PREROUTING",
    "-s",
    rep.lab.targetIp,
    "-d",
    clientNet,
    "-m",
    "comment",
    "--comment",
    "leak",
  ]);
  return async () => {
    const out =
      (await on.ns.exec(["iptables", "-w", "-t", "raw", "-L", "PREROUTING", "-v", "-x", "-n"]))
        .stdout;
    const line = out.split("\n").find((l) => l.includes("/* leak */"));
    assert.ok(line, out);
    return Number(line.trim().split(/\s+/)[0]);
  };
}

/**
 * The control: a SYN from the target to a client address (a connect that cannot complete) is
 * counted, so the counter can fail.
 */
async function controlPing(rep: Replication, leaked: () => Promise<number>): Promise<void> {
  const before = await leaked();
  await rep.lab.target.exec(
    ["timeout", "1", "bash", "-c", `exec 3<>/dev/tcp/${rep.online[0].clientIp}/9`],
    { check: false },
  );
  assert.ok(await leaked() > before, "the leak counter sees target -> client packets");
}

Deno.test({
  name:
    "lifecycle lab: kill -9 intercept, start it again: stale rule replaced, replication resumes",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env, { tcpcopyArgs: () => ["-L"] });
      const on = rep.online[0], target = rep.lab.target;
      const url = (p: string) => `http://${on.ip}:${HTTP_PORT}${p}`;
      const leaked = await leakCounter(rep);
      const before = await ab(on.client, url("/before"), { requests: 200, concurrency: 4 });
      assert.equal(await settle(() => served(rep.targetLog, /GET \/before /), before), before);
      const oldPid = rep.intercept.pid;
      assert.deepEqual(await owners(target, "iptables"), [oldPid]);

      const tKill = Date.now();
      rep.intercept.child.kill("SIGKILL");
      await rep.intercept.child.status;
      // while intercept is gone, traffic goes on online; tcpcopy opens no session without an
      // intercept (lost.no_intercept), and the stale rule still keeps the target's answers in:
      // a connection attempt from the online host gets no SYN-ACK.
      const queuedBefore = await queued(target);
      const gap = await ab(on.client, url("/gap"), { requests: 50, concurrency: 2 });
      assert.equal(gap, 50);
      const probe = await on.ns.exec([
        "timeout",
        "2",
        "bash",
        "-c",
        `exec 3<>/dev/tcp/${rep.lab.targetIp}/${HTTP_PORT}`,
      ], { check: false });
      assert.notEqual(probe.code, 0, "the target's SYN-ACK must not get out");
      assert.ok(
        await waitFor(async () => await queued(target) > queuedBefore, 3000, 50),
        "the stale rule took the target's answers",
      );
      assert.deepEqual(await owners(target, "iptables"), [oldPid], "stale rule still there");

      const tStart = Date.now();
      const again = startLogged(
        env,
        target,
        interceptCmd([
          "--port",
          String(HTTP_PORT),
          "--stats-interval",
          "0",
          "--drain-seconds",
          "0",
        ]),
        `${rep.lab.dir}/intercept2`,
      );
      assert.ok(
        await waitFor(
          async () => /listening for tcpcopy/.test(await readText(again.err)),
          20_000,
          50,
        ),
        await readText(again.err),
      );
      const listenMs = Date.now() - tStart;
      assert.match(
        await readText(again.err),
        new RegExp(`replaced a stale iptables rule \\(owner pid ${oldPid} is not running\\)`),
      );
      // replication resumes once tcpcopy (-L) has reconnected: one request at a time until
      // the target serves one
      let resumed = -1;
      for (let i = 0; i < 150 && resumed < 0; i++) {
        await on.client.exec([
          "curl",
          "-s",
          "-o",
          "/dev/null",
          "--max-time",
          "2",
          url(`/probe${i}`),
        ]);
        if (await served(rep.targetLog, /GET \/probe\d+ /) > 0) resumed = Date.now();
        else await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(resumed > 0, `replication did not resume: ${await readText(on.tcpcopy.err)}`);
      const after = await ab(on.client, url("/after"), { requests: 200, concurrency: 4 });
      assert.equal(
        await settle(() => served(rep.targetLog, /GET \/after /), after),
        after,
        "loss 0 after the restart",
      );
      for (const tool of ["iptables", "ip6tables"]) {
        assert.deepEqual(await owners(target, tool), [again.pid], `${tool}: one rule, the new one`);
      }
      assert.equal(await leaked(), 0, "no reply reached a client address, also during the gap");
      await controlPing(rep, leaked);
      console.log(
        `[kill -9] restart -> listening ${listenMs} ms; restart -> replication resumed ` +
          `${resumed - tStart} ms (kill -> resumed ${resumed - tKill} ms, of which the test ` +
          `waited ${tStart - tKill} ms); /after ${after}/${after} replicated; leaked 0`,
      );
    }),
});

Deno.test({
  name: "lifecycle lab: SIGTERM during load drains: no reply reaches a client, rules gone after",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env, {
        interceptArgs: ["--drain-seconds", "4", "--stats-interval", "1"],
      });
      const on = rep.online[0], target = rep.lab.target;
      const leaked = await leakCounter(rep);
      const load = ab(on.client, `http://${on.ip}:${HTTP_PORT}/load`, {
        requests: 1_000_000,
        concurrency: 4,
        keepAlive: true,
        timeoutS: 8,
      });
      await new Promise((r) => setTimeout(r, 2000));
      assert.ok(await served(rep.targetLog) > 0, "replicating before the signal");

      const tSig = Date.now();
      rep.intercept.child.kill("SIGTERM");
      // tcpcopy is stopped 2 s later (it resets its sessions on the target): replication goes
      // on during the first half of the drain
      const tcStop = new Promise((r) => setTimeout(r, 2000)).then(() =>
        stopTcpcopy(on.tcpcopy, "SIGTERM")
      );
      let duringDrain = -1, rulesGoneMs = -1;
      for (let i = 0; i < 400; i++) {
        const l = await leaked();
        if ((await owners(target, "iptables")).length === 0) {
          rulesGoneMs = Date.now() - tSig;
          break;
        }
        duringDrain = l; // the counter while the rules were still there
        await new Promise((r) => setTimeout(r, 25));
      }
      const code = (await rep.intercept.child.status).code;
      const tc = await tcStop;
      await load;
      await new Promise((r) => setTimeout(r, 1000));
      const afterExit = await leaked();

      const log = await readText(rep.intercept.err);
      assert.equal(code, 0, log);
      assert.match(log, /SIGTERM received: draining for 4 s/);
      assert.match(log, /drain over, exiting/);
      assert.ok(rulesGoneMs >= 3500 && rulesGoneMs < 7000, `rules gone after ${rulesGoneMs} ms`);
      assert.deepEqual(await owners(target, "ip6tables"), []);
      const stats = (await readText(rep.intercept.out)).split("\n").filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { draining: boolean; verdicts: { drop: number } });
      const drained = stats.filter((s) => s.draining);
      assert.ok(drained.length >= 1, "stats lines say draining");
      // from the first stats line that says draining (<= 1 s after SIGTERM) to the final one
      const droppedInDrain = stats.at(-1)!.verdicts.drop - drained[0].verdicts.drop;
      assert.ok(droppedInDrain > 0, "replies were still dropped during the drain");
      assert.equal(duringDrain, 0, "no reply reached a client address during the drain");
      console.log(
        `[drain] SIGTERM -> rules gone ${rulesGoneMs} ms; replies dropped during the drain ` +
          `(after the first draining stats line) ${droppedInDrain}; leaked during the drain ${duringDrain}, after exit ${afterExit}; ` +
          `tcpcopy exit ${tc.code}`,
      );
      assert.equal(afterExit, 0, "tcpcopy had reset its sessions: nothing leaks after either");
      await controlPing(rep, leaked);
    }),
});
