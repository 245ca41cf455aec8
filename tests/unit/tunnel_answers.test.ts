// The tunnel's answer extension (issue 15): the ANSWER frame codec, the COMPARE message,
// the negotiation (authenticated peers of an intercept with --compare only), and the whole
// path over loopback (server tracker -> frames -> client onAnswer).
import assert from "node:assert/strict";
import {
  ANSWER_ENDS,
  ANSWER_HEADER_V4,
  ANSWER_HEADER_V6,
  AnswerDecoder,
  decodeAnswerBody,
  encodeAnswerFrame,
  MAX_ANSWER_BODY,
  ownAnswer,
  type TunnelAnswer,
  writeAnswerFrame,
} from "../../lib/tunnel/answer_frame.ts";
import {
  AnswerAccumulator,
  emptySummary,
  MAX_COMPARE_BYTES,
  summarize,
} from "../../lib/compare/answer.ts";
import { type ServerItem, ServerStreamDecoder } from "../../lib/tunnel/replies.ts";
import { encodeExtAck } from "../../lib/tunnel/replies.ts";
import {
  ClientMessageDecoder,
  encodeCompare,
  encodeExtHello,
  encodeHello,
  MsgType,
} from "../../lib/tunnel/messages.ts";
import { Cap, grant } from "../../lib/tunnel/negotiation.ts";
import { TunnelServer } from "../../lib/tunnel/server.ts";
import { TunnelClient } from "../../lib/tunnel/client.ts";
import { importSecret } from "../../lib/tunnel/auth.ts";
import { F, segment } from "../helpers/tunnel_fixtures.ts";
import { until } from "../helpers/until.ts";

const te = new TextEncoder();
const ep = (a: number[], port: number) => ({ addr: new Uint8Array(a), port });
const C = [10, 0, 0, 1], T = [10, 0, 0, 2];

function answer(over: Partial<TunnelAnswer> = {}, text = "HTTP/1.1 200 OK\r\n\r\n"): TunnelAnswer {
  return {
    client: ep(C, 40000),
    target: ep(T, 80),
    ack: 0xfffffff0,
    seq: 123456789,
    part: 2,
    summary: summarize(te.encode(text), { firstBytes: 16 }),
    end: "quiet",
    ...over,
  };
}

/** An extension decoder that accepts answers of up to `n` first bytes. */
function answerDecoder(n: number): ServerStreamDecoder {
  const d = new ServerStreamDecoder();
  d.expectAck = true;
  d.push(encodeExtAck(1, Cap.ANSWERS, 0));
  d.answerBytes = n;
  return d;
}

Deno.test("answer frame: round trip IPv4 and IPv6, digest present and absent", () => {
  const a = answer({}, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  const f = encodeAnswerFrame(a);
  assert.equal(f[0], 0xe5);
  assert.equal(f.length, 4 + ANSWER_HEADER_V4 + 16, "48 bytes + first bytes + frame header");
  const back = decodeAnswerBody(f.subarray(4), 16);
  assert.ok(typeof back !== "string", String(back));
  assert.deepEqual(back, a);
  // IPv6, with a gap (digest and body length absent), every end code
  for (const end of ANSWER_ENDS) {
    const acc = summarize(te.encode("abcdefghijklmnopqrstuvwxyz"), { firstBytes: 16 });
    const gapped = { ...acc, gapBytes: 7, totalLength: 33, digest: null, bodyLength: null };
    gapped.complete = false;
    const six = answer({
      client: ep([0xfd, ...new Array(14).fill(0), 1], 1),
      target: ep([0xfd, ...new Array(14).fill(0), 2], 65535),
      summary: gapped,
      end,
      part: 65535,
      ack: 0,
      seq: 0xffffffff,
    });
    const g = encodeAnswerFrame(six);
    assert.equal(g.length, 4 + ANSWER_HEADER_V6 + 16);
    assert.deepEqual(decodeAnswerBody(g.subarray(4), 1024), six);
  }
  // lengths beyond 32 bits survive (u48)
  const big = answer();
  big.summary = { ...big.summary, totalLength: 2 ** 40 + 5, bodyLength: 2 ** 40 };
  big.summary.truncated = true;
  const r = decodeAnswerBody(encodeAnswerFrame(big).subarray(4), 16);
  assert.ok(typeof r !== "string");
  assert.equal(r.summary.totalLength, 2 ** 40 + 5);
  assert.equal(r.summary.bodyLength, 2 ** 40);
});

Deno.test("answer frame: written into a reused buffer, decoded as views or copies alike", () => {
  const out = new Uint8Array(4 + ANSWER_HEADER_V6 + 64);
  for (const [i, text] of ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "x", ""].entries()) {
    const a = answer({ part: i }, text);
    const n = writeAnswerFrame(a, out);
    assert.deepEqual(out.subarray(0, n), encodeAnswerFrame(a), "the same bytes as a new frame");
    const body = out.slice(4, n);
    const copied = decodeAnswerBody(body, 64);
    const viewed = decodeAnswerBody(body, 64, false);
    assert.ok(typeof copied !== "string" && typeof viewed !== "string");
    assert.deepEqual(viewed, a);
    assert.deepEqual(copied, a);
    assert.equal(viewed.summary.firstBytes.buffer, body.buffer, "views of the body");
    const kept = ownAnswer(viewed);
    body.fill(0xee); // the read buffer is reused: views change, copies do not
    assert.deepEqual(kept, a);
    assert.deepEqual(copied, a);
    assert.notDeepEqual(viewed.client, a.client);
  }
});

Deno.test("answer frame: written at an offset, around bytes that stay; impossible input throws", () => {
  const a = answer({}, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  const want = encodeAnswerFrame(a);
  const out = new Uint8Array(want.length + 20).fill(0xaa);
  const view = out.subarray(3); // a view with its own byteOffset
  assert.equal(writeAnswerFrame(a, view, 7), want.length);
  assert.deepEqual(out.subarray(10, 10 + want.length), want);
  assert.ok(out.subarray(0, 10).every((b) => b === 0xaa), "nothing written before");
  assert.ok(out.subarray(10 + want.length).every((b) => b === 0xaa), "nothing written after");
  const bad = (over: Partial<TunnelAnswer["summary"]>) =>
    answer({ summary: { ...a.summary, ...over } });
  assert.throws(() => writeAnswerFrame(bad({ digest: 1n << 64n }), out), RangeError);
  assert.throws(() => writeAnswerFrame(bad({ digest: -1n }), out), RangeError);
  assert.throws(() => writeAnswerFrame(answer({ target: ep([1, 2, 3], 1) }), out), RangeError);
});

Deno.test("answer frame: the reused decoder agrees with decodeAnswerBody (answers, reasons, garbage)", () => {
  const dec = new AnswerDecoder();
  const room = new Uint8Array(7 + 4 + ANSWER_HEADER_V6 + 64); // a body at an odd offset
  const check = (body: Uint8Array, n: number, what: string) => {
    room.fill(0xaa);
    room.set(body, 7);
    const want = decodeAnswerBody(body, n);
    const got = dec.decode(room, 7, body.length, n);
    if (typeof want === "string") return assert.equal(got, want, what);
    assert.ok(typeof got !== "string", `${what}: ${got}`);
    assert.deepEqual(ownAnswer(got), want, what);
    assert.equal(got.summary.firstBytes.buffer, room.buffer, `${what}: first bytes are a view`);
  };
  const v6 = {
    client: ep([0xfd, ...new Array(14).fill(0), 1], 1),
    target: ep([0xfd, ...new Array(14).fill(0), 2], 65535),
  };
  const texts = ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "x", ""];
  let first: TunnelAnswer | undefined;
  for (const [i, text] of texts.entries()) {
    for (const over of [{ part: i }, { ...v6, part: i, end: "rst" as const }, { ack: i }]) {
      const a = answer(over, text);
      const body = encodeAnswerFrame(a).subarray(4);
      check(body, 64, `${text.length} bytes ${JSON.stringify(over.part)}`);
      const got = dec.decode(room, 7, body.length, 64);
      assert.ok(typeof got !== "string");
      first ??= got;
      assert.equal(got, first, "one answer object, filled again");
    }
  }
  // hostile and random bodies: the same reasons, never an exception
  const good = encodeAnswerFrame(answer()).subarray(4);
  for (let bit = 0; bit < 8; bit++) {
    const b = good.slice();
    b[0] ^= 1 << bit;
    check(b, 16, `flag bit ${bit}`);
  }
  check(good.subarray(0, 47), 16, "short");
  check(good, 15, "first bytes over N");
  let seed = 11;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  for (let i = 0; i < 3000; i++) {
    const b = i % 2 === 0 ? good.slice() : new Uint8Array(rnd() % 120).map(rnd);
    if (i % 2 === 0) { for (let k = 0; k < 3; k++) b[rnd() % b.length] = rnd(); }
    check(b, 64, `random ${i}`);
  }
});

Deno.test("answer frame: answerWanted turns answers down by their header, the others decoded as without it", () => {
  // random answers (IPv4/IPv6, texts, acks, parts, ends) and malformed bodies in one stream, fed
  // in random chunks to a decoder with the predicate and one without
  let seed = 5;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
  const v6 = {
    client: ep([0xfd, ...new Array(14).fill(0), 1], 1),
    target: ep([0xfd, ...new Array(14).fill(0), 2], 65535),
  };
  const texts = ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "x", "", "+OK\r\n", "abcdefgh"];
  const ends = ["ack", "fin", "quiet"] as const;
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 400; i++) {
    const over: Partial<TunnelAnswer> = {
      ack: rnd(1 << 30) * 4 + rnd(4),
      seq: rnd(1 << 30),
      part: rnd(3),
      end: ends[rnd(3)],
      ...(rnd(4) === 0 ? v6 : {}),
    };
    const f = encodeAnswerFrame(answer(over, texts[rnd(texts.length)]));
    if (rnd(10) === 0) f[4] |= 8; // a reserved flag: malformed
    frames.push(f);
  }
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  frames.reduce((at, f) => (stream.set(f, at), at + f.length), 0);
  const run = (d: ServerStreamDecoder) => {
    const items: unknown[] = [];
    for (let at = 0; at < stream.length;) {
      const n = 1 + rnd(300);
      const error = d.feed(stream.subarray(at, at += n), () => assert.fail("no replies"), (it) => {
        items.push(it.kind === "answer" ? { kind: "answer", answer: ownAnswer(it.answer) } : it);
      });
      assert.equal(error, undefined);
    }
    return items;
  };
  const heads: unknown[] = [];
  const wanted = answerDecoder(16);
  wanted.answerWanted = (h) => {
    heads.push([
      h.client.addr.slice(),
      h.client.port,
      h.target.addr.slice(),
      h.target.port,
      h.ack,
      h.seq,
      h.part,
      h.end,
    ]);
    return h.ack % 4 !== 0; // (about a quarter turned down, scattered among the others)
  };
  const got = run(wanted);
  const all = run(answerDecoder(16));
  // what each frame is, from the body decoder of its own (decodeAnswerBody)
  const headsWant: unknown[] = [];
  let unwanted = 0;
  assert.equal(got.length, frames.length);
  for (const [i, f] of frames.entries()) {
    const a = decodeAnswerBody(f.subarray(4), 16);
    if (typeof a === "string") {
      assert.deepEqual(got[i], { kind: "answer-malformed", reason: a }, `item ${i}`);
      assert.deepEqual(all[i], got[i], `item ${i}`);
      continue;
    }
    headsWant.push([
      a.client.addr,
      a.client.port,
      a.target.addr,
      a.target.port,
      a.ack,
      a.seq,
      a.part,
      a.end,
    ]);
    assert.deepEqual(all[i], { kind: "answer", answer: a }, `item ${i} without the predicate`);
    if (a.ack % 4 === 0) {
      unwanted++;
      assert.deepEqual(got[i], { kind: "answer-unwanted" }, `item ${i}`);
    } else assert.deepEqual(got[i], { kind: "answer", answer: a }, `item ${i}: summary included`);
  }
  assert.deepEqual(heads, headsWant, "the predicate saw every well-formed answer's header");
  assert.ok(unwanted > 50 && unwanted < headsWant.length - 50, `${unwanted} turned down`);
});

Deno.test("answer frame: a 65536-byte first-bytes answer crosses the stream decoder in any chunking", () => {
  const body = new Uint8Array(70000).map((_, i) => 32 + (i % 90));
  const summary = summarize(body, { firstBytes: MAX_COMPARE_BYTES, mode: "bytes" });
  const a = answer({ summary });
  const frame = encodeAnswerFrame(a);
  assert.equal(frame.length, 4 + ANSWER_HEADER_V4 + MAX_COMPARE_BYTES);
  assert.equal(frame[1], 1, "the body length needs the high byte");
  const d = answerDecoder(MAX_COMPARE_BYTES);
  const items: ServerItem[] = [];
  for (let at = 0; at < frame.length; at += 7777) {
    const r = d.push(frame.subarray(at, at + 7777));
    assert.equal(r.error, undefined);
    items.push(...r.items);
  }
  assert.equal(items.length, 1);
  const it = items[0];
  assert.ok(it.kind === "answer");
  assert.deepEqual(it.answer, a);
  assert.equal(it.answer.summary.digest, summary.digest);
});

Deno.test("answer frame: hostile bodies are reasons, never throws; bad framing is fatal", () => {
  const good = encodeAnswerFrame(answer()).subarray(4);
  const cases: [string, (b: Uint8Array) => Uint8Array][] = [
    ["short", (b) => b.subarray(0, 47)],
    ["v6 flag on a v4-sized body", (b) => (b[0] |= 1, b.subarray(0, 60))],
    ["reserved flag", (b) => (b[0] |= 8, b)],
    ["end code", (b) => (b[0] = (b[0] & 15) | (9 << 4), b)],
    ["kind", (b) => (b[1] = 3, b)],
    ["first bytes over N", (b) => b],
    ["gap without digest removal", (b) => (b[31] = 1, b)],
    ["first beyond total", (b) => (b[21] = 3, b)],
  ];
  for (const [name, mutate] of cases) {
    const body = mutate(good.slice());
    const n = name === "first bytes over N" ? 15 : 16;
    const r = decodeAnswerBody(body, n);
    assert.equal(typeof r, "string", name);
  }
  // random garbage: strings or answers, never an exception
  let seed = 7;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(rnd() % 120).map(rnd);
    decodeAnswerBody(b, 64);
  }
  // through the stream decoder: a malformed body is an item, the stream goes on
  const d = answerDecoder(16);
  const bad = encodeAnswerFrame(answer());
  bad[4] |= 8;
  const r = d.push(new Uint8Array([...bad, ...encodeAnswerFrame(answer())]));
  assert.equal(r.error, undefined);
  assert.deepEqual(r.items.map((i) => i.kind), ["answer-malformed", "answer"]);
  // not negotiated, or a length over the bound: fatal before the body is awaited
  const off = new ServerStreamDecoder();
  off.expectAck = true;
  off.push(encodeExtAck(1, 0, 0));
  assert.match(off.push(encodeAnswerFrame(answer())).error ?? "", /not negotiated/);
  const huge = answerDecoder(16);
  const len = MAX_ANSWER_BODY + 1;
  assert.match(
    huge.push(new Uint8Array([0xe5, len >> 16, (len >> 8) & 255, len & 255])).error ?? "",
    /answer frame of/,
  );
});

Deno.test("COMPARE message: encoded, decoded after extensions only, bounds checked", () => {
  const m = encodeCompare(1024, "http");
  assert.equal(m.length, 14);
  assert.equal(new DataView(m.buffer).getUint16(6), MsgType.COMPARE);
  assert.throws(() => encodeCompare(15, "auto"), RangeError);
  assert.throws(() => encodeCompare(65537, "auto"), RangeError);
  const d = new ClientMessageDecoder();
  d.push(encodeHello());
  assert.match(d.push(m).error ?? "", /before extensions/);
  const ok = new ClientMessageDecoder();
  ok.push(encodeHello());
  ok.extensions = true;
  assert.deepEqual(ok.push(encodeCompare(65536, "pg")).items, [
    { kind: "compare", bytes: 65536, mode: "pg" },
  ]);
  const bad = encodeCompare(16, "bytes");
  new DataView(bad.buffer).setUint32(0, 8);
  const d2 = new ClientMessageDecoder();
  d2.push(encodeHello());
  d2.extensions = true;
  assert.match(d2.push(bad).error ?? "", /first bytes/);
  const badMode = encodeCompare(16, "bytes");
  badMode[5] = 9;
  const d3 = new ClientMessageDecoder();
  d3.push(encodeHello());
  d3.extensions = true;
  assert.match(d3.push(badMode).error ?? "", /digest mode 9/);
});

Deno.test("negotiation: answers only to authenticated peers of an intercept with --compare", () => {
  const req = { extVersion: 1, caps: Cap.AUTH | Cap.ANSWERS | Cap.HEARTBEAT, prefix: 0 };
  assert.equal(grant(req, 128, true, true).caps, Cap.AUTH | Cap.ANSWERS | Cap.HEARTBEAT);
  assert.equal(grant(req, 128, false, true).caps, Cap.HEARTBEAT, "not authenticated");
  assert.equal(grant(req, 128, true, false).caps, Cap.AUTH | Cap.HEARTBEAT, "no --compare");
  assert.equal(grant(req, 128, true).caps & Cap.ANSWERS, 0, "off by default");
});

const SECRET = "a shared secret of 32 bytes.....";

/** A server and a client asking for answers; `fn` runs the test. */
async function withPair(
  serverAnswers: boolean,
  clientSecret: boolean,
  fn: (
    server: TunnelServer,
    client: TunnelClient,
    got: TunnelAnswer[],
    logs: string[],
  ) => Promise<void> | void,
  heartbeatMs?: number,
) {
  const secret = await importSecret(te.encode(SECRET));
  const server = TunnelServer.listen({
    port: 0,
    hostname: "127.0.0.1",
    log: () => {},
    secret,
    answers: serverAnswers,
    answerQuietMs: 40,
  });
  const got: TunnelAnswer[] = [];
  const logs: string[] = [];
  let client: TunnelClient | undefined;
  try {
    client = await TunnelClient.connect({
      servers: [{ hostname: "127.0.0.1", port: server.port }],
      connections: 1,
      ...(clientSecret ? { secret } : {}),
      compare: { bytes: 64, mode: "auto" },
      onAnswer: (a) => got.push(ownAnswer(a)), // views of the read buffer: kept as a copy
      onReply: () => {},
      log: (l) => logs.push(l),
      lonely: !clientSecret,
      ...(heartbeatMs ? { heartbeatMs } : {}),
    });
    await fn(server, client, got, logs);
  } finally {
    await client?.close();
    await server.close();
  }
}

Deno.test("loopback: keep-alive HTTP answers cut at ACK advances, framing and FIN arrive with the right digests", async () => {
  await withPair(true, true, async (server, client, got) => {
    assert.equal(client.answersGranted(0), "granted");
    assert.ok(client.addRoute(ep(C, 40000), ep(T, 80)));
    await until(() => server.dispatcher.routes.size === 1, 3000, "route");
    await until(() => server.answerGauges().flows === 0 && server.peersConnected === 1);
    const bodies = ["first answer body", "second, longer answer body ".repeat(10), "3"];
    const answers = bodies.map((b) =>
      te.encode(`HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: ${b.length}\r\n\r\n${b}`)
    );
    let seq = 5000, ack = 9000;
    const send = (flags: number, payload?: Uint8Array) => {
      server.beginCycle();
      server.reply(segment({ src: T, dst: C, sport: 80, dport: 40000, seq, ack, flags, payload }));
      server.endCycle();
      seq += payload?.length ?? 0;
    };
    send(F.SYN | F.ACK);
    seq += 1;
    for (let i = 0; i < answers.length; i++) {
      ack += 50; // the request arrived: the reply acknowledges it
      const a = answers[i];
      send(F.ACK, a.subarray(0, 30));
      send(F.ACK, a.subarray(30));
    }
    await until(() => got.length === 3, 3000, "three answers");
    const want = answers.map((a) => summarize(a, { firstBytes: 64 }));
    for (let i = 0; i < 3; i++) {
      assert.equal(got[i].summary.digest, want[i].digest, `digest ${i}`);
      assert.equal(got[i].summary.totalLength, answers[i].length);
      assert.equal(got[i].summary.bodyLength, bodies[i].length);
      assert.deepEqual(got[i].summary.firstBytes, answers[i].subarray(0, 64));
      assert.equal(got[i].ack, 9000 + 50 * (i + 1));
      assert.equal(got[i].part, 0);
      assert.equal(got[i].end, "framing", "complete by Content-Length at the cycle's end");
    }
    assert.equal(got[0].seq, 5001);
    assert.equal(server.answerCounters.sent, 3);
    assert.ok(server.answerCounters.bytes > 3 * 52);
    assert.equal(client.counters.answers, 3);
  });
});

Deno.test("loopback: an intercept without --compare refuses, and a client without a secret never asks", async () => {
  await withPair(false, true, (_server, client, got, logs) => {
    assert.equal(client.answersGranted(0), "refused");
    assert.equal(client.counters.answersRefused, 1);
    assert.equal(logs.filter((l) => /does not send answer summaries/.test(l)).length, 1);
    assert.equal(got.length, 0);
  });
  await withPair(true, false, (_server, client, _got, logs) => {
    assert.equal(client.answersGranted(0), "refused");
    assert.equal(logs.filter((l) => /need --secret-file/.test(l)).length, 1);
    assert.equal(client.capsOf(0) & Cap.ANSWERS, 0);
  });
});

Deno.test("loopback: the heartbeat round trip is measured at once and smoothed (tunnel_rtt_ms)", async () => {
  await withPair(true, true, async (server, client) => {
    // a first heartbeat goes out when the connection is ready, not a period later
    await until(() => client.counters.rttSamples >= 1, 3000, "first round trip sample");
    const first = client.rttMs();
    assert.ok(first !== null && first >= 0 && first < 1000, `rtt ${first}`);
    // a compare peer's heartbeats are answered even with output queued: every one counts
    await until(() => client.counters.rttSamples >= 4, 3000, "periodic samples");
    const rtt = client.rttMs();
    assert.ok(rtt !== null && rtt >= 0 && rtt < 1000, `rtt ${rtt}`);
    assert.equal(server.counters.heartbeatsCoalesced, 0);
  }, 40);
});

Deno.test("loopback: no heartbeats negotiated (a C intercept's way) means no round trip (null)", async () => {
  const server = TunnelServer.listen({ port: 0, hostname: "127.0.0.1", log: () => {} });
  let client: TunnelClient | undefined;
  try {
    client = await TunnelClient.connect({
      servers: [{ hostname: "127.0.0.1", port: server.port }],
      connections: 1,
      caps: 0, // plain v6: no extension hello, no heartbeats
      heartbeatMs: 20,
      onReply: () => {},
      log: () => {},
    });
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(client.rttMs(), null);
    assert.equal(client.counters.rttSamples, 0);
  } finally {
    await client?.close();
    await server.close();
  }
});

Deno.test("a peer that was not granted answers and sends COMPARE is disconnected", async () => {
  const logs: string[] = [];
  const server = TunnelServer.listen({
    port: 0,
    hostname: "127.0.0.1",
    log: (l) => logs.push(l),
    answers: true,
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    // extensions without authentication: no cap 32, whatever was asked
    await conn.write(encodeHello());
    await conn.write(encodeExtHello(1, Cap.ANSWERS | Cap.HEARTBEAT, 0));
    await until(() => server.peersConnected === 1, 3000, "hello");
    await conn.write(encodeCompare(1024, "auto"));
    await until(() => server.peersConnected === 0, 3000, "disconnected");
    assert.ok(logs.some((l) => /answer summaries not negotiated/.test(l)), logs.join("\n"));
    assert.equal(server.counters.protocolErrors, 1);
    assert.equal(server.answerCounters.sent, 0);
  } finally {
    conn.close();
    await server.close();
  }
});

Deno.test("answer frame: the digest as bytes (intercept, no bigint) writes the same frames", () => {
  // random answers through two accumulators of each mode: one summarised with a bigint digest
  // (finishView), one with the digest in bytes (finishViewBytes, as intercept's tracker does);
  // pieces, gaps and pipelined HTTP responses included
  let x = 7;
  const rnd = (n: number) => {
    x ^= x << 13, x ^= x >>> 17, x ^= x << 5;
    return (x >>> 0) % n;
  };
  const bodies = ["", "ok\n", "x".repeat(200), "chunk"];
  const pieceOf = (): Uint8Array => {
    switch (rnd(4)) {
      case 0: {
        const b = bodies[rnd(bodies.length)];
        return te.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n${b}`);
      }
      case 1:
        return te.encode(
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        );
      case 2:
        return Uint8Array.from({ length: rnd(300) }, () => rnd(256));
      default:
        return te.encode(`+OK ${rnd(1000)}\r\n`);
    }
  };
  const modes = ["auto", "http", "pg", "bytes"] as const;
  const outA = new Uint8Array(4 + ANSWER_HEADER_V6 + 64), outB = outA.slice();
  let digests = 0;
  for (let round = 0; round < 2000; round++) {
    const mode = modes[rnd(modes.length)];
    const a = new AnswerAccumulator({ firstBytes: 64, mode });
    const b = new AnswerAccumulator({ firstBytes: 64, mode });
    a.reset(), b.reset();
    for (let k = 1 + rnd(3); k > 0; k--) {
      const p = pieceOf();
      for (let at = 0; at < p.length;) {
        const n = 1 + rnd(p.length - at);
        a.push(p, NaN, at, at + n), b.push(p, NaN, at, at + n);
        at += n;
      }
      if (rnd(20) === 0) a.gap(5), b.gap(5);
    }
    const sa = a.finishView(false, emptySummary());
    const sb = b.finishViewBytes(false, emptySummary());
    if (sa.digest !== null) digests++;
    const na = writeAnswerFrame(answer({ summary: sa }), outA);
    const nb = writeAnswerFrame(answer({ summary: sb }), outB, 0, b.digestBytes);
    assert.deepEqual(outB.subarray(0, nb), outA.subarray(0, na), `round ${round}, ${mode}`);
  }
  assert.ok(digests > 1500, `${digests} answers with a digest`);
});
