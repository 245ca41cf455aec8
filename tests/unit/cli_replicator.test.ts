/**
 * The tcpcopy data path (lib/tcpcopy/replicator.ts) with a fake engine, fake senders and a
 * fake tunnel: bytes in, bytes out, no sockets.
 */
import assert from "node:assert/strict";
import { FakeSender } from "../helpers/fake_sender.ts";
import { Replicator, type RouteEndpoint } from "../../lib/tcpcopy/replicator.ts";
import { DeadlineTimer } from "../../lib/tcpcopy/timer.ts";
import { emptySegmentOptions, engineConfigOf } from "../../lib/tcpcopy/convert.ts";
import { parseTcpHeaderOptions } from "../../lib/wire/tcp_options.ts";
import { parseTcpcopyArgs } from "../../lib/cli/tcpcopy.ts";
import { Logger } from "../../lib/stats/logger.ts";
import { emptyStats } from "../../lib/engine/stats.ts";
import type { CapturedSegment, OutSegment, ReplySegment } from "../../lib/engine/segment.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../../lib/wire/build.ts";
import { ParsedTcp, parseIpTcp } from "../../lib/wire/packet.ts";
import { LinkType } from "../../lib/wire/link.ts";
import { defaultMaxFlows, defaultMaxSessions } from "../../lib/engine/budget.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";
import { ep, textOf } from "../helpers/endpoints.ts";
import { ownEndpoint } from "../../lib/engine/endpoint.ts";
import { moduleOnlineOf } from "../../lib/tcpcopy/online_match.ts";
import { postgresModule } from "../../lib/modules/postgres.ts";

/** Echoes every captured segment towards 10.0.0.2:8080 and records what it saw. */
class EchoEngine {
  stats = emptyStats();
  captured: CapturedSegment[] = [];
  replies: ReplySegment[] = [];
  constructor(readonly out: Replicator) {}
  onCaptured(seg: CapturedSegment, _now: number) {
    // the replicator's segment points into reused buffers: keep copies
    const src = ownEndpoint(seg.src), dst = ownEndpoint(seg.dst);
    this.captured.push({ ...seg, src, dst, payload: seg.payload.slice() });
    if (seg.flags & 2) this.out.routeAdd(src, ep({ addr: "10.0.0.2", port: 8080 }));
    const o: OutSegment = { ...seg, src, dst: ep({ addr: "10.0.0.2", port: 8080 }) };
    this.out.send(o);
  }
  onReply(r: ReplySegment, _now: number) {
    this.replies.push(structuredClone(r)); // the replicator reuses one reply object
  }
  tick() {}
  nextDeadline() {
    return undefined;
  }
  closeAll() {}
}

function packet(opts: {
  src?: string;
  dst?: string;
  srcPort?: number;
  dstPort?: number;
  flags?: number;
  payload?: string;
  options?: { mss?: number; timestamp?: { tsval: number; tsecr: number } };
}): Uint8Array {
  const repr = {
    ...addressPair(opts.src ?? "192.168.1.10", opts.dst ?? "10.0.0.1"),
    srcPort: opts.srcPort ?? 40000,
    dstPort: opts.dstPort ?? 80,
    seq: 1000,
    ack: 2000,
    flags: opts.flags ?? 0x18,
    window: 512,
    options: { sackPermitted: false, sackBlocks: [], unknown: [], ...opts.options },
    payload: new TextEncoder().encode(opts.payload ?? ""),
  };
  const out = new Uint8Array(tcpPacketLength(repr));
  assert.equal(buildTcpPacket(repr, out), out.length);
  return out;
}

function setup() {
  const logLines: string[] = [];
  const routes: [RouteEndpoint, RouteEndpoint][] = [];
  const v4 = new FakeSender(), v6 = new FakeSender();
  const r = new Replicator({
    v4,
    v6,
    log: new Logger((l) => logLines.push(l), () => 0),
    now: () => 0,
    routes: {
      addRoute: (c, t) => (routes.push([c, t]), true),
      delRoute: () => true,
    },
  });
  const engine = new EchoEngine(r);
  r.attach(engine);
  return { r, engine, v4, v6, routes, logLines };
}

Deno.test("captured frame -> engine segment -> packet built in the sender slot", () => {
  const { r, engine, v4, routes } = setup();
  const syn = packet({ flags: 0x02, options: { mss: 1460, timestamp: { tsval: 7, tsecr: 0 } } });
  r.onFrame(syn, LinkType.RAW, 1_700_000_000_123_456, 5);
  r.onFrame(packet({ payload: "GET / HTTP/1.1\r\n\r\n" }), LinkType.RAW, 0, 6);
  assert.equal(engine.captured.length, 2);
  const s = engine.captured[0];
  assert.deepEqual(textOf(s.src), { addr: "192.168.1.10", port: 40000 });
  assert.deepEqual(textOf(s.dst), { addr: "10.0.0.1", port: 80 });
  // every options object has all four fields (one shape for the engine)
  assert.deepEqual(s.options, {
    mss: 1460,
    wscale: undefined,
    sackPermitted: false,
    timestamp: { tsval: 7, tsecr: 0 },
  });
  assert.notEqual(engine.captured[1].options, s.options, "captured options are fresh objects");
  assert.equal(s.timeMs, 1_700_000_000_123.456);
  assert.equal(new TextDecoder().decode(engine.captured[1].payload), "GET / HTTP/1.1\r\n\r\n");
  assert.equal(routes.length, 1);
  assert.deepEqual([...routes[0][0].addr], [192, 168, 1, 10]);
  assert.deepEqual([...routes[0][1].addr], [10, 0, 0, 2]);
  assert.equal(routes[0][1].port, 8080);

  assert.equal(v4.pending, 2);
  r.flush();
  assert.equal(v4.sent.length, 2);
  const p = new ParsedTcp();
  assert.equal(parseIpTcp(v4.sent[1], 0, p), null);
  assert.equal(p.dstText(), "10.0.0.2");
  assert.equal(p.dstPort, 8080);
  assert.equal(new TextDecoder().decode(p.payload()), "GET / HTTP/1.1\r\n\r\n");
  assert.equal(parseIpTcp(v4.sent[0], 0, p), null);
  assert.equal(p.flags, 0x02);
  assert.equal(p.tcpHeaderLength, 20 + 4 + 12); // MSS + NOP NOP TS
});

Deno.test("captured segments share one object; a SYN's options stay its own (the engine keeps them)", () => {
  const { r } = setup();
  const seen: CapturedSegment[] = [];
  const kept: { mss?: number; tsval?: number }[] = [];
  const engine = new EchoEngine(r);
  engine.onCaptured = (seg: CapturedSegment) => {
    seen.push(seg);
    kept.push({ mss: seg.options.mss, tsval: seg.options.timestamp?.tsval });
  };
  r.attach(engine);
  r.onFrame(
    packet({ flags: 0x02, options: { mss: 1460, timestamp: { tsval: 7, tsecr: 0 } } }),
    LinkType.RAW,
    0,
    1,
  );
  const synOptions = seen[0].options;
  r.onFrame(
    packet({ flags: 0x10, options: { timestamp: { tsval: 9, tsecr: 3 } } }),
    LinkType.RAW,
    0,
    2,
  );
  r.onFrame(packet({ payload: "GET / HTTP/1.1\r\n\r\n" }), LinkType.RAW, 0, 3);
  assert.equal(seen.length, 3);
  assert.equal(seen[1], seen[0], "one reused segment object");
  assert.equal(seen[2], seen[0]);
  assert.deepEqual(kept, [{ mss: 1460, tsval: 7 }, { mss: undefined, tsval: 9 }, {
    mss: undefined,
    tsval: undefined,
  }]);
  // what a session keeps of the SYN (clientOpts) is not overwritten by the later packets
  assert.equal(synOptions.mss, 1460);
  assert.deepEqual(synOptions.timestamp, { tsval: 7, tsecr: 0 });
  assert.notEqual(seen[2].options, synOptions);
  assert.equal(seen[2].payload.length, 18);
});

Deno.test("IPv6 output goes to the IPv6 sender", () => {
  const { r, v4, v6 } = setup();
  r.send({
    src: ep({ addr: "2001:db8::10", port: 1 }),
    dst: ep({ addr: "2001:db8::2", port: 2 }),
    seq: 1,
    ack: 2,
    flags: 0x10,
    window: 100,
    options: {},
    payload: new Uint8Array(3),
  });
  assert.equal(v4.pending, 0);
  assert.equal(v6.pending, 1);
  assert.equal(v6.slots[0][0] >> 4, 6);
});

Deno.test("garbage frames and replies are counted, never thrown", () => {
  const { r, engine } = setup();
  for (let i = 0; i < 300; i++) {
    const junk = crypto.getRandomValues(new Uint8Array(i % 80));
    r.onFrame(junk, LinkType.EN10MB, 0, 0);
    r.onReplyBytes(junk, 0);
  }
  const truncated = packet({ payload: "0123456789" }).subarray(0, 45);
  r.onFrame(truncated, LinkType.RAW, 0, 0);
  assert.equal(r.counters.frames, 301);
  assert.equal(r.counters.parseErrors + r.counters.truncated, 301 - engine.captured.length);
  assert.ok(r.counters.truncated >= 1);
  assert.equal(r.counters.replies, 300);
  assert.equal(r.counters.replyErrors, 300 - engine.replies.length);
});

Deno.test("reply bytes -> ReplySegment with the payload length from the IP header", () => {
  const { r, engine } = setup();
  const full = packet({
    src: "10.0.0.2",
    dst: "192.168.1.10",
    flags: 0x12,
    payload: "x".repeat(100),
  });
  r.onReplyBytes(full.subarray(0, 40), 0); // header only, as intercept sends it
  assert.equal(engine.replies.length, 1);
  const rep = engine.replies[0];
  assert.deepEqual(textOf(rep.src), { addr: "10.0.0.2", port: 40000 });
  assert.equal(rep.flags, 0x12);
  assert.equal(rep.payloadLength, 100);
  assert.equal(rep.payloadPrefix, undefined);
});

Deno.test("replies share one segment object: each reply's own values reach the engine", () => {
  const { r, engine } = setup();
  const withTs = packet({
    src: "10.0.0.2",
    dst: "192.168.1.10",
    flags: 0x12,
    options: { mss: 1400, timestamp: { tsval: 11, tsecr: 22 } },
  });
  const plain = packet({ src: "10.0.0.3", dst: "192.168.1.11", flags: 0x10, payload: "abc" });
  r.onReplyBytes(withTs, 0);
  r.onReplyBytes(plain.subarray(0, 40), 0);
  r.onReplyBytes(withTs, 0);
  assert.equal(engine.replies.length, 3);
  const [a, b, c] = engine.replies;
  assert.equal(a.options.mss, 1400);
  assert.deepEqual(a.options.timestamp, { tsval: 11, tsecr: 22 });
  assert.deepEqual(textOf(b.src), { addr: "10.0.0.3", port: 40000 });
  assert.deepEqual(textOf(b.dst), { addr: "192.168.1.11", port: 80 });
  assert.equal(b.flags, 0x10);
  assert.equal(b.payloadLength, 3);
  assert.equal(b.options.mss, undefined, "no MSS left over from the previous reply");
  assert.equal(b.options.timestamp, undefined, "no timestamp left over from the previous reply");
  assert.deepEqual(c, a);
});

Deno.test("the option reader agrees with lib/wire's parser on random and malformed options", () => {
  // a TCP header (at offset 20 after a fake IP header) with `opts` as its option bytes
  const header = (opts: Uint8Array): ParsedTcp => {
    const p = new ParsedTcp();
    const bytes = new Uint8Array(20 + 20 + opts.length);
    bytes[20 + 12] = ((20 + opts.length) / 4) << 4;
    bytes.set(opts, 40);
    p.bytes = bytes;
    p.tcpOffset = 20;
    p.tcpHeaderLength = 20 + opts.length;
    return p;
  };
  // option pieces, glued at random, sometimes with a byte flipped
  const pieces = [
    [2, 4, 5, 0xb4], // MSS 1460
    [3, 3, 7], // window scale
    [4, 2], // SACK permitted
    [8, 10, 1, 2, 3, 4, 5, 6, 7, 8], // timestamps
    [5, 10, 0, 0, 0, 1, 0, 0, 0, 2], // one SACK block
    [1], // NOP
    [0], // EOL
    [30, 4, 9, 9], // unknown kind
    // malformed: wrong lengths for known kinds, a length below 2
    [5, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0],
    [2, 3, 5],
    [3, 4, 7, 0],
    [4, 3, 0],
    [8, 9, 1, 2, 3, 4, 5, 6, 7],
    [30, 1],
  ];
  const rnd = randomInt(mulberry32(12345));
  let malformed = 0, checked = 0;
  for (let round = 0; round < 3000; round++) {
    const bytes: number[] = [];
    while (bytes.length < 40 && rnd(6) !== 0) bytes.push(...pieces[rnd(pieces.length)]);
    if (bytes.length > 40) bytes.length = 40;
    if (rnd(3) === 0 && bytes.length > 0) bytes[rnd(bytes.length)] = rnd(256);
    while (bytes.length % 4 !== 0) bytes.push(rnd(4) === 0 ? rnd(256) : 0);
    const p = header(Uint8Array.from(bytes));
    const wire = parseTcpHeaderOptions(p.bytes, p.tcpOffset);
    const out = emptySegmentOptions();
    const ok = p.readOptions(out, { tsval: 0, tsecr: 0 }) === null;
    checked++;
    if (typeof wire === "string") {
      malformed++;
      assert.equal(ok, false, `[${bytes}]: lib/wire says ${wire}`);
      continue;
    }
    assert.equal(ok, true, `[${bytes}]: lib/wire accepts them`);
    assert.equal(out.mss, wire.mss, `[${bytes}] mss`);
    assert.equal(out.wscale, wire.wscale, `[${bytes}] wscale`);
    assert.equal(out.sackPermitted, wire.sackPermitted, `[${bytes}] sackPermitted`);
    assert.deepEqual(out.timestamp, wire.timestamp, `[${bytes}] timestamp`);
  }
  assert.ok(malformed > 100 && checked - malformed > 100, `${malformed} of ${checked} malformed`);
});

Deno.test("a route no intercept takes is counted and logged once per burst", () => {
  const logLines: string[] = [];
  const r = new Replicator({
    v4: new FakeSender(),
    v6: null,
    log: new Logger((l) => logLines.push(l), () => 0),
    now: () => 0,
    routes: { addRoute: () => false, delRoute: () => false },
  });
  for (let i = 0; i < 50; i++) {
    r.routeAdd(ep({ addr: "192.168.1.10", port: i + 1 }), ep({ addr: "10.0.0.2", port: 80 }));
  }
  assert.equal(r.counters.routeFailures, 50);
  assert.ok(logLines.length <= 10 && logLines.length > 0);
  r.send({
    src: ep({ addr: "2001:db8::10", port: 1 }),
    dst: ep({ addr: "2001:db8::2", port: 2 }),
    seq: 1,
    ack: 2,
    flags: 0x10,
    window: 100,
    options: {},
    payload: new Uint8Array(0),
  });
  assert.equal(r.counters.noSender, 1);
});

Deno.test("engine config: seconds become milliseconds, MiB become bytes", () => {
  const cli = parseTcpcopyArgs([
    "-x",
    "10.0.0.1:80-10.0.0.2:8080,81-10.0.0.2:81",
    "-s",
    "10.0.0.3",
    "-t",
    "1.5",
    "-m",
    "64",
    "-n",
    "2",
    "-c",
    "10.9.0.1",
  ]);
  assert.equal(cli.kind, "run");
  if (cli.kind !== "run") return;
  const e = engineConfigOf(cli.config);
  assert.deepEqual(e.transfers, [
    { online: { addr: "10.0.0.1", port: 80 }, target: { addr: "10.0.0.2", port: 8080 } },
    { online: { addr: "", port: 81 }, target: { addr: "10.0.0.2", port: 81 } },
  ]);
  assert.equal(e.sessionTimeoutMs, 1500);
  assert.equal(e.keepaliveTimeoutMs, 121_500);
  // -m is the whole process: the engine gets (m - 256 MiB) / 5, at least m / 10
  const budget = Math.floor(64 * 1024 * 1024 / 10);
  assert.equal(e.maxMemoryBytes, budget);
  assert.equal(e.memoryBudgetBytes, budget);
  assert.equal(e.maxSessions, defaultMaxSessions(budget));
  assert.equal(e.maxFlows, defaultMaxFlows(budget));
  assert.equal(e.maxPps, 0);
  assert.equal(e.copies, 2);
  assert.deepEqual(e.clientIps, ["10.9.0.1"]);
});

Deno.test("deadline timer: one pending timeout at the earliest deadline", async () => {
  let deadline: number | undefined = Date.now() + 20;
  let fired = 0;
  const t = new DeadlineTimer(() => deadline, () => {
    fired++;
    deadline = fired < 3 ? Date.now() + 5 : undefined;
  });
  t.arm();
  t.arm(); // same deadline: no second timeout
  // "Eventually": three deadlines of 20 + 5 + 5 ms; 10 s leaves room for a loaded runner and
  // the loop ends as soon as the third fires. A timer that never re-arms still fails here.
  const until = Date.now() + 10_000;
  while (fired < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  assert.equal(fired, 3);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(fired, 3);
  t.cancel();
});

Deno.test("segments larger than the MTU are split; FIN/PSH only on the last piece", () => {
  const v4 = new FakeSender();
  const r = new Replicator({
    v4,
    v6: null,
    log: new Logger(() => {}, () => 0),
    now: () => 0,
    mtu: 1500,
  });
  const payload = Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
  r.send({
    src: ep({ addr: "192.168.1.10", port: 40000 }),
    dst: ep({ addr: "10.0.0.2", port: 80 }),
    seq: 0xffffff00,
    ack: 5,
    flags: 0x19, // FIN PSH ACK
    window: 100,
    options: { timestamp: { tsval: 1, tsecr: 2 } },
    payload,
    ipId: 0xfffe,
  });
  r.flush();
  assert.equal(r.counters.split, 1);
  const p = new ParsedTcp();
  const pieces = v4.sent.map((b) => {
    assert.ok(b.length <= 1500, `packet of ${b.length} bytes`);
    assert.equal(parseIpTcp(b, 0, p), null);
    return { seq: p.seq, flags: p.flags, ipId: p.ipId, data: p.payload().slice() };
  });
  assert.equal(pieces.length, 3);
  assert.deepEqual(pieces.map((x) => x.flags), [0x10, 0x10, 0x19]);
  assert.deepEqual(pieces.map((x) => x.ipId), [0xfffe, 0xffff, 0]);
  let seq = 0xffffff00;
  const joined: number[] = [];
  for (const x of pieces) {
    assert.equal(x.seq, seq);
    seq = (seq + x.data.length) >>> 0;
    joined.push(...x.data);
  }
  assert.deepEqual(joined, [...payload]);
});

Deno.test("modules: the online server's packets of a module transfer go to engine.onOnline, never replayed", () => {
  const online: { src: number; dst: number; payload: string; len: number }[] = [];
  const r = new Replicator({
    v4: new FakeSender(),
    v6: new FakeSender(),
    log: new Logger(() => {}, () => 0),
    now: () => 0,
    moduleOnline: moduleOnlineOf([
      {
        online: { addr: "", port: 80 },
        target: { addr: "10.0.0.2", port: 8080 },
        module: postgresModule,
      },
      { online: { addr: "", port: 81 }, target: { addr: "10.0.0.2", port: 8081 } },
    ]),
  });
  const engine = new EchoEngine(r);
  const withOnline = Object.assign(engine, {
    onOnline(seg: CapturedSegment, _now: number, len?: number) {
      online.push({
        src: seg.src.port,
        dst: seg.dst.port,
        payload: new TextDecoder().decode(seg.payload),
        len: len ?? -1,
      });
    },
  });
  r.attach(withOnline);
  // client → server: replayed as before
  r.onFrame(packet({ payload: "Q" }), LinkType.RAW, 0, 1);
  // production's reply on the module transfer: to onOnline only
  r.onFrame(
    packet({ src: "10.0.0.1", dst: "192.168.1.10", srcPort: 80, dstPort: 40000, payload: "R" }),
    LinkType.RAW,
    0,
    2,
  );
  // a server packet of the transfer without a module: neither replayed nor given to modules
  r.onFrame(
    packet({ src: "10.0.0.1", dst: "192.168.1.10", srcPort: 81, dstPort: 40000, payload: "x" }),
    LinkType.RAW,
    0,
    3,
  );
  assert.equal(engine.captured.length, 1, "only the client's packet is replayed");
  assert.deepEqual(online, [{ src: 80, dst: 40000, payload: "R", len: 1 }]);
  assert.equal(r.counters.moduleAnswers, 1);
});

Deno.test("a session's route is written before its SYN leaves, also when a full batch goes out in the middle of a drain", () => {
  // intercept holds a target's SYN-ACK whose CLIENT_ADD it has not read yet (its delay queue):
  // the routes queued so far go out before any batch of packets does
  const routesOut = new Set<number>(), queued: number[] = [];
  const late: number[] = [];
  /** Like lib/io's BatchSender: `capacity` slots, the next slot sends a full batch first. */
  class Batched extends FakeSender {
    readonly capacity = 3;
    override slot(len: number): Uint8Array {
      if (this.pending >= this.capacity) this.flush();
      return super.slot(len);
    }
    override flush(): number {
      const p = new ParsedTcp();
      for (const s of this.slots) {
        assert.equal(parseIpTcp(s, 0, p), null);
        if (p.flags & 0x02 && !routesOut.has(p.srcPort)) late.push(p.srcPort);
      }
      return super.flush();
    }
  }
  const v4 = new Batched();
  const r = new Replicator({
    v4,
    v6: null,
    log: new Logger(() => {}, () => 0),
    now: () => 0,
    routes: {
      addRoute: (c) => (queued.push(c.port), true),
      delRoute: () => true,
      flush: () => {
        for (const port of queued.splice(0)) routesOut.add(port);
      },
    },
  });
  r.attach(new EchoEngine(r));
  // one capture drain: 8 new connections (a SYN and a request each), then the drain's flush
  for (let i = 0; i < 8; i++) {
    r.onFrame(packet({ srcPort: 41000 + i, flags: 0x02 }), LinkType.RAW, 0, 1);
    r.onFrame(packet({ srcPort: 41000 + i, payload: "x" }), LinkType.RAW, 0, 1);
  }
  r.flush();
  assert.deepEqual(late, [], "SYNs sent before their route was written");
  assert.equal(v4.sent.length, 16);
  assert.equal(routesOut.size, 8, "the replicator's flush writes the routes too");
});
