/**
 * Capture cost at a fixed offered rate: CPU ns per packet and kernel drops of PcapCapture and
 * RingCapture (wait + drain, same run, same traffic) next to `tcpdump -w /dev/null` as the C
 * baseline.
 *
 *   sudo deno run -A bench/io_capture.ts [--rate 100000] [--seconds 3] [--reps 3]
 *     [--engines pcap,ring]
 *
 * Builds two namespaces joined by a veth pair; a generator (LinkSender, pinned to CPU0) sends
 * 118-byte TCP frames to a MAC nobody owns (the receiver drops them cheaply, as PACKET_OTHERHOST)
 * while the capturer (pinned to CPU1) counts them. CPU per packet: getrusage of the whole Deno
 * process (all threads) after a warm-up of one second; for tcpdump, /proc/PID/schedstat from
 * start to end.
 */

import { benchArgs } from "./args.ts";
import process from "node:process";
import { Cleanup, denoCmd, vethPair } from "../tests/helpers/netns.ts";
import { PcapCapture } from "../lib/io/pcap.ts";
import { RingCapture } from "../lib/io/ring.ts";
import { LinkSender } from "../lib/io/link_send.ts";
import { loadLibc } from "../lib/io/libc.ts";
import {
  addressPair,
  buildTcpPacket,
  tcpPacketLength,
  type TcpPacketRepr,
} from "../lib/wire/build.ts";
import { printTable } from "./table.ts";

const SELF = new URL(import.meta.url).pathname;

const FRAME: TcpPacketRepr = {
  ...addressPair("10.220.0.1", "10.220.0.2"),
  srcPort: 40000,
  dstPort: 8080,
  seq: 1,
  ack: 1,
  flags: 0x18,
  window: 1000,
  payload: new Uint8Array(64).fill(0x61),
};

/** Generator: `rate` packets/s for `seconds` (rate 0: as fast as possible). */
function roleGen(device: string, rate: number, seconds: number): void {
  const tx = LinkSender.open({ device, nextHopMac: "02:00:00:00:00:99", batch: 64 });
  const len = tcpPacketLength(FRAME);
  const C = loadLibc();
  const total = Math.round((rate || 1_000_000) * seconds);
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = rate === 0
      ? total
      : Math.min(total, Math.floor((performance.now() - t0) * rate / 1000));
    for (; sent < due; sent++) {
      FRAME.seq = sent;
      buildTcpPacket(FRAME, tx.slot(len));
    }
    tx.flush();
    if (rate !== 0) C.poll(null, 0n, 1); // 1 ms pacing step
  }
  tx.flush();
  const secs = (performance.now() - t0) / 1000;
  console.log(
    JSON.stringify({ sent: tx.stats.sent, errors: tx.stats.errors, pps: tx.stats.sent / secs }),
  );
  tx.close();
}

type Engine = "pcap" | "ring";

function openEngine(engine: Engine, device: string, bufferSize: number) {
  return engine === "ring"
    ? RingCapture.openLive({ device, filter: "tcp", bufferSize })
    : PcapCapture.openLive({ device, filter: "tcp", bufferSize });
}

/** Drain regime: the ring is filled first (capturer idle), then emptied as fast as possible. */
async function roleDrain(engine: Engine, device: string, expect: number): Promise<void> {
  const cap = openEngine(engine, device, 256 << 20);
  console.log("ready");
  await Deno.stdin.read(new Uint8Array(16)); // "go": the generator has finished
  let count = 0, bytes = 0;
  const onPacket = (f: Uint8Array) => {
    count++;
    bytes += f[14 + 20 + 3];
  };
  const c0 = process.cpuUsage(), t0 = performance.now();
  while (count < expect && await cap.wait(300)) {
    if (cap.drain(onPacket) === 0 && performance.now() - t0 > 3000) break;
  }
  const secs = (performance.now() - t0) / 1000, c = process.cpuUsage(c0);
  console.log(JSON.stringify({
    count,
    pps: count / secs,
    nsPerPacket: (c.user + c.system) * 1000 / count,
    stats: cap.stats(),
    touched: bytes > 0,
  }));
  cap.close();
}

/** Capturer: counts packets until `expect` seen or 1.5 s without traffic. */
async function roleCap(
  engine: Engine,
  device: string,
  expect: number,
  warm: number,
): Promise<void> {
  const cap = openEngine(engine, device, 64 << 20);
  let count = 0, bytes = 0, wakeups = 0;
  let warmCpu = 0, warmCount = 0, last = performance.now();
  const onPacket = (f: Uint8Array) => {
    count++;
    bytes += f[14 + 20 + 3]; // touch the frame: TCP destination port, low byte
  };
  console.log("ready");
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) * 1000;
  };
  while (count < expect) {
    await cap.wait(200);
    wakeups++;
    const n = cap.drain(onPacket);
    if (n > 0) last = performance.now();
    else if (count > 0 && performance.now() - last > 1500) break;
    if (warmCount === 0 && count >= warm) {
      warmCount = count;
      warmCpu = cpu();
    }
  }
  const end = cpu();
  const measured = count - warmCount;
  console.log(JSON.stringify({
    count,
    nsPerPacket: measured > 0 ? (end - warmCpu) / measured : NaN,
    wakeups,
    stats: cap.stats(),
    touched: bytes > 0,
  }));
  cap.close();
}

function schedNs(pid: number): number {
  try {
    return Number(Deno.readTextFileSync(`/proc/${pid}/schedstat`).split(" ")[0]);
  } catch {
    return NaN;
  }
}

async function readLine(reader: ReadableStreamDefaultReader<string>, state: { buf: string }) {
  for (;;) {
    const nl = state.buf.indexOf("\n");
    if (nl >= 0) {
      const line = state.buf.slice(0, nl);
      state.buf = state.buf.slice(nl + 1);
      return line;
    }
    const { value, done } = await reader.read();
    if (done) return state.buf;
    state.buf += value;
  }
}

const ENGINE_NAME: Record<Engine, string> = { pcap: "PcapCapture", ring: "RingCapture" };
let ENGINES: Engine[] = ["pcap", "ring"];

async function main(): Promise<void> {
  const { values } = benchArgs(import.meta.url, {
    args: Deno.args,
    options: {
      rate: { type: "string", default: "100000" },
      seconds: { type: "string", default: "3" },
      reps: { type: "string", default: "3" },
      engines: { type: "string", default: "pcap,ring" },
    },
  });
  ENGINES = values.engines.split(",").filter((e): e is Engine => e === "pcap" || e === "ring");
  const rate = Number(values.rate), seconds = Number(values.seconds), reps = Number(values.reps);
  const total = Math.round(rate * seconds);
  const env = new Cleanup();
  const rows: string[][] = [];
  try {
    const gen = await env.netns("bg"), capNs = await env.netns("bc");
    const { ifA, ifB } = await vethPair(gen, capNs, "10.220.0.1", "10.220.0.2");
    const runGen = () =>
      gen.exec([
        "taskset",
        "-c",
        "0",
        ...denoCmd(SELF, ["gen", ifA, String(rate), String(seconds)]),
      ], {
        timeoutMs: 60_000,
      });
    for (let rep = 0; rep < reps; rep++) {
      for (const engine of ENGINES) {
        const cap = env.child(capNs.spawn(
          [
            "taskset",
            "-c",
            "1",
            ...denoCmd(SELF, ["cap", engine, ifB, String(total), String(rate)]),
          ],
          { stdout: "piped" },
        ));
        const reader = cap.stdout.pipeThrough(new TextDecoderStream()).getReader();
        const st = { buf: "" };
        if (await readLine(reader, st) !== "ready") throw new Error("capturer did not start");
        const g = JSON.parse((await runGen()).stdout);
        const r = JSON.parse(await readLine(reader, st));
        await cap.status;
        rows.push([
          `deno ${ENGINE_NAME[engine]} (wait+drain), rep ${rep + 1}`,
          `${Math.round(g.pps)}`,
          `${r.count}/${g.sent}`,
          `${r.stats.dropped}`,
          r.nsPerPacket.toFixed(0),
          (r.count / r.wakeups).toFixed(0),
        ]);
      }
      // C baseline: tcpdump -w /dev/null
      const td = env.child(capNs.spawn(
        ["taskset", "-c", "1", "tcpdump", "-i", ifB, "-B", "65536", "-n", "-w", "/dev/null", "tcp"],
        { stderr: "piped" },
      ));
      const err = td.stderr.pipeThrough(new TextDecoderStream()).getReader();
      const es = { buf: "" };
      while (!(await readLine(err, es)).includes("listening on"));
      const ns0 = schedNs(td.pid);
      const g2 = JSON.parse((await runGen()).stdout);
      await new Promise((r) => setTimeout(r, 1500));
      const ns1 = schedNs(td.pid);
      td.kill("SIGINT");
      let tail = "";
      for (let line = ""; (line = await readLine(err, es)) !== "";) tail += line + "\n";
      await td.status;
      const captured = Number(tail.match(/(\d+) packets? captured/)?.[1] ?? NaN);
      const dropped = Number(tail.match(/(\d+) packets? dropped by kernel/)?.[1] ?? NaN);
      rows.push([
        `tcpdump -w /dev/null -B 65536, rep ${rep + 1}`,
        `${Math.round(g2.pps)}`,
        `${captured}/${g2.sent}`,
        `${dropped}`,
        ((ns1 - ns0) / captured).toFixed(0),
        "-",
      ]);
    }
    // drain regime: 500 k packets queued in a 256 MiB ring first, then read at full speed
    for (let rep = 0; rep < reps; rep++) {
      for (const engine of ENGINES) {
        const n = 500_000;
        const cap = env.child(capNs.spawn(
          ["taskset", "-c", "1", ...denoCmd(SELF, ["drain", engine, ifB, String(n)])],
          { stdout: "piped", stdin: "piped" },
        ));
        const reader = cap.stdout.pipeThrough(new TextDecoderStream()).getReader();
        const st = { buf: "" };
        if (await readLine(reader, st) !== "ready") throw new Error("capturer did not start");
        const g = JSON.parse(
          (await gen.exec(["taskset", "-c", "0", ...denoCmd(SELF, ["gen", ifA, "0", "0.5"])], {
            timeoutMs: 60_000,
          })).stdout,
        );
        const go = cap.stdin.getWriter();
        await go.write(new TextEncoder().encode("go\n"));
        await go.close();
        const r = JSON.parse(await readLine(reader, st));
        await cap.status;
        rows.push([
          `deno ${ENGINE_NAME[engine]} drain of a full ring, rep ${rep + 1}`,
          `${Math.round(g.pps)} (burst)`,
          `${r.count}/${g.sent}`,
          `${r.stats.dropped}`,
          r.nsPerPacket.toFixed(0),
          `${Math.round(r.pps)} pps`,
        ]);
      }
    }
  } finally {
    await env.run();
  }
  const head = ["config", "offered pps", "captured", "kernel drops", "CPU ns/pkt", "pkts/wake"];
  printTable(head, rows);
}

if (import.meta.main) {
  const [role, ...a] = Deno.args;
  if (role === "gen") roleGen(a[0], Number(a[1]), Number(a[2]));
  else if (role === "cap") await roleCap(a[0] as Engine, a[1], Number(a[2]), Number(a[3]));
  else if (role === "drain") await roleDrain(a[0] as Engine, a[1], Number(a[2]));
  else await main();
}
