/**
 * The tunnel as an attacker on the same network sees it: plain Deno sockets against a running
 * tunnel server on loopback (no privileges), next to a real TunnelClient (tcpcopy's side).
 * Route hijack, stolen payload bytes, wrong or replayed secrets, idle and flooding sockets,
 * route floods, a peer that never reads, garbage. Figures (RSS, times) are measured by
 * bench/tunnel_adversary.ts, not asserted here.
 */
import assert from "node:assert/strict";
import { TunnelServer, type TunnelServerOptions } from "../../lib/tunnel/server.ts";
import { TunnelClient } from "../../lib/tunnel/client.ts";
import {
  ClientMessageDecoder,
  encodeAuth,
  encodeExtHello,
  encodeHeartbeat,
  encodeHello,
  encodeRoute,
} from "../../lib/tunnel/messages.ts";
import { Cap, EXT_VERSION } from "../../lib/tunnel/negotiation.ts";
import { encodeChallenge, FrameKind, ServerStreamDecoder } from "../../lib/tunnel/replies.ts";
import { F, segment } from "../helpers/tunnel_fixtures.ts";
import {
  clientProof,
  importSecret,
  randomBytes,
  serverProof,
  timingSafeEqual,
} from "../../lib/tunnel/auth.ts";
import { AllowList } from "../../lib/tunnel/access.ts";
import { EventLog } from "../../lib/tunnel/event_log.ts";
import { readSecretFile } from "../../lib/tunnel/secret_file.ts";
import { until } from "../helpers/until.ts";

/** Writes every byte (Deno.Conn.write may take only part of a buffer). */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

const ep = (a: number[], port: number) => ({ addr: new Uint8Array(a), port });
const T = [10, 0, 0, 2], C = [10, 0, 0, 1];
const enc = new TextEncoder();
const SECRET = enc.encode("correct horse battery staple 42!");

function server(opts: Partial<TunnelServerOptions> = {}, logs: string[] = []): TunnelServer {
  return TunnelServer.listen({ port: 0, hostname: "127.0.0.1", log: (l) => logs.push(l), ...opts });
}

/** Reads everything the server sends until it closes the socket (or `ms` passes). */
async function drain(conn: Deno.Conn, ms = 3000): Promise<{ bytes: Uint8Array; closed: boolean }> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  let closed = false;
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch { /* closed */ }
  }, ms);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) {
        closed = true;
        break;
      }
      parts.push(buf.slice(0, n));
    }
  } catch { /* closed by the timer: the server kept it open */ }
  clearTimeout(timer);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { bytes: out, closed };
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch { /* closed */ }
}

async function realClient(
  port: number,
  got: Uint8Array[],
  secret?: CryptoKey,
  hostname = "127.0.0.1",
) {
  return await TunnelClient.connect({
    servers: [{ hostname, port }],
    connections: 2,
    secret,
    onReply: (b) => got.push(b.slice()),
    log: () => {},
  });
}

Deno.test("adversary: route hijack is refused and counted; the real tcpcopy keeps every reply", async () => {
  for (const withSecret of [false, true]) {
    const secret = withSecret ? await importSecret(SECRET) : undefined;
    const s = server({ secret });
    const got: Uint8Array[] = [];
    const client = await realClient(s.port, got, secret);
    const attacker = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    try {
      for (let p = 0; p < 4; p++) assert.ok(client.addRoute(ep(C, 40000 + p), ep(T, 8080)));
      await until(() => s.dispatcher.routes.size === 4, 3000, "routes");
      // the attacker asks for extensions and a prefix, then registers the same tuples
      await writeAll(attacker, encodeHello());
      await writeAll(attacker, encodeExtHello(EXT_VERSION, Cap.PAYLOAD_PREFIX, 128));
      for (let p = 0; p < 4; p++) {
        await writeAll(attacker, encodeRoute("add", ep(C, 40000 + p), ep(T, 8080)));
      }
      const payload = enc.encode("HTTP/1.1 200 OK\r\nSet-Cookie: session=secret\r\n\r\n");
      const replies = () => {
        for (let p = 0; p < 4; p++) {
          s.reply(segment({ src: T, dst: C, sport: 8080, dport: 40000 + p, payload }));
        }
      };
      if (withSecret) {
        // not on an allow-list, not authenticated: closed before any route
        const r = await drain(attacker);
        assert.ok(r.closed, "attacker closed");
        assert.equal(s.counters.authRequired, 1);
        replies();
      } else {
        await until(() => s.dispatcher.counters.routesContested === 4, 3000, "contested");
        replies();
        const r = await drain(attacker, 300);
        // the attacker got its EXT_ACK (prefix 0) and nothing else
        assert.equal(r.bytes.length, 4 + 8, `attacker received ${r.bytes.length} bytes`);
        assert.equal(r.bytes[0], FrameKind.EXT_ACK);
        assert.equal((r.bytes[10] << 8) | r.bytes[11], 0, "prefix 0 for a stranger");
      }
      await until(() => got.length === 4, 3000, "the real client's replies");
      assert.equal(s.dispatcher.counters.forwarded, 4);
      assert.equal(s.dispatcher.routes.size, 4);
      for (const b of got) assert.equal(b.length, 40, "our tcpcopy asked for no payload bytes");
    } finally {
      closeQuietly(attacker);
      await client.close();
      await s.close();
    }
  }
});

Deno.test("adversary: a stranger asking for a payload prefix gets 0; only an authenticated peer gets it", async () => {
  const secret = await importSecret(SECRET);
  for (const [opts, expectPrefix] of [[{}, 0], [{ secret }, 64]] as const) {
    const s = server(opts);
    const got: Uint8Array[] = [];
    const client = await TunnelClient.connect({
      servers: [{ hostname: "127.0.0.1", port: s.port }],
      connections: 1,
      prefix: 64,
      secret: "secret" in opts ? secret : undefined,
      onReply: (b) => got.push(b.slice()),
      log: () => {},
    });
    try {
      assert.equal(client.capsOf(0) & Cap.PAYLOAD_PREFIX ? 64 : 0, expectPrefix);
      client.addRoute(ep(C, 1234), ep(T, 80));
      await until(() => s.dispatcher.routes.size === 1);
      s.reply(segment({ src: T, dst: C, sport: 80, dport: 1234, payload: new Uint8Array(200) }));
      await until(() => got.length === 1);
      assert.equal(got[0].length, 40 + expectPrefix);
    } finally {
      await client.close();
      await s.close();
    }
  }
});

Deno.test("adversary: a wrong secret is refused both ways; a replayed AUTH message fails", async () => {
  const logs: string[] = [];
  const s = server({ secret: await importSecret(SECRET) }, logs);
  try {
    const wrong = await importSecret(enc.encode("not the secret, but long enough"));
    await assert.rejects(
      () => realClient(s.port, [], wrong),
      /cannot authenticate to any intercept/,
    );
    await until(() => s.counters.authFailed === 2, 3000, "two failed connections");
    assert.equal(s.connectionsOpen, 0);
    // a client with a secret refuses an intercept that has none
    const open = server({});
    await assert.rejects(() => realClient(open.port, [], wrong), /cannot authenticate/);
    await open.close();
    // replay: a proof made for one challenge does not answer another
    const id = randomBytes(16), nonce = randomBytes(32), proof = randomBytes(32);
    for (let i = 0; i < 2; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      await writeAll(c, encodeHello());
      await writeAll(c, encodeExtHello(EXT_VERSION, Cap.AUTH | Cap.PAYLOAD_PREFIX, 128));
      await new Promise((r) => setTimeout(r, 20));
      await writeAll(c, encodeAuth(id, nonce, proof));
      const r = await drain(c);
      assert.ok(r.closed);
      assert.equal(r.bytes[0], FrameKind.CHALLENGE, "got a challenge, then the door");
      assert.equal(r.bytes.length, 4 + 32, "no EXT_ACK, no records");
    }
    assert.equal(s.counters.authFailed, 4);
    assert.equal(s.counters.authOk, 0);
    // and the right secret works
    const good = await realClient(s.port, [], await importSecret(SECRET));
    assert.equal(good.connected, 2);
    assert.equal(s.counters.authOk, 2);
    await good.close();
  } finally {
    await s.close();
  }
});

Deno.test("adversary: --allow without a secret lets a C-style peer (no extension) in, others are refused at accept", async () => {
  const listed = server({ hostname: "::", allow: AllowList.parse(["127.0.0.1/32"]) as AllowList });
  const unlisted = server({ allow: AllowList.parse(["10.0.0.0/8"]) as AllowList });
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: listed.port });
    await writeAll(c, encodeHello());
    await writeAll(c, encodeRoute("add", ep(C, 5000), ep(T, 80)));
    await until(() => listed.dispatcher.routes.size === 1, 3000, "C peer's route");
    listed.reply(segment({ src: T, dst: C, sport: 80, dport: 5000, flags: F.SYN | F.ACK }));
    const frame = new Uint8Array(66);
    let have = 0;
    while (have < 66) have += (await c.read(frame.subarray(have))) ?? 66;
    assert.equal((frame[0] << 8) | frame[1], 1, "one 64-byte v6 record");
    c.close();
    // ::1 is not on the list
    const v6 = await Deno.connect({ hostname: "::1", port: listed.port });
    assert.ok((await drain(v6)).closed);
    assert.equal(listed.counters.refusedAllow, 1);
    const x = await Deno.connect({ hostname: "127.0.0.1", port: unlisted.port });
    assert.ok((await drain(x)).closed);
    assert.equal(unlisted.counters.refusedAllow, 1);
    assert.equal(unlisted.counters.accepted, 0, "nothing allocated for it");
  } finally {
    await listed.close();
    await unlisted.close();
  }
});

Deno.test("adversary: with a secret, a listed C peer needs no auth; an unlisted one is closed", async () => {
  const secret = await importSecret(SECRET);
  const s = server({
    hostname: "::",
    secret,
    allow: AllowList.parse(["127.0.0.0/8"]) as AllowList,
    idleTimeoutMs: 400,
  });
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    await writeAll(c, encodeHello());
    await writeAll(c, encodeRoute("add", ep(C, 5000), ep(T, 80)));
    await until(() => s.dispatcher.routes.size === 1, 3000, "listed C peer's route");
    const u = await Deno.connect({ hostname: "::1", port: s.port });
    await writeAll(u, encodeHello());
    await writeAll(u, encodeRoute("add", ep(C, 5001), ep(T, 80)));
    assert.ok((await drain(u)).closed);
    assert.equal(s.counters.authRequired, 1);
    // an unlisted peer that says hello and then nothing is closed by the idle timeout
    const quiet = await Deno.connect({ hostname: "::1", port: s.port });
    await writeAll(quiet, encodeHello());
    assert.ok((await drain(quiet, 3000)).closed);
    assert.equal(s.counters.idleClosed, 1);
    assert.equal(s.dispatcher.routes.size, 1);
    // the listed C peer (which never sends heartbeats) is still there
    assert.equal(s.peersConnected, 1);
    c.close();
  } finally {
    await s.close();
  }
});

Deno.test("adversary: 2,000 idle sockets are refused by the per-address cap or closed by the idle timeout; tcpcopy still connects", async () => {
  const logs: string[] = [];
  const s = server({ hostname: "::", idleTimeoutMs: 500 }, logs);
  const socks: Deno.Conn[] = [];
  try {
    let maxOpen = 0;
    // batches below the listen backlog (128): the kernel accepts every handshake
    for (let i = 0; i < 20; i++) {
      const batch = Array.from(
        { length: 100 },
        () => Deno.connect({ hostname: "127.0.0.1", port: s.port }),
      );
      socks.push(...await Promise.all(batch));
      maxOpen = Math.max(maxOpen, s.connectionsOpen);
    }
    assert.ok(maxOpen <= 32, `at most 32 from one address at once (saw ${maxOpen})`);
    // a real tcpcopy from another address connects meanwhile
    const got: Uint8Array[] = [];
    const client = await realClient(s.port, got, undefined, "::1");
    assert.equal(client.connected, 2);
    // every idle socket is refused at accept or closed by the idle timeout (they say nothing)
    const c = s.counters;
    await until(() => c.refusedPerIp + c.idleClosed === 2000, 5000, "every idle socket gone");
    assert.equal(c.accepted, c.idleClosed + 2);
    assert.equal(s.connectionsOpen, 2, "only the real tcpcopy's connections are left");
    assert.equal(client.connected, 2);
    await client.close();
    // a rate-limited log: not one line per event
    assert.ok(logs.length < 40, `${logs.length} log lines for 2,000 events`);
  } finally {
    for (const c of socks) closeQuietly(c);
    await s.close();
  }
  assert.ok(logs.some((l) => /more peer events not logged/.test(l)), logs.join("\n"));
});

Deno.test("adversary: a flood of CLIENT_ADDs from one peer stays within its quota; others' routes survive", async () => {
  const s = server({ maxPeerRoutes: 1000 });
  const got: Uint8Array[] = [];
  const client = await realClient(s.port, got);
  const a = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    client.addRoute(ep(C, 7), ep(T, 80));
    await until(() => s.dispatcher.routes.size === 1);
    await writeAll(a, encodeHello());
    const batch = new Uint8Array(14 * 1000);
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < 1000; i++) {
        const n = round * 1000 + i;
        batch.set(
          encodeRoute("add", ep([10, 9, n >> 8 & 255, n & 255], 1 + (n >> 16)), ep(T, 80)),
          i * 14,
        );
      }
      await writeAll(a, batch);
    }
    await until(
      () => s.dispatcher.counters.routesAdded + s.dispatcher.counters.routesContested >= 100_001,
      10_000,
      "adds",
    );
    assert.equal(s.dispatcher.routes.size, 1001, "1000 of the attacker's + the real one");
    assert.equal(s.dispatcher.routes.overQuota, 99_000);
    s.reply(segment({ src: T, dst: C, sport: 80, dport: 7 }));
    await until(() => got.length === 1, 3000, "the real route still works");
  } finally {
    closeQuietly(a);
    await client.close();
    await s.close();
  }
});

Deno.test("adversary: a peer that never reads keeps a bounded queue; the others keep getting replies", async () => {
  const s = server({ maxQueuedBytes: 64 * 1024 });
  const got: Uint8Array[] = [];
  const client = await realClient(s.port, got);
  const lazy = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    await writeAll(lazy, encodeHello());
    await writeAll(lazy, encodeExtHello(EXT_VERSION, Cap.HEARTBEAT, 0));
    await writeAll(lazy, encodeRoute("add", ep([10, 7, 7, 7], 1), ep(T, 80)));
    client.addRoute(ep(C, 9), ep(T, 80));
    await until(() => s.dispatcher.routes.size === 2);
    for (let i = 0; i < 1000; i++) await writeAll(lazy, encodeHeartbeat()).catch(() => {});
    const big = new Uint8Array(1400);
    for (let round = 0; round < 50; round++) {
      s.beginCycle();
      for (let i = 0; i < 2000; i++) {
        s.reply(segment({ src: T, dst: [10, 7, 7, 7], sport: 80, dport: 1, payload: big }));
      }
      s.reply(segment({ src: T, dst: C, sport: 80, dport: 9 }));
      s.endCycle();
      await new Promise((r) => setTimeout(r, 1));
    }
    await until(() => got.length === 50, 5000, "the reading client's replies");
    assert.ok(s.dispatcher.counters.droppedQueueFull > 0, "the lazy peer's records were dropped");
    const lazyConn = [...s.dispatcher.peers].find((p) =>
      p.remote.includes(`:${lazy.localAddr.port}`)
    )!;
    assert.ok(lazyConn.batcher.queuedBytes <= 64 * 1024, `queued ${lazyConn.batcher.queuedBytes}`);
  } finally {
    closeQuietly(lazy);
    await client.close();
    await s.close();
  }
});

Deno.test("adversary: garbage frames are counted and the connection closed", async () => {
  const s = server({});
  try {
    const garbage = [
      new Uint8Array(14).fill(0xff), // not a hello
      (() => {
        const b = new Uint8Array(28);
        b.set(encodeHello());
        b.fill(0x41, 14);
        return b;
      })(), // hello, then an unknown type
      (() => {
        const b = new Uint8Array(14 + 94);
        b.set(encodeHello());
        b.set(encodeAuth(randomBytes(16), randomBytes(32), randomBytes(32)), 14);
        return b;
      })(), // AUTH with no challenge
    ];
    for (const g of garbage) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      await writeAll(c, g);
      assert.ok((await drain(c)).closed);
    }
    assert.equal(s.counters.protocolErrors, 3);
    assert.equal(s.connectionsOpen, 0);
  } finally {
    await s.close();
  }
});

Deno.test("event log: a count per interval, not a line per event", () => {
  const lines: string[] = [];
  const log = new EventLog((l) => lines.push(l), { intervalMs: 1000, burst: 3 });
  for (let i = 0; i < 1000; i++) log.note(i % 2 ? "refused" : "connected", `event ${i}`, i / 10);
  assert.equal(lines.length, 3);
  log.tick(1000);
  assert.equal(lines.length, 4);
  assert.match(lines[3], /997 more peer events not logged.*refused 499, connected 498/);
  log.note("x", "after", 1001);
  assert.equal(lines[4], "after");
});

Deno.test("secret file: owner-only regular file, no symlink, at least 16 bytes; one-line errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tunnel-secret" });
  try {
    const f = `${dir}/secret`;
    await Deno.writeTextFile(f, "0123456789abcdef0123\n", { mode: 0o600 });
    await Deno.chmod(f, 0o600);
    const ok = readSecretFile(f);
    assert.ok(ok.ok && new TextDecoder().decode(ok.secret) === "0123456789abcdef0123");
    await Deno.chmod(f, 0o640);
    const grp = readSecretFile(f);
    assert.ok(
      !grp.ok && /accessible by group or others \(mode 640\); run chmod 600/.test(grp.error),
    );
    await Deno.chmod(f, 0o600);
    await Deno.symlink(f, `${dir}/link`);
    const link = readSecretFile(`${dir}/link`);
    assert.ok(!link.ok && /is a symlink/.test(link.error));
    await Deno.writeTextFile(`${dir}/short`, "short\n", { mode: 0o600 });
    await Deno.chmod(`${dir}/short`, 0o600);
    const short = readSecretFile(`${dir}/short`);
    assert.ok(!short.ok && /at least 16/.test(short.error));
    const missing = readSecretFile(`${dir}/none`);
    assert.ok(!missing.ok && !missing.error.includes("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth: proofs bind the direction, both nonces, the instance id and the request", async () => {
  const key = await importSecret(SECRET);
  const t = {
    serverNonce: randomBytes(32),
    clientNonce: randomBytes(32),
    instanceId: randomBytes(16),
    request: { extVersion: 1, caps: Cap.AUTH | Cap.IPV6, prefix: 0 },
  };
  const base = await clientProof(key, t);
  assert.equal(base.length, 32);
  assert.ok(timingSafeEqual(base, await clientProof(key, t)), "deterministic");
  const granted = { extVersion: 1, caps: Cap.AUTH, prefix: 0 };
  assert.ok(!timingSafeEqual(base, await serverProof(key, t, granted)), "no reflection");
  for (
    const changed of [
      { ...t, serverNonce: randomBytes(32) },
      { ...t, clientNonce: randomBytes(32) },
      { ...t, instanceId: randomBytes(16) },
      { ...t, request: { ...t.request, prefix: 128 } },
    ]
  ) {
    assert.ok(!timingSafeEqual(base, await clientProof(key, changed)));
  }
  const other = await importSecret(enc.encode("another secret, also 32 bytes..."));
  assert.ok(!timingSafeEqual(base, await clientProof(other, t)));
  assert.ok(
    !timingSafeEqual(
      await serverProof(key, t, granted),
      await serverProof(key, t, { ...granted, prefix: 128 }),
    ),
    "the grant is bound",
  );
  assert.equal(timingSafeEqual(new Uint8Array(3), new Uint8Array(4)), false);
  // codec: AUTH decodes only after a challenge, CHALLENGE only where an ack may come
  const d = new ClientMessageDecoder();
  const auth = encodeAuth(t.instanceId, t.clientNonce, base);
  assert.equal(d.push(encodeHello()).items.length, 1);
  assert.match(d.push(auth).error!, /unexpected auth message/);
  const d2 = new ClientMessageDecoder();
  d2.push(encodeHello());
  d2.authExpected = true;
  const { items } = d2.push(auth);
  assert.equal(items.length, 1);
  const m = items[0];
  assert.ok(m.kind === "auth");
  assert.deepEqual([...m.proof], [...base]);
  const s = new ServerStreamDecoder();
  s.expectAck = true;
  const got = s.push(encodeChallenge(t.serverNonce));
  assert.deepEqual(got.items, [{ kind: "challenge", nonce: t.serverNonce }]);
  assert.match(s.push(encodeChallenge(t.serverNonce)).error!, /unexpected challenge/);
});

Deno.test("adversary: heartbeats from a peer that never reads are answered only while nothing waits", async () => {
  const s = server({});
  const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    await writeAll(c, encodeHello());
    await writeAll(c, encodeExtHello(EXT_VERSION, Cap.HEARTBEAT, 0));
    await until(() => s.peersConnected === 1);
    await new Promise((r) => setTimeout(r, 50)); // the ack is out: heartbeats are allowed now
    const batch = new Uint8Array(14 * 10_000);
    for (let i = 0; i < 10_000; i++) batch.set(encodeHeartbeat(), i * 14);
    for (let k = 0; k < 100 && s.counters.heartbeatsCoalesced === 0; k++) {
      await writeAll(c, batch);
    }
    assert.ok(s.counters.heartbeatsCoalesced > 0, "the kernel buffer filled, answers stopped");
    const peer = [...s.dispatcher.peers][0];
    assert.ok(peer.batcher.queuedBytes <= 4, `queued ${peer.batcher.queuedBytes} bytes`);
    assert.equal(s.connectionsOpen, 1, "a heartbeating peer is not idle");
  } finally {
    closeQuietly(c);
    await s.close();
  }
});
