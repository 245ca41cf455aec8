// Reply payload through the tunnel, end to end (root), for protocol modules: a real TCP server
// on a target namespace answers a handshake from a fake client with 300 payload bytes; intercept
// (NFQUEUE mode on the target, or pcap mode on an assistant) runs with --secret-file and
// --max-prefix 100; a tcpcopy-side peer authenticates with the same secret, asks for a 128-byte
// prefix (what tcpcopy does with --module), completes the handshake with raw packets, and parses
// the records with tcpcopy's own conversion (readReplySegment). The record must carry exactly
// the first 100 payload bytes, the payload length must say 300, and the smaller grant must be
// counted (prefix_short). A peer let in without the secret (--allow) gets no payload byte even
// when it asks. All traffic stays in
// the namespaces built here.
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
const ANSWER = 300;
const GRANT = 100;
const ASKED = 128;

/** tcpcopy-side peer, run with `deno eval` in the peer namespace; prints one JSON line. */
const PEER = `
const cfg = JSON.parse(Deno.args[0]);
const root = ${JSON.stringify(ROOT.href)};
const { TunnelClient } = await import(root + "lib/tunnel/client.ts");
const { importSecret } = await import(root + "lib/tunnel/auth.ts");
const { readSecretFile } = await import(root + "lib/tunnel/secret_file.ts");
const { RawIpSender } = await import(root + "lib/io/raw_send.ts");
const { addressPair, buildTcpPacket } = await import(root + "lib/wire/build.ts");
const { parseIp } = await import(root + "lib/wire/addr.ts");
const { ParsedTcp, parseIpTcp } = await import(root + "lib/wire/packet.ts");
const { emptyReplySegment, readReplySegment } = await import(root + "lib/tcpcopy/convert.ts");
let secret;
if (cfg.secret) {
  const r = readSecretFile(cfg.secret);
  if (!r.ok) throw new Error(r.error);
  secret = await importSecret(r.secret);
}
const replies = [];
const p = new ParsedTcp(), seg = emptyReplySegment(), ts = { tsval: 0, tsecr: 0 };
const client = await TunnelClient.connect({
  servers: [{ hostname: cfg.intercept, port: 36524 }],
  connections: 1,
  secret,
  prefix: cfg.prefix,
  log: () => {},
  onReply: (b, _server, prefix) => {
    if (parseIpTcp(b, 0, p) !== null || !readReplySegment(p, seg, ts, prefix)) return;
    replies.push({ flags: seg.flags, seq: seg.seq, len: seg.payloadLength, grant: prefix,
      prefix: seg.payloadPrefix ? [...seg.payloadPrefix] : null });
  },
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
if (!client.addRoute({ addr: parseIp(cfg.client).bytes, port: cfg.cport },
  { addr: parseIp(cfg.target).bytes, port: cfg.tport })) throw new Error("addRoute failed");
await sleep(100);
const tx = RawIpSender.open();
const send = (seq, ack, flags) => {
  const pkt = new Uint8Array(100);
  const n = buildTcpPacket({ ...addressPair(cfg.client, cfg.target), srcPort: cfg.cport,
    dstPort: cfg.tport, seq, ack, flags, window: 64240 }, pkt);
  tx.enqueue(pkt.subarray(0, n));
  tx.flush();
};
const ISN = 123456789;
send(ISN, 0, 0x02);
const until = async (f) => { const t = Date.now(); while (!f() && Date.now() - t < 5000) await sleep(10); };
await until(() => replies.some((r) => r.flags & 0x02));
const synAck = replies.find((r) => r.flags & 0x02);
if (synAck) send(ISN + 1, (synAck.seq + 1) >>> 0, 0x10);
await until(() => replies.some((r) => r.len > 0));
await sleep(200);
const data = replies.find((r) => r.len > 0);
if (data) send(ISN + 1, (data.seq + data.len + 1) >>> 0, 0x14); // RST: the server forgets it
console.log(JSON.stringify({ replies, prefixShort: client.counters.prefixShort }));
tx.close();
await client.close();
Deno.exit(0);
`;

interface PeerResult {
  replies: { flags: number; len: number; grant: number; prefix: number[] | null }[];
  prefixShort: number;
}

async function runPeer(ns: Netns, cfg: Record<string, unknown>): Promise<PeerResult> {
  const r = await ns.exec([Deno.execPath(), "eval", "--quiet", PEER, JSON.stringify(cfg)], {
    check: false,
    timeoutMs: 30_000,
  });
  assert.equal(r.code, 0, `peer failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/** Byte i of the server's answer. */
const answerByte = (i: number) => (i * 7 + 3) & 0xff;

/** A TCP server on the target that sends ANSWER bytes on each connection. */
function startServer(env: Cleanup, ns: Netns): void {
  env.child(ns.spawn([
    Deno.execPath(),
    "eval",
    "--quiet",
    `const l = Deno.listen({ hostname: "0.0.0.0", port: ${TARGET_PORT} });
     const b = Uint8Array.from({ length: ${ANSWER} }, (_, i) => (i * 7 + 3) & 0xff);
     for await (const c of l) { c.write(b).catch(() => {}); }`,
  ]));
}

function startIntercept(env: Cleanup, ns: Netns, args: string[]): () => string {
  const child = ns.spawn(denoCmd(INTERCEPT, [...args, "--drain-seconds", "0"]), {
    stdout: "null",
    stderr: "piped",
  });
  env.defer(() => stopChild(child));
  let err = "";
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) err += dec.decode(chunk);
  })();
  return () => err;
}

/** The checks shared by both modes. */
function checkPrefixDelivered(r: PeerResult): void {
  assert.equal(r.prefixShort, 1, "the smaller grant was counted");
  const data = r.replies.filter((x) => x.len > 0);
  assert.ok(data.length >= 1, `a data reply arrived: ${JSON.stringify(r.replies)}`);
  const d = data[0];
  assert.equal(d.len, ANSWER, "the payload length is the reply's, not the record's");
  assert.equal(d.grant, GRANT);
  assert.deepEqual(d.prefix, Array.from({ length: GRANT }, (_, i) => answerByte(i)));
  for (const x of r.replies.filter((x) => x.len === 0)) {
    assert.equal(x.prefix, null, "no payload bytes for a reply without payload");
  }
}

async function secretFile(env: Cleanup): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "tcpcopy-prefix-" });
  env.defer(() => Deno.remove(dir, { recursive: true }));
  const f = `${dir}/secret`;
  await Deno.writeTextFile(f, "e2e shared secret, 32 bytes long\n", { mode: 0o600 });
  await Deno.chmod(f, 0o600);
  return f;
}

Deno.test({
  name: "reply prefix e2e, NFQUEUE: an authenticated peer gets the granted payload bytes",
  ignore: !isRoot(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetns(async (env) => {
      const secret = await secretFile(env);
      const peer = await env.netns("qp"), target = await env.netns("qt");
      await vethPair(peer, target, "10.78.1.1", "10.78.1.2");
      await target.exec(["ip", "route", "add", "10.78.9.0/24", "via", "10.78.1.1"]);
      startServer(env, target);
      const log = startIntercept(env, target, [
        "--port",
        String(TARGET_PORT),
        "-x",
        "10.78.1.1",
        "-b",
        "10.78.1.2",
        "--secret-file",
        secret,
        "--max-prefix",
        String(GRANT),
        "--allow",
        "10.78.1.1/32",
      ]);
      assert.ok(await waitFor(() => /listening for tcpcopy/.test(log()), 15_000, 50), log());
      const base = { intercept: "10.78.1.2", target: "10.78.1.2", tport: TARGET_PORT };
      const r = await runPeer(peer, {
        ...base,
        secret,
        prefix: ASKED,
        client: "10.78.9.1",
        cport: 40001,
      });
      checkPrefixDelivered(r);
      // let in by --allow without the secret, asking for the prefix: headers only
      const plain = await runPeer(peer, {
        ...base,
        prefix: ASKED,
        client: "10.78.9.2",
        cport: 40002,
      });
      const pd = plain.replies.filter((x) => x.len > 0);
      assert.ok(pd.length >= 1, JSON.stringify(plain));
      assert.ok(pd.every((x) => x.prefix === null && x.grant === 0 && x.len === ANSWER));
      assert.equal(plain.prefixShort, 1, "asked and got nothing: counted");
    }),
});

Deno.test({
  name: "reply prefix e2e, pcap on an assistant: the snap length keeps the granted bytes",
  ignore: !isRoot(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetns(async (env) => {
      const secret = await secretFile(env);
      const peer = await env.netns("pp"),
        target = await env.netns("pt"),
        asst = await env.netns("pa");
      const pt = await vethPair(peer, target, "10.78.1.1", "10.78.1.2");
      const ta = await vethPair(target, asst, "10.78.2.2", "10.78.2.3");
      await vethPair(peer, asst, "10.78.3.1", "10.78.3.3");
      for (const k of ["all", "default", pt.ifB, ta.ifA]) {
        await target.exec(["sysctl", "-qw", `net.ipv4.conf.${k}.rp_filter=0`]);
      }
      await target.exec(["ip", "route", "add", "10.78.9.0/24", "via", "10.78.2.3"]);
      await asst.exec(["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
      startServer(env, target);
      const log = startIntercept(env, asst, [
        "-i",
        ta.ifB,
        "-F",
        `tcp and src port ${TARGET_PORT}`,
        "-b",
        "10.78.3.3",
        "--secret-file",
        secret,
        "--max-prefix",
        String(GRANT),
      ]);
      assert.ok(await waitFor(() => /listening for tcpcopy/.test(log()), 15_000, 50), log());
      const r = await runPeer(peer, {
        intercept: "10.78.3.3",
        target: "10.78.1.2",
        tport: TARGET_PORT,
        secret,
        prefix: ASKED,
        client: "10.78.9.1",
        cport: 40001,
      });
      checkPrefixDelivered(r);
    }),
});
