/**
 * NFQUEUE throughput: packets/s and CPU µs/packet of NfQueue (recvmmsg x64, JS netlink parsing,
 * one batch verdict per run) giving every packet a DROP verdict.
 *
 *   sudo deno run -A bench/io_nfqueue.ts [--count 300000] [--reps 3]
 *
 * In one namespace, `iptables -I OUTPUT -p tcp --sport 8080 -j NFQUEUE --queue-num Q` queues
 * "responses" that a RawIpSender (pinned to CPU0, 64 MiB send buffer) emits as fast as it can;
 * the consumer is pinned to CPU1. Two regimes: live (the consumer reads while the sender runs:
 * the sender is usually the bottleneck) and drain (the sender fills the queue first, up to
 * 50 000 packets, then the consumer empties it: its own maximum rate). No C baseline is run (the libnetfilter_queue headers are not
 * installed); the reference measured 131 kpps (per-packet verdict) / 202 kpps (batch verdict)
 * for the C library's callback loop on this VM type.
 */

import { benchArgs } from "./args.ts";
import process from "node:process";
import { Cleanup, denoCmd, vethPair } from "../tests/helpers/netns.ts";
import { NfQueue, Verdict } from "../lib/io/nfqueue.ts";
import { RawIpSender } from "../lib/io/raw_send.ts";
import { addressPair, buildTcpPacket, type TcpPacketRepr } from "../lib/wire/build.ts";
import { printTable } from "./table.ts";

const SELF = new URL(import.meta.url).pathname;

function roleSend(count: number): void {
  const repr: TcpPacketRepr = {
    ...addressPair("10.222.0.2", "10.222.0.1"),
    srcPort: 8080,
    dstPort: 40000,
    seq: 1,
    ack: 1,
    flags: 0x14,
    window: 0,
  };
  const tx = RawIpSender.open({
    sndbuf: 64 << 20,
    maxPacket: 2048,
    retryBudgetMs: 1000,
    stallBudgetMs: 1000,
  });
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    repr.seq = i;
    buildTcpPacket(repr, tx.slot(40));
  }
  tx.flush();
  const secs = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ ...tx.stats, pps: tx.stats.sent / secs }));
  tx.close();
}

async function roleQueue(queue: number, count: number, prefill: boolean): Promise<void> {
  const q = NfQueue.open({
    queue,
    copyRange: 128,
    maxLen: 65536,
    rcvbuf: (prefill ? 256 : 32) << 20,
  });
  let first = 0, last = 0, seen = 0, wakeups = 0, cpu0 = process.cpuUsage();
  const decide = (): Verdict => Verdict.DROP;
  console.log("ready");
  if (prefill) { // wait until the sender has queued everything: measures the drain rate alone
    const line = new Uint8Array(16);
    await Deno.stdin.read(line);
  }
  const deadline = performance.now() + 60_000;
  while (seen < count && performance.now() < deadline) {
    await q.wait(200);
    wakeups++;
    const t = performance.now(), c = process.cpuUsage();
    const n = q.drain(decide);
    if (n > 0) {
      if (first === 0) {
        first = t;
        cpu0 = c;
      }
      last = performance.now();
      seen += n;
    } else if (first !== 0 && performance.now() - last > 1500) break;
  }
  const c = process.cpuUsage(cpu0);
  const s = q.stats();
  console.log(JSON.stringify({
    ...s,
    pps: s.received / ((last - first) / 1000),
    usPerPacket: (c.user + c.system) / s.received,
    userShare: c.user / (c.user + c.system),
    perWake: s.received / wakeups,
  }));
  q.close();
}

async function main(): Promise<void> {
  const { values } = benchArgs(import.meta.url, {
    args: Deno.args,
    options: {
      count: { type: "string", default: "300000" },
      reps: { type: "string", default: "3" },
    },
  });
  const count = Number(values.count), reps = Number(values.reps);
  const prefillCount = Math.min(count, 50_000);
  const env = new Cleanup();
  const rows: string[][] = [];
  try {
    const a = await env.netns("na"), b = await env.netns("nb");
    await vethPair(a, b, "10.222.0.1", "10.222.0.2");
    for (let run = 0; run < 2 * reps; run++) {
      const rep = run >> 1, prefill = (run & 1) === 1, n = prefill ? prefillCount : count;
      const queue = 1000 + run;
      await b.exec([
        "iptables",
        "-I",
        "OUTPUT",
        "-p",
        "tcp",
        "--sport",
        "8080",
        "-j",
        "NFQUEUE",
        "--queue-num",
        String(queue),
      ]);
      const consumer = env.child(b.spawn(
        [
          "taskset",
          "-c",
          "1",
          ...denoCmd(SELF, ["queue", String(queue), String(n), String(prefill)]),
        ],
        { stdout: "piped", stdin: "piped" },
      ));
      const out = consumer.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      while (!buf.includes("ready\n")) buf += (await out.read()).value ?? "";
      buf = buf.slice(buf.indexOf("ready\n") + 6);
      const sent = JSON.parse(
        (await b.exec(["taskset", "-c", "0", ...denoCmd(SELF, ["send", String(n)])], {
          timeoutMs: 120_000,
        })).stdout,
      );
      const go = consumer.stdin.getWriter();
      if (prefill) await go.write(new TextEncoder().encode("go\n"));
      await go.close().catch(() => {}); // a live consumer may already have exited
      for (;;) {
        const { value, done } = await out.read();
        if (value) buf += value;
        if (done || buf.includes("\n")) break;
      }
      const r = JSON.parse(buf);
      await consumer.status;
      await b.exec(["iptables", "-F", "OUTPUT"]);
      rows.push([
        `NfQueue DROP, ${prefill ? "drain a pre-filled queue" : "live, sender-paced"}, rep ${
          rep + 1
        }`,
        `${Math.round(r.pps)}`,
        `${r.usPerPacket.toFixed(2)} (${Math.round(r.userShare * 100)}% user)`,
        `${r.received}/${sent.sent}`,
        `${r.batches}`,
        r.perWake.toFixed(0),
        `${r.enobufs}`,
        `${r.queueDropped ?? "?"}/${r.userDropped ?? "?"}`,
        `${Math.round(sent.pps)}`,
      ]);
    }
  } finally {
    await env.run();
  }
  const head = [
    "config",
    "handled pps",
    "CPU µs/pkt",
    "handled/sent",
    "verdict calls",
    "pkts/wake",
    "ENOBUFS",
    "queue/user dropped",
    "sender pps",
  ];
  printTable(head, rows);
}

if (import.meta.main) {
  const [role, ...a] = Deno.args;
  if (role === "send") roleSend(Number(a[0]));
  else if (role === "queue") await roleQueue(Number(a[0]), Number(a[1]), a[2] === "true");
  else await main();
}
