/**
 * Raw IPv6 send (RawIp6Sender) between two namespaces joined by a veth pair: packets built
 * here (IPv6 header included, TCP checksum over the IPv6 pseudo-header) arrive byte-exact at
 * the peer, a packet of exactly the link MTU goes through, and the bad ones are counted by
 * reason (too short, not IPv6, larger than the MTU, no route), never fatal.
 *
 * The FFI side must run inside a namespace, so this file is also its own peer program:
 * `deno run -A ipv6_send.test.ts <role> ...` (roles at the bottom).
 */
import assert from "node:assert/strict";
import {
  type Cleanup,
  denoCmd,
  isRoot,
  type Netns,
  vethPair,
  withNetns,
} from "../helpers/netns.ts";
import { PcapCapture } from "../../lib/io/pcap.ts";
import { RawIp6Sender } from "../../lib/io/raw_send.ts";

const SELF = new URL(import.meta.url).pathname;

/** The 16 bytes of an IPv6 address written with at most one "::". */
function ip6(text: string): number[] {
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t].map((g) =>
    parseInt(g, 16)
  );
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

function sum16(bytes: Uint8Array, start: number, end: number, initial: number): number {
  let sum = initial;
  for (let i = start; i + 1 < end; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if ((end - start) & 1) sum += bytes[end - 1] << 8;
  return sum;
}

/** The TCP checksum of an IPv6 packet (no extension headers), computed with its field as 0. */
function tcpChecksum6(p: Uint8Array): number {
  const seg = p.slice(40);
  seg[16] = seg[17] = 0;
  // pseudo-header: source, destination, upper-layer length, next header (6)
  let sum = sum16(p, 8, 40, 0) + (seg.length >>> 16) + (seg.length & 0xffff) + 6;
  sum = sum16(seg, 0, seg.length, sum);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv6/TCP packet (PSH|ACK) of `payloadLen` bytes with a correct TCP checksum. */
function tcpPacket6(src: string, dst: string, sport: number, seq: number, payload: Uint8Array) {
  const p = new Uint8Array(40 + 20 + payload.length);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, (6 << 28) | (seq & 0xfffff)); // version, traffic class 0, a flow label
  dv.setUint16(4, 20 + payload.length); // payload length
  p[6] = 6; // next header: TCP
  p[7] = 64; // hop limit
  p.set(ip6(src), 8);
  p.set(ip6(dst), 24);
  dv.setUint16(40, sport);
  dv.setUint16(42, 7200);
  dv.setUint32(44, seq);
  dv.setUint32(48, 1);
  p[52] = 5 << 4;
  p[53] = 0x18;
  dv.setUint16(54, 65535);
  p.set(payload, 60);
  dv.setUint16(56, tcpChecksum6(p));
  return p;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => new Uint8Array(s.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);

/** Starts the capture role in `ns`; resolves once it is capturing. */
async function startCapture(env: Cleanup, ns: Netns, device: string, count: number) {
  const child = env.child(ns.spawn(
    denoCmd(SELF, ["capture", device, "ip6 and tcp dst port 7200", String(count)]),
    { stdout: "piped" },
  ));
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await out.read();
    if (done) break;
    text += value;
  }
  assert.equal(text.split("\n")[0], "ready");
  return async (): Promise<{ frames: string[]; linkType: number }> => {
    for (;;) {
      const { value, done } = await out.read();
      if (done) break;
      text += value;
    }
    return JSON.parse(text.split("\n")[1]);
  };
}

Deno.test({
  name: "raw IPv6 send arrives byte-exact at the peer; bad packets are counted by reason",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const a = await env.netns("r6a", { ipv6: true }), b = await env.netns("r6b", { ipv6: true });
      const net = `fd00:${(Deno.pid % 0xffff).toString(16)}:6`;
      const [src, dst] = [`${net}::1`, `${net}::2`];
      const { ifB } = await vethPair(a, b, src, dst, 64);
      const enc = new TextEncoder();
      const packets = Array.from(
        { length: 150 },
        (_, i) =>
          tcpPacket6(src, dst, 40000 + (i % 7), 1000 + i, enc.encode(`p${i} `.repeat(1 + i))),
      );
      // exactly the 1,500-byte link MTU: 40 + 20 + 1,440
      packets.push(tcpPacket6(src, dst, 40100, 5000, new Uint8Array(1440).fill(0x61)));
      const tooBig = tcpPacket6(src, dst, 40101, 6000, new Uint8Array(1441));
      const unroutable = tcpPacket6(src, "2001:db8::1", 40102, 7000, new Uint8Array(10));
      const ipv4 = new Uint8Array(60);
      ipv4[0] = 0x45;
      const result = await startCapture(env, b, ifB, packets.length);
      const out = await a.exec(denoCmd(SELF, ["rawsend6"]), {
        stdin: JSON.stringify([new Uint8Array(10), ipv4, tooBig, unroutable, ...packets].map(hex)),
      });
      const stats = JSON.parse(out.stdout);
      assert.equal(stats.sent, packets.length, out.stdout);
      assert.equal(stats.errors.EINVAL, 2, "a 10-byte packet and an IPv4 packet are refused");
      assert.equal(stats.errors.EMSGSIZE, 1, "one byte over the MTU");
      assert.equal(stats.errors.ENETUNREACH, 1, "no route to 2001:db8::1 in the namespace");
      assert.ok(stats.syscalls <= 10, `batched: ${stats.syscalls} sendmmsg calls`);
      const res = await result();
      assert.equal(res.linkType, 1);
      assert.equal(res.frames.length, packets.length);
      const got = new Set(res.frames.map((f) => hex(unhex(f).subarray(14))));
      for (let i = 0; i < packets.length; i++) {
        assert.ok(got.has(hex(packets[i])), `packet ${i} did not arrive byte-exact`);
      }
      const big = unhex(res.frames.find((f) => f.length === 2 * (14 + 1500))!).subarray(14);
      assert.equal(tcpChecksum6(big), (big[56] << 8) | big[57], "TCP checksum");
    }),
});

// ---- peer roles (run inside a namespace) ----------------------------------------------------

async function roleCapture(device: string, filter: string, count: number): Promise<void> {
  const cap = PcapCapture.openLive({ device, filter });
  const frames: string[] = [];
  const deadline = performance.now() + 20_000;
  console.log("ready");
  while (frames.length < count && performance.now() < deadline) {
    if (!await cap.wait(deadline - performance.now())) break;
    cap.drain((f) => frames.push(hex(f)), count - frames.length);
  }
  console.log(JSON.stringify({ frames, linkType: cap.linkType }));
  cap.close();
  Deno.exit(0);
}

async function roleRawSend6(): Promise<void> {
  const packets = (JSON.parse(await new Response(Deno.stdin.readable).text()) as string[])
    .map(unhex);
  const tx = RawIp6Sender.open({ batch: 64 });
  for (const p of packets) tx.enqueue(p);
  tx.flush();
  console.log(JSON.stringify(tx.stats));
  tx.close();
}

if (import.meta.main) {
  const [role, ...args] = Deno.args;
  if (role === "capture") await roleCapture(args[0], args[1], Number(args[2]));
  else if (role === "rawsend6") await roleRawSend6();
  else throw new Error(`unknown role ${role}`);
}
