/**
 * End-to-end tests of NfQueue: a TCP server's replies are queued by
 * `iptables -I OUTPUT -p tcp --sport PORT -j NFQUEUE --queue-num Q` in its namespace; the peer
 * captures with `tcpdump -w` (read back with PcapFile) to see what really left.
 *
 * The queue consumer must run inside the namespace, so this file is also its own peer program:
 * `deno run -A io_nfqueue.test.ts <role> ...` (roles at the bottom).
 */

import assert from "node:assert/strict";
import {
  Cleanup,
  denoCmd,
  denoEval,
  isRoot,
  lineReader,
  Netns,
  stopChild,
  vethPair,
  withNetns,
} from "../helpers/netns.ts";
import { kernelQueueStats, NfQueue, Verdict } from "../../lib/io/nfqueue.ts";
import { PcapFile } from "../../lib/io/pcap.ts";
import { RawIpSender } from "../../lib/io/raw_send.ts";
import {
  addressPair,
  buildTcpPacket,
  tcpPacketLength,
  type TcpPacketRepr,
} from "../../lib/wire/build.ts";

const SELF = new URL(import.meta.url).pathname;
const PORT = 7400;

interface QueueReport {
  received: number;
  accepted: number;
  dropped: number;
  batches: number;
  enobufs: number;
  notFromPort: number;
  userDropped?: number;
  queueDropped?: number;
}

/** Two namespaces; in `b` the NFQUEUE rule for replies from PORT and the queue consumer. */
async function setUp(env: Cleanup, mode: string, expect = 0) {
  const a = await env.netns("qa"), b = await env.netns("qb");
  const { ifA } = await vethPair(a, b, "10.214.0.1", "10.214.0.2");
  const queue = 1 + Math.floor(Math.random() * 60000);
  await b.exec([
    "iptables",
    "-I",
    "OUTPUT",
    "-p",
    "tcp",
    "--sport",
    String(PORT),
    "-j",
    "NFQUEUE",
    "--queue-num",
    String(queue),
  ]);
  const consumer = env.child(
    b.spawn(denoCmd(SELF, ["queue", String(queue), mode, String(expect)]), { stdout: "piped" }),
  );
  const next = lineReader(consumer.stdout);
  assert.equal(await next(), "ready");
  const dir = await Deno.makeTempDir({ prefix: "io_nfq" });
  env.defer(() => Deno.remove(dir, { recursive: true }));
  const pcapPath = `${dir}/replies.pcap`;
  const tcpdump = env.child(a.spawn(
    [
      "tcpdump",
      "-i",
      ifA,
      "-U",
      "-n",
      "-Z",
      "root",
      "-w",
      pcapPath,
      "tcp",
      "src",
      "port",
      String(PORT),
    ],
    { stderr: "piped" },
  ));
  const err = tcpdump.stderr.pipeThrough(new TextDecoderStream()).getReader();
  for (let seen = ""; !seen.includes("listening on");) {
    const { value, done } = await err.read();
    if (done) throw new Error(`tcpdump did not start: ${seen}`);
    seen += value;
  }
  return {
    a,
    b,
    next,
    /** Stops the consumer (SIGTERM) and tcpdump; returns the queue report and captured frames. */
    finish: async () => {
      consumer.kill("SIGTERM");
      const report: QueueReport = JSON.parse(await next());
      await new Promise((r) => setTimeout(r, 1200)); // tcpdump reads its ring once a second
      await stopChild(tcpdump);
      const file = PcapFile.open(pcapPath);
      assert.equal(file.linkType, 1);
      const frames = [...file].map((r) => r.data);
      return { report, frames };
    },
  };
}

async function startEchoServer(env: Cleanup, ns: Netns) {
  const server = env.child(ns.spawn(
    denoEval(`const l = Deno.listen({ hostname: "10.214.0.2", port: ${PORT} });
      console.log("ready");
      for (let i = 0; i < 3; i++) {
        const c = await l.accept(); const b = new Uint8Array(64); const n = await c.read(b);
        await c.write(b.subarray(0, n ?? 0)); c.close();
      }`),
    { stdout: "piped" },
  ));
  assert.equal(await lineReader(server.stdout)(), "ready");
}

const CLIENT = `const timer = setTimeout(() => { console.log("timeout"); Deno.exit(0); }, 1500);
  const c = await Deno.connect({ hostname: "10.214.0.2", port: ${PORT} });
  await c.write(new TextEncoder().encode("ping"));
  const b = new Uint8Array(16); const n = await c.read(b);
  console.log("echo:" + new TextDecoder().decode(b.subarray(0, n ?? 0)));
  clearTimeout(timer); c.close();`;

Deno.test({
  name: "NFQUEUE DROP: the server's replies never reach the peer",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const { a, b, finish } = await setUp(env, "drop");
      await startEchoServer(env, b);
      const client = await a.exec(denoEval(CLIENT));
      assert.equal(client.stdout.trim(), "timeout");
      const { report, frames } = await finish();
      assert.equal(frames.length, 0, "no reply left the server's namespace");
      assert.ok(report.dropped >= 1, `dropped ${report.dropped}`);
      assert.equal(report.accepted, 0);
      assert.equal(report.notFromPort, 0, "payloads start at the IP header");
    }),
});

Deno.test({
  name: "NFQUEUE ACCEPT: the connection works and the peer sees the replies",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const { a, b, finish } = await setUp(env, "accept");
      await startEchoServer(env, b);
      const client = await a.exec(denoEval(CLIENT));
      assert.equal(client.stdout.trim(), "echo:ping");
      const { report, frames } = await finish();
      assert.ok(report.accepted >= 3, `accepted ${report.accepted}`);
      assert.equal(report.dropped, 0);
      assert.equal(frames.length, report.accepted);
      assert.equal(report.notFromPort, 0);
    }),
});

Deno.test({
  name: "NFQUEUE mixed verdicts in one batch: exactly the accepted packets leave",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const { b, finish } = await setUp(env, "by-seq"); // DROP when seq % 3 == 0
      const count = 300;
      const out = await b.exec(denoCmd(SELF, ["send", String(count)]));
      assert.equal(JSON.parse(out.stdout).sent, count);
      await new Promise((r) => setTimeout(r, 300));
      const { report, frames } = await finish();
      assert.equal(report.received, count);
      assert.equal(report.dropped, count / 3);
      assert.equal(report.accepted, count - count / 3);
      assert.ok(report.batches < count, `${report.batches} verdict calls for ${count} packets`);
      const seqs = frames.map((f) => new DataView(f.buffer, f.byteOffset + 14 + 20).getUint32(4));
      assert.equal(seqs.length, count - count / 3);
      assert.ok(seqs.every((s) => s % 3 !== 0), "a dropped packet leaked");
      assert.equal(new Set(seqs).size, seqs.length);
    }),
});

Deno.test({
  name:
    "NFQUEUE burst: 20,000 replies queued behind a stalled reader are all kept, then dropped by verdict",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      // held20k's second request: 20,000 replies at once while intercept waits for the CPU.
      // The queue sized by lib/io/nfq_sizing.ts holds them (the former 8,192 dropped the rest).
      const { b, next, finish } = await setUp(env, "stall", BURST);
      const out = await b.exec(denoCmd(SELF, ["send", String(BURST), String(64 << 20)]));
      assert.equal(JSON.parse(out.stdout).sent, BURST);
      assert.match(await next(), /^drained \d+$/);
      const { report, frames } = await finish();
      assert.equal(report.queueDropped, 0, "dropped at the queue's length");
      assert.equal(report.userDropped, 0, "dropped at the socket's buffer");
      assert.equal(report.received, BURST);
      assert.equal(report.dropped, BURST);
      assert.equal(frames.length, 0, "fail-closed: nothing left the namespace");
    }),
});

// ---- peer roles ----------------------------------------------------------------------------

/** Packets of the burst test. */
const BURST = 20_000;

/**
 * In mode "stall", the consumer reads nothing until `expect` packets wait in the kernel's queue
 * (or their number stopped growing for a second: the kernel dropped the rest), then says
 * "drained N" once it has read what was queued.
 */
async function stall(queue: number, expect: number, deadline: number): Promise<void> {
  let last = -1, since = performance.now();
  while (performance.now() < deadline) {
    const waiting = kernelQueueStats(queue).waiting ?? 0;
    if (waiting >= expect) return;
    if (waiting !== last) [last, since] = [waiting, performance.now()];
    else if (waiting > 0 && performance.now() - since > 1000) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function roleQueue(queue: number, mode: string, expect: number): Promise<void> {
  const q = NfQueue.open({ queue });
  Deno.addSignalListener("SIGTERM", () => q.stop());
  let notFromPort = 0;
  const decide = (_id: number, p: Uint8Array): Verdict => {
    const ihl = (p[0] & 15) * 4;
    if (p[0] >> 4 !== 4 || ((p[ihl] << 8) | p[ihl + 1]) !== PORT) notFromPort++;
    if (mode === "drop" || mode === "stall") return Verdict.DROP;
    if (mode === "accept") return Verdict.ACCEPT;
    const seq = new DataView(p.buffer, p.byteOffset + ihl).getUint32(4);
    return seq % 3 === 0 ? Verdict.DROP : Verdict.ACCEPT;
  };
  console.log("ready");
  const deadline = performance.now() + 20_000;
  if (mode === "stall") await stall(queue, expect, deadline - 5000);
  let read = 0, said = mode !== "stall";
  while (performance.now() < deadline && await q.wait(deadline - performance.now())) {
    // as intercept drains: a short drain lets what its verdicts released go out, then reads on
    let n = q.drain(decide);
    if (n > 0) {
      q.releaseHeldSends();
      n += q.drain(decide);
    }
    read += n;
    if (!said && read > 0 && (kernelQueueStats(queue).waiting ?? 0) === 0) {
      console.log(`drained ${read}`);
      said = true;
    }
  }
  console.log(JSON.stringify({ ...q.stats(), notFromPort }));
  q.close();
  Deno.exit(0);
}

function roleSend(count: number, sndbuf?: number): void {
  // the queued packets stay charged to this socket until their verdict: a burst needs room
  const tx = RawIpSender.open({ sndbuf });
  for (let i = 1; i <= count; i++) {
    const repr: TcpPacketRepr = {
      ...addressPair("10.214.0.2", "10.214.0.1"),
      srcPort: PORT,
      dstPort: 40000,
      seq: i,
      ack: 1,
      flags: 0x10,
      window: 1000,
      ipId: i,
    };
    buildTcpPacket(repr, tx.slot(tcpPacketLength(repr)));
  }
  tx.flush();
  console.log(JSON.stringify(tx.stats));
  tx.close();
}

if (import.meta.main) {
  const [role, ...args] = Deno.args;
  if (role === "queue") await roleQueue(Number(args[0]), args[1], Number(args[2] ?? 0));
  else if (role === "send") roleSend(Number(args[0]), args[1] ? Number(args[1]) : undefined);
  else throw new Error(`unknown role ${role}`);
}
