/**
 * intercept's tables and queues must stay bounded whatever a peer does: registering routes
 * without end, sending heartbeats without reading, or sending bytes chosen at random.
 */

import assert from "node:assert/strict";
import { RouteTable } from "../../lib/tunnel/routing.ts";
import { ReplyBatcher } from "../../lib/tunnel/batcher.ts";
import { Dispatcher } from "../../lib/tunnel/dispatch.ts";
import { encodeExtFrame, FrameKind, ServerStreamDecoder } from "../../lib/tunnel/replies.ts";
import { ClientMessageDecoder, encodeHello } from "../../lib/tunnel/messages.ts";
import { inspectReply, newReplyInfo } from "../../lib/tunnel/reply_packet.ts";
import { TunnelServer } from "../../lib/tunnel/server.ts";
import { mulberry32 } from "../helpers/prng.ts";

Deno.test("tunnel bounds: a peer registering routes without end cannot grow the table past its cap", () => {
  const t = new RouteTable<string>(660_000, 1000);
  for (let i = 0; i < 5000; i++) t.set(`k${i}`, "peer", i);
  assert.equal(t.size, 1000);
  assert.equal(t.evicted, 4000);
  assert.equal(t.countOf("peer"), 1000);
  // The newest registrations are the ones kept.
  assert.equal(t.get("k4999", 5000), "peer");
  assert.equal(t.get("k0", 5000), undefined);
});

Deno.test("tunnel bounds: eviction spares a route that replies keep using", () => {
  const t = new RouteTable<string>(660_000, 100);
  t.set("busy", "a", 0);
  for (let i = 0; i < 1000; i++) {
    t.set(`k${i}`, "b", i + 1);
    assert.equal(t.get("busy", i + 1), "a", `busy route lost after ${i} registrations`);
  }
  assert.equal(t.size, 100);
  assert.equal(t.countOf("a") + t.countOf("b"), 100);
});

Deno.test("tunnel bounds: the dispatcher applies its route cap", () => {
  const d = new Dispatcher<{ batcher: ReplyBatcher }>({ maxRoutes: 50 });
  const p = { batcher: new ReplyBatcher() };
  d.addPeer(p);
  for (let i = 0; i < 500; i++) d.addRoute(p, `r${i}`, i);
  assert.equal(d.routes.size, 50);
  d.removePeer(p);
  assert.equal(d.routes.size, 0);
});

Deno.test("tunnel bounds: heartbeat answers to a peer that never reads stay within the queue bound", () => {
  const b = new ReplyBatcher({ maxQueuedBytes: 1024, ext: true });
  let refused = 0;
  for (let i = 0; i < 100_000; i++) {
    if (!b.addFrame(encodeExtFrame(FrameKind.HEARTBEAT))) refused++;
  }
  assert.ok(b.queuedBytes <= 1024, `queued ${b.queuedBytes}`);
  assert.equal(b.framesDropped, refused);
  assert.ok(refused > 99_000);
  // What was queued is still well-formed output.
  const out = b.takeOutput()!;
  assert.equal(out.length % 4, 0);
});

Deno.test("tunnel bounds: decoders and the reply inspector fed random bytes never throw", () => {
  const r = mulberry32(7);
  const info = newReplyInfo();
  for (let round = 0; round < 3000; round++) {
    const n = Math.floor(r() * 400);
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = Math.floor(r() * 256);
    // Plausible prefixes make the decoders go deeper than their first check.
    if (round % 3 === 0 && n > 2) bytes[0] = 0, bytes[1] = 1 + (bytes[1] % 16);
    if (round % 3 === 1 && n > 4) bytes[0] = 0xe1, bytes[1] = 0;
    const s = new ServerStreamDecoder();
    s.expectAck = round % 2 === 0;
    for (let at = 0; at < n;) {
      const k = 1 + Math.floor(r() * 64);
      const res = s.push(bytes.subarray(at, at + k));
      for (const it of res.items) if (it.kind === "reply") inspectReply(it.bytes, info);
      at += k;
    }
    const c = new ClientMessageDecoder();
    c.extensions = round % 2 === 1;
    c.push(encodeHello());
    c.push(bytes);
    inspectReply(bytes, info);
  }
});

Deno.test("tunnel bounds: connections beyond maxConnections are refused, the others keep working", async () => {
  const logs: string[] = [];
  const server = TunnelServer.listen({
    port: 0,
    hostname: "127.0.0.1",
    maxConnections: 3,
    log: (l) => logs.push(l),
  });
  const conns: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 8; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
    }
    const deadline = Date.now() + 3000;
    while (server.counters.rejected < 5 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(server.counters.accepted, 3);
    assert.equal(server.counters.rejected, 5);
    assert.ok(logs.some((l) => l.includes("connection refused")), logs.join("\n"));
    // An accepted connection still completes its hello.
    await conns[0].write(encodeHello());
    while (server.peersConnected < 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(server.peersConnected, 1);
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed by the server */ }
    }
    await server.close();
  }
});
