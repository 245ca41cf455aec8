/**
 * Protocol modules in the engine (lib/engine/module_bridge.ts): toy modules defined here run
 * against the simulated target on the fake clock. What the target's application receives is
 * checked byte for byte (the simulated TCP only accepts in-order bytes, so a hole or an
 * overlap in the replayed sequence space would stall or corrupt it).
 */
import assert from "node:assert/strict";
import { Scenario, type ScenarioOptions } from "../sim/harness.ts";
import { onlineConnection, requestText } from "../sim/online.ts";
import type { Exchange } from "../sim/online.ts";
import type { TargetBehaviour } from "../sim/target.ts";
import type {
  ModuleContext,
  ModuleName,
  ModuleOutput,
  ModuleSession,
  ProtocolModule,
} from "../../lib/modules/module.ts";
import type { ReplySegment } from "../../lib/engine/mod.ts";
import { ACK, SYN } from "../../lib/engine/mod.ts";
import {
  MAX_PENDING_SEGMENTS,
  ModuleBridge,
  ModuleHost,
  NO_MODULE_OPTIONS,
} from "../../lib/engine/module_bridge.ts";
import { ClientStream } from "../../lib/engine/stream.ts";
import { endpointOf } from "../../lib/engine/endpoint.ts";

const client = { addr: "192.0.2.10", port: 40000 };
const server = { addr: "198.51.100.1", port: 80 };
const enc = new TextEncoder();
const dec = new TextDecoder();
const TOY = "toy" as ModuleName;

function exchanges(n: number, len = 200): Exchange[] {
  return Array.from({ length: n }, (_, i) => ({ id: i + 1, responseLength: len + i * 13 }));
}

/** A module from a per-session factory. */
function toy(
  open: (ctx: ModuleContext, out: ModuleOutput) => ModuleSession,
  counters: string[] = [],
  replyPrefix = 128,
): ProtocolModule {
  return { name: TOY, counters, replyPrefix, open };
}

/**
 * Reply payload of the simulated target, made up: byte i of a connection's answer stream is
 * `i & 0xff`. `prefix` bytes of each segment are handed to the engine.
 */
function payloadPrefixes(prefix: number): (r: ReplySegment) => void {
  const iss = new Map<number, number>();
  return (r) => {
    if (r.flags & SYN && r.flags & ACK) iss.set(r.dst.port, r.seq);
    const base = iss.get(r.dst.port);
    if (r.payloadLength === 0 || base === undefined) return;
    const off = (r.seq - base - 1) >>> 0;
    const n = Math.min(prefix, r.payloadLength);
    r.payloadPrefix = Uint8Array.from({ length: n }, (_, k) => (off + k) & 0xff);
  };
}

function scenario(
  module: ProtocolModule,
  behaviour: TargetBehaviour = {},
  opts: ScenarioOptions = {},
  extra: Partial<ConstructorParameters<typeof Scenario>[0]> = {},
): Scenario {
  return new Scenario(
    {
      transfers: [{
        online: { addr: "", port: 80 },
        target: { addr: "10.9.0.2", port: 8080 },
        module,
      }],
      ...extra,
    },
    behaviour,
    opts,
  );
}

/** Splits the client stream into lines and hands each complete line to `line`. */
function lineModule(
  line: (text: string, out: ModuleOutput, ctx: ModuleContext) => void,
  calls?: { client: number },
): ProtocolModule {
  return toy((ctx, out) => {
    let buf = "";
    return {
      client(data) {
        if (calls) calls.client++;
        buf += dec.decode(data);
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          line(buf.slice(0, nl + 1), out, ctx);
          buf = buf.slice(nl + 1);
        }
      },
      target() {},
      targetGap() {},
    };
  }, ["lines"]);
}

/** The request lines with their padding replaced: shorter for odd ids, longer for even. */
function rewritten(e: Exchange): string {
  return `REQ ${e.id} ${e.responseLength} ${e.id % 2 ? "s" : "L".repeat(700)}\n`;
}

function rewriteLine(text: string): string {
  const m = /^REQ (\d+) (\d+) /.exec(text)!;
  return rewritten({ id: Number(m[1]), responseLength: Number(m[2]) });
}

Deno.test("module rewrite: requests grow and shrink, the target gets exactly the new bytes", () => {
  const ex = exchanges(6);
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: ex,
  });
  const sc = scenario(lineModule((t, out, ctx) => {
    ctx.count("lines");
    out.send(enc.encode(rewriteLine(t)));
  }));
  sc.feed(tr.segments);
  sc.run(60_000);
  assert.deepEqual(sc.target.streams(), [ex.map(rewritten).join("")]);
  const s = sc.engine.stats;
  assert.equal(s.requests.captured, 6);
  assert.equal(s.requests.answered, 6);
  assert.equal(s.sessions.closed, 1);
  assert.equal(s.lost.module, 0);
  assert.equal(s.queued_bytes, 0);
  assert.equal(s.modules.toy.sessions, 1);
  assert.equal(s.modules.toy.lines, 6);
  assert.equal(s.modules.toy.failed, 0);
  // Turn-taking still holds on the rewritten stream: request k+1 after answer k.
  const reqs = sc.target.requests;
  for (let i = 1; i < reqs.length; i++) assert.ok(reqs[i].at >= reqs[i - 1].answerEndAt!);
  // The client's FIN went after the last rewritten byte and the close was clean.
  assert.ok(sc.events.some((e) => e.type === "close" && e.reason === "closed"));
});

Deno.test("module rewrite: replayed bytes are retransmitted from the replayed stream", () => {
  const ex = exchanges(4);
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 77,
    serverIsn: 5000,
    start: 1000,
    exchanges: ex,
  });
  const sc = scenario(
    lineModule((t, out) => out.send(enc.encode(rewriteLine(t)))),
    { dropInbound: new Set([1, 4]) },
  );
  sc.feed(tr.segments);
  sc.run(60_000);
  assert.deepEqual(sc.target.streams(), [ex.map(rewritten).join("")]);
  assert.ok(sc.engine.stats.retransmits >= 2, `retransmits ${sc.engine.stats.retransmits}`);
  assert.equal(sc.engine.stats.requests.answered, 4);
});

Deno.test("module: holds the first request until the greeting, then sends it now", () => {
  const ex = exchanges(3);
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    greeting: 300,
    exchanges: ex,
  });
  const seen: number[] = [];
  let gaps = 0;
  let sentAt = -1;
  let sc: Scenario | undefined = undefined;
  const module = toy((_ctx, out) => {
    let held: Uint8Array[] = [];
    let greeted = 0;
    let passed = false;
    const release = () => {
      for (const h of held) out.send(h, { now: true });
      held = [];
      sentAt = sc!.now;
      out.pass();
      passed = true;
    };
    return {
      client(data) {
        held.push(data.slice());
        if (greeted >= 300 && !passed) release();
      },
      target(data) {
        seen.push(...data);
        greeted += data.length;
        if (greeted >= 300 && held.length > 0) release();
      },
      targetGap(n) {
        gaps += n;
        greeted += n;
        if (greeted >= 300 && held.length > 0) release();
      },
    };
  });
  // The target greets later than the online server did: the engine alone would wait too,
  // but here the module does the waiting (and could have rewritten the request with it).
  sc = scenario(module, { greeting: 300 }, { mapReply: payloadPrefixes(100) });
  sc.feed(tr.segments);
  sc.run(60_000);
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  // Each greeting segment's first 100 bytes were seen, in order, the rest were gaps.
  assert.ok(seen.length >= 100);
  assert.equal(seen.length + gaps, 300);
  assert.deepEqual(seen.slice(0, 100), Array.from({ length: 100 }, (_, i) => i));
  const first = sc.target.requests[0];
  assert.ok(first.at >= sentAt && sentAt > 0);
  assert.equal(sc.engine.stats.modules.toy.passed, 1);
  assert.equal(sc.engine.stats.modules.toy.reply_gap_bytes, gaps);
  assert.equal(sc.engine.stats.requests.answered, 3);
});

Deno.test("module: now releases a turn the target has not answered for; newTurn splits one", () => {
  const ex = exchanges(3);
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: ex,
  });
  // Each request is sent in two halves, the second as a turn of its own.
  const split = lineModule((t, out) => {
    const b = enc.encode(t);
    out.send(b.subarray(0, 5));
    out.send(b.subarray(5), { newTurn: true });
  });
  const a = scenario(split);
  a.feed(tr.segments);
  a.run(60_000);
  assert.deepEqual(a.target.streams(), [tr.bytes]);
  assert.equal(a.engine.stats.requests.captured, 6);
  // The answer to a request ends at the second half; the first half of the next request
  // is paced on it: request k+1's line reaches the target after answer k.
  const reqs = a.target.requests;
  for (let i = 1; i < reqs.length; i++) assert.ok(reqs[i].at >= reqs[i - 1].answerEndAt!);

  // A target that never answers request 1: without `now` request 2 waits for the no-answer
  // fallback (3 s); sent with `now` it goes at once.
  const noAnswer = { noAnswerIds: new Set([1]) };
  const times = (now: boolean) => {
    const sc = scenario(lineModule((t, out) => out.send(enc.encode(t), { now })), noAnswer);
    sc.feed(tr.segments);
    sc.run(60_000);
    assert.deepEqual(sc.target.streams(), [tr.bytes]);
    return sc.target.requests[1].at - sc.target.requests[0].at;
  };
  const paced = times(false);
  const immediate = times(true);
  assert.ok(paced >= 3000, `paced ${paced}`);
  assert.ok(immediate < 50, `immediate ${immediate}`);
});

Deno.test("module pass(): the rest of the session is replayed unchanged, the module not called", () => {
  const ex = exchanges(5);
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 0xfffffff0, // the sequence numbers wrap inside the session
    serverIsn: 5000,
    start: 1000,
    exchanges: ex,
  });
  const calls = { client: 0 };
  // The first line is rewritten (longer), then the module steps aside.
  const module = lineModule((t, out) => {
    out.send(enc.encode(rewriteLine(t).replace("s\n", "first-one-longer\n")));
    out.pass();
  }, calls);
  const sc = scenario(module);
  sc.feed(tr.segments);
  sc.run(60_000);
  const first = rewriteLine(requestText(ex[0])).replace("s\n", "first-one-longer\n");
  assert.deepEqual(sc.target.streams(), [first + tr.requests.slice(1).join("")]);
  assert.equal(calls.client, 1);
  assert.equal(sc.engine.stats.modules.toy.passed, 1);
  assert.equal(sc.engine.stats.requests.answered, 5);
  assert.equal(sc.engine.stats.queued_bytes, 0);
});

Deno.test("module pass(): the event tells where the unchanged replay starts and its offset", () => {
  // a module that passes in the middle of a chunk and sends that chunk's rest after passing
  // (the offset is the one of the first chunk replayed as it is, not of the pass call)
  for (const clientIsn of [1000, 0xfffffff0]) {
    const ex = exchanges(4);
    const tr = onlineConnection({
      client,
      server,
      clientIsn,
      serverIsn: 5000,
      start: 1000,
      exchanges: ex,
    });
    const module = toy((_ctx, out) => ({
      client(data) {
        out.pass();
        const text = dec.decode(data);
        out.send(enc.encode(text.replace(/ x+\n/, " a-longer-login-proof\n")));
      },
      target() {},
      targetGap() {},
    }));
    const sc = scenario(module);
    sc.feed(tr.segments);
    sc.run(60_000);
    const login = requestText(ex[0]).replace(/ x+\n/, " a-longer-login-proof\n");
    const replayed = login + tr.requests.slice(1).join("");
    assert.deepEqual(sc.target.streams(), [replayed]);
    const passes = sc.events.filter((e) => e.type === "pass");
    assert.equal(passes.length, 1);
    const p = passes[0];
    const first = (clientIsn + 1 + requestText(ex[0]).length) >>> 0; // request 2, captured
    assert.equal(p.seq, first);
    assert.equal(p.offset, login.length - requestText(ex[0]).length);
    assert.equal(p.copy, 0);
    assert.equal(p.original?.client.port, client.port);
    assert.equal(p.original?.server.port, server.port);
    assert.ok(p.client.port > 0 && p.target.port === 8080);
    // every later request went out at its captured sequence number + offset
    const req2 = sc.sent.find((o) => dec.decode(o.payload).startsWith("REQ 2 "));
    assert.equal(req2?.seq, (first + p.offset!) >>> 0);
  }
  // a module that never passes: no event
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1,
    serverIsn: 5000,
    start: 1000,
    exchanges: exchanges(2),
  });
  const sc = scenario(toy((_ctx, out) => ({
    client: (d) => out.send(d),
    target() {},
    targetGap() {},
  })));
  sc.feed(tr.segments);
  sc.run(60_000);
  assert.equal(sc.engine.stats.requests.answered, 2);
  assert.deepEqual(sc.events.filter((e) => e.type === "pass"), []);
});

Deno.test("module fail(): mid-stream pick-up skipped with its reason, counted, logged once", () => {
  const logs: string[] = [];
  const noLogin = toy((_ctx, out) => ({
    client(data) {
      out.fail("no_login", `no startup message (first byte ${data[0]})`);
    },
    target() {},
    targetGap() {},
  }));
  const traces = Array.from({ length: 15 }, (_, k) =>
    onlineConnection({
      client: { addr: client.addr, port: 40000 + k },
      server,
      clientIsn: 1000 * k,
      serverIsn: 5000,
      start: 1000 + k,
      syn: false,
      exchanges: exchanges(2),
    }));
  const sc = scenario(noLogin, {}, { log: (l) => logs.push(l) });
  for (const tr of traces) sc.feed(tr.segments);
  sc.run(60_000);
  const s = sc.engine.stats;
  assert.deepEqual(sc.target.streams().filter((x) => x !== ""), []);
  assert.equal(s.handshakes.synthesized >= 15, true);
  assert.equal(s.modules.toy.no_login >= 15, true);
  assert.equal(s.modules.toy.failed, s.modules.toy.no_login);
  assert.equal(s.lost.module, 0); // nothing was replayed: nothing lost, nothing captured
  assert.equal(s.requests.captured, 0);
  assert.equal(s.sessions.active, 0);
  assert.equal(s.queued_bytes, 0);
  // One line per failure, at most 10 a minute.
  assert.equal(logs.length, 10);
  assert.match(
    logs[0],
    /^module toy: 192\.0\.2\.10:400\d\d -> 10\.9\.0\.2:8080: no_login: no startup/,
  );
});

Deno.test("module fail() after replaying: the target is reset, its requests lost.module", () => {
  const ex = exchanges(4);
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: ex,
  });
  let n = 0;
  const sc = scenario(lineModule((t, out) => {
    if (++n === 3) out.fail("Auth Failed!", "bad password for user 'x'");
    else out.send(enc.encode(t));
  }));
  sc.feed(tr.segments);
  sc.run(60_000);
  const s = sc.engine.stats;
  assert.deepEqual(sc.target.streams(), [tr.requests.slice(0, 2).join("")]);
  assert.equal(s.modules.toy.invalid_reason, 1); // not snake_case: counted under a fixed key
  assert.equal(s.requests.captured, 2);
  assert.equal(s.requests.answered + s.lost.module, 2);
  assert.ok(sc.target.resetsReceived >= 1);
  assert.ok(sc.events.some((e) => e.type === "close" && e.reason === "module"));
});

Deno.test("module that throws: the session fails (module_error), the process does not", () => {
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: exchanges(2),
  });
  const sc = scenario(toy(() => ({
    client() {
      throw new Error("boom");
    },
    target() {},
    targetGap() {},
  })));
  sc.feed(tr.segments);
  sc.run(60_000);
  assert.equal(sc.engine.stats.modules.toy.module_error, 1);
  assert.equal(sc.engine.stats.sessions.active, 0);
});

Deno.test("module clientClosed(): flush what is held, then the FIN follows it", () => {
  const ex = exchanges(3);
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: ex,
    halfClose: true,
  });
  let closed = 0;
  const sc = scenario(toy((_ctx, out) => {
    const held: Uint8Array[] = [];
    return {
      client(data) {
        held.push(data.slice());
        if (held.length < 3) out.send(held.shift()!);
      },
      target() {},
      targetGap() {},
      clientClosed() {
        closed++;
        for (const h of held) out.send(h, { now: true });
      },
    };
  }));
  sc.feed(tr.segments);
  sc.run(60_000);
  assert.equal(closed, 1);
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assert.equal(sc.target.accepted[0].clientFin, true);
});

Deno.test("module sessions only for transfers with a module; others pay nothing", () => {
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: exchanges(2),
  });
  const sc = new Scenario({});
  sc.feed(tr.segments.slice(0, 3));
  sc.run(1010);
  for (const s of sc.engine.liveSessions.values()) assert.equal(s.mod, undefined);
  assert.deepEqual(sc.engine.stats.modules, {});
});

Deno.test("module memory: captured, replayed and held reply bytes are the session's queued bytes", () => {
  const ex = exchanges(3, 100);
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: ex,
  });
  // Each request is sent three times (the target answers each copy), so the replayed stream
  // holds more than was captured; a slow reader keeps it queued for a while.
  const sc = scenario(
    lineModule((t, out) => {
      for (let i = 0; i < 3; i++) out.send(enc.encode(t), { now: true });
    }),
    { readDelayMs: 50, rcvBuf: 256, wscale: 0 },
  );
  sc.feed(tr.segments);
  let peak = 0;
  for (let t = 1000; t < 5000; t += 1) {
    sc.run(t);
    const st = sc.engine.stats;
    let held = 0;
    for (const s of sc.engine.liveSessions.values()) held += s.mod!.bytes;
    assert.equal(st.queued_bytes, held, `at ${t}`);
    peak = Math.max(peak, held);
  }
  sc.run(60_000);
  assert.ok(peak > 0);
  assert.equal(sc.engine.stats.queued_bytes, 0);
  assert.equal(sc.target.streams()[0], ex.map((e) => requestText(e).repeat(3)).join(""));
});

Deno.test("module memory: a module that floods its session hits the per-session limit", () => {
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: exchanges(2),
  });
  const sc = scenario(
    lineModule((t, out) => out.send(enc.encode(t.repeat(5000)))),
    { readDelayMs: 10_000, rcvBuf: 1000 },
    {},
    { maxSessionBytes: 64 * 1024 },
  );
  sc.feed(tr.segments);
  sc.run(60_000);
  assert.ok(sc.events.some((e) => e.type === "close" && e.reason === "queue_overflow"));
  assert.equal(sc.engine.stats.queued_bytes, 0);
});

// ---------------------------------------------------------------------------------------
// Reply reassembly, directly on the bridge

function bridge(prefix = 1460) {
  const got: number[] = [];
  const gaps: number[] = [];
  const events: string[] = [];
  const module = toy(
    () => ({
      client() {},
      target(data) {
        got.push(...data);
        events.push(`t${data.length}`);
      },
      targetGap(n) {
        gaps.push(n);
        events.push(`g${n}`);
      },
    }),
    [],
    prefix,
  );
  const host = new ModuleHost(module, NO_MODULE_OPTIONS, {}, () => {});
  const b = new ModuleBridge(host, new ClientStream(0), () => "s", 0);
  b.targetStart(0xfffffff0);
  return { b, got, gaps, events, host };
}

/** Reply bytes at target offset `off` (stream byte i = i & 0xff) as a prefix of `known`. */
function seg(off: number, len: number, known = len) {
  return {
    seq: (0xfffffff0 + off) >>> 0,
    len,
    prefix: Uint8Array.from({ length: Math.min(known, len) }, (_, k) => (off + k) & 0xff),
  };
}

function deliver(b: ModuleBridge, s: ReturnType<typeof seg>) {
  b.target(s.seq, s.len, s.prefix);
}

Deno.test("reply reassembly: out of order, duplicates and overlaps come out in order once", () => {
  const { b, got, gaps } = bridge();
  deliver(b, seg(20, 10));
  deliver(b, seg(10, 10));
  assert.equal(got.length, 0); // waiting for bytes 0..9
  assert.equal(b.bytes, 20); // held bytes are counted
  deliver(b, seg(0, 10));
  deliver(b, seg(0, 10)); // duplicate
  deliver(b, seg(5, 20)); // overlap: only 30.. would be new, and it ends at 25
  deliver(b, seg(25, 15)); // partly new: 30..39
  deliver(b, seg(20, 10)); // old
  assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => i & 0xff));
  assert.deepEqual(gaps, []);
  assert.equal(b.bytes, 0);
});

Deno.test("reply reassembly: bytes beyond the prefix are gaps, in their place", () => {
  const { b, got, events, host } = bridge(8);
  deliver(b, seg(0, 20, 8));
  deliver(b, seg(20, 4, 8));
  deliver(b, seg(24, 10, 0)); // no prefix at all
  deliver(b, seg(30, 10, 8)); // overlaps the gap: known 34..37 are new, 38..39 a gap
  assert.deepEqual(events, ["t8", "g12", "t4", "g10", "t4", "g2"]);
  assert.deepEqual(got.slice(0, 8), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(got.slice(12), [34, 35, 36, 37]);
  assert.equal(host.stats.reply_gap_bytes, 24);
});

Deno.test("reply reassembly: a hole that never fills becomes a gap (bounded waiting)", () => {
  const { b, got, events } = bridge();
  for (let i = 0; i <= MAX_PENDING_SEGMENTS; i++) deliver(b, seg(100 + i * 10, 10));
  assert.equal(events[0], "g100");
  assert.equal(got.length, (MAX_PENDING_SEGMENTS + 1) * 10);
  assert.equal(b.bytes, 0);
  deliver(b, seg(0, 100)); // the lost segment shows up late: already given up
  assert.equal(got.length, (MAX_PENDING_SEGMENTS + 1) * 10);
});

Deno.test("module host: counters must be declared, reasons are bounded", () => {
  assert.throws(
    () =>
      new ModuleHost(toy(() => ({} as ModuleSession), ["passed"]), NO_MODULE_OPTIONS, {}, () => {}),
    /bad counter name "passed"/,
  );
  const host = new ModuleHost(
    toy(() => ({} as ModuleSession), ["a"]),
    NO_MODULE_OPTIONS,
    {},
    () => {},
  );
  host.count("a", 2);
  host.count("undeclared", 1);
  assert.equal(host.stats.a, 2);
  assert.equal(host.stats.undeclared, undefined);
  for (let i = 0; i < 40; i++) host.failed(ModuleHost.reasonOf(`r${i}`));
  assert.equal(host.stats.failed, 40);
  assert.equal(host.stats.other, 8);
  assert.equal(host.stats.r0, 1);
});

Deno.test("module context: random is injectable, credentials and read-only are passed", () => {
  let ctx: ModuleContext | undefined;
  const host = new ModuleHost(
    toy((c) => {
      ctx = c;
      return { client() {}, target() {}, targetGap() {} };
    }),
    {
      credentials: { password: (u) => (u === "app" ? "pw" : undefined) },
      readOnly: true,
      random: (b) => b.fill(7),
    },
    {},
    () => {},
  );
  host.open(new ClientStream(0), () => "s", 0);
  const nonce = new Uint8Array(4);
  ctx!.random(nonce);
  assert.deepEqual([...nonce], [7, 7, 7, 7]);
  assert.equal(ctx!.credentials.password("app"), "pw");
  assert.equal(ctx!.readOnly, true);
  // The default source is the system's (not all zeros, 2^-128 chance to fail).
  let dflt: ModuleContext | undefined;
  new ModuleHost(
    toy((c) => {
      dflt = c;
      return { client() {}, target() {}, targetGap() {} };
    }),
    NO_MODULE_OPTIONS,
    {},
    () => {},
  ).open(new ClientStream(0), () => "s", 0);
  const r = new Uint8Array(16);
  dflt!.random(r);
  assert.ok(r.some((x) => x !== 0));
});

/** Requests the simulated target answered (its own record), and the engine's count. */
function answeredCounts(sc: Scenario): { target: number; engine: number } {
  const target = sc.target.requests.filter((r) => r.answerEndAt !== undefined).length;
  return { target, engine: sc.engine.stats.requests.answered };
}

Deno.test("answered, turns released at once: the target's ACKs delimit the answers", () => {
  // The replies reach tcpcopy late (a slow tunnel): each request is released, at the
  // online client's pace, before the target's answer to the one before it has arrived.
  const ex = exchanges(12).map((e) => ({ ...e, thinkMs: 5 }));
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: ex,
  });
  const nowLines = lineModule((t, out) => out.send(enc.encode(t), { now: true }));
  const slow = { replyLatencyMs: 80 };
  const a = scenario(nowLines, {}, slow);
  a.feed(tr.segments);
  a.run(60_000);
  assert.deepEqual(a.target.streams(), [tr.bytes]);
  assert.deepEqual(answeredCounts(a), { target: 12, engine: 12 });

  // Never more than the target answered: requests 3, 4 and 9 get no answer.
  const b = scenario(nowLines, { noAnswerIds: new Set([3, 4, 9]) }, slow);
  b.feed(tr.segments);
  b.run(60_000);
  const cb = answeredCounts(b);
  assert.equal(cb.target, 9);
  assert.ok(cb.engine <= 9 && cb.engine >= 8, `engine ${cb.engine}`);

  // A slow target (answers after the next request has arrived): the windows shift, the count
  // stays at or below the truth.
  const c = scenario(nowLines, { answerDelayMs: 20, noAnswerIds: new Set([12]) }, slow);
  c.feed(tr.segments);
  c.run(60_000);
  const cc = answeredCounts(c);
  assert.equal(cc.target, 11);
  assert.ok(cc.engine <= 11, `engine ${cc.engine}`);
});

Deno.test("answered, a held batch sent at once: never more than the target answered", () => {
  const ex = exchanges(6).map((e) => ({ ...e, thinkMs: 5 }));
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: ex,
  });
  // Holds the first four lines, then sends them together; later lines go one by one.
  const batch = lineModule((() => {
    const held: Uint8Array[] = [];
    let lines = 0;
    return (t: string, out: ModuleOutput) => {
      held.push(enc.encode(t));
      if (++lines < 4) return;
      for (const h of held.splice(0)) out.send(h, { now: true, newTurn: true });
    };
  })());
  const sc = scenario(batch, {}, { replyLatencyMs: 80 });
  sc.feed(tr.segments);
  sc.run(60_000);
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  const c = answeredCounts(sc);
  assert.equal(c.target, 6);
  // Pipelined requests that reach the target in one window count one answer there.
  assert.ok(c.engine >= 3 && c.engine <= 6, `engine ${c.engine}`);
});

// ---- production's replies (onOnline): the module's view of the online server ----

/** Holds every client byte until production's stream says "OK\n" (then sends and passes). */
function gateModule(seen: string[]): ProtocolModule {
  return toy((_ctx, out) => {
    const held: Uint8Array[] = [];
    let text = "";
    return {
      client(data) {
        held.push(data.slice());
      },
      target() {},
      targetGap() {},
      online(data) {
        text += dec.decode(data);
        seen.push(dec.decode(data));
        if (text.startsWith("NO")) {
          out.fail("online_login_failed", "production said no");
          return true;
        }
        if (!text.startsWith("OK\n")) return false;
        for (const h of held) out.send(h, { now: true });
        out.pass();
        return true;
      },
      onlineGap(n) {
        seen.push(`gap ${n}`);
      },
    };
  }, ["online_login_failed"]);
}

function serverSeg(seq: number, flags: number, text: string, timeMs: number) {
  return {
    src: endpointOf(server.addr, server.port),
    dst: endpointOf(client.addr, client.port),
    seq: seq >>> 0,
    ack: 0,
    flags,
    window: 500,
    options: {},
    payload: enc.encode(text),
    timeMs,
  };
}

Deno.test("module online(): production's segments reach the session in order, until it passes", () => {
  for (const verdict of ["OK\n", "NO\n"]) {
    const ex = exchanges(3);
    const tr = onlineConnection({
      client,
      server,
      clientIsn: 1000,
      serverIsn: 5000,
      start: 1000,
      exchanges: ex,
    });
    const seen: string[] = [];
    const sc = scenario(gateModule(seen));
    sc.feed(tr.segments);
    // production's SYN-ACK, then its verdict in two segments, the second first; a later
    // segment after the verdict is not delivered
    sc.at(1001, () => sc.engine.onOnline(serverSeg(5000, SYN | ACK, "", 1001), sc.now));
    sc.at(1002, () => sc.engine.onOnline(serverSeg(5002, ACK, verdict.slice(1), 1002), sc.now));
    sc.at(1003, () => sc.engine.onOnline(serverSeg(5001, ACK, verdict[0], 1003), sc.now));
    sc.at(1004, () => sc.engine.onOnline(serverSeg(5004, ACK, "more", 1004), sc.now));
    sc.run(60_000);
    assert.deepEqual(seen, [verdict[0], verdict.slice(1)], verdict);
    const st = sc.engine.stats;
    if (verdict === "OK\n") {
      assert.deepEqual(sc.target.streams(), [ex.map(requestText).join("")]);
      assert.equal(st.modules.toy.passed, 1);
    } else {
      assert.deepEqual(sc.target.streams().join(""), "", "nothing reached the target");
      assert.equal(st.modules.toy.online_login_failed, 1);
    }
  }
});

Deno.test("module pass(): requests held for production's verdict are all answered before the next one goes", () => {
  // production's verdict ("OK\n", its first 3 bytes) comes after the client's third request:
  // the module holds requests 1-3, sends them at once with its pass; request 4 (the first
  // replayed as it is) waits until the target answered as many bytes as production did to
  // all three (40,000 + 40,000 + 200: several windows), not only to the last one (200: it
  // went out in the middle of request 1's answer)
  const ex = [
    { id: 1, responseLength: 40_000 },
    { id: 2, responseLength: 40_000 },
    { id: 3, responseLength: 200 },
    { id: 4, responseLength: 100 },
  ];
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    greeting: 3,
    exchanges: ex,
  });
  const fourth = tr.segments.find((s) => dec.decode(s.payload).startsWith("REQ 4 "))!;
  const seen: string[] = [];
  const sc = scenario(gateModule(seen));
  sc.feed(tr.segments);
  const verdictAt = fourth.timeMs - 0.1; // (request 4 comes while 1-3 are answered)
  sc.at(1000.5, () => sc.engine.onOnline(serverSeg(5000, SYN | ACK, "", 1000.5), sc.now));
  sc.at(verdictAt, () => sc.engine.onOnline(serverSeg(5001, ACK, "OK\n", verdictAt), sc.now));
  sc.run(60_000);
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  const reqs = sc.target.requests;
  assert.equal(reqs.length, 4);
  // (the simulated target answers in bursts a round trip apart: request 4 reached it after
  // the last one, not with it)
  for (const r of reqs.slice(0, 3)) assert.ok(r.answerEndAt! < reqs[3].at, JSON.stringify(reqs));
  const pass = sc.events.find((e) => e.type === "pass")!;
  assert.equal(pass.seq, fourth.seq);
  assert.equal(pass.offset, 0); // (the held bytes went out as they were)
  assert.equal(sc.engine.stats.requests.answered, sc.engine.stats.requests.captured);
});
