/**
 * `--compare`'s per-packet lookups in the pending turns (lib/tcpcopy/compare_flow.ts): the turn
 * a target reply's ACK answers (`turnFor`) and the turns a replayed segment finishes sending
 * (`onSent`) try the oldest and newest turns before a binary search; both are held here to a
 * plain scan on random pending lists, across the sequence-number wrap. And the online answer
 * packets the replicator hands over as the captured frame with the payload's place
 * (`payloadFrom`/`payloadLength`, no view per packet) give the records a payload view gives.
 */
import assert from "node:assert/strict";
import { FlowCompare, type FlowHost, type PendingTurn } from "../../lib/tcpcopy/compare_flow.ts";
import type { CompareRecord } from "../../lib/compare/record.ts";
import { summarize } from "../../lib/compare/answer.ts";
import { endpointOf } from "../../lib/engine/endpoint.ts";
import { seqAdd, seqLe, seqLt } from "../../lib/wire/seq.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";
import { recordingComparer } from "../helpers/compare_rig.ts";

const CLIENT = endpointOf("192.0.2.7", 41000);
const SERVER = endpointOf("192.0.2.1", 80);

/** A flow whose pending turns are set by the test (the host is never asked for anything). */
function flowWith(ranges: { start: number; end: number }[]): FlowCompare {
  const f = new FlowCompare(CLIENT, SERVER, {} as FlowHost, 0);
  for (const r of ranges) {
    f.pending.push({ start: r.start, end: r.end, sentMs: Number.NaN } as PendingTurn);
  }
  return f;
}

/** Consecutive request ranges (some with gaps between them) starting at `isn`. */
function randomRanges(int: (n: number) => number, isn: number, n: number) {
  const out: { start: number; end: number }[] = [];
  let at = isn >>> 0;
  for (let i = 0; i < n; i++) {
    const start = seqAdd(at, int(3) === 0 ? 1 + int(50) : 0);
    const end = seqAdd(start, 1 + int(300));
    out.push({ start, end });
    at = end;
  }
  return out;
}

Deno.test("turn search: turnFor finds the turn a plain scan finds, on random pending lists", () => {
  const int = randomInt(mulberry32(15));
  for (let round = 0; round < 400; round++) {
    // (some lists cross 2^32)
    const isn = round % 2 === 0 ? 0xffff_ffff - int(20_000) : int(1 << 30);
    const ranges = randomRanges(int, isn, int(12) === 0 ? 0 : 1 + int(round % 3 === 0 ? 3 : 600));
    const f = flowWith(ranges);
    const first = ranges[0]?.start ?? isn, last = ranges.at(-1)?.end ?? isn;
    for (let k = 0; k < 60; k++) {
      // acks around the oldest and newest turns, inside, before and beyond the list
      const pick = int(5);
      const r = ranges.length > 0 ? ranges[int(ranges.length)] : { start: isn, end: isn };
      const ack = pick === 0
        ? seqAdd(first, int(5) - 2)
        : pick === 1
        ? seqAdd(last, int(5) - 2)
        : pick === 2
        ? seqAdd(r.start, int(3))
        : pick === 3
        ? seqAdd(r.end, int(3) - 1)
        : seqAdd(first, int(Math.max(1, (last - first) >>> 0) + 100));
      const want = f.pending.find((t) => seqLt(t.start, ack) && seqLe(ack, t.end)) ?? null;
      assert.equal(f.turnFor(ack), want, `round ${round}: ack ${ack}`);
    }
  }
});

Deno.test("turn search: onSent stamps the turns a plain scan stamps, on random pending lists", () => {
  const int = randomInt(mulberry32(16));
  for (let round = 0; round < 300; round++) {
    const isn = round % 2 === 0 ? 0xffff_ffff - int(20_000) : int(1 << 30);
    const ranges = randomRanges(int, isn, int(10) === 0 ? 0 : 1 + int(400));
    const f = flowWith(ranges);
    const want = ranges.map(() => Number.NaN);
    let sentMax: number | undefined;
    for (let k = 0, now = 1; k < 8 && ranges.length > 0; k++, now++) {
      // the replay sends up to a random turn's end (or inside it), in order
      const r = ranges[Math.min(ranges.length - 1, int(ranges.length + 2))];
      const end = int(4) === 0 ? seqAdd(r.start, 1) : r.end;
      f.onSent(end, now);
      if (sentMax === undefined || seqLt(sentMax, end)) {
        sentMax = end;
        // every turn ending by `end` is stamped once, with the time it first became sent
        ranges.forEach((t, i) => {
          if (seqLe(t.end, end) && Number.isNaN(want[i])) want[i] = now;
        });
      }
      assert.deepEqual(f.pending.map((t) => t.sentMs), want, `round ${round}, send ${k}`);
    }
  }
});

const enc = (s: string) => new TextEncoder().encode(s);
const ACK = 0x10;

/**
 * A keep-alive exchange through a comparer, the online answers given either as views of their
 * bytes or inside a larger "frame" at a random offset (`framed`); returns the records.
 */
function exchange(framed: boolean, seed: number): CompareRecord[] {
  const int = randomInt(mulberry32(seed));
  const place = randomInt(mulberry32(seed + 1000)); // (the frames' own: the exchange is the same)
  const records: CompareRecord[] = [];
  const cmp = recordingComparer(records, { firstBytes: 256 });
  const rewritten = endpointOf("10.1.0.7", 41000), target = endpointOf("10.9.0.2", 80);
  let now = 0, c = 1001, s = 50_001, t = 900_001;
  cmp.onSessionOpen(rewritten, target, { client: CLIENT, server: SERVER }, 0, false, now);
  const seg = (seq: number, ack: number, flags: number, bytes: Uint8Array) => {
    if (!framed) return { seq, ack, flags, payload: bytes };
    const at = place(60), frame = new Uint8Array(at + bytes.length + place(30));
    frame.fill(0x55);
    frame.set(bytes, at);
    return { seq, ack, flags, payload: frame, payloadFrom: at, payloadLength: bytes.length };
  };
  cmp.onClient(CLIENT, SERVER, { seq: 1000, ack: 0, flags: 0x02, payload: enc("") }, now, now);
  cmp.onServer(SERVER, CLIENT, seg(50_000, 1001, 0x12, enc("")), now, now);
  cmp.onReply(target, rewritten, 900_000, 1001, 0x12, 0, now);
  for (let k = 0; k < 40; k++) {
    now += 10;
    const req = enc(`GET /${k} HTTP/1.1\r\nHost: x\r\n\r\n`);
    cmp.onClient(CLIENT, SERVER, { seq: c, ack: s, flags: ACK, payload: req }, now, now);
    cmp.onSent(rewritten, target, c, req.length, now);
    c += req.length;
    const body = "b".repeat(int(400));
    const online = enc(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const other = int(4) === 0 ? body.replace(/^b/, "c") : body;
    const answer = enc(`HTTP/1.1 200 OK\r\nContent-Length: ${other.length}\r\n\r\n${other}`);
    // the online answer in one or two packets, the second sometimes first (held, then pulled)
    const cut = int(2) === 0 ? online.length : int(online.length);
    const parts = [{ seq: s, bytes: online.subarray(0, cut) }];
    if (cut < online.length) parts.push({ seq: s + cut, bytes: online.subarray(cut) });
    if (parts.length === 2 && int(2) === 0) parts.reverse();
    for (const p of parts) cmp.onServer(SERVER, CLIENT, seg(p.seq, c, ACK, p.bytes), now, now);
    s += online.length;
    cmp.onReply(target, rewritten, t, c, ACK, answer.length, now + 1);
    cmp.onAnswer({
      client: { addr: rewritten.addr, port: rewritten.port },
      target: { addr: target.addr, port: target.port },
      ack: c,
      seq: t,
      part: 0,
      summary: summarize(answer, { firstBytes: 256 }),
    }, now + 1);
    t += answer.length;
  }
  cmp.closeAll(now + 5000);
  return records;
}

Deno.test("turn search: online answer packets given as a frame and the payload's place compare as payload views do", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const viewed = exchange(false, seed), framed = exchange(true, seed);
    assert.equal(viewed.length, 40);
    assert.ok(viewed.some((r) => r.match) && viewed.some((r) => !r.match), `seed ${seed}`);
    assert.deepEqual(framed, viewed, `seed ${seed}`);
  }
});
