import assert from "node:assert/strict";
import {
  ClientMessageDecoder,
  encodeExtHello,
  encodeHeartbeat,
  encodeHello,
  encodeRoute,
  isMsgType,
  MsgType,
} from "../../lib/tunnel/messages.ts";
import {
  encodeCombined,
  encodeExtAck,
  encodeExtFrame,
  FrameKind,
  isFrameKind,
  RECORD_SIZE,
  ServerStreamDecoder,
  writeRecordV6,
} from "../../lib/tunnel/replies.ts";
import { ReplyBatcher } from "../../lib/tunnel/batcher.ts";
import { inspectReply, newReplyInfo } from "../../lib/tunnel/reply_packet.ts";
import { F, segment } from "../helpers/tunnel_fixtures.ts";
import { Cap, EXT_VERSION, grant } from "../../lib/tunnel/negotiation.ts";
import { concat } from "../helpers/bytes.ts";

const C = [10, 0, 0, 1];
const T = [10, 0, 0, 2];
const ep = (a: number[], port: number) => ({ addr: new Uint8Array(a), port });

function feedByteByByte<T>(
  dec: { push(b: Uint8Array): { items: T[]; error?: string } },
  b: Uint8Array,
) {
  const items: T[] = [];
  let error: string | undefined;
  for (let i = 0; i < b.length && !error; i++) {
    const r = dec.push(b.subarray(i, i + 1));
    items.push(...r.items);
    error = r.error;
  }
  return { items, error };
}

Deno.test("hello and CLIENT_ADD/DEL match the C v6 bytes", () => {
  assert.deepEqual([...encodeHello()], [0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(
    [...encodeRoute("add", ep(C, 40000), ep(T, 8080))],
    [10, 0, 0, 1, 0x9c, 0x40, 0, 1, 10, 0, 0, 2, 0x1f, 0x90],
  );
  assert.deepEqual(
    [...encodeRoute("del", ep([192, 168, 1, 254], 1), ep([1, 2, 3, 4], 65535))],
    [192, 168, 1, 254, 0, 1, 0, 2, 1, 2, 3, 4, 0xff, 0xff],
  );
});

Deno.test("client message decoder: round trip fed byte by byte", () => {
  const v6a = Array.from({ length: 16 }, (_, i) => i + 1);
  const v6b = Array.from({ length: 16 }, (_, i) => 0xf0 + (i % 16));
  const stream = concat(
    encodeHello(),
    encodeExtHello(EXT_VERSION, Cap.IPV6 | Cap.HEARTBEAT, 64),
    encodeRoute("add", ep(C, 40000), ep(T, 8080)),
    encodeRoute("del", ep(C, 40000), ep(T, 8080)),
    encodeHeartbeat(),
    encodeRoute("add", ep(v6a, 1234), ep(v6b, 80)),
    encodeRoute("del", ep(v6a, 1234), ep(v6b, 80)),
  );
  const dec = new ClientMessageDecoder();
  dec.extensions = true;
  const { items, error } = feedByteByByte(dec, stream);
  assert.equal(error, undefined);
  assert.deepEqual(items.map((m) => m.kind), [
    "hello",
    "ext-hello",
    "add",
    "del",
    "heartbeat",
    "add",
    "del",
  ]);
  assert.deepEqual(items[1], { kind: "ext-hello", extVersion: EXT_VERSION, caps: 5, prefix: 64 });
  const add = items[2];
  assert.ok(add.kind === "add");
  assert.deepEqual([...add.client.addr], C);
  assert.equal(add.client.port, 40000);
  assert.deepEqual([...add.target.addr], T);
  assert.equal(add.target.port, 8080);
  const add6 = items[5];
  assert.ok(add6.kind === "add");
  assert.deepEqual([...add6.client.addr], v6a);
  assert.deepEqual([...add6.target.addr], v6b);
  assert.equal(add6.client.port, 1234);
  assert.equal(add6.target.port, 80);
});

Deno.test("client message decoder: garbage is a fatal error value, never a throw", () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["old 8-byte client", new Uint8Array([10, 0, 0, 1, 0, 80, 0, 1, 0, 0, 0, 0, 0, 0]), /too old/],
    ["wrong version", encodeHello(5), /version 5/],
    ["unknown type", concat(encodeHello(), encodeHello(0x1234)), /unknown message type/],
    ["second hello", concat(encodeHello(), encodeHello()), /second hello/],
    [
      "IPv6 without extensions",
      concat(
        encodeHello(),
        encodeRoute("add", ep(new Array(16).fill(1), 1), ep(new Array(16).fill(2), 2)),
      ),
      /IPv6/,
    ],
    ["heartbeat without extensions", concat(encodeHello(), encodeHeartbeat()), /heartbeat/],
  ];
  for (const [name, bytes, re] of cases) {
    const dec = new ClientMessageDecoder();
    const r = dec.push(bytes);
    assert.match(r.error ?? "", re, name);
    assert.match(dec.push(encodeHello()).error ?? "", re, `${name}: stays failed`);
  }
});

Deno.test("v6 record and combined frame match the documented layout byte for byte", () => {
  // SYN-ACK 10.0.0.2:8080 -> 10.0.0.1:40000, MSS 1460 + SACK-permitted options (24-byte TCP header)
  const pkt = segment({
    src: T,
    dst: C,
    sport: 8080,
    dport: 40000,
    seq: 0x01020304,
    ack: 0x0a0b0c0d,
    flags: F.SYN | F.ACK,
    window: 0x7210,
    options: [2, 4, 0x05, 0xb4, 4, 2, 1, 1],
  });
  const info = newReplyInfo();
  assert.equal(inspectReply(pkt, info), undefined);
  const rec = new Uint8Array(RECORD_SIZE);
  writeRecordV6(rec, 0, pkt, info);
  const golden = [
    // IPv4 header, verbatim: ver/ihl, tos, tot_len=48, id, DF, ttl, proto, csum, src, dst
    0x45,
    0,
    0,
    48,
    0x12,
    0x34,
    0x40,
    0,
    64,
    6,
    0,
    0,
    10,
    0,
    0,
    2,
    10,
    0,
    0,
    1,
    // TCP header: ports, seq, ack, doff=7, flags SYN|ACK, window, csum, urg
    0x1f,
    0x90,
    0x9c,
    0x40,
    1,
    2,
    3,
    4,
    0x0a,
    0x0b,
    0x0c,
    0x0d,
    0x70,
    0x12,
    0x72,
    0x10,
    0,
    0,
    0,
    0,
    // options: MSS 1460, SACK-permitted, NOP NOP
    2,
    4,
    0x05,
    0xb4,
    4,
    2,
    1,
    1,
    // zero padding to 64 bytes
    ...new Array(16).fill(0),
  ];
  assert.deepEqual([...rec], golden);
  const frame = encodeCombined([rec, rec]);
  assert.deepEqual([...frame.subarray(0, 2)], [0, 2]);
  assert.equal(frame.length, 2 + 2 * 64);
  assert.deepEqual([...frame.subarray(66, 130)], golden);

  // the batcher produces the same frame
  const b = new ReplyBatcher();
  assert.equal(b.add(pkt, info, 0), "queued");
  assert.equal(b.add(pkt, info, 0), "queued");
  b.flush();
  assert.deepEqual([...b.takeOutput()!], [...frame]);
});

Deno.test("v6 record: IP options are stripped and tot_len fixed, long TCP options cut at 44", () => {
  const pkt = segment({
    src: T,
    dst: C,
    sport: 80,
    dport: 5555,
    ipOptions: [1, 1, 1, 1, 1, 1, 1, 0],
    options: new Array(40).fill(1),
    payload: new Uint8Array(100),
  });
  const info = newReplyInfo();
  assert.equal(inspectReply(pkt, info), undefined);
  assert.equal(info.l4, 28);
  assert.equal(info.tcpLen, 60);
  const rec = new Uint8Array(RECORD_SIZE);
  writeRecordV6(rec, 0, pkt, info);
  assert.equal(rec[0], 0x45);
  assert.equal((rec[2] << 8) | rec[3], 28 + 60 + 100 - 8);
  assert.deepEqual([...rec.subarray(20, 64)], [...pkt.subarray(28, 28 + 44)]);
});

Deno.test("server stream decoder: v6 frames fed byte by byte and in one chunk", () => {
  const recs = [1, 2, 3].map((i) => {
    const pkt = segment({ src: T, dst: C, sport: 8080, dport: 40000 + i, flags: F.ACK });
    const info = newReplyInfo();
    inspectReply(pkt, info);
    const r = new Uint8Array(RECORD_SIZE);
    writeRecordV6(r, 0, pkt, info);
    return { pkt, r };
  });
  const stream = concat(encodeCombined([recs[0].r]), encodeCombined([recs[1].r, recs[2].r]));
  for (const chunked of [true, false]) {
    const dec = new ServerStreamDecoder();
    const { items, error } = chunked ? feedByteByByte(dec, stream) : dec.push(stream);
    assert.equal(error, undefined);
    assert.equal(items.length, 3);
    items.forEach((it, i) => {
      assert.ok(it.kind === "reply");
      assert.deepEqual([...it.bytes], [...recs[i].pkt.subarray(0, 40)]);
    });
  }
});

Deno.test("server stream decoder: impossible counts and frames are errors", () => {
  const rec = new Uint8Array(64);
  rec[0] = 0x45;
  rec[32] = 0x50;
  const bad: [Uint8Array, RegExp, boolean][] = [
    [new Uint8Array([0, 0]), /count 0/, false],
    [new Uint8Array([0, 17]), /count 17/, false],
    [concat(new Uint8Array([0, 1]), new Uint8Array(64)), /IP version 0/, false],
    [encodeExtAck(1, 0, 0), /count/, false], // an ack that was not asked for
    // a frame kind no FrameKind names (the encoder only takes known kinds): built by hand
    [
      concat(encodeExtAck(1, 0, 0), new Uint8Array([0x99, 0, 0, 0])),
      /unknown frame kind 0x99/,
      true,
    ],
    [concat(encodeExtAck(1, 0, 0), encodeExtFrame(FrameKind.REPLIES)), /empty reply frame/, true],
    [
      concat(encodeExtAck(1, 0, 0), encodeExtFrame(FrameKind.REPLIES, new Uint8Array([0, 10, 1]))),
      /record of 10 bytes/,
      true,
    ],
    [concat(encodeExtAck(1, 0, 0), encodeExtAck(1, 0, 0)), /second extension ack/, true],
  ];
  for (const [bytes, re, expectAck] of bad) {
    const dec = new ServerStreamDecoder();
    dec.expectAck = expectAck;
    const r = feedByteByByte(dec, bytes);
    assert.match(r.error ?? "", re);
  }
});

Deno.test("extension: ack switches framing; records keep IPv6 headers and a payload prefix", () => {
  const v6c = [0x20, 1, 0xd, 0xb8, ...new Array(11).fill(0), 1];
  const v6t = [0x20, 1, 0xd, 0xb8, ...new Array(11).fill(0), 2];
  const payload = new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
  const p6 = segment({
    src: v6t,
    dst: v6c,
    sport: 80,
    dport: 33000,
    flags: F.ACK | F.PSH,
    payload,
  });
  const p4 = segment({
    src: T,
    dst: C,
    sport: 80,
    dport: 33001,
    flags: F.ACK,
    payload,
    captured: 5,
  });
  const ask = { extVersion: 9, caps: Cap.IPV6 | Cap.PAYLOAD_PREFIX | 0x100, prefix: 12 };
  assert.deepEqual(
    grant(ask, 8),
    { extVersion: EXT_VERSION, caps: Cap.IPV6, prefix: 0 },
    "stranger",
  );
  const g = grant(ask, 8, true);
  assert.deepEqual(g, { extVersion: EXT_VERSION, caps: Cap.IPV6 | Cap.PAYLOAD_PREFIX, prefix: 8 });

  const b = new ReplyBatcher();
  const info = newReplyInfo();
  inspectReply(p6, info);
  assert.equal(b.add(p6, info, 0), "unsupported", "v6 framing cannot carry IPv6");
  // a v6 frame queued before the ack, then the ack, then extension frames
  inspectReply(p4, info);
  assert.equal(b.add(p4, info, 0), "queued");
  b.addFrame(encodeExtAck(g.extVersion, g.caps, g.prefix));
  b.reconfigure({ ext: true, prefix: g.prefix });
  inspectReply(p6, info);
  assert.equal(b.add(p6, info, 1), "queued");
  inspectReply(p4, info);
  assert.equal(b.add(p4, info, 1), "queued");
  b.flush();
  b.addFrame(encodeExtFrame(FrameKind.HEARTBEAT));
  const stream = b.takeOutput()!;

  const dec = new ServerStreamDecoder();
  dec.expectAck = true;
  const { items, error } = feedByteByByte(dec, stream);
  assert.equal(error, undefined);
  assert.deepEqual(items.map((i) => i.kind), ["reply", "ext-ack", "reply", "reply", "heartbeat"]);
  assert.ok(dec.extensions);
  const [, ack, r6, r4] = items;
  assert.deepEqual(ack, { kind: "ext-ack", ...g });
  assert.ok(r6.kind === "reply" && r4.kind === "reply");
  assert.deepEqual([...r6.bytes], [...p6.subarray(0, 40 + 20 + 8)]);
  assert.deepEqual([...r4.bytes], [...p4.subarray(0, 20 + 20 + 5)], "short capture: 5 bytes");
  assert.equal(new TextDecoder().decode(r6.bytes.subarray(60)), "HTTP/1.1");
  assert.equal(b.droppedFull, 0);
  assert.equal(MsgType.HELLO, 6);
});

Deno.test("batcher: flush at 16 records or the deadline, bounded queue counts drops", () => {
  const pkt = segment({ src: T, dst: C, sport: 80, dport: 1 });
  const info = newReplyInfo();
  inspectReply(pkt, info);
  const b = new ReplyBatcher({ flushMs: 2, maxQueuedBytes: 2 + 16 * 64 + 2 + 64 });
  for (let i = 0; i < 15; i++) b.add(pkt, info, 10);
  assert.equal(b.hasOutput, false);
  assert.equal(b.flushDue(11), false);
  b.add(pkt, info, 11);
  assert.equal(b.hasOutput, true, "16th record closes the frame");
  assert.equal(b.add(pkt, info, 11), "queued");
  assert.equal(b.add(pkt, info, 11), "dropped-full");
  assert.equal(b.droppedFull, 1);
  assert.equal(b.flushDue(12), false);
  assert.equal(b.flushDue(13), true);
  const out = b.takeOutput()!;
  assert.equal(out.length, 2 + 16 * 64 + 2 + 64);
  assert.deepEqual([out[0], out[1], out[2 + 16 * 64], out[3 + 16 * 64]], [0, 16, 0, 1]);
  assert.equal(b.add(pkt, info, 14), "dropped-full", "bytes in flight still count");
  b.written(out.length);
  assert.equal(b.add(pkt, info, 14), "queued");
  assert.equal(b.frames, 2);
  assert.equal(b.records, 17);
});

Deno.test("server stream decoder: feed() hands out the same records as push(), in place", () => {
  const b = new ReplyBatcher();
  const info = newReplyInfo();
  const pkts = Array.from(
    { length: 40 },
    (_, i) => segment({ src: T, dst: C, sport: 80, dport: 1000 + i, seq: i * 7 }),
  );
  for (const p of pkts) {
    inspectReply(p, info);
    assert.equal(b.add(p, info, 0), "queued");
  }
  b.flush();
  const stream = b.takeOutput()!.slice();
  const viaPush = new ServerStreamDecoder().push(stream).items.map((i) =>
    i.kind === "reply" ? [...i.bytes] : []
  );
  // feed in uneven chunks: records cut across reads come out once they are complete
  const dec = new ServerStreamDecoder();
  const viaFeed: number[][] = [];
  const buffers = new Set<ArrayBufferLike>();
  for (let at = 0; at < stream.length; at += 97) {
    const error = dec.feed(stream.subarray(at, at + 97), (bytes) => {
      buffers.add(bytes.buffer);
      viaFeed.push([...bytes]);
    }, () => assert.fail("no control items in this stream"));
    assert.equal(error, undefined);
  }
  assert.equal(viaFeed.length, 40);
  assert.deepEqual(viaFeed, viaPush);
  assert.equal(buffers.size, 1, "records of 3 frames are views into one buffer: no copies");
  assert.ok(!buffers.has(stream.buffer));
  for (let i = 0; i < 40; i++) assert.equal((viaFeed[i][22] << 8) | viaFeed[i][23], 1000 + i);
  // a bad frame is an error and delivers none of its records
  const bad = new Uint8Array([0, 2, ...stream.subarray(2, 2 + 64), ...new Uint8Array(64)]);
  let delivered = 0;
  const error = new ServerStreamDecoder().feed(bad, () => delivered++, () => {});
  assert.match(error ?? "", /IP version 0/);
  assert.equal(delivered, 0);
});

Deno.test("batcher: taken output stays intact while more frames arrive and the buffer grows", () => {
  const info = newReplyInfo();
  const b = new ReplyBatcher({ maxRecords: 1, maxQueuedBytes: 1 << 20 });
  const add = (i: number) => {
    const p = segment({ src: T, dst: C, sport: 80, dport: i });
    inspectReply(p, info);
    assert.equal(b.add(p, info, 0), "queued");
  };
  add(1);
  const first = b.takeOutput()!;
  const firstCopy = first.slice();
  // far more than the initial 16 KiB buffer: it grows while `first` is still being written
  for (let i = 2; i < 600; i++) add(i);
  assert.deepEqual([...first], [...firstCopy], "the taken bytes did not move or change");
  assert.equal(b.queuedBytes, 599 * 66);
  const rest = b.takeOutput()!;
  assert.equal(rest.length, 598 * 66);
  assert.equal(b.takeOutput(), undefined);
  assert.equal((rest[2 + 22] << 8) | rest[2 + 23], 2, "the next frame follows the taken one");
  b.written(first.length);
  b.written(rest.length - 10);
  assert.equal(b.queuedBytes, 10, "a partial write leaves its tail counted");
  b.written(10);
  assert.equal(b.queuedBytes, 0);
  add(700);
  const again = b.takeOutput()!;
  assert.equal((again[2 + 22] << 8) | again[2 + 23], 700, "the buffer is reused from the start");
});

Deno.test("message and frame kinds: the guards accept exactly the table's codes", () => {
  for (const t of Object.values(MsgType)) assert.ok(isMsgType(t), `type ${t}`);
  for (const t of [0, 3, 5, 7, 0x5400, 0xffff]) assert.equal(isMsgType(t), false, `type ${t}`);
  for (const k of Object.values(FrameKind)) assert.ok(isFrameKind(k), `kind ${k}`);
  for (const k of [0, 16, 0xe0, 0xe6, 0xff]) assert.equal(isFrameKind(k), false, `kind ${k}`);
});
