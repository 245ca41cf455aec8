/**
 * A small real recording (tests/fixtures/http_mix.pcap: curl keep-alive with 3 requests,
 * `ab -n 2` short connections, a Deno client pipelining 2 requests then sending a third,
 * curl with 3 requests; tcpdump on nginx's side of a veth pair) replayed through the engine
 * against the simulated target. tests/e2e/engine_capture.test.ts records fresh traffic
 * (with a 200 KiB POST and offloads on and off) the same way; this one needs no root.
 */

import assert from "node:assert/strict";
import type { RecordedConn } from "../sim/capture.ts";
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

const FIXTURE = new URL("../fixtures/http_mix.pcap", import.meta.url);

function load(bytes = Deno.readFileSync(FIXTURE)): RecordedConn[] {
  const file = readPcap(bytes);
  if (typeof file === "string") throw new Error(file);
  const { conns, skipped } = splitRecording(file, 80);
  assert.equal(skipped, 0);
  return conns;
}

Deno.test("recording: keep-alive, short, pipelined and mid-stream connections replay byte-exact", () => {
  const conns = load();
  assert.equal(conns.length, 5);
  const ka = wholeCase(findConn(conns, "GET /ka1 "));
  assert.equal(ka.requests, 3);
  const short = conns.filter((c) => text(reassemble(c.segments)).includes("GET /short "));
  assert.equal(short.length, 2);
  const pipe = wholeCase(findConn(conns, "GET /pipe1 "));
  assert.equal(pipe.requests, 3);
  const mid = midStreamCase(findConn(conns, "GET /mid1 "), 1);
  assert.equal(mid.requests, 2);
  assert.ok(mid.expected.startsWith("GET /mid2 "));
  const cases = [ka, ...short.map(wholeCase), pipe, mid];
  const sc = replayRecording(cases);
  verifyReplay(cases, sc);
  const st = sc.engine.stats;
  assert.equal(st.handshakes.established, 5);
  // The pipelined pair went out together: /pipe2 reached the target before /pipe1's answer.
  const reqs = sc.target.requests.filter((r) => r.conn === pipe.conn.key);
  assert.ok(reqs[1].at <= reqs[0].answerEndAt!);
});

Deno.test("recording: --only-complete leaves the connection without its SYN alone", () => {
  const conns = load();
  const mid = midStreamCase(findConn(conns, "GET /mid1 "), 1);
  const sc = replayRecording([mid], { onlyComplete: true });
  assert.equal(sc.target.accepted.length, 0);
  assert.ok(sc.engine.stats.ignored.only_complete > 0);
});

Deno.test("recording: the same bytes replay the same way from a big-endian savefile", () => {
  const le = Deno.readFileSync(FIXTURE);
  const be = le.slice();
  const swap = (off: number) => be.set([le[off + 3], le[off + 2], le[off + 1], le[off]], off);
  const swap16 = (off: number) => be.set([le[off + 1], le[off]], off);
  swap(0);
  swap16(4);
  swap16(6);
  for (const off of [8, 12, 16, 20]) swap(off);
  const v = new DataView(le.buffer, le.byteOffset, le.byteLength);
  for (let off = 24; off < le.length;) {
    const caplen = v.getUint32(off + 8, true);
    for (let k = 0; k < 16; k += 4) swap(off + k);
    off += 16 + caplen;
  }
  assert.notDeepEqual(be.subarray(0, 4), le.subarray(0, 4));
  const a = load(le), b = load(be);
  assert.deepEqual(
    b.map((c) => [c.key, text(reassemble(c.segments)), c.segments.map((s) => s.timeMs)]),
    a.map((c) => [c.key, text(reassemble(c.segments)), c.segments.map((s) => s.timeMs)]),
  );
});

Deno.test("pcap reader: cut and foreign files are errors, not exceptions", () => {
  const bytes = Deno.readFileSync(FIXTURE);
  assert.equal(typeof readPcap(bytes.subarray(0, 10)), "string");
  assert.match(readPcap(bytes.subarray(0, 24 + 8)) as string, /record header cut/);
  assert.match(readPcap(bytes.subarray(0, bytes.length - 1)) as string, /record data cut/);
  const junk = bytes.slice(0, 64);
  junk[0] ^= 0xff;
  assert.match(readPcap(junk) as string, /not a classic pcap/);
});
