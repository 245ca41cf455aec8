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
import { NfQueue, Verdict } from "../../lib/io/nfqueue.ts";
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
}

/** Two namespaces; in `b` the NFQUEUE rule for replies from PORT and the queue consumer. */
async function setUp(env: Cleanup, mode: string) {
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
    b.spawn(denoCmd(SELF, ["queue", String(queue), mode]), { stdout: "piped" }),
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

// ---- peer roles ----------------------------------------------------------------------------

async function roleQueue(queue: number, mode: string): Promise<void> {
  const q = NfQueue.open({ queue });
  Deno.addSignalListener("SIGTERM", () => q.stop());
  let notFromPort = 0;
  const decide = (_id: number, p: Uint8Array): Verdict => {
    const ihl = (p[0] & 15) * 4;
    if (p[0] >> 4 !== 4 || ((p[ihl] << 8) | p[ihl + 1]) !== PORT) notFromPort++;
    if (mode === "drop") return Verdict.DROP;
    if (mode === "accept") return Verdict.ACCEPT;
    const seq = new DataView(p.buffer, p.byteOffset + ihl).getUint32(4);
    return seq % 3 === 0 ? Verdict.DROP : Verdict.ACCEPT;
  };
  console.log("ready");
  const deadline = performance.now() + 20_000;
  while (performance.now() < deadline && await q.wait(deadline - performance.now())) {
    // as intercept drains: a short drain lets what its verdicts released go out, then reads on
    if (q.drain(decide) > 0) {
      q.releaseHeldSends();
      q.drain(decide);
    }
  }
  console.log(JSON.stringify({ ...q.stats(), notFromPort }));
  q.close();
  Deno.exit(0);
}

function roleSend(count: number): void {
  const tx = RawIpSender.open();
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
  if (role === "queue") await roleQueue(Number(args[0]), args[1]);
  else if (role === "send") roleSend(Number(args[0]));
  else throw new Error(`unknown role ${role}`);
}
