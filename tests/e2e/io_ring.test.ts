/**
 * End-to-end tests of the ring capture (RingCapture) and of openCapture, in network namespaces:
 * a real TCP connection is seen, the BPF filter hides other ports, `any` gives parseable IPv4
 * and IPv6 packets, outgoing packets are left out by default (both engines), stop() ends an idle
 * wait promptly, the kernel drop counter is readable and cumulative, and tcpcopy's start ring
 * holds light traffic through a 1.5 s stall of its reader.
 *
 * The FFI side must run inside a namespace, so this file is also its own peer program:
 * `deno run -A io_ring.test.ts <role> ...` (roles at the bottom). Deno.test is a no-op there.
 */

import assert from "node:assert/strict";
import {
  Cleanup,
  denoCmd,
  denoEval,
  isRoot,
  lineReader,
  Netns,
  vethPair,
  withNetns,
} from "../helpers/netns.ts";
import { RingCapture } from "../../lib/io/ring.ts";
import { FIRST_RING_MIB } from "../../lib/tcpcopy/captures.ts";
import { type CaptureEngine, openCapture } from "../../lib/io/capture.ts";
import { IoError } from "../../lib/io/errors.ts";
import { LinkSender } from "../../lib/io/link_send.ts";
import { ParsedTcp, parseTcpPacket } from "../../lib/wire/packet.ts";
import {
  addressPair,
  buildTcpPacket,
  tcpPacketLength,
  type TcpPacketRepr,
} from "../../lib/wire/build.ts";

const SELF = new URL(import.meta.url).pathname;

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => new Uint8Array(s.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);

// ---- peer control ---------------------------------------------------------------------------

/** What the capture role reports. */
interface CaptureResult {
  engine: string;
  direction: string;
  error: { kind: string; message: string } | null;
  frames: string[];
  linkType: number;
  stats: { received: number; dropped: number };
  stopMs: number;
}

interface CaptureSpec {
  /** "ring": RingCapture; "auto"/"pcap": openCapture with that engine choice */
  engine: "ring" | "auto" | "pcap";
  device: string;
  filter: string;
  direction?: "in" | "inout";
  count?: number;
}

/** Starts the capture role in `ns`; resolves once it is capturing. */
async function startCapture(env: Cleanup, ns: Netns, spec: CaptureSpec) {
  const child = env.child(ns.spawn(denoCmd(SELF, ["capture", JSON.stringify(spec)]), {
    stdout: "piped",
  }));
  const nextLine = lineReader(child.stdout);
  assert.equal(await nextLine(), "ready");
  return {
    child,
    /** The role's report once it ended on its own. */
    result: async (): Promise<CaptureResult> => {
      const res = JSON.parse(await nextLine());
      await child.status;
      return res;
    },
    /** Stops the role with SIGTERM (after the last block was retired) and returns its report. */
    stop: async (): Promise<CaptureResult & { signalToExitMs: number }> => {
      await new Promise((r) => setTimeout(r, 300)); // > 10 ms block timeout: all handed over
      const sent = performance.now();
      child.kill("SIGTERM");
      const res = JSON.parse(await nextLine());
      await child.status;
      return { ...res, signalToExitMs: performance.now() - sent };
    },
  };
}

/** Parses every frame with lib/wire; fails the test on any parse error. */
function parseAll(res: CaptureResult) {
  return res.frames.map((h) => {
    const out = new ParsedTcp();
    const err = parseTcpPacket(unhex(h), res.linkType, out);
    assert.equal(err, null, `frame ${h.slice(0, 40)}... does not parse`);
    return {
      family: out.family,
      src: `${out.srcText()}:${out.srcPort}`,
      sport: out.srcPort,
      dport: out.dstPort,
      text: new TextDecoder().decode(out.payload()),
    };
  });
}

/** A server in `ns` answering "echo:<request>" once per connection on each port. */
async function echoServer(env: Cleanup, ns: Netns, host: string, ports: number[]) {
  const server = env.child(ns.spawn(
    denoEval(`
      for (const port of ${JSON.stringify(ports)}) {
        const l = Deno.listen({ hostname: ${JSON.stringify(host)}, port });
        (async () => {
          for await (const c of l) {
            const b = new Uint8Array(100); const n = await c.read(b);
            await c.write(new TextEncoder().encode("echo:" + new TextDecoder().decode(b.subarray(0, n ?? 0))));
            c.close();
          }
        })();
      }
      console.log("ready");
      setTimeout(() => Deno.exit(0), 20000);`),
    { stdout: "piped" },
  ));
  const r = server.stdout.getReader();
  assert.match(new TextDecoder().decode((await r.read()).value), /ready/);
  r.releaseLock();
}

/** Connects from `ns` to each [host, port], sends "hello-<port>", returns the answers. */
async function clients(ns: Netns, targets: [string, number][]): Promise<string[]> {
  const out = await ns.exec(denoEval(`
    for (const [hostname, port] of ${JSON.stringify(targets)}) {
      const c = await Deno.connect({ hostname, port });
      await c.write(new TextEncoder().encode("hello-" + port));
      const b = new Uint8Array(100); const n = await c.read(b);
      console.log(new TextDecoder().decode(b.subarray(0, n ?? 0))); c.close();
    }`));
  return out.stdout.trim().split("\n");
}

async function twoHosts(env: Cleanup, a4: string, b4: string) {
  const a = await env.netns("ra"), b = await env.netns("rb");
  const { ifA, ifB } = await vethPair(a, b, a4, b4);
  return { a, b, ifA, ifB };
}

// ---- tests ----------------------------------------------------------------------------------

Deno.test({
  name: "ring: a real TCP connection is seen, the filter hides other ports, stop() is prompt",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const { a, b, ifB } = await twoHosts(env, "10.231.0.1", "10.231.0.2");
      await echoServer(env, b, "10.231.0.2", [7401, 7402]);
      // capture on the server side, both directions: the whole conversation on 7401
      const cap = await startCapture(env, b, {
        engine: "ring",
        device: ifB,
        filter: "tcp port 7401",
        direction: "inout",
      });
      const answers = await clients(a, [["10.231.0.2", 7402], ["10.231.0.2", 7401]]);
      assert.deepEqual(answers, ["echo:hello-7402", "echo:hello-7401"]);
      const res = await cap.stop();
      assert.ok(res.signalToExitMs < 1000, `exit took ${res.signalToExitMs} ms`);
      assert.ok(res.stopMs < 1000, `stop() took ${res.stopMs} ms`);
      assert.equal(res.linkType, 1, "Ethernet frames on a veth device");
      const pk = parseAll(res);
      assert.ok(pk.length >= 8, `only ${pk.length} frames`); // 3-way, data, echo, 2 FINs, ACKs
      for (const p of pk) assert.ok(p.sport === 7401 || p.dport === 7401, `${p.src} leaked`);
      assert.equal(pk.filter((p) => p.text === "hello-7401").length, 1);
      assert.equal(pk.filter((p) => p.text === "echo:hello-7401").length, 1);
      assert.ok(!pk.some((p) => p.text.includes("7402")));
      assert.equal(res.stats.dropped, 0);
      assert.equal(res.stats.received, res.frames.length);
    }),
});

Deno.test({
  name: "ring: `any` gives IP packets (linkType RAW) that parse, IPv4 and IPv6",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const ns = await env.netns("ry");
      await ns.exec(["sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=0"]);
      await echoServer(env, ns, "::", [7411]);
      const cap = await startCapture(env, ns, { engine: "ring", device: "any", filter: "tcp" });
      const answers = await clients(ns, [["127.0.0.1", 7411], ["::1", 7411]]);
      assert.deepEqual(answers, ["echo:hello-7411", "echo:hello-7411"]);
      const res = await cap.stop();
      assert.equal(res.linkType, 12);
      const pk = parseAll(res);
      for (const family of [4, 6]) {
        const f = pk.filter((p) => p.family === family);
        // on lo every packet is seen once (the outgoing copy is left out)
        assert.equal(f.filter((p) => p.text === "hello-7411").length, 1, `IPv${family} request`);
        assert.equal(f.filter((p) => p.text === "echo:hello-7411").length, 1, `IPv${family} echo`);
      }
      assert.equal(res.stats.received, res.frames.length);
    }),
});

Deno.test({
  name: "outgoing packets are left out by default, kept with inout; pcap says it keeps them",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const { a, b, ifA } = await twoHosts(env, "10.232.0.1", "10.232.0.2");
      await echoServer(env, b, "10.232.0.2", [7421]);
      const specs: CaptureSpec[] = [];
      for (const engine of ["ring", "auto", "pcap"] as const) {
        for (const direction of ["in", "inout"] as const) {
          specs.push({ engine, direction, device: ifA, filter: "tcp port 7421" });
        }
      }
      // all six captures run at once on the client side, seeing the same connection
      const caps = [];
      for (const spec of specs) caps.push(await startCapture(env, a, spec));
      assert.deepEqual(await clients(a, [["10.232.0.2", 7421]]), ["echo:hello-7421"]);
      const results = await Promise.all(caps.map((c) => c.stop()));
      const inbound = (r: CaptureResult) => parseAll(r).filter((p) => p.sport === 7421).length;
      results.forEach((res, i) => {
        const { engine, direction } = specs[i];
        assert.equal(res.engine, engine === "auto" ? "ring" : engine);
        const pk = parseAll(res);
        const fromServer = inbound(res);
        assert.ok(fromServer >= 3, `${engine}/${direction}: ${fromServer} server packets`);
        assert.equal(res.direction, engine === "pcap" ? "inout" : direction, "direction reported");
        if (res.direction === "in") {
          assert.equal(pk.length, fromServer, `${engine}/in kept ${pk.length - fromServer} sent`);
        } else {
          assert.ok(pk.some((p) => p.text === "hello-7421"), `${engine}/inout lacks the request`);
          assert.ok(pk.length > fromServer + 2, `${engine}/inout: ${pk.length} frames`);
        }
      });
    }),
});

/**
 * Two hosts on a veth, the ring role `role` capturing on the second (answers "ready" first) and
 * the flood role sending from the first. `go` writes a "go" line to the role; `end` closes its
 * stdin and waits for it to exit.
 */
async function startRingRole(env: Cleanup, role: "overflow" | "grow" | "stall") {
  const { a, b, ifA, ifB } = await twoHosts(env, "10.233.0.1", "10.233.0.2");
  const child = env.child(b.spawn(denoCmd(SELF, [role, ifB]), { stdout: "piped", stdin: "piped" }));
  const lines = lineReader(child.stdout);
  const stdin = child.stdin.getWriter();
  assert.equal(await lines(), "ready");
  return {
    lines,
    /** Sends `n` frames from the first host (the flood role) and checks they all left. */
    flood: async (n: number) => {
      const gen = await a.exec(denoCmd(SELF, ["flood", ifA, String(n)]));
      assert.equal(JSON.parse(gen.stdout).sent, n);
    },
    /** Sends `ticks` × `perTick` frames, `perTick` every `tickMs` ms (light, steady traffic). */
    trickle: async (ticks: number, perTick: number, tickMs: number) => {
      const gen = await a.exec(
        denoCmd(SELF, ["trickle", ifA, String(ticks), String(perTick), String(tickMs)]),
      );
      assert.equal(JSON.parse(gen.stdout).sent, ticks * perTick);
    },
    go: () => stdin.write(new TextEncoder().encode("go\n")),
    end: async () => {
      await stdin.close();
      await child.status;
    },
  };
}

Deno.test({
  name: "ring: kernel drops are counted (cumulative) when the ring overflows; no drops otherwise",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const role = await startRingRole(env, "overflow");
      const { lines } = role;
      const flood = async (n: number) => {
        await role.flood(n);
        await role.go();
      };
      const burst = 20_000;
      await flood(burst); // while the role does not read: a 512 KiB ring holds ~2 300 frames
      const r1 = JSON.parse(await lines());
      assert.ok(r1.first.dropped > burst / 2, `dropped ${r1.first.dropped}`);
      assert.equal(r1.first.received, burst, "received counts the dropped packets too");
      assert.equal(r1.drained + r1.first.dropped, burst, "every packet either read or dropped");
      assert.deepEqual(r1.again, r1.first, "a second read keeps the totals");
      await flood(100); // fits: no new drops
      const r2 = JSON.parse(await lines());
      assert.equal(r2.drained, 100);
      assert.equal(r2.stats.received, burst + 100);
      assert.equal(r2.stats.dropped, r1.first.dropped);
      await role.end();
    }),
});

Deno.test({
  name: "ring: tcpcopy's start ring holds 1.5 s of light traffic while its reader is stalled",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      // 4 frames every 20 ms for 1.5 s, none read until the end: at this rate the kernel hands
      // over a block per retire period, so the ring holds blockCount × retire ms of traffic
      // whatever its bytes: 96 × 20 ms (the former 8 MiB of 256 KiB blocks every 10 ms: 0.32 s)
      const role = await startRingRole(env, "stall");
      await role.trickle(75, 4, 20);
      await role.go();
      const r = JSON.parse(await role.lines());
      assert.equal(r.stats.dropped, 0, JSON.stringify(r));
      assert.equal(r.drained, 300, JSON.stringify(r));
      // the first wake-up found most blocks waiting (~75 of 96, past three quarters): a new ring
      // took over while the old one was read (too late to matter here but in time for more), as
      // large: at a block per retire period half a ring lasts 48 × 20 ms, more than MIN_ROOM_MS
      // (main doubled it: its ~21 free blocks would have been full within MIN_ROOM_MS)
      assert.equal(r.stats.grows, 1);
      assert.equal(r.stats.bufferBytes, FIRST_RING_MIB << 20);
      assert.ok(r.stats.peakBytes >= (FIRST_RING_MIB << 20) / 2, JSON.stringify(r.stats));
      await role.end();
    }),
});

Deno.test({
  name: "ring: a small ring grows when it fills; packets stay in order, none lost or doubled",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const role = await startRingRole(env, "grow");
      const { lines, flood } = role;
      // 1. A burst fills more than half of a 1 MiB ring while nobody reads: at the next wake-up
      //    a new ring takes over; the old ring is drained first, then closed. A 128 KiB block holds
      //    ~668 of these frames (196 bytes with the TPACKET_V3 header): 3,600 fill 5.4 of the 8
      //    blocks when packed (a quiet machine; 2,000 filled 3 and did not grow it), up to ~7
      //    when a loaded flood lets the 20 ms retire timeout close blocks early.
      await flood(3600);
      await role.go();
      const r1 = JSON.parse(await lines());
      assert.equal(r1.stats.dropped, 0);
      assert.equal(r1.stats.grows, 1, JSON.stringify(r1.stats));
      // half of the ring filled within FAST_FILL_MS: the new ring is twice as large (a slower
      // flood on a loaded machine: as large)
      assert.ok([1 << 20, 2 << 20].includes(r1.stats.bufferBytes), JSON.stringify(r1.stats));
      assert.equal(r1.delivered, 3600, "nothing lost, nothing doubled");
      assert.equal(r1.unique, 3600);
      assert.equal(r1.inversions, 0, "arrival order kept across the two rings");
      // 2. Read while a larger burst arrives: new rings take over under traffic, twice as
      //    large when the reader is behind by more than one ring, up to the 4 MiB maximum;
      //    every packet is read once or counted as dropped, order kept.
      await role.go();
      assert.equal(await lines(), "reading");
      const n = 40_000;
      await flood(n);
      await role.go();
      const r2 = JSON.parse(await lines());
      assert.ok(r2.stats.grows >= 1, `grew again: ${JSON.stringify(r2.stats)}`);
      assert.ok(r2.stats.bufferBytes <= 4 << 20);
      assert.equal(r2.inversions, 0);
      // Between the new ring's bind and the old one's closing filter both rings see the same
      // packets: at this flood's ~1M packets/s up to a few dozen, read twice (the engine
      // takes them for retransmissions).
      assert.ok(r2.duplicates <= 256, `duplicates: ${r2.duplicates}`);
      assert.ok(r2.unique <= n);
      assert.ok(r2.unique + r2.stats.dropped >= n, JSON.stringify({ ...r2, seqs: undefined }));
      await role.end();
    }),
});

Deno.test({
  name: "ring: the device going down ends the capture with a device error",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const { b, ifB } = await twoHosts(env, "10.234.0.1", "10.234.0.2");
      const cap = await startCapture(env, b, { engine: "ring", device: ifB, filter: "tcp" });
      await b.exec(["ip", "link", "set", ifB, "down"]);
      const t0 = performance.now();
      const res = await cap.result();
      assert.ok(performance.now() - t0 < 2000, "reported within 2 s");
      assert.equal(res.error?.kind, "device");
      assert.match(res.error?.message ?? "", new RegExp(`"${ifB}".*went down`));
    }),
});

Deno.test({
  name: "errors: unknown device and bad filter (same kinds and wording as PcapCapture)",
  ignore: !isRoot(),
  fn: () => {
    const expectIo = (fn: () => unknown, kind: string, text: RegExp) => {
      try {
        fn();
      } catch (e) {
        assert.ok(e instanceof IoError, String(e));
        assert.equal(e.kind, kind, e.message);
        assert.match(e.message, text);
        return;
      }
      assert.fail("no error thrown");
    };
    expectIo(() => RingCapture.openLive({ device: "nosuchdev0" }), "device", /"nosuchdev0"/);
    expectIo(
      () => RingCapture.openLive({ device: "lo", filter: "tcp port" }),
      "filter",
      /^bad capture filter "tcp port": /,
    );
    expectIo(
      () => openCapture({ device: "lo", filter: "tcp prot 80" }),
      "filter",
      /^bad capture filter "tcp prot 80": /,
    );
    expectIo(
      () => openCapture({ device: "lo", filter: "tcp prot 80", engine: "pcap" }),
      "filter",
      /^bad capture filter "tcp prot 80": /,
    );
    // the ring refuses an unknown device; the fallback (pcap) refuses it too, with its message
    expectIo(() => openCapture({ device: "nosuchdev0" }), "device", /"nosuchdev0"/);
  },
});

// ---- peer roles (run inside a namespace) ----------------------------------------------------

async function roleCapture(spec: CaptureSpec): Promise<void> {
  const count = spec.count ?? 1_000_000;
  const opts = {
    device: spec.device,
    filter: spec.filter,
    direction: spec.direction,
    bufferSize: 4 << 20,
  };
  const cap = spec.engine === "ring"
    ? Object.assign(RingCapture.openLive(opts), {
      engine: "ring",
      direction: spec.direction ?? "in",
    })
    : openCapture({
      ...opts,
      engine: spec.engine === "auto" ? undefined : spec.engine as CaptureEngine,
    });
  let stopAt = 0;
  Deno.addSignalListener("SIGTERM", () => {
    stopAt = performance.now();
    cap.stop();
  });
  const frames: string[] = [];
  const deadline = performance.now() + 20_000;
  console.log("ready");
  let error: { kind: string; message: string } | null = null;
  try {
    while (frames.length < count && performance.now() < deadline) {
      if (!await cap.wait(deadline - performance.now())) break;
      cap.drain((f) => frames.push(hex(f)), count - frames.length);
    }
  } catch (e) {
    if (!(e instanceof IoError)) throw e;
    error = { kind: e.kind, message: e.message };
  }
  const stopMs = stopAt === 0 ? 0 : performance.now() - stopAt;
  const report = {
    engine: cap.engine,
    direction: cap.direction,
    error,
    frames,
    linkType: cap.linkType,
    stats: cap.stats(),
    stopMs,
  };
  console.log(JSON.stringify(report));
  cap.close();
  Deno.exit(0);
}

/**
 * Drains `cap` into `onFrame` until 300 ms pass without a packet (or `maxMs` in all): a wake-up
 * can find nothing yet (the last partly filled block is handed over by the kernel's retire
 * timer), so one empty drain does not end it. Returns how many frames came.
 */
async function drainUntilQuiet(
  cap: RingCapture,
  onFrame: (f: Uint8Array) => void,
  maxMs: number,
): Promise<number> {
  let drained = 0, quietSince = performance.now();
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline && performance.now() - quietSince < 300) {
    if (!await cap.wait(50)) break;
    const n = cap.drain(onFrame);
    drained += n;
    if (n > 0) quietSince = performance.now();
  }
  return drained;
}

/** Small ring, not read while a burst arrives; after each "go" line: drain, report stats. */
async function roleOverflow(device: string): Promise<void> {
  const cap = RingCapture.openLive({ device, filter: "tcp dst port 7431", bufferSize: 512 << 10 });
  const stdin = lineReader(Deno.stdin.readable);
  const drainAll = () => drainUntilQuiet(cap, () => {}, 5000);
  console.log("ready");
  assert.equal(await stdin(), "go"); // the burst is over
  const drained = await drainAll();
  const first = cap.stats(), again = cap.stats();
  console.log(JSON.stringify({ drained, first, again }));
  assert.equal(await stdin(), "go"); // 100 more were sent
  console.log(JSON.stringify({ drained: await drainAll(), stats: cap.stats() }));
  cap.close();
}

/** tcpcopy's start ring (size, default snaplen and retire timeout), read only after "go". */
async function roleStall(device: string): Promise<void> {
  const cap = RingCapture.openLive({
    device,
    filter: "tcp dst port 7431",
    bufferSize: FIRST_RING_MIB << 20,
    maxBufferSize: 64 << 20,
  });
  const stdin = lineReader(Deno.stdin.readable);
  console.log("ready");
  assert.equal(await stdin(), "go"); // the trickle is over: nothing was read meanwhile
  const drained = await drainUntilQuiet(cap, () => {}, 5000);
  console.log(JSON.stringify({ drained, stats: cap.stats() }));
  cap.close();
}

/**
 * A 1 MiB ring that may grow to 4 MiB. After each "go" line: drains what came (until 300 ms
 * pass without packets) and reports how many, how many distinct TCP sequence numbers (the flood
 * numbers its frames), how many were seen twice, how often a new one went backwards, and the
 * stats.
 */
async function roleGrow(device: string): Promise<void> {
  const cap = RingCapture.openLive({
    device,
    filter: "tcp dst port 7431",
    bufferSize: 1 << 20,
    maxBufferSize: 4 << 20,
  });
  const stdin = lineReader(Deno.stdin.readable);
  const seen = new Set<number>();
  let delivered = 0, inversions = 0, duplicates = 0, last = -1;
  const onFrame = (f: Uint8Array) => {
    const seq = new DataView(f.buffer, f.byteOffset).getUint32(14 + 20 + 4);
    delivered++;
    if (seen.has(seq)) return void duplicates++; // both rings saw it during the switch-over
    if (seq < last) inversions++;
    last = seq;
    seen.add(seq);
  };
  const report = () => {
    const stats = cap.stats();
    console.log(JSON.stringify({ delivered, unique: seen.size, inversions, duplicates, stats }));
    seen.clear();
    delivered = inversions = duplicates = 0;
    last = -1;
  };
  console.log("ready");
  assert.equal(await stdin(), "go"); // a burst came while we did not read
  await drainUntilQuiet(cap, onFrame, 10_000);
  report();
  assert.equal(await stdin(), "go"); // read while the next burst comes
  const more = stdin();
  console.log("reading");
  let done = false;
  more.then(() => done = true);
  const deadline = performance.now() + 30_000;
  while (!done && performance.now() < deadline) {
    if (await cap.wait(50)) cap.drain(onFrame);
  }
  await drainUntilQuiet(cap, onFrame, 10_000);
  report();
  cap.close();
}

const FRAME: TcpPacketRepr = {
  ...addressPair("10.233.0.1", "10.233.0.2"),
  srcPort: 40000,
  dstPort: 7431,
  seq: 1,
  ack: 1,
  flags: 0x18,
  window: 1000,
  payload: new Uint8Array(64).fill(0x61),
};

/** Sends `count` TCP frames as fast as possible to a MAC nobody owns (dropped cheaply). */
function roleFlood(device: string, count: number): void {
  const tx = LinkSender.open({ device, nextHopMac: "02:00:00:00:00:99", batch: 64 });
  const len = tcpPacketLength(FRAME);
  for (let i = 0; i < count; i++) {
    FRAME.seq = i;
    buildTcpPacket(FRAME, tx.slot(len));
  }
  tx.flush();
  console.log(JSON.stringify({ sent: tx.stats.sent, errors: tx.stats.errors }));
  tx.close();
}

/** Sends `perTick` frames every `tickMs` ms, `ticks` times (numbered like the flood's). */
async function roleTrickle(device: string, ...[ticks, perTick, tickMs]: number[]): Promise<void> {
  const tx = LinkSender.open({ device, nextHopMac: "02:00:00:00:00:99", batch: 64 });
  const len = tcpPacketLength(FRAME);
  for (let t = 0; t < ticks; t++) {
    for (let i = 0; i < perTick; i++) {
      FRAME.seq = t * perTick + i;
      buildTcpPacket(FRAME, tx.slot(len));
    }
    tx.flush();
    await new Promise((r) => setTimeout(r, tickMs));
  }
  console.log(JSON.stringify({ sent: tx.stats.sent, errors: tx.stats.errors }));
  tx.close();
}

if (import.meta.main) {
  const [role, ...args] = Deno.args;
  if (role === "capture") await roleCapture(JSON.parse(args[0]));
  else if (role === "overflow") await roleOverflow(args[0]);
  else if (role === "grow") await roleGrow(args[0]);
  else if (role === "stall") await roleStall(args[0]);
  else if (role === "flood") roleFlood(args[0], Number(args[1]));
  else if (role === "trickle") await roleTrickle(args[0], ...args.slice(1, 4).map(Number));
  else throw new Error(`unknown role ${role}`);
}
