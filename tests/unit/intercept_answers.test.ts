// intercept's answer cutting (issue 15): AnswerTracker/AnswerFlow fed with hand-built reply
// segments; every frame it sends is decoded with the tcpcopy side's decoder.
import assert from "node:assert/strict";
import { AnswerTracker, maxLiveFor, newAnswerCounters } from "../../lib/intercept/answers.ts";
import { decodeAnswerBody, type TunnelAnswer } from "../../lib/tunnel/answer_frame.ts";
import { inspectReply, newReplyInfo } from "../../lib/tunnel/reply_packet.ts";
import { type DigestMode, summarize } from "../../lib/compare/answer.ts";
import { F, segment } from "../helpers/tunnel_fixtures.ts";
import { HELP, parseInterceptArgs } from "../../lib/cli/intercept.ts";
import { copyRangeFor } from "../../lib/intercept/nfqueue_source.ts";
import { replyCaptureOptions, snaplenFor } from "../../lib/intercept/pcap_source.ts";
import { ReplyBatcher } from "../../lib/tunnel/batcher.ts";
import { ServerStreamDecoder } from "../../lib/tunnel/replies.ts";
import { encodeExtAck } from "../../lib/tunnel/replies.ts";
import { Cap } from "../../lib/tunnel/negotiation.ts";

const te = new TextEncoder();
const T = [10, 0, 0, 2], C = [10, 0, 0, 1];

function http(body: string, extra = ""): Uint8Array {
  return te.encode(`HTTP/1.1 200 OK\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`);
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

/** A tracker for one peer, its decoded output, and a reply sender for one connection. */
function rig(opts: { bytes?: number; mode?: DigestMode; maxLive?: number; full?: boolean } = {}) {
  const sent: TunnelAnswer[] = [];
  const counters = newAnswerCounters();
  const bytes = opts.bytes ?? 64;
  const t = new AnswerTracker(
    { bytes, mode: opts.mode ?? "auto", ...(opts.maxLive ? { maxLive: opts.maxLive } : {}) },
    counters,
    (frame) => {
      if (opts.full) return false;
      const a = decodeAnswerBody(frame.subarray(4), bytes);
      if (typeof a === "string") throw new Error(a);
      sent.push(a);
      return true;
    },
  );
  const info = newReplyInfo();
  let now = 0;
  /** One reply segment from the target to client port `port`. */
  const reply = (
    s: { seq: number; ack: number; flags?: number; payload?: Uint8Array; captured?: number },
    port = 40000,
  ) => {
    const pkt = segment({ src: T, dst: C, sport: 80, dport: port, flags: F.ACK, ...s });
    assert.equal(inspectReply(pkt, info), undefined);
    t.reply(pkt, info, now);
  };
  const clock = { set: (ms: number) => (now = ms) };
  return { t, sent, counters, reply, clock };
}

/** Sends `data` as segments of `mss` bytes from `seq`, one cycle (settle) per segment. */
function stream(
  r: ReturnType<typeof rig>,
  seq: number,
  ack: number,
  data: Uint8Array,
  mss = 100,
  port = 40000,
): number {
  for (let at = 0; at < data.length; at += mss) {
    r.reply({ seq: (seq + at) >>> 0, ack, payload: data.subarray(at, at + mss) }, port);
    r.t.settle();
  }
  return (seq + data.length) >>> 0;
}

Deno.test("answers: keep-alive HTTP answers end at framing; non-HTTP answers at ACK advances", () => {
  const r = rig();
  r.reply({ seq: 999, ack: 5001, flags: F.SYN | F.ACK });
  const a = [http("x".repeat(350), "Date: a\r\n"), http("second"), http("")];
  let seq = 1000;
  for (let i = 0; i < a.length; i++) seq = stream(r, seq, 5001 + 100 * (i + 1), a[i]);
  assert.equal(r.sent.length, 3);
  for (let i = 0; i < 3; i++) {
    const want = summarize(a[i], { firstBytes: 64 });
    const got = r.sent[i];
    assert.equal(got.summary.digest, want.digest);
    assert.equal(got.summary.totalLength, a[i].length);
    assert.equal(got.summary.bodyLength, want.bodyLength);
    assert.deepEqual(got.summary.firstBytes, want.firstBytes);
    assert.equal(got.ack, 5001 + 100 * (i + 1));
    assert.equal(got.end, "framing");
    assert.equal(got.part, 0);
  }
  assert.equal(r.sent[0].seq, 1000);
  assert.equal(r.sent[1].seq, 1000 + a[0].length);
  assert.deepEqual([...r.sent[0].client.addr], C);
  assert.equal(r.sent[0].client.port, 40000);
  assert.equal(r.sent[0].target.port, 80);
  // a line server: no framing, the next request's ACK advance ends each answer
  const l = rig();
  const lines = ["+OK first\r\n", "-ERR second line\r\n", "third\r\n"].map((x) => te.encode(x));
  let s2 = 7;
  for (let i = 0; i < lines.length; i++) s2 = stream(l, s2, 100 + i, lines[i], 4);
  assert.equal(l.sent.length, 2, "the last one is still open");
  l.reply({ seq: s2, ack: 102, flags: F.ACK | F.FIN });
  assert.equal(l.sent.length, 3);
  assert.deepEqual(l.sent.map((x) => x.end), ["ack", "ack", "fin"]);
  for (let i = 0; i < 3; i++) {
    assert.equal(l.sent[i].summary.digest, summarize(lines[i]).digest);
    assert.equal(l.sent[i].ack, 100 + i);
  }
  assert.equal(l.t.openAnswers, 0);
});

Deno.test("answers: pipelined responses in one cycle stay one answer; in later cycles they are part 1", () => {
  const r = rig();
  const two = cat(http("one"), http("two"));
  r.reply({ seq: 1, ack: 10, payload: two.subarray(0, 40) });
  r.reply({ seq: 41, ack: 10, payload: two.subarray(40) });
  r.t.settle();
  assert.equal(r.sent.length, 1);
  assert.equal(r.sent[0].summary.digest, summarize(two).digest);
  assert.equal(r.sent[0].summary.totalLength, two.length);
  // the second response in a later cycle, same ack: part 1
  const p = rig();
  const one = http("one");
  p.reply({ seq: 1, ack: 10, payload: one });
  p.t.settle();
  p.reply({ seq: 1 + one.length, ack: 10, payload: http("two") });
  p.t.settle();
  assert.deepEqual(p.sent.map((x) => [x.ack, x.part, x.seq]), [[10, 0, 1], [
    10,
    1,
    1 + one.length,
  ]]);
  // the next ACK advance starts over at part 0
  p.reply({ seq: 1 + 2 * one.length, ack: 20, payload: http("333") });
  p.t.settle();
  assert.deepEqual(p.sent.map((x) => x.part), [0, 1, 0]);
});

Deno.test("answers: retransmitted and overlapping segments count once; a hole is a gap", () => {
  const r = rig({ mode: "bytes" });
  const data = te.encode("0123456789abcdefghijklmnopqrstuvwxyz");
  r.reply({ seq: 100, ack: 1, payload: data.subarray(0, 10) });
  r.reply({ seq: 100, ack: 1, payload: data.subarray(0, 10) }); // retransmission
  r.reply({ seq: 105, ack: 1, payload: data.subarray(5, 20) }); // overlap: 10 new bytes
  r.reply({ seq: 120, ack: 1, payload: data.subarray(20) });
  r.reply({ seq: 120, ack: 1, payload: data.subarray(20) }); // again
  r.reply({ seq: 136, ack: 2, flags: F.ACK }); // pure ACK advance: ends the answer
  assert.equal(r.sent.length, 1);
  assert.equal(r.sent[0].summary.digest, summarize(data, { mode: "bytes" }).digest);
  assert.equal(r.sent[0].summary.totalLength, data.length);
  assert.equal(r.counters.duplicateBytes, 10 + 5 + 16);
  // a hole: the missing 10 bytes are a gap, the digest is unknown, the length is right
  const h = rig({ mode: "bytes" });
  h.reply({ seq: 100, ack: 1, payload: data.subarray(0, 10) });
  h.reply({ seq: 120, ack: 1, payload: data.subarray(20) });
  h.reply({ seq: 110, ack: 1, payload: data.subarray(10, 20) }); // late: already a gap
  h.reply({ seq: 136, ack: 1, flags: F.ACK | F.FIN });
  const a = h.sent[0];
  assert.equal(a.summary.totalLength, 36);
  assert.equal(a.summary.gapBytes, 10);
  assert.equal(a.summary.digest, null);
  assert.equal(a.summary.bodyLength, null);
  assert.deepEqual(a.summary.firstBytes, data.subarray(0, 10), "first bytes up to the gap");
  assert.equal(a.end, "fin");
  // after FIN, a retransmission opens nothing
  h.reply({ seq: 120, ack: 1, payload: data.subarray(20) });
  h.clock.set(10_000);
  h.t.tick(10_000);
  assert.equal(h.sent.length, 1);
  assert.equal(h.t.openAnswers, 0);
});

Deno.test("answers: a payload cut by the capture counts its tail as a gap", () => {
  const r = rig({ mode: "bytes" });
  r.reply({ seq: 1, ack: 1, payload: new Uint8Array(100).fill(65), captured: 60 });
  r.reply({ seq: 101, ack: 2 });
  assert.equal(r.sent[0].summary.totalLength, 100);
  assert.equal(r.sent[0].summary.gapBytes, 40);
  assert.equal(r.sent[0].summary.firstBytes.length, 60);
});

Deno.test("answers: quiet period sends an unframed answer; late bytes with the same ack are part 1", () => {
  const r = rig();
  const head = te.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  r.clock.set(1000);
  r.reply({ seq: 1, ack: 9, payload: head });
  r.t.settle();
  assert.equal(r.sent.length, 0, "the chunked body is not finished");
  r.t.tick(1299);
  assert.equal(r.sent.length, 0);
  r.t.tick(1300);
  assert.equal(r.sent.length, 1);
  assert.equal(r.sent[0].end, "quiet");
  assert.equal(r.sent[0].part, 0);
  // the tail arrives later
  const tail = te.encode("0\r\n\r\n");
  r.clock.set(5000);
  r.reply({ seq: 1 + head.length, ack: 9, payload: tail });
  r.t.settle();
  assert.equal(r.sent.length, 1, "a tail alone has no framing to end it");
  r.t.tick(5300);
  assert.equal(r.sent.length, 2);
  assert.equal(r.sent[1].end, "quiet");
  assert.deepEqual([r.sent[1].part, r.sent[1].seq, r.sent[1].ack], [1, 1 + head.length, 9]);
  assert.equal(r.sent[1].summary.totalLength, tail.length);
});

Deno.test("answers: RST and a reused tuple's SYN; sequence numbers wrap", () => {
  const r = rig({ mode: "bytes" });
  const start = 0xffffffff - 9;
  r.reply({ seq: start - 1, ack: 50, flags: F.SYN | F.ACK });
  r.reply({ seq: start - 1, ack: 50, flags: F.SYN | F.ACK }); // retransmitted SYN-ACK
  const data = new Uint8Array(30).map((_, i) => 97 + (i % 26));
  r.reply({ seq: start, ack: 50, payload: data.subarray(0, 20) }); // crosses 2^32
  r.reply({ seq: (start + 20) >>> 0, ack: 50, payload: data.subarray(20) });
  r.reply({ seq: (start + 10) >>> 0, ack: 50, payload: data.subarray(10, 20) }); // dup
  r.reply({ seq: (start + 30) >>> 0, ack: 50, flags: F.RST });
  assert.equal(r.sent.length, 1);
  assert.equal(r.sent[0].end, "rst");
  assert.equal(r.sent[0].seq, start);
  assert.equal(r.sent[0].summary.digest, summarize(data, { mode: "bytes" }).digest);
  // the tuple is reused: a new SYN-ACK starts a new connection
  r.reply({ seq: 77, ack: 1000, flags: F.SYN | F.ACK });
  r.reply({ seq: 78, ack: 1000, payload: te.encode("again!") });
  r.reply({ seq: 84, ack: 1000, flags: F.ACK | F.FIN });
  assert.equal(r.sent.length, 2);
  assert.equal(r.sent[1].seq, 78);
  assert.equal(r.sent[1].summary.totalLength, 6);
});

Deno.test("answers: the per-peer cap skips answers (counted) and frees with the answers", () => {
  const r = rig({ maxLive: 2, mode: "bytes" });
  for (const port of [1, 2, 3]) r.reply({ seq: 1, ack: 1, payload: te.encode("abc") }, port);
  assert.equal(r.t.live, 2);
  assert.equal(r.t.openAnswers, 3, "the third is open but skipped");
  assert.equal(r.counters.skipped, 1);
  for (const port of [1, 2, 3]) r.reply({ seq: 4, ack: 2 }, port);
  assert.equal(r.sent.length, 2, "the skipped answer sends nothing");
  assert.equal(r.t.live, 0);
  r.reply({ seq: 4, ack: 2, payload: te.encode("next") }, 3);
  r.reply({ seq: 8, ack: 3 }, 3);
  assert.equal(r.sent.length, 3, "port 3 gets an accumulator again");
  assert.deepEqual(r.sent.map((a) => a.client.port), [1, 2, 3]);
  assert.ok(maxLiveFor(1024) >= 1000 && maxLiveFor(65536) < maxLiveFor(1024));
  assert.ok(maxLiveFor(65536) * (65536 + 1024) <= 32 << 20);
});

Deno.test("answers: route deletion sends the open answer; clear and a full queue send nothing", () => {
  const r = rig({ mode: "bytes" });
  r.reply({ seq: 1, ack: 1, payload: te.encode("pending") });
  const key = newReplyInfo();
  inspectReply(segment({ src: T, dst: C, sport: 80, dport: 40000 }), key);
  r.t.routeDeleted(key.key);
  assert.equal(r.sent.length, 1);
  assert.equal(r.sent[0].end, "route");
  assert.equal(r.t.flows, 0);
  r.reply({ seq: 8, ack: 1, payload: te.encode("more") }, 5);
  r.t.clear();
  assert.equal(r.sent.length, 1);
  assert.equal(r.t.flows, 0);
  assert.equal(r.t.live, 0);
  const f = rig({ full: true, mode: "bytes" });
  f.reply({ seq: 1, ack: 1, payload: te.encode("x") });
  f.reply({ seq: 2, ack: 2 });
  assert.equal(f.counters.dropped, 1);
  assert.equal(f.counters.sent, 0);
  // stray ACKs, FINs and RSTs of unknown flows create nothing; idle flows are swept
  const s = rig();
  s.reply({ seq: 1, ack: 1 });
  s.reply({ seq: 1, ack: 1, flags: F.ACK | F.FIN });
  s.reply({ seq: 1, ack: 1, flags: F.RST, payload: te.encode("x") });
  assert.equal(s.t.flows, 0);
  s.reply({ seq: 1, ack: 1, payload: te.encode("+OK\r\n") });
  s.t.sweep(59_999);
  assert.equal(s.t.flows, 1);
  s.t.sweep(60_000);
  assert.equal(s.t.flows, 0);
  assert.equal(s.sent.length, 1, "its open answer was sent first");
});

Deno.test("intercept --compare: needs --secret-file; whole packets from the capture", () => {
  const bad = parseInterceptArgs(["--port", "80", "--compare"]);
  assert.ok(bad.kind === "error");
  assert.equal(
    bad.message,
    "--compare needs --secret-file: answer summaries go to authenticated tcpcopy peers only",
  );
  const ok = parseInterceptArgs(["--port", "80", "--compare", "--secret-file", "/etc/s"]);
  assert.ok(ok.kind === "run" && ok.config.compare === true);
  const off = parseInterceptArgs(["--port", "80"]);
  assert.ok(off.kind === "run" && off.config.compare === false);
  assert.equal(copyRangeFor(128, false), 248, "the default cost stays low");
  assert.equal(copyRangeFor(128, true), 65535);
  assert.equal(snaplenFor(128, true), 20 + 65535);
  assert.ok(HELP.includes("  --compare "));
});

Deno.test("pcap mode: headers-only replies in immediate mode, whole packets (--compare) buffered", () => {
  const heads = replyCaptureOptions("eth0", "tcp src port 80", 128, false);
  assert.equal(heads.immediate, true, "a serial replay waits for each reply");
  assert.equal(heads.snaplen, snaplenFor(128, false));
  const whole = replyCaptureOptions("eth0", "tcp src port 80", 128, true);
  assert.equal(whole.immediate, false, "64 KiB frames: 16 MiB hold ~250 packets");
  assert.equal(whole.snaplen, 20 + 65535);
});

Deno.test("answers: many open flows, quiet cuts in any order: each answer sent once, the open count exact", () => {
  const r = rig();
  const head = te.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  const ports = Array.from({ length: 40 }, (_, i) => 41000 + i);
  // flows open at times 0..39 ms (unframed: they end by quiet), some get more bytes later
  ports.forEach((port, i) => {
    r.clock.set(i);
    r.reply({ seq: 1, ack: 9, payload: head }, port);
  });
  r.t.settle();
  assert.equal(r.t.openAnswers, 40);
  r.clock.set(200);
  for (let i = 0; i < 40; i += 3) {
    r.reply({ seq: 1 + head.length, ack: 9, payload: te.encode("3\r\nabc\r\n") }, ports[i]);
  }
  r.t.settle();
  const quiet = 300; // ANSWER_QUIET_MS by default is longer: pass the period explicitly
  r.t.tick(20 + quiet, quiet); // flows opened at 0..20 and not refreshed
  const first = r.sent.map((a) => a.client.port).sort((a, b) => a - b);
  const want1 = ports.filter((_, i) => i <= 20 && i % 3 !== 0);
  assert.deepEqual(first, want1);
  assert.equal(r.t.openAnswers, 40 - want1.length);
  r.t.tick(39 + quiet, quiet);
  r.t.tick(200 + quiet, quiet);
  const all = r.sent.map((a) => a.client.port).sort((a, b) => a - b);
  assert.deepEqual(all, ports, "every flow's answer once");
  assert.equal(r.t.openAnswers, 0);
  for (const a of r.sent) assert.equal(a.end, "quiet");
});

Deno.test("answers: frames written in place into the batcher go out ahead of the reply that ended them; over the bound they are dropped", () => {
  const batcher = new ReplyBatcher({ ext: true, maxQueuedBytes: 4096 });
  const counters = newAnswerCounters();
  const t = new AnswerTracker({ bytes: 64, mode: "auto" }, counters, batcher);
  const info = newReplyInfo();
  const send = (s: { seq: number; ack: number; flags?: number; payload?: Uint8Array }) => {
    const pkt = segment({ src: T, dst: C, sport: 80, dport: 40000, flags: F.ACK, ...s });
    assert.equal(inspectReply(pkt, info), undefined);
    t.reply(pkt, info, 0);
    assert.equal(batcher.add(pkt, info, 0), "queued");
  };
  send({ seq: 999, ack: 5001, flags: F.SYN | F.ACK });
  const a = te.encode("abcdefghijklmnopqrstuvwxyz"); // bytes: cut at ACK advances only
  send({ seq: 1000, ack: 5101, payload: a });
  send({ seq: 1000 + a.length, ack: 5201, payload: a }); // ends the first answer
  batcher.flush();
  const d = new ServerStreamDecoder();
  d.expectAck = true;
  d.push(encodeExtAck(1, Cap.ANSWERS, 0));
  d.answerBytes = 64;
  const r = d.push(batcher.takeOutput()!);
  assert.equal(r.error, undefined);
  assert.deepEqual(r.items.map((i) => i.kind), ["reply", "reply", "answer", "reply"]);
  const it = r.items[2];
  assert.ok(it.kind === "answer");
  assert.deepEqual(it.answer.summary, summarize(a), "the same summary as the whole answer's");
  assert.equal(it.answer.ack, 5101);
  assert.equal(counters.sent, 1);
  // a full queue drops the frame, counted on both sides
  const full = new ReplyBatcher({ ext: true, maxQueuedBytes: 64 });
  const c2 = newAnswerCounters();
  const t2 = new AnswerTracker({ bytes: 64, mode: "auto" }, c2, full);
  for (
    const s of [{ seq: 999, ack: 5001, flags: F.SYN | F.ACK }, { seq: 1000, ack: 5101, payload: a }]
  ) {
    const pkt = segment({ src: T, dst: C, sport: 80, dport: 40000, flags: F.ACK, ...s });
    inspectReply(pkt, info);
    t2.reply(pkt, info, 0);
  }
  t2.routeDeleted(info.key);
  assert.equal(c2.dropped, 1);
  assert.equal(c2.sent, 0);
  assert.equal(full.framesDropped, 1);
  assert.equal(full.queuedBytes, 0);
});

Deno.test("answers: a flow reused after CLIENT_DEL starts clean, with its new endpoints (v4, v6)", () => {
  const sent: TunnelAnswer[] = [];
  const t = new AnswerTracker({ bytes: 64, mode: "auto" }, newAnswerCounters(), (frame) => {
    const a = decodeAnswerBody(frame.subarray(4), 64);
    if (typeof a === "string") throw new Error(a);
    sent.push(a);
    return true;
  });
  const info = newReplyInfo();
  const T6 = [0xfd, 0, ...new Array(13).fill(0), 2], C6 = [0xfd, 0, ...new Array(13).fill(0), 1];
  const conns = [
    { src: T, dst: C, dport: 40001, isn: 1000 },
    { src: T6, dst: C6, dport: 40002, isn: 7000 },
    { src: [10, 0, 0, 9], dst: [10, 0, 0, 8], dport: 40003, isn: 3000 },
  ];
  for (const [i, c] of conns.entries()) {
    const send = (s: { seq: number; ack: number; flags: number; payload?: Uint8Array }) => {
      const pkt = segment({ src: c.src, dst: c.dst, sport: 81 + i, dport: c.dport, ...s });
      assert.equal(inspectReply(pkt, info), undefined);
      t.reply(pkt, info, i);
    };
    send({ seq: c.isn - 1, ack: 501, flags: F.SYN | F.ACK });
    send({ seq: c.isn, ack: 601, flags: F.ACK | F.PSH, payload: http(`body${i}`) });
    t.settle(); // framing
    t.routeDeleted(info.key);
    assert.equal(t.flows, 0);
    assert.equal(sent.length, i + 1);
    const a = sent[i];
    assert.deepEqual([...a.client.addr], c.dst);
    assert.deepEqual([...a.target.addr], c.src);
    assert.equal(a.client.port, c.dport);
    assert.equal(a.target.port, 81 + i);
    assert.equal(a.seq, c.isn);
    assert.equal(a.ack, 601);
    assert.equal(a.part, 0);
    assert.equal(a.end, "framing");
    assert.equal(a.summary.digest, summarize(http(`body${i}`), { firstBytes: 64 }).digest);
  }
});
