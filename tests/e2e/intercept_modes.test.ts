// intercept end to end (root): a real TCP server on a target namespace, intercept in pcap
// mode (assistant namespace) or NFQUEUE mode (on the target), and fake tcpcopy peers in a
// third namespace that register a route, send a raw SYN from a fake client address and must
// receive the target's SYN-ACK header through the tunnel, while the real SYN-ACK never
// reaches the peer namespace. All traffic stays inside the namespaces built here.
import assert from "node:assert/strict";
import {
  type Cleanup,
  denoCmd,
  isRoot,
  type Netns,
  stopChild,
  vethPair,
  waitFor,
  withNetns,
} from "../helpers/netns.ts";

const ROOT = new URL("../../", import.meta.url);
const INTERCEPT = new URL("intercept.ts", ROOT);
const TARGET_PORT = 8080;

/** Fake tcpcopy peer, run with `deno eval` inside the peer namespace; prints one JSON line. */
const PEER = `
const cfg = JSON.parse(Deno.args[0]);
const root = ${JSON.stringify(ROOT.href)};
const { TunnelClient } = await import(root + "lib/tunnel/client.ts");
const { RawIpSender, RawIp6Sender } = await import(root + "lib/io/raw_send.ts");
const { PcapCapture } = await import(root + "lib/io/pcap.ts");
const { addressPair, buildTcpPacket } = await import(root + "lib/wire/build.ts");
const { parseIp, formatIp } = await import(root + "lib/wire/addr.ts");
const ipBytes = (s) => parseIp(s).bytes;
const v6 = cfg.client.includes(":");
const cap = PcapCapture.openLive({ device: cfg.dev, filter: "tcp and src port " + cfg.tport + " and dst net " + cfg.fakeNet, timeoutMs: 5 });
const replies = [];
const client = await TunnelClient.connect({
  servers: [{ hostname: cfg.intercept, port: cfg.tunnelPort }],
  connections: 2,
  log: () => {},
  onReply: (b) => {
    const six = b[0] >> 4 === 6, l4 = six ? 40 : (b[0] & 15) * 4;
    replies.push({
      dst: six ? formatIp(b, 24, 6) : formatIp(b, 16, 4),
      sport: (b[l4] << 8) | b[l4 + 1],
      dport: (b[l4 + 2] << 8) | b[l4 + 3],
      flags: b[l4 + 13],
    });
  },
});
const t0 = Date.now();
while (client.capsOf(0) === 0 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
const caps = client.capsOf(0);
const addRoute = () => {
  if (!client.addRoute({ addr: ipBytes(cfg.client), port: cfg.cport }, { addr: ipBytes(cfg.target), port: cfg.tport })) throw new Error("addRoute failed");
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pkt = new Uint8Array(100);
const n = buildTcpPacket({ ...addressPair(cfg.client, cfg.target), srcPort: cfg.cport, dstPort: cfg.tport,
  seq: 123456789, ack: 0, flags: 0x02, window: 64240 }, pkt);
const tx = v6 ? RawIp6Sender.open() : RawIpSender.open();
// routeDelayMs < 0: the SYN goes first and the route comes later (the delay queue's case)
if (cfg.routeDelayMs >= 0) { addRoute(); await sleep(cfg.routeDelayMs); }
tx.enqueue(pkt.subarray(0, n));
tx.flush();
if (cfg.routeDelayMs < 0) { await sleep(-cfg.routeDelayMs); addRoute(); }
const t1 = Date.now();
while (!replies.some((r) => r.flags & 0x02) && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 10));
await new Promise((r) => setTimeout(r, 300));
let leaked = 0;
cap.drain(() => leaked++);
console.log(JSON.stringify({ caps, replies, leaked, sendErrors: tx.stats.errors }));
tx.close();
cap.close();
await client.close();
Deno.exit(0);
`;

interface PeerResult {
  caps: number;
  replies: { dst: string; sport: number; dport: number; flags: number }[];
  leaked: number;
}

async function runPeer(ns: Netns, cfg: Record<string, unknown>): Promise<PeerResult> {
  const r = await ns.exec([Deno.execPath(), "eval", "--quiet", PEER, JSON.stringify(cfg)], {
    check: false,
    timeoutMs: 20_000,
  });
  assert.equal(r.code, 0, `peer failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/** Starts a TCP server on the target that answers "hi\\n" and closes. */
function startServer(env: Cleanup, ns: Netns, hostname = "0.0.0.0"): Deno.ChildProcess {
  return env.child(ns.spawn([
    Deno.execPath(),
    "eval",
    "--quiet",
    `const l = Deno.listen({ hostname: "${hostname}", port: ${TARGET_PORT} });
     for await (const c of l) { c.write(new TextEncoder().encode("hi\\n")).finally(() => c.close()); }`,
  ]));
}

/** A running intercept with its output collected. */
interface Running {
  child: Deno.ChildProcess;
  stdout: Promise<string>;
  stderr: () => string;
}

function startIntercept(env: Cleanup, ns: Netns, args: string[]): Running {
  // no drain on SIGTERM here (tests/e2e/intercept_lifecycle.test.ts covers it)
  const child = ns.spawn(denoCmd(INTERCEPT, [...args, "--drain-seconds", "0"]), {
    stdout: "piped",
    stderr: "piped",
  });
  env.defer(() => stopChild(child));
  const stdout = new Response(child.stdout).text();
  let err = "";
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) err += dec.decode(chunk);
  })();
  return { child, stdout, stderr: () => err };
}

async function waitListening(r: Running): Promise<void> {
  const ok = await waitFor(() => /listening for tcpcopy/.test(r.stderr()), 15_000, 50);
  assert.ok(ok, `intercept did not start: ${r.stderr()}`);
}

/** The fields of intercept's final stats line these tests read. */
interface FinalStats {
  program: string;
  final: boolean;
  replies: { forwarded: number; seen: number; delayed: number };
  verdicts: { accept: number; drop: number };
  peers: { connected: number };
}

async function stopAndStats(r: Running): Promise<FinalStats> {
  await stopChild(r.child, 5000);
  const status = await r.child.status;
  assert.equal(status.code, 0, `intercept exit: ${r.stderr()}`);
  const lines = (await r.stdout).trim().split("\n").map((l) => JSON.parse(l));
  const final = lines.at(-1);
  assert.equal(final.final, true);
  return final;
}

async function rpFilterOff(ns: Netns): Promise<void> {
  for (const k of ["all", "default"]) {
    await ns.exec(["sysctl", "-qw", `net.ipv4.conf.${k}.rp_filter=0`]);
  }
}

Deno.test({
  name: "intercept pcap mode on an assistant: two peers each get only their own SYN-ACK",
  ignore: !isRoot(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetns(async (env) => {
      const peer = await env.netns("ip"),
        target = await env.netns("it"),
        asst = await env.netns("ia");
      const pt = await vethPair(peer, target, "10.77.1.1", "10.77.1.2");
      const ta = await vethPair(target, asst, "10.77.2.2", "10.77.2.3");
      await vethPair(peer, asst, "10.77.3.1", "10.77.3.3");
      await rpFilterOff(target);
      for (const i of [pt.ifB, ta.ifA]) {
        await target.exec(["sysctl", "-qw", `net.ipv4.conf.${i}.rp_filter=0`]);
      }
      await target.exec(["ip", "route", "add", "10.77.9.0/24", "via", "10.77.2.3"]);
      await asst.exec(["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
      startServer(env, target);
      const ic = startIntercept(env, asst, [
        "-i",
        ta.ifB,
        "-F",
        `tcp and src port ${TARGET_PORT}`,
        "-b",
        "10.77.3.3",
        "--stats-interval",
        "1",
      ]);
      await waitListening(ic);
      const base = {
        dev: pt.ifA,
        fakeNet: "10.77.9.0/24",
        intercept: "10.77.3.3",
        tunnelPort: 36524,
        target: "10.77.1.2",
        tport: TARGET_PORT,
        routeDelayMs: 100,
      };
      const [a, b] = await Promise.all([
        runPeer(peer, { ...base, client: "10.77.9.1", cport: 40001 }),
        runPeer(peer, { ...base, client: "10.77.9.2", cport: 40002 }),
      ]);
      for (const [r, ip, port] of [[a, "10.77.9.1", 40001], [b, "10.77.9.2", 40002]] as const) {
        assert.ok(r.caps !== 0, "extensions negotiated with our intercept");
        assert.ok(r.replies.length >= 1, `no reply for ${ip}`);
        for (const rep of r.replies) {
          assert.equal(rep.dst, ip, "only this peer's replies");
          assert.equal(rep.dport, port);
          assert.equal(rep.sport, TARGET_PORT);
        }
        assert.equal(r.replies[0].flags, 0x12, "SYN-ACK");
        assert.equal(r.leaked, 0, "the real SYN-ACK never reached the peer namespace");
      }
      const stats = await stopAndStats(ic);
      assert.ok(stats.replies.forwarded >= 2, JSON.stringify(stats));
      assert.equal(stats.program, "intercept");
    }),
});

Deno.test({
  name: "intercept NFQUEUE mode on the target: SYN-ACK via tunnel only, pass-list, rules removed",
  ignore: !isRoot(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetns(async (env) => {
      const peer = await env.netns("np"), target = await env.netns("nt");
      const pt = await vethPair(peer, target, "10.77.1.1", "10.77.1.2");
      // replies for fake clients would go to the peer namespace if they escaped
      await target.exec(["ip", "route", "add", "10.77.9.0/24", "via", "10.77.1.1"]);
      startServer(env, target);
      const ic = startIntercept(env, target, [
        "--port",
        String(TARGET_PORT),
        "-x",
        "10.77.1.1",
        "-b",
        "10.77.1.2",
        "--stats-interval",
        "1",
      ]);
      await waitListening(ic);
      const rules = (await target.exec(["iptables", "-S", "OUTPUT"])).stdout;
      assert.match(rules, /tcpcopy-intercept-\d+-\w+/, "rule installed");
      const base = {
        dev: pt.ifA,
        fakeNet: "10.77.9.0/24",
        intercept: "10.77.1.2",
        tunnelPort: 36524,
        target: "10.77.1.2",
        tport: TARGET_PORT,
      };
      // two peers at once; the second registers its route 300 ms after its SYN went out
      const [a, b] = await Promise.all([
        runPeer(peer, { ...base, client: "10.77.9.1", cport: 40001, routeDelayMs: 0 }),
        runPeer(peer, { ...base, client: "10.77.9.2", cport: 40002, routeDelayMs: -300 }),
      ]);
      for (const [r, ip] of [[a, "10.77.9.1"], [b, "10.77.9.2"]] as const) {
        assert.ok(r.replies.length >= 1, `SYN-ACK header for ${ip} arrived through the tunnel`);
        assert.equal(r.replies[0].flags, 0x12);
        for (const rep of r.replies) assert.equal(rep.dst, ip, "only this peer's replies");
        assert.equal(r.leaked, 0, "the real SYN-ACK never left the target namespace");
      }
      // a real user on the pass-list still talks to the server through the shared port
      const real = await peer.exec([
        Deno.execPath(),
        "eval",
        "--quiet",
        `const c = await Deno.connect({ hostname: "10.77.1.2", port: ${TARGET_PORT} });
         const b = new Uint8Array(8); const n = await c.read(b); console.log(new TextDecoder().decode(b.subarray(0, n ?? 0)));`,
      ], { timeoutMs: 10_000 });
      assert.equal(real.stdout.trim(), "hi");
      const stats = await stopAndStats(ic);
      assert.ok(stats.verdicts.accept >= 1, JSON.stringify(stats));
      assert.ok(stats.verdicts.drop >= 1, JSON.stringify(stats));
      assert.ok(stats.replies.forwarded >= 2);
      assert.ok(stats.replies.delayed >= 1, "the early SYN-ACK waited in the delay queue");
      const after = (await target.exec(["iptables", "-S", "OUTPUT"])).stdout;
      assert.doesNotMatch(after, /tcpcopy-intercept/, "rules removed after SIGTERM");
    }),
});

async function enableIpv6(ns: Netns, dev: string, addr: string): Promise<void> {
  for (const k of ["all", "default", dev]) {
    await ns.exec(["sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=0`]);
  }
  await ns.exec(["ip", "-6", "addr", "add", addr, "dev", dev, "nodad"]);
}

Deno.test({
  name: "intercept NFQUEUE mode, IPv6: ip6tables rule, IPv6 route and record through the tunnel",
  ignore: !isRoot(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetns(async (env) => {
      const peer = await env.netns("6p"), target = await env.netns("6t");
      const pt = await vethPair(peer, target, "10.77.1.1", "10.77.1.2");
      await enableIpv6(peer, pt.ifA, "fd77::1/64");
      await enableIpv6(target, pt.ifB, "fd77::2/64");
      await target.exec(["ip", "-6", "route", "add", "fd77:9::/64", "via", "fd77::1"]);
      startServer(env, target, "::");
      const ic = startIntercept(env, target, ["--port", String(TARGET_PORT), "-b", "fd77::2"]);
      await waitListening(ic);
      const rules6 = (await target.exec(["ip6tables", "-S", "OUTPUT"])).stdout;
      assert.match(rules6, /tcpcopy-intercept-\d+-\w+/, "ip6tables rule installed");
      const r = await runPeer(peer, {
        dev: pt.ifA,
        fakeNet: "fd77:9::/64",
        intercept: "fd77::2",
        tunnelPort: 36524,
        target: "fd77::2",
        tport: TARGET_PORT,
        client: "fd77:9::1",
        cport: 40006,
        routeDelayMs: 0,
      });
      assert.ok(r.caps & 1, "IPv6 capability negotiated");
      assert.ok(r.replies.length >= 1, "IPv6 SYN-ACK header arrived through the tunnel");
      assert.equal(r.replies[0].flags, 0x12);
      assert.equal(r.replies[0].dst, "fd77:9::1");
      assert.equal(r.replies[0].dport, 40006);
      assert.equal(r.leaked, 0, "the real SYN-ACK never left the target namespace");
      const stats = await stopAndStats(ic);
      assert.ok(stats.replies.forwarded >= 1);
      const after = (await target.exec(["ip6tables", "-S", "OUTPUT"])).stdout;
      assert.doesNotMatch(after, /tcpcopy-intercept/, "IPv6 rules removed");
    }),
});
