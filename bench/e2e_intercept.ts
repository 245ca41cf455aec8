/**
 * intercept alone under load (root): NFQUEUE intercept on a target namespace, and a fake
 * tcpcopy (bench/e2e_intercept_peer.ts) in a peer namespace that registers routes and sends raw
 * SYNs to a closed port; the target kernel's RST|ACK replies are queued, dropped and routed
 * back through the tunnel. Reports, per phase: replies/s, intercept CPU µs per reply (user and
 * system), context switches per reply (a wake-up proxy), and the latency intercept adds
 * (SYN sent -> reply header received by the peer; the veth and kernel part is a few tens of
 * µs).
 *
 *   sudo deno run -A bench/e2e_intercept.ts [--turns 2000] [--rates 2000,10000,30000]
 *        [--seconds 3] [--runs 1] [-- extra intercept flags, e.g. --coalesce-ms 0]
 *
 * @module
 */
import { benchArgs } from "./args.ts";
import {
  denoCmd,
  isRoot,
  stopChild,
  vethPair,
  waitFor,
  withNetns,
} from "../tests/helpers/netns.ts";
import { interceptCmd } from "../tests/helpers/replication.ts";
import type { PeerConfig } from "./e2e_intercept_peer.ts";

const ROOT = new URL("../", import.meta.url);
const PEER = new URL("bench/e2e_intercept_peer.ts", ROOT);
const CLOSED_PORT = 8080;

const { values, positionals } = benchArgs(import.meta.url, {
  args: Deno.args,
  allowPositionals: true,
  options: {
    turns: { type: "string", default: "2000" },
    warmup: { type: "string", default: "500" },
    rates: { type: "string", default: "2000,10000,30000" },
    seconds: { type: "string", default: "3" },
    runs: { type: "string", default: "1" },
  },
});

async function once(extra: string[]): Promise<string[]> {
  return await withNetns(async (env) => {
    const peer = await env.netns("bp"), target = await env.netns("bt");
    const net = 10 + Math.floor(Math.random() * 200);
    const peerIp = `10.${net}.7.1`, targetIp = `10.${net}.7.2`;
    await vethPair(peer, target, peerIp, targetIp);
    const ic = target.spawn(
      interceptCmd([
        "--port",
        String(CLOSED_PORT),
        "-b",
        targetIp,
        "--stats-interval",
        "0",
        "--drain-seconds",
        "0",
        ...extra,
      ]),
      { stdout: "piped", stderr: "piped" },
    );
    env.defer(() => stopChild(ic, 5000));
    const stdout = new Response(ic.stdout).text();
    let err = "";
    (async () => {
      const dec = new TextDecoder();
      for await (const c of ic.stderr) err += dec.decode(c);
    })();
    if (!await waitFor(() => /listening for tcpcopy/.test(err), 15_000, 50)) {
      throw new Error(`intercept did not start: ${err}`);
    }
    const cfg: PeerConfig = {
      intercept: targetIp,
      tunnelPort: 36524,
      interceptPid: ic.pid,
      self: peerIp,
      target: targetIp,
      tport: CLOSED_PORT,
      warmup: Number(values.warmup),
      turns: Number(values.turns),
      rates: values.rates!.split(",").filter((s) => s).map(Number),
      seconds: Number(values.seconds),
    };
    const r = await peer.exec(denoCmd(PEER, [JSON.stringify(cfg)]), {
      check: false,
      timeoutMs: 120_000,
    });
    if (r.code !== 0) throw new Error(`peer failed: ${r.stderr}\nintercept: ${err}`);
    await stopChild(ic, 5000);
    const final = (await stdout).trim().split("\n").at(-1) ?? "";
    console.error(`intercept final stats: ${final}`);
    return r.stdout.trim().split("\n");
  });
}

if (import.meta.main) {
  if (!isRoot()) {
    console.error("e2e_intercept: needs root (network namespaces, NFQUEUE, raw sockets)");
    Deno.exit(1);
  }
  console.log(`# intercept flags: ${positionals.join(" ") || "(defaults)"}`);
  for (let i = 0; i < Number(values.runs); i++) {
    for (const line of await once(positionals)) console.log(line);
  }
}
