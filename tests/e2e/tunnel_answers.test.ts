// Answer summaries through the tunnel, end to end (root, issue 15): nginx on a target namespace
// serves small answers and a 100 KB file over one keep-alive connection; intercept runs with
// --secret-file --compare (NFQUEUE mode on the target, or pcap mode on an assistant host); a
// tcpcopy-side peer authenticates, asks for answers (TunnelClient `compare`), drives the TCP
// connection with raw packets from the reply headers it gets, and sends each request once the
// previous answer's summary arrived. Every summary must carry the request's end as its ack, the
// answer's first sequence number and length (from the reply headers), its first bytes, and the
// digest of the real body (computed here from the same bytes nginx serves). All traffic stays in
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
import { nginxConfig } from "../helpers/lab.ts";
import { summarize } from "../../lib/compare/answer.ts";
import { digestText } from "../../lib/compare/digest.ts";

const ROOT = new URL("../../", import.meta.url);
const INTERCEPT = new URL("intercept.ts", ROOT);
const PORT = 8080;
const BYTES = 1024;
const BIG = 100_000;
const PATHS = ["/a", "/files/big.bin", "/b?x=1", "/files/big.bin", "/c"];

/** Byte i of the big file. */
const bigByte = (i: number) => (i * 31 + 7) & 0xff;

/** The body nginx sends for `path`. */
function bodyOf(path: string): Uint8Array {
  if (path === "/files/big.bin") return Uint8Array.from({ length: BIG }, (_, i) => bigByte(i));
  return new TextEncoder().encode(`ok GET ${path}\n`);
}

/** tcpcopy-side peer (`deno eval` in the peer namespace); prints one JSON line. */
const PEER = `
const cfg = JSON.parse(Deno.args[0]);
const root = ${JSON.stringify(ROOT.href)};
const { TunnelClient } = await import(root + "lib/tunnel/client.ts");
const { ownAnswer } = await import(root + "lib/tunnel/answer_frame.ts");
const { importSecret } = await import(root + "lib/tunnel/auth.ts");
const { readSecretFile } = await import(root + "lib/tunnel/secret_file.ts");
const { RawIpSender } = await import(root + "lib/io/raw_send.ts");
const { addressPair, buildTcpPacket } = await import(root + "lib/wire/build.ts");
const { parseIp } = await import(root + "lib/wire/addr.ts");
const { ParsedTcp, parseIpTcp } = await import(root + "lib/wire/packet.ts");
const r = readSecretFile(cfg.secret);
if (!r.ok) throw new Error(r.error);
const secret = await importSecret(r.secret);
const answers = [];
const p = new ParsedTcp();
let rcvNxt = null, sndNxt = 123456789, established = false, ackDue = false;
const tx = RawIpSender.open();
const send = (flags, payload) => {
  const pkt = new Uint8Array(100 + (payload?.length ?? 0));
  const n = buildTcpPacket({ ...addressPair(cfg.client, cfg.target), srcPort: cfg.cport,
    dstPort: cfg.tport, seq: sndNxt, ack: rcvNxt ?? 0, flags, window: 64240, payload,
    // an MSS on the SYN: full-size segments (and GSO packets on the target), not 536 bytes
    options: flags === 0x02 ? { mss: 1460, sackPermitted: false, sackBlocks: [], unknown: [] }
      : undefined }, pkt);
  tx.enqueue(pkt.subarray(0, n));
  tx.flush();
};
const client = await TunnelClient.connect({
  servers: [{ hostname: cfg.intercept, port: 36524 }],
  connections: 1,
  secret,
  compare: { bytes: cfg.bytes, mode: "auto" },
  log: (l) => console.error(l),
  onAnswer: (a) => answers.push(ownAnswer(a)), // views of the read buffer: kept as a copy
  onReply: (b) => {
    if (parseIpTcp(b, 0, p) !== null) return;
    if (p.flags & 0x02) { rcvNxt = (p.seq + 1) >>> 0; return; }
    if (rcvNxt !== null && p.payloadLength > 0 && p.seq === rcvNxt) {
      rcvNxt = (rcvNxt + p.payloadLength) >>> 0;
      ackDue = true;
    }
  },
  onReadDone: () => { if (established && ackDue) { ackDue = false; send(0x10); } },
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (f, ms = 8000) => { const t = Date.now(); while (!f() && Date.now() - t < ms) await sleep(5); return f(); };
if (!client.addRoute({ addr: parseIp(cfg.client).bytes, port: cfg.cport },
  { addr: parseIp(cfg.target).bytes, port: cfg.tport })) throw new Error("addRoute failed");
await sleep(100);
send(0x02);
sndNxt++;
if (!await until(() => rcvNxt !== null)) throw new Error("no SYN-ACK");
send(0x10);
established = true;
const marks = [];
for (let i = 0; i < cfg.paths.length; i++) {
  const req = new TextEncoder().encode("GET " + cfg.paths[i] + " HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n");
  const start = rcvNxt;
  send(0x18, req);
  sndNxt = (sndNxt + req.length) >>> 0;
  if (!await until(() => answers.length > i)) break;
  marks.push({ ack: sndNxt, start, end: rcvNxt });
}
await sleep(cfg.settleMs);
send(0x04); // RST: nginx forgets the connection
const out = answers.map((a) => ({ ack: a.ack, seq: a.seq, part: a.part, end: a.end,
  total: a.summary.totalLength, body: a.summary.bodyLength, gap: a.summary.gapBytes,
  digest: a.summary.digest === null ? null : a.summary.digest.toString(16).padStart(16, "0"),
  kind: a.summary.kind, firstLen: a.summary.firstBytes.length,
  first: [...a.summary.firstBytes] }));
console.log(JSON.stringify({ answers: out, marks, granted: client.answersGranted(0),
  counters: client.counters }));
tx.close();
await client.close();
Deno.exit(0);
`;

interface PeerAnswer {
  ack: number;
  seq: number;
  part: number;
  end: string;
  total: number;
  body: number | null;
  gap: number;
  digest: string | null;
  kind: string;
  firstLen: number;
  first: number[];
}

interface PeerResult {
  answers: PeerAnswer[];
  marks: { ack: number; start: number; end: number }[];
  granted: string;
  counters: Record<string, number>;
}

async function runPeer(ns: Netns, cfg: Record<string, unknown>): Promise<PeerResult> {
  const r = await ns.exec([Deno.execPath(), "eval", "--quiet", PEER, JSON.stringify(cfg)], {
    check: false,
    timeoutMs: 60_000,
  });
  assert.equal(r.code, 0, `peer failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/** nginx on the target: the lab's `return 200` plus a static folder with the big file. */
async function startNginx(env: Cleanup, ns: Netns, ip: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tunnel-answers-" });
  env.defer(() => Deno.remove(dir, { recursive: true }));
  await Deno.mkdir(`${dir}/files`);
  await Deno.writeFile(`${dir}/files/big.bin`, bodyOf("/files/big.bin"));
  const conf = nginxConfig(dir, PORT).replace(
    "    location / {",
    `    location /files/ { alias ${dir}/files/; etag off; }\n    location / {`,
  );
  await Deno.writeTextFile(`${dir}/nginx.conf`, conf);
  await Deno.chmod(dir, 0o755);
  env.child(ns.spawn(["nginx", "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`], {
    stderr: "null",
  }));
  const up = await waitFor(
    async () =>
      (await ns.exec(["bash", "-c", `exec 3<>/dev/tcp/${ip}/${PORT}`], { check: false })).code ===
        0,
    5000,
    50,
  );
  assert.ok(up, "nginx started");
}

function startIntercept(env: Cleanup, ns: Netns, args: string[]): { log: () => string } {
  const child = ns.spawn(
    denoCmd(INTERCEPT, [...args, "--drain-seconds", "0", "--stats-interval", "0"]),
    { stdout: "null", stderr: "piped" },
  );
  env.defer(() => stopChild(child));
  let err = "";
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) err += dec.decode(chunk);
  })();
  return { log: () => err };
}

async function secretFile(env: Cleanup): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "tcpcopy-answers-" });
  env.defer(() => Deno.remove(dir, { recursive: true }));
  const f = `${dir}/secret`;
  await Deno.writeTextFile(f, "e2e shared secret, 32 bytes long\n", { mode: 0o600 });
  await Deno.chmod(f, 0o600);
  return f;
}

/** Every answer arrived once, paired with its request, with the real bodies' digests. */
function checkAnswers(r: PeerResult): void {
  assert.equal(r.granted, "granted");
  assert.equal(r.marks.length, PATHS.length, `every request answered: ${JSON.stringify(r)}`);
  assert.equal(r.answers.length, PATHS.length, "one summary per answer, nothing more");
  assert.equal(r.counters.answersMalformed, 0);
  const dec = new TextDecoder();
  for (let i = 0; i < PATHS.length; i++) {
    const a = r.answers[i], m = r.marks[i], body = bodyOf(PATHS[i]);
    const head = new TextEncoder().encode(
      `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    const whole = new Uint8Array(head.length + body.length);
    whole.set(head);
    whole.set(body, head.length);
    const d = summarize(whole, { firstBytes: BYTES }).digest;
    const want = d === null ? null : digestText(d);
    const what = `answer ${i} (${PATHS[i]}): ${JSON.stringify({ ...a, first: undefined })}`;
    assert.equal(a.ack, m.ack, `${what}: the ack is the request's end`);
    assert.equal(a.seq, m.start, `${what}: seq of the first byte`);
    assert.equal(a.total, (m.end - m.start) >>> 0, `${what}: total from the reply headers`);
    assert.equal(a.part, 0, what);
    assert.equal(a.end, "framing", what);
    assert.equal(a.kind, "http", what);
    assert.equal(a.gap, 0, what);
    assert.equal(a.body, body.length, what);
    assert.equal(a.digest, want, `${what}: digest of the body nginx sent`);
    assert.match(dec.decode(new Uint8Array(a.first)), /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(a.firstLen, Math.min(BYTES, a.total), what);
  }
}

Deno.test({
  name: "answers e2e, NFQUEUE: keep-alive nginx answers arrive summarised with real digests",
  ignore: !isRoot(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetns(async (env) => {
      const secret = await secretFile(env);
      const peer = await env.netns("ap"), target = await env.netns("at");
      await vethPair(peer, target, "10.79.1.1", "10.79.1.2");
      await target.exec(["ip", "route", "add", "10.79.9.0/24", "via", "10.79.1.1"]);
      await startNginx(env, target, "10.79.1.2");
      const i = startIntercept(env, target, [
        "--port",
        String(PORT),
        "-x",
        "10.79.1.1",
        "-b",
        "10.79.1.2",
        "--secret-file",
        secret,
        "--compare",
      ]);
      assert.ok(await waitFor(() => /listening for tcpcopy/.test(i.log()), 15_000, 50), i.log());
      const r = await runPeer(peer, {
        intercept: "10.79.1.2",
        target: "10.79.1.2",
        tport: PORT,
        secret,
        bytes: BYTES,
        client: "10.79.9.1",
        cport: 40001,
        paths: PATHS,
        settleMs: 500,
      });
      checkAnswers(r);
      assert.match(i.log(), /asks for answer summaries \(1024 first bytes, digest auto/);
    }),
});

Deno.test({
  name: "answers e2e, pcap on an assistant: the snap length keeps whole payloads",
  ignore: !isRoot(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetns(async (env) => {
      const secret = await secretFile(env);
      const peer = await env.netns("bp"),
        target = await env.netns("bt"),
        asst = await env.netns("ba");
      const pt = await vethPair(peer, target, "10.79.1.1", "10.79.1.2");
      const ta = await vethPair(target, asst, "10.79.2.2", "10.79.2.3");
      await vethPair(peer, asst, "10.79.3.1", "10.79.3.3");
      for (const k of ["all", "default", pt.ifB, ta.ifA]) {
        await target.exec(["sysctl", "-qw", `net.ipv4.conf.${k}.rp_filter=0`]);
      }
      await target.exec(["ip", "route", "add", "10.79.9.0/24", "via", "10.79.2.3"]);
      await asst.exec(["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
      await startNginx(env, target, "10.79.1.2");
      const i = startIntercept(env, asst, [
        "-i",
        ta.ifB,
        "-F",
        `tcp and src port ${PORT}`,
        "-b",
        "10.79.3.3",
        "--secret-file",
        secret,
        "--compare",
      ]);
      assert.ok(await waitFor(() => /listening for tcpcopy/.test(i.log()), 15_000, 50), i.log());
      const r = await runPeer(peer, {
        intercept: "10.79.3.3",
        target: "10.79.1.2",
        tport: PORT,
        secret,
        bytes: BYTES,
        client: "10.79.9.1",
        cport: 40001,
        paths: PATHS,
        settleMs: 500,
      });
      checkAnswers(r);
    }),
});
