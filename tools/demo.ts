/**
 * `sudo ./build.sh demo`: replicate a mixed workload end to end on a throw-away topology.
 *
 * Builds network namespaces (clients, an online server, a target server running intercept),
 * starts real servers, runs tcpcopy and intercept from this checkout, drives short and
 * keep-alive HTTP, a POST > 64 KiB and a server-speaks-first line protocol for `--seconds`.
 * stdout carries JSON lines only (both programs' stats lines, each with a `source` key, then a
 * final `demo_summary`: online vs target request counts, the loss ratio as in the seed's README,
 * CPU and memory of both programs), so `./build.sh demo | jq` works. Progress goes to stderr:
 * a line rewritten in place on a terminal, a plain line every 5 s otherwise. Everything is torn
 * down at the end, also on Ctrl-C.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { requirementsFor } from "../lib/setup/packages.ts";
import { planSetup } from "../lib/setup/plan.ts";
import { detectManager, missing } from "../lib/setup/probe.ts";
import { v8FlagsArg } from "../lib/process/v8_flags.ts";
import { Cleanup, isRoot, stopChild } from "../tests/helpers/netns.ts";
import {
  ab,
  buildLab,
  countLines,
  cpuSeconds,
  HTTP_PORT,
  type Lab,
  LINE_PORT,
  lossRatio,
  rssMiB,
  sh,
  startLineServer,
  startNginx,
} from "../tests/helpers/lab.ts";

const root = new URL("../", import.meta.url).pathname;
const enc = new TextEncoder();
/** Progress is rewritten in place only on a terminal; piped, a plain line at 1 s, then every 5 s. */
const ttyProgress = Deno.stderr.isTerminal();
const PLAIN_PROGRESS_EVERY_S = 5;

function usage(code: number): never {
  console.log(`usage: sudo ./build.sh demo [--seconds N] [--online-hosts N]

Builds a throw-away topology with network namespaces, replicates a mixed workload from the
online server(s) to a target server with tcpcopy + intercept, prints both programs' JSON stats
and a final loss summary, then removes everything.`);
  Deno.exit(code);
}

interface Counts {
  online: number;
  target: number;
}

/** Counts requests in the online hosts' and the target's logs (HTTP access logs + line logs). */
async function counts(lab: Lab): Promise<Counts> {
  let online = 0;
  for (let i = 0; i < lab.online.length; i++) {
    online += await countLines(`${lab.dir}/online${i}/access.log`);
    online += await countLines(`${lab.dir}/line-online${i}.log`);
  }
  const target = await countLines(`${lab.dir}/target/access.log`) +
    await countLines(`${lab.dir}/line-target.log`);
  return { online, target };
}

/** Clears the progress line on a terminal before other output lands on it. */
async function clearProgress(): Promise<void> {
  if (ttyProgress) await Deno.stderr.write(enc.encode("\r\x1b[K"));
}

/**
 * Forwards a child's stdout lines (JSON stats) to ours as JSON with a `source` key first (the
 * program, numbered when there are several online hosts); anything else goes to stderr.
 */
async function pipeLines(stream: ReadableStream<Uint8Array>, name: string, sink: string[]) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    let at: number;
    while ((at = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, at);
      pending = pending.slice(at + 1);
      sink.push(line);
      await clearProgress();
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch { /* not JSON */ }
      if (record !== null && typeof record === "object" && !Array.isArray(record)) {
        await Deno.stdout.write(enc.encode(`${JSON.stringify({ source: name, ...record })}\n`));
      } else {
        await Deno.stderr.write(enc.encode(`[${name}] ${line}\n`));
      }
    }
  }
}

async function workload(lab: Lab, stop: () => boolean, big: string): Promise<void> {
  const lineClient = new URL("../tests/helpers/line_client.ts", import.meta.url).pathname;
  const jobs = lab.online.map(async (on, i) => {
    const url = `http://${on.ip}:${HTTP_PORT}`;
    for (let round = 0; !stop() && round < 1000; round++) {
      await ab(on.client, `${url}/short/${round}`, { requests: 200, concurrency: 4, timeoutS: 20 });
      await ab(on.client, `${url}/keepalive/${round}`, {
        requests: 500,
        concurrency: 2,
        keepAlive: true,
        timeoutS: 20,
      });
      await sh(on.client, `curl -s -o /dev/null --data-binary @${big} ${url}/post/${round}`);
      await on.client.exec([
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        lineClient,
        on.ip,
        String(LINE_PORT),
        "2",
        "10",
        `h${i}r${round}`,
      ], { timeoutMs: 70_000 });
    }
  });
  await Promise.all(jobs);
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "20" },
      "online-hosts": { type: "string", default: "1" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) usage(0);
  const seconds = Number(values.seconds), hosts = Number(values["online-hosts"]);
  if (!(seconds > 0 && seconds <= 600)) {
    console.error(`demo: --seconds ${values.seconds}: expected a number of seconds in 1..600`);
    Deno.exit(2);
  }
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > 4) {
    console.error(`demo: --online-hosts ${values["online-hosts"]}: expected 1..4`);
    Deno.exit(2);
  }
  if (!isRoot()) {
    console.error("demo: needs root (network namespaces, NFQUEUE): run sudo ./build.sh demo");
    Deno.exit(1);
  }
  const plan = planSetup({
    missing: missing(requirementsFor(["demo"])),
    purposes: ["demo"],
    root: true,
    manager: detectManager(),
    checkOnly: true,
  });
  if (plan.action !== "ok") {
    console.error(`demo: ${plan.line} (sudo ./build.sh demo installs them itself)`);
    Deno.exit(1);
  }

  const env = new Cleanup();
  let interrupted = false;
  let cleanup: Promise<void> | undefined;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    console.error("\ndemo: interrupted, cleaning up");
    cleanup = env.run().catch((e) => console.error(`demo: clean-up: ${e}`));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    console.error(`demo: building the topology (${hosts} online host(s), 1 target)`);
    const lab = await buildLab(env, hosts);
    for (let i = 0; i < hosts; i++) {
      const on = lab.online[i];
      await startNginx(env, on.ns, `${lab.dir}/online${i}`, on.ip);
      await startLineServer(env, on.ns, on.ip, `${lab.dir}/line-online${i}.log`);
    }
    await startNginx(env, lab.target, `${lab.dir}/target`, lab.targetIp);
    await startLineServer(env, lab.target, "0.0.0.0", `${lab.dir}/line-target.log`);

    const stats: string[] = [];
    const intercept = env.child(lab.target.spawn([
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      v8FlagsArg("intercept"),
      `${root}intercept.ts`,
      "--port",
      `${HTTP_PORT},${LINE_PORT}`,
      "--stats-interval",
      "5",
      "--drain-seconds",
      "1",
    ], { stdout: "piped", stderr: "inherit" }));
    const pumps = [pipeLines(intercept.stdout, "intercept", stats)];
    await new Promise((r) => setTimeout(r, 1500)); // let intercept install its rules and listen
    const tcpcopies = lab.online.map((on, i) => {
      const target = lab.targetIps[i];
      const child = env.child(on.ns.spawn([
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        v8FlagsArg("tcpcopy"),
        `${root}main.ts`,
        "-x",
        `${HTTP_PORT}-${target}:${HTTP_PORT},${LINE_PORT}-${target}:${LINE_PORT}`,
        "-s",
        target,
        "-i",
        on.clientSideIf,
        "--stats-interval",
        "5",
      ], { stdout: "piped", stderr: "inherit" }));
      pumps.push(pipeLines(child.stdout, `tcpcopy${hosts > 1 ? i + 1 : ""}`, stats));
      return child;
    });
    await new Promise((r) => setTimeout(r, 1500));

    const big = `${lab.dir}/post.bin`;
    await Deno.writeFile(big, new Uint8Array(96 * 1024).fill(0x61));
    const started = Date.now(), until = started + seconds * 1000;
    let ticks = 0;
    const progress = setInterval(async () => {
      ticks++;
      if (!ttyProgress && ticks !== 1 && ticks % PLAIN_PROGRESS_EVERY_S !== 0) return;
      const c = await counts(lab);
      const s = ((Date.now() - started) / 1000).toFixed(0);
      const text = `${s}s  online requests ${c.online}  target requests ${c.target}`;
      await Deno.stderr.write(enc.encode(ttyProgress ? `\r\x1b[K${text}` : `demo: ${text}\n`));
    }, 1000);
    try {
      await workload(lab, () => interrupted || Date.now() >= until, big);
    } finally {
      clearInterval(progress);
      await clearProgress();
    }
    if (interrupted) throw new Error("interrupted");
    await new Promise((r) => setTimeout(r, 3000)); // let the last replays finish

    const cpu = {
      tcpcopy: (await Promise.all(tcpcopies.map((c) => cpuSeconds(c.pid)))).reduce((a, b) => a + b),
      intercept: await cpuSeconds(intercept.pid),
    };
    const mem = {
      tcpcopy: Math.max(...await Promise.all(tcpcopies.map((c) => rssMiB(c.pid)))),
      intercept: await rssMiB(intercept.pid),
    };
    for (const c of tcpcopies) await stopChild(c, 3000);
    await stopChild(intercept, 3000);
    await Promise.race([Promise.all(pumps), new Promise((r) => setTimeout(r, 2000))]);

    const c = await counts(lab);
    const loss = lossRatio(c.online, c.target);
    const summary = {
      type: "demo_summary",
      seconds,
      online_hosts: hosts,
      online_requests: c.online,
      target_requests: c.target,
      loss_ratio: Number(loss.toFixed(6)),
      cpu_seconds: { tcpcopy: cpu.tcpcopy, intercept: cpu.intercept },
      rss_mib: {
        tcpcopy: Number(mem.tcpcopy.toFixed(1)),
        intercept: Number(mem.intercept.toFixed(1)),
      },
    };
    console.log(JSON.stringify(summary));
    console.error(
      `demo: ${c.online} requests online, ${c.target} on the target, loss ratio ` +
        `(online - target) / online = ${(loss * 100).toFixed(3)}%`,
    );
    if (!interrupted && c.online === 0) Deno.exitCode = 1;
  } catch (e) {
    // Once interrupted, the servers vanish under the workload: its errors are expected.
    if (!interrupted) throw e;
  } finally {
    if (!interrupted) await env.run();
    else {
      await cleanup;
      Deno.exit(130);
    }
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

try {
  await main();
} catch (e) {
  // One line, no stack trace: the helpers' errors say what failed and how to fix it.
  console.error(`demo: ${e instanceof Error ? e.message : String(e)}`);
  Deno.exit(1);
}
