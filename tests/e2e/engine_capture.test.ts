/**
 * Real client traffic, recorded with tcpdump on the online server's side of a veth pair
 * (curl, ab and a Deno client against nginx, each in its own namespace), replayed through
 * the engine against the simulated target: every connection's request stream must arrive
 * byte for byte, in order, exactly once, with nothing counted as lost.
 *
 * Two recordings: one with the kernel's segmentation offloads as they are (veth hands
 * TSO/GSO super-segments through, so the capture holds payloads far above the MSS, like a
 * GRO-coalesced capture on a real NIC), one with `gso_max_segs 1` on the client's link so
 * every captured segment is at most one MSS.
 *
 * Root only: `deno test -A tests/e2e/engine_capture.test.ts`.
 */

import assert from "node:assert/strict";
import { startNginx } from "../helpers/lab.ts";
import type { Netns } from "../helpers/netns.ts";
import { denoEval, isRoot, stopChild, vethPair, waitFor, withNetns } from "../helpers/netns.ts";
import {
  findConn,
  midStreamCase,
  reassemble,
  replayRecording,
  splitRecording,
  text,
  verifyReplay,
  wholeCase,
} from "../sim/capture.ts";
import { readPcap } from "../sim/pcap.ts";

const CLIENT_IP = "10.77.0.1", SERVER_IP = "10.77.0.2";
const URL_BASE = `http://${SERVER_IP}`;
const POST_BYTES = 200 * 1024;

/** A deterministic, non-repeating-looking POST body. */
function postBody(): Uint8Array {
  const b = new Uint8Array(POST_BYTES);
  let x = 0x1234567;
  for (let i = 0; i < b.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = 0x41 + ((x >>> 16) % 26); // printable, so the stream compares as text
  }
  return b;
}

/** A client that pipelines two requests in one write, then sends a third after both answers. */
const PIPELINE_CLIENT = `
const c = await Deno.connect({ hostname: "${SERVER_IP}", port: 80 });
const enc = new TextEncoder(), dec = new TextDecoder();
const stop = setTimeout(() => c.close(), 10000);
await c.write(enc.encode("GET /pipe1 HTTP/1.1\\r\\nHost: t\\r\\n\\r\\nGET /pipe2 HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n"));
let got = "";
const buf = new Uint8Array(65536);
while ((got.match(/HTTP\\/1\\.1 200/g) ?? []).length < 2) {
  const n = await c.read(buf);
  if (n === null) break;
  got += dec.decode(buf.subarray(0, n));
}
await c.write(enc.encode("GET /pipe3 HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n"));
while ((await c.read(buf)) !== null) { /* until the server closes */ }
clearTimeout(stop);
`;

/** Runs every client once (in this order; each connection is recognised by its URIs). */
async function traffic(client: Netns, bodyFile: string): Promise<void> {
  const curl = (args: string[]) =>
    client.exec(["curl", "-sS", "-o", "/dev/null", "--max-time", "10", ...args], {
      timeoutMs: 15_000,
    });
  await curl([`${URL_BASE}/ka1`, `${URL_BASE}/ka2`, `${URL_BASE}/ka3`, `${URL_BASE}/ka4`]);
  const ab = await client.exec(["ab", "-q", "-s", "5", "-n", "3", "-c", "1", `${URL_BASE}/short`], {
    timeoutMs: 15_000,
  });
  assert.match(ab.stdout, /Complete requests:\s+3/);
  // No "Expect: 100-continue": the body follows the headers at once.
  await curl(["-H", "Expect:", "--data-binary", `@${bodyFile}`, `${URL_BASE}/post`]);
  await client.exec(denoEval(PIPELINE_CLIENT), { timeoutMs: 20_000 });
  await curl([`${URL_BASE}/mid1`, `${URL_BASE}/mid2`, `${URL_BASE}/mid3`]);
}

/**
 * Records `traffic` with tcpdump in the server namespace; returns the savefile bytes, or
 * null when tcpdump reports kernel drops (the recording would have holes: try again).
 */
async function record(
  server: Netns,
  client: Netns,
  ifServer: string,
  pcap: string,
  bodyFile: string,
): Promise<Uint8Array | null> {
  const dump = server.spawn(
    [
      "tcpdump",
      ...["-i", ifServer, "-U", "--immediate-mode", "-B", "32768", "-n", "-s", "0"],
      ...["-w", pcap, "tcp port 80"],
    ],
    { stderr: "piped" },
  );
  let said = "";
  const dec = new TextDecoder();
  const pump = (async () => {
    for await (const chunk of dump.stderr) said += dec.decode(chunk, { stream: true });
  })();
  try {
    // tcpdump says "listening on ..." once its socket is bound.
    const ready = await waitFor(() => said.includes("listening on"), 10_000, 20);
    assert.ok(ready, `tcpdump did not start: ${said}`);
    await traffic(client, bodyFile);
    await new Promise((r) => setTimeout(r, 300)); // last FIN/ACKs
  } finally {
    await stopChild(dump);
    await pump.catch(() => {});
  }
  const drops = /(\d+) packets? dropped by kernel/.exec(said);
  assert.ok(drops, `tcpdump summary missing: ${said}`);
  if (Number(drops[1]) > 0) {
    console.log(`  tcpdump dropped ${drops[1]} packets; recording again`);
    return null;
  }
  return await Deno.readFile(pcap);
}

/** {@link record}, retried (at most 3 times) while tcpdump drops packets. */
async function recordClean(
  server: Netns,
  client: Netns,
  ifServer: string,
  pcap: string,
  bodyFile: string,
): Promise<Uint8Array> {
  for (let i = 0; i < 3; i++) {
    const bytes = await record(server, client, ifServer, pcap, bodyFile);
    if (bytes) return bytes;
  }
  throw new Error("tcpdump kept dropping packets");
}

/** Replays one recording and checks every connection byte for byte. */
function check(bytes: Uint8Array, body: Uint8Array, offloads: boolean): void {
  const file = readPcap(bytes);
  if (typeof file === "string") throw new Error(`recording: ${file}`);
  const { conns } = splitRecording(file, 80);
  // 1 keep-alive + 3 short + 1 POST + 1 pipelined + 1 mid-stream connection.
  assert.equal(conns.length, 7, `connections recorded: ${conns.map((c) => c.key).join(" ")}`);
  const ka = wholeCase(findConn(conns, "GET /ka1 "));
  assert.equal(ka.requests, 4);
  const short = conns.filter((c) => text(reassemble(c.segments)).includes("GET /short "));
  assert.equal(short.length, 3);
  const post = wholeCase(findConn(conns, "POST /post "));
  assert.ok(post.expected.endsWith(text(body)), "the recording holds the whole POST body");
  const pipe = wholeCase(findConn(conns, "GET /pipe1 "));
  assert.equal(pipe.requests, 3);
  const mid = midStreamCase(findConn(conns, "GET /mid1 "), 1);
  assert.equal(mid.requests, 2);
  const cases = [ka, ...short.map(wholeCase), post, pipe, mid];

  const maxPayload = Math.max(...conns.map((c) => c.maxPayload));
  if (!offloads) assert.ok(maxPayload <= 1460, `segments above the MSS: ${maxPayload}`);
  console.log(`  recording (offloads ${offloads ? "on" : "off"}): largest payload ${maxPayload}`);
  verifyReplay(cases, replayRecording(cases));
}

Deno.test({
  name:
    "recorded curl / ab / pipelined Deno client traffic replays byte-exact (offloads on and off)",
  ignore: !isRoot(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetns(async (env) => {
      const dir = await Deno.makeTempDir({ prefix: "engcap" });
      env.defer(() => Deno.remove(dir, { recursive: true }));
      const client = await env.netns("ecc");
      const server = await env.netns("ecs");
      const { ifA, ifB } = await vethPair(client, server, CLIENT_IP, SERVER_IP);
      await startNginx(env, server, `${dir}/nginx`, SERVER_IP);
      const body = postBody();
      const bodyFile = `${dir}/body.bin`;
      await Deno.writeFile(bodyFile, body);

      const withOffloads = await recordClean(server, client, ifB, `${dir}/on.pcap`, bodyFile);
      check(withOffloads, body, true);

      await client.exec(["ip", "link", "set", "dev", ifA, "gso_max_segs", "1"]);
      const mssSized = await recordClean(server, client, ifB, `${dir}/mss.pcap`, bodyFile);
      check(mssSized, body, false);
    }),
});
