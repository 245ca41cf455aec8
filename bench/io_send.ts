/**
 * Send rate: RawIpSender and LinkSender, batched (sendmmsg x64) vs one packet per syscall.
 *
 *   sudo deno run -A bench/io_send.ts [--count 500000] [--reps 3]
 *
 * Two namespaces joined by a veth pair. The sender (pinned to CPU1) copies a 104-byte IPv4/TCP
 * template into each slot and rewrites its sequence number (and TCP checksum incrementally
 * stays valid enough for counting: the peer drops the packets before TCP, they are addressed
 * to a non-local address with a static neighbour entry). Arrival is counted from the peer's
 * rx_packets counter.
 */

import { benchArgs } from "./args.ts";
import process from "node:process";
import { Cleanup, denoCmd, vethPair } from "../tests/helpers/netns.ts";
import { RawIpSender } from "../lib/io/raw_send.ts";
import { LinkSender } from "../lib/io/link_send.ts";
import type { PacketSender } from "../lib/io/batch_sender.ts";
import {
  addressPair,
  buildTcpPacket,
  tcpPacketLength,
  type TcpPacketRepr,
} from "../lib/wire/build.ts";
import { printTable } from "./table.ts";

const SELF = new URL(import.meta.url).pathname;
const SINK = "10.221.0.3"; // in the peer's subnet, owned by nobody
const SINK_MAC = "02:00:00:00:00:99";

function roleSend(kind: string, device: string, batch: number, count: number): void {
  const repr: TcpPacketRepr = {
    ...addressPair("10.221.0.1", SINK),
    srcPort: 40000,
    dstPort: 8080,
    seq: 1,
    ack: 1,
    flags: 0x18,
    window: 1000,
    payload: new Uint8Array(64).fill(0x61),
  };
  const template = new Uint8Array(tcpPacketLength(repr));
  buildTcpPacket(repr, template);
  const tx: PacketSender = kind === "raw"
    ? RawIpSender.open({ batch, sndbuf: 64 << 20, maxPacket: 2048 })
    : LinkSender.open({ device, nextHopMac: SINK_MAC, batch, maxPacket: 2048 });
  const warm = Math.min(50_000, count / 10);
  const send = (n: number, from: number) => {
    for (let i = 0; i < n; i++) {
      const p = tx.slot(template.length);
      p.set(template);
      const seq = from + i; // touch: a new sequence number per packet
      p[24] = seq >>> 24;
      p[25] = (seq >> 16) & 0xff;
      p[26] = (seq >> 8) & 0xff;
      p[27] = seq & 0xff;
    }
    tx.flush();
  };
  send(warm, 0);
  const cpu0 = process.cpuUsage(), t0 = performance.now(), s0 = tx.stats.sent;
  send(count, warm);
  const secs = (performance.now() - t0) / 1000, c = process.cpuUsage(cpu0);
  const sent = tx.stats.sent - s0;
  console.log(JSON.stringify({
    total: tx.stats.sent,
    pps: sent / secs,
    nsPerPacket: (c.user + c.system) * 1000 / sent,
    syscalls: tx.stats.syscalls,
    errors: tx.stats.errors,
  }));
  tx.close();
}

/** C baseline: the same template sent with sendmmsg x64 over a raw IPv4 socket. */
const C_BASELINE = `
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
int main(int argc, char **argv) {
  long count = atol(argv[1]); int len = argc - 2; unsigned char pkt[64][2048];
  for (int i = 0; i < len; i++) pkt[0][i] = (unsigned char)atoi(argv[2 + i]);
  for (int b = 1; b < 64; b++) memcpy(pkt[b], pkt[0], len);
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); int sz = 64 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz);
  struct sockaddr_in to = { .sin_family = AF_INET }; memcpy(&to.sin_addr, pkt[0] + 16, 4);
  struct mmsghdr m[64]; struct iovec v[64]; memset(m, 0, sizeof m);
  for (int b = 0; b < 64; b++) { v[b].iov_base = pkt[b]; v[b].iov_len = len;
    m[b].msg_hdr.msg_name = &to; m[b].msg_hdr.msg_namelen = sizeof to;
    m[b].msg_hdr.msg_iov = &v[b]; m[b].msg_hdr.msg_iovlen = 1; }
  struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0); long sent = 0;
  while (sent < count) {
    for (int b = 0; b < 64; b++) { unsigned s = htonl((unsigned)(sent + b)); memcpy(pkt[b] + 24, &s, 4); }
    int r = sendmmsg(fd, m, 64, 0); if (r > 0) sent += r;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("{\\"total\\":%ld,\\"pps\\":%f}\\n", sent, sent / secs); return 0;
}`;

/** Compiles the C baseline into `dir`; null when no C compiler is installed. */
async function buildBaseline(dir: string): Promise<string | null> {
  try {
    await Deno.writeTextFile(`${dir}/rawmmsg.c`, C_BASELINE);
    const out = await new Deno.Command("cc", {
      args: ["-O2", "-o", `${dir}/rawmmsg`, `${dir}/rawmmsg.c`],
    }).output();
    return out.success ? `${dir}/rawmmsg` : null;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const { values } = benchArgs(import.meta.url, {
    args: Deno.args,
    options: {
      count: { type: "string", default: "500000" },
      reps: { type: "string", default: "3" },
    },
  });
  const count = Number(values.count), reps = Number(values.reps);
  const env = new Cleanup();
  const rows: string[][] = [];
  try {
    const a = await env.netns("sa"), b = await env.netns("sb");
    const { ifA, ifB } = await vethPair(a, b, "10.221.0.1", "10.221.0.2");
    await a.exec([
      "ip",
      "neigh",
      "replace",
      SINK,
      "lladdr",
      SINK_MAC,
      "dev",
      ifA,
      "nud",
      "permanent",
    ]);
    const rx = async () =>
      Number((await b.exec(["cat", `/sys/class/net/${ifB}/statistics/rx_packets`])).stdout);
    const configs: [string, string, number][] = [
      ["raw IPv4 sendmmsg x64", "raw", 64],
      ["raw IPv4 one per syscall", "raw", 1],
      ["AF_PACKET sendmmsg x64", "link", 64],
      ["AF_PACKET one per syscall", "link", 1],
    ];
    const dir = await Deno.makeTempDir({ prefix: "io_send" });
    env.defer(() => Deno.remove(dir, { recursive: true }));
    const baseline = await buildBaseline(dir);
    const template = new Uint8Array(104);
    buildTcpPacket({
      ...addressPair("10.221.0.1", SINK),
      srcPort: 40000,
      dstPort: 8080,
      seq: 1,
      ack: 1,
      flags: 0x18,
      window: 1000,
      payload: new Uint8Array(64).fill(0x61),
    }, template);
    for (let rep = 0; rep < reps; rep++) {
      if (baseline !== null) {
        const before = await rx();
        const out = await a.exec(
          ["taskset", "-c", "1", baseline, String(count), ...Array.from(template, String)],
          { timeoutMs: 120_000 },
        );
        const r = JSON.parse(out.stdout);
        await new Promise((res) => setTimeout(res, 200));
        rows.push([
          `C raw IPv4 sendmmsg x64, rep ${rep + 1}`,
          `${Math.round(r.pps)}`,
          "-",
          `${(await rx()) - before}/${r.total}`,
          `${Math.ceil(r.total / 64)}`,
          "{}",
        ]);
      }
      for (const [name, kind, batch] of configs) {
        const n = batch === 1 ? Math.round(count / 2) : count;
        const before = await rx();
        const out = await a.exec(
          ["taskset", "-c", "1", ...denoCmd(SELF, ["send", kind, ifA, String(batch), String(n)])],
          { timeoutMs: 120_000 },
        );
        const r = JSON.parse(out.stdout);
        await new Promise((res) => setTimeout(res, 200));
        const arrived = (await rx()) - before;
        rows.push([
          `${name}, rep ${rep + 1}`,
          `${Math.round(r.pps)}`,
          r.nsPerPacket.toFixed(0),
          `${arrived}/${r.total}`,
          `${r.syscalls}`,
          JSON.stringify(r.errors),
        ]);
      }
    }
  } finally {
    await env.run();
  }
  const head = ["config", "pps", "CPU ns/pkt", "arrived/sent", "syscalls", "errors"];
  printTable(head, rows);
}

if (import.meta.main) {
  const [role, ...a] = Deno.args;
  if (role === "send") roleSend(a[0], a[1], Number(a[2]), Number(a[3]));
  else await main();
}
