/**
 * End-to-end tests of live capture (PcapCapture), raw IPv4 send (RawIpSender) and link-layer
 * send (LinkSender) between two network namespaces joined by a veth pair.
 *
 * The FFI side must run inside a namespace, so this file is also its own peer program:
 * `deno run -A io_live.test.ts <role> ...` (roles at the bottom). Deno.test is a no-op there.
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
import { PcapCapture } from "../../lib/io/pcap.ts";
import { RawIpSender } from "../../lib/io/raw_send.ts";
import { LinkSender } from "../../lib/io/link_send.ts";

const SELF = new URL(import.meta.url).pathname;

// ---- packets for the tests: IPv4 + TCP with valid checksums --------------------------------

function ip4(text: string): number[] {
  return text.split(".").map(Number);
}

function checksum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i + 1 < end; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if ((end - start) & 1) sum += bytes[end - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4/TCP packet (flags PSH|ACK) with correct IP and TCP checksums. */
function tcpPacket(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  seq: number,
  payload: Uint8Array,
): Uint8Array {
  const len = 40 + payload.length;
  const p = new Uint8Array(len);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, len);
  dv.setUint16(4, (seq & 0xffff) | 1); // id
  dv.setUint16(6, 0x4000); // DF
  p[8] = 64;
  p[9] = 6;
  p.set(ip4(src), 12);
  p.set(ip4(dst), 16);
  dv.setUint16(10, checksum(p, 0, 20));
  dv.setUint16(20, sport);
  dv.setUint16(22, dport);
  dv.setUint32(24, seq);
  dv.setUint32(28, 1);
  p[32] = 5 << 4;
  p[33] = 0x18;
  dv.setUint16(34, 65535);
  p.set(payload, 40);
  dv.setUint16(36, tcpChecksum(p));
  return p;
}

/** The TCP checksum of an IPv4 packet (0 in the checksum field gives the value to store). */
function tcpChecksum(p: Uint8Array): number {
  const ihl = (p[0] & 15) * 4, total = (p[2] << 8) | p[3];
  const seg = p.slice(ihl, total);
  seg[16] = seg[17] = 0;
  let pseudo = 0;
  for (let i = 12; i < 20; i += 2) pseudo += (p[i] << 8) | p[i + 1];
  pseudo += 6 + seg.length;
  return checksum(seg, 0, seg.length, pseudo);
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => new Uint8Array(s.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);

// ---- peer control ---------------------------------------------------------------------------

interface CaptureResult {
  frames: string[];
  linkType: number;
  stats: { received: number; dropped: number; ifDropped: number };
  stopMs: number;
}

/** Starts the capture role in `ns`; resolves once it is capturing. */
async function startCapture(
  env: Cleanup,
  ns: Netns,
  device: string,
  filter: string,
  count: number,
  mode: "buffered" | "immediate" = "buffered",
) {
  const child = env.child(ns.spawn(
    denoCmd(SELF, ["capture", device, filter, String(count), mode]),
    { stdout: "piped" },
  ));
  const nextLine = lineReader(child.stdout);
  assert.equal(await nextLine(), "ready");
  return {
    child,
    /** Resolves with the role's report (after `count` packets or SIGTERM). */
    result: async (): Promise<CaptureResult> => JSON.parse(await nextLine()),
  };
}

async function macOf(ns: Netns, dev: string): Promise<string> {
  const out = await ns.exec(["ip", "-o", "link", "show", dev]);
  return out.stdout.match(/link\/ether ([0-9a-f:]{17})/)![1];
}

// ---- tests ----------------------------------------------------------------------------------

Deno.test({
  name: "capture sees a real TCP connection, the BPF filter hides other ports, stop() is prompt",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const a = await env.netns("ca"), b = await env.netns("cb");
      const { ifA } = await vethPair(a, b, "10.211.0.1", "10.211.0.2");
      const server = env.child(b.spawn(
        denoEval(`
          const serve = async (port) => {
            const l = Deno.listen({ hostname: "10.211.0.2", port });
            for (let i = 0; i < 4; i++) {
              const c = await l.accept();
              const b = new Uint8Array(100); const n = await c.read(b);
              await c.write(b.subarray(0, n ?? 0)); c.close();
            }
          };
          serve(7101); serve(7102); console.log("ready");`),
        { stdout: "piped" },
      ));
      const r = server.stdout.getReader();
      assert.match(new TextDecoder().decode((await r.read()).value), /ready/);
      r.releaseLock();

      const cap = await startCapture(env, a, ifA, "tcp port 7101", 1_000_000);
      const client = await a.exec(denoEval(`
        for (const port of [7102, 7101]) {
          const c = await Deno.connect({ hostname: "10.211.0.2", port });
          await c.write(new TextEncoder().encode("hello-" + port));
          const b = new Uint8Array(100); const n = await c.read(b);
          console.log(new TextDecoder().decode(b.subarray(0, n ?? 0))); c.close();
        }`));
      assert.equal(client.stdout.trim(), "hello-7102\nhello-7101");
      await new Promise((res) => setTimeout(res, 300)); // > block timeout: all handed over
      const sent = performance.now();
      cap.child.kill("SIGTERM");
      const res = await cap.result();
      assert.ok(performance.now() - sent < 1000, "capture stopped within a second");
      assert.ok(res.stopMs < 1000, `stop() took ${res.stopMs} ms`);
      assert.equal(res.linkType, 1);
      assert.ok(res.frames.length >= 6, `only ${res.frames.length} frames`);
      const payloads = res.frames.map(unhex).map((f) => {
        const ip = f.subarray(14), ihl = (ip[0] & 15) * 4;
        const ports = [(ip[ihl] << 8) | ip[ihl + 1], (ip[ihl + 2] << 8) | ip[ihl + 3]];
        assert.ok(ports.includes(7101), `port ${ports} passed the filter`);
        return new TextDecoder().decode(ip.subarray(ihl + (ip[ihl + 12] >> 4) * 4));
      });
      assert.ok(payloads.filter((p) => p === "hello-7101").length === 2, "request and echo");
      assert.ok(!payloads.some((p) => p.includes("7102")));
      assert.equal(res.stats.dropped, 0);
      assert.ok(res.stats.received >= res.frames.length);
      await stopChild(server);
    }),
});

Deno.test({
  name: "immediate mode hands a lone packet over at once, not at the 10 s block timeout",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const a = await env.netns("ia"), b = await env.netns("ib");
      const { ifB } = await vethPair(a, b, "10.214.0.1", "10.214.0.2");
      // timeoutMs 10,000 in both modes: buffered, the SYN waits in its ring block for ~10 s
      const cap = await startCapture(env, b, ifB, "tcp dst port 7400", 1, "immediate");
      await a.exec(denoEval(`
        try { (await Deno.connect({ hostname: "10.214.0.2", port: 7400 })).close(); } catch {}`));
      const sent = performance.now(); // the SYN and the RST are done
      const res = await cap.result();
      const ms = performance.now() - sent;
      assert.equal(res.frames.length, 1);
      assert.ok(ms < 2000, `the lone SYN came ${Math.round(ms)} ms after it was sent`);
    }),
});

Deno.test({
  name: "raw IPv4 send arrives byte-exact at the peer; bad packets are counted, not fatal",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const a = await env.netns("ra"), b = await env.netns("rb");
      const { ifB } = await vethPair(a, b, "10.212.0.1", "10.212.0.2");
      const packets = Array.from(
        { length: 150 },
        (_, i) =>
          tcpPacket(
            "10.212.0.1",
            "10.212.0.2",
            40000 + (i % 7),
            7200,
            1000 + i,
            new TextEncoder().encode(`packet ${i} `.repeat(1 + (i % 5))),
          ),
      );
      const cap = await startCapture(env, b, ifB, "tcp dst port 7200", packets.length);
      const out = await a.exec(denoCmd(SELF, ["rawsend"]), {
        stdin: JSON.stringify(packets.map(hex)),
      });
      const stats = JSON.parse(out.stdout);
      assert.equal(stats.sent, packets.length);
      assert.equal(stats.errors.EINVAL, 1, "a 10-byte packet is refused");
      assert.equal(stats.errors.ENETUNREACH, 1, "no route to 192.0.2.1 in the namespace");
      assert.ok(stats.syscalls <= 10, `batched: ${stats.syscalls} sendmmsg calls`);
      const res = await cap.result();
      assert.equal(res.frames.length, packets.length);
      const got = res.frames.map((f) => unhex(f).subarray(14));
      got.sort((x, y) =>
        new DataView(x.buffer, x.byteOffset).getUint32(24) -
        new DataView(y.buffer, y.byteOffset).getUint32(24)
      );
      for (let i = 0; i < packets.length; i++) {
        assert.deepEqual(got[i], packets[i], `packet ${i} differs`);
        assert.equal(tcpChecksum(got[i]), (got[i][36] << 8) | got[i][37], "TCP checksum");
      }
    }),
});

Deno.test({
  name: "link-layer send arrives with our Ethernet header at the next hop",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const a = await env.netns("la"), b = await env.netns("lb");
      const { ifA, ifB } = await vethPair(a, b, "10.213.0.1", "10.213.0.2");
      const [macA, macB] = [await macOf(a, ifA), await macOf(b, ifB)];
      const packets = Array.from(
        { length: 70 },
        (_, i) =>
          tcpPacket("10.213.0.1", "10.213.0.2", 41000, 7300, 5000 + i, new Uint8Array(i + 1)),
      );
      const cap = await startCapture(env, b, ifB, "tcp dst port 7300", packets.length);
      const out = await a.exec(denoCmd(SELF, ["linksend", ifA, macB]), {
        stdin: JSON.stringify(packets.map(hex)),
      });
      const stats = JSON.parse(out.stdout);
      assert.equal(stats.srcMac, macA);
      assert.equal(stats.sent, packets.length);
      const res = await cap.result();
      assert.equal(res.frames.length, packets.length);
      const seen = new Set(res.frames);
      for (const p of packets) {
        const frame = new Uint8Array(14 + p.length);
        frame.set(macB.split(":").map((x) => parseInt(x, 16)), 0);
        frame.set(macA.split(":").map((x) => parseInt(x, 16)), 6);
        frame.set([0x08, 0x00], 12);
        frame.set(p, 14);
        assert.ok(seen.has(hex(frame)), "frame arrived byte-exact");
      }
    }),
});

// ---- peer roles (run inside a namespace) ----------------------------------------------------

async function readStdin(): Promise<string> {
  return await new Response(Deno.stdin.readable).text();
}

async function roleCapture(
  device: string,
  filter: string,
  count: number,
  mode: string,
): Promise<void> {
  const cap = PcapCapture.openLive(
    mode === "immediate"
      ? { device, filter, timeoutMs: 10_000, immediate: true }
      : { device, filter },
  );
  let stopAt = 0;
  Deno.addSignalListener("SIGTERM", () => {
    stopAt = performance.now();
    cap.stop();
  });
  const frames: string[] = [];
  const deadline = performance.now() + 20_000;
  console.log("ready");
  while (frames.length < count && performance.now() < deadline) {
    if (!await cap.wait(deadline - performance.now())) break;
    cap.drain((f) => frames.push(hex(f)), count - frames.length);
  }
  const stopMs = stopAt === 0 ? 0 : performance.now() - stopAt;
  console.log(JSON.stringify({ frames, linkType: cap.linkType, stats: cap.stats(), stopMs }));
  cap.close();
  Deno.exit(0);
}

async function roleRawSend(): Promise<void> {
  const packets = (JSON.parse(await readStdin()) as string[]).map(unhex);
  const tx = RawIpSender.open({ batch: 64 });
  tx.enqueue(new Uint8Array(10)); // too short: EINVAL
  const unroutable = packets[0].slice();
  unroutable.set([192, 0, 2, 1], 16);
  tx.enqueue(unroutable); // ENETUNREACH
  for (const p of packets) tx.enqueue(p);
  tx.flush();
  console.log(JSON.stringify(tx.stats));
  tx.close();
}

async function roleLinkSend(device: string, mac: string): Promise<void> {
  const packets = (JSON.parse(await readStdin()) as string[]).map(unhex);
  const tx = LinkSender.open({ device, nextHopMac: mac, batch: 16 });
  for (const p of packets) tx.slot(p.length).set(p); // built in place
  tx.flush();
  console.log(JSON.stringify({ ...tx.stats, srcMac: tx.srcMac }));
  tx.close();
}

if (import.meta.main) {
  const [role, ...args] = Deno.args;
  if (role === "capture") await roleCapture(args[0], args[1], Number(args[2]), args[3]);
  else if (role === "rawsend") await roleRawSend();
  else if (role === "linksend") await roleLinkSend(args[0], args[1]);
  else throw new Error(`unknown role ${role}`);
}
