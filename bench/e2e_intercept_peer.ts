/**
 * The fake tcpcopy of bench/e2e_intercept.ts, run inside the peer namespace (root). It
 * connects to intercept through the tunnel, registers routes for its own address and a range
 * of source ports, and sends raw SYNs to a CLOSED port of the target: the target kernel's
 * RST|ACK replies are queued by intercept's NFQUEUE rule, dropped there, and their headers
 * come back through the tunnel. Each reply is matched to its SYN by the port, which gives the
 * added latency (SYN sent -> reply header received). Intercept's CPU is read from
 * /proc/PID/stat around each phase (PID namespaces are shared).
 *
 * Phases (one JSON line each on stdout):
 *   - "turns":  one SYN, wait for its reply, repeat (the single keep-alive connection's
 *               request/response turn);
 *   - "rate R": SYNs paced at R per second for S seconds.
 *
 *   deno run -A bench/e2e_intercept_peer.ts '<json config>'
 *
 * @module
 */
import { TunnelClient } from "../lib/tunnel/client.ts";
import { RawIpSender } from "../lib/io/raw_send.ts";
import { addressPair, buildTcpPacket } from "../lib/wire/build.ts";
import { writeIp } from "../lib/wire/addr.ts";
import { sharedReactor } from "../lib/io/reactor.ts";
import { statTimes } from "../lib/process/memory.ts";

/** Configuration passed as the only argument (JSON). */
export interface PeerConfig {
  intercept: string;
  tunnelPort: number;
  interceptPid: number;
  self: string;
  target: string;
  tport: number;
  warmup: number;
  turns: number;
  rates: number[];
  seconds: number;
}

/** CPU split of a process, in seconds, summed over its threads (from /proc/PID/stat). */
interface Cpu {
  user: number;
  sys: number;
  /** voluntary + involuntary context switches of all threads (wake-up proxy) */
  switches: number;
}

function readCpu(pid: number): Cpu {
  const { user, sys } = statTimes(Deno.readTextFileSync(`/proc/${pid}/stat`));
  let switches = 0;
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const s = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/status`);
      for (const m of s.matchAll(/ctxt_switches:\s+(\d+)/g)) switches += Number(m[1]);
    } catch { /* thread gone */ }
  }
  return { user, sys, switches };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))];
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

async function main(cfg: PeerConfig): Promise<void> {
  const selfAddr = new Uint8Array(4), targetAddr = new Uint8Array(4);
  if (writeIp(cfg.self, selfAddr) !== 4 || writeIp(cfg.target, targetAddr) !== 4) {
    throw new Error("IPv4 addresses expected");
  }
  const sentAt = new Float64Array(65536);
  const latencies: number[] = [];
  let received = 0;
  let waiter: (() => void) | undefined;
  const client = await TunnelClient.connect({
    servers: [{ hostname: cfg.intercept, port: cfg.tunnelPort }],
    connections: 2,
    log: () => {},
    onReply: (b) => {
      const l4 = (b[0] & 15) * 4;
      const dport = (b[l4 + 2] << 8) | b[l4 + 3];
      const t = sentAt[dport];
      if (t > 0) {
        latencies.push(performance.now() - t);
        sentAt[dport] = 0;
        received++;
      }
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w();
      }
    },
  });
  if (client.capsOf(0) === 0) throw new Error("no extension ack from intercept");
  const tx = RawIpSender.open();
  const pkt = new Uint8Array(64);
  let seq = 1;
  const send = (port: number) => {
    const n = buildTcpPacket({
      ...addressPair(cfg.self, cfg.target),
      srcPort: port,
      dstPort: cfg.tport,
      seq: seq = (seq * 69069 + 1) >>> 0,
      ack: 0,
      flags: 0x02,
      window: 64240,
    }, pkt);
    sentAt[port] = performance.now();
    tx.enqueue(pkt.subarray(0, n));
  };
  // reactor timers: the tunnel's reactor keeps Deno's own timers waiting up to 10 ms when busy
  const sleep = (ms: number) => sharedReactor().sleep(ms);
  const FIRST = 10000, PORTS = 50000;
  const register = async (count: number) => {
    for (let i = 0; i < Math.min(count, PORTS); i++) {
      client.addRoute({ addr: selfAddr, port: FIRST + i }, { addr: targetAddr, port: cfg.tport });
      if ((i & 1023) === 1023) await sleep(5);
    }
    await sleep(300);
  };
  const portOf = (i: number) => FIRST + (i % PORTS);

  const turns = async (count: number) => {
    let lost = 0;
    for (let i = 0; i < count; i++) {
      const got = new Promise<void>((r) => waiter = r);
      send(portOf(i));
      tx.flush();
      const timer = sharedReactor().timer(() => {
        const w = waiter;
        waiter = undefined;
        w?.();
      });
      timer.armIn(200);
      let ok = false;
      await got.then(() => ok = timer.armed);
      timer.cancel();
      if (!ok) lost++;
    }
    return lost;
  };

  const report = (phase: string, sent: number, c0: Cpu, c1: Cpu, wallS: number) => {
    const sorted = latencies.slice().sort((a, b) => a - b);
    const cpuUs = (c1.user + c1.sys - c0.user - c0.sys) * 1e6;
    console.log(JSON.stringify({
      phase,
      sent,
      received,
      repliesPerS: round(received / wallS, 0),
      cpuUsPerReply: round(cpuUs / Math.max(1, received)),
      userUsPerReply: round((c1.user - c0.user) * 1e6 / Math.max(1, received)),
      sysUsPerReply: round((c1.sys - c0.sys) * 1e6 / Math.max(1, received)),
      switchesPerReply: round((c1.switches - c0.switches) / Math.max(1, received), 2),
      cpuPercent: round(cpuUs / (wallS * 1e6) * 100),
      latencyMs: {
        p50: round(percentile(sorted, 50), 3),
        p90: round(percentile(sorted, 90), 3),
        p99: round(percentile(sorted, 99), 3),
        max: round(sorted.at(-1) ?? NaN, 3),
      },
    }));
  };

  await register(PORTS);
  await turns(cfg.warmup);
  if (cfg.turns > 0) {
    latencies.length = 0;
    received = 0;
    await sleep(200);
    const c0 = readCpu(cfg.interceptPid), t0 = performance.now();
    await turns(cfg.turns);
    const wallS = (performance.now() - t0) / 1000;
    report("turns", cfg.turns, c0, readCpu(cfg.interceptPid), wallS);
  }
  for (const rate of cfg.rates) {
    latencies.length = 0;
    received = 0;
    sentAt.fill(0);
    await sleep(300);
    const total = Math.round(rate * cfg.seconds);
    const c0 = readCpu(cfg.interceptPid), t0 = performance.now();
    let sent = 0;
    while (sent < total && performance.now() - t0 < cfg.seconds * 1000 + 2000) {
      const due = Math.min(total, Math.floor(rate * (performance.now() - t0) / 1000));
      for (; sent < due; sent++) send(portOf(sent));
      tx.flush();
      await sleep(1);
    }
    const sendS = (performance.now() - t0) / 1000;
    const deadline = performance.now() + 1000;
    while (received < sent && performance.now() < deadline) await sleep(5);
    report(`rate ${rate}/s`, sent, c0, readCpu(cfg.interceptPid), sendS);
  }
  tx.close();
  await client.close();
}

if (import.meta.main) {
  await main(JSON.parse(Deno.args[0]) as PeerConfig);
  Deno.exit(0);
}
