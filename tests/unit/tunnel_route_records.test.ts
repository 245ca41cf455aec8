/**
 * Route messages decoded into the decoder's reused records (`ClientMessageDecoder.decode`, the
 * tunnel server's path): each record is right while it is used, the next `decode` reuses it,
 * and nothing the server stores points into one (many routes in one chunk, every one checked).
 */
import assert from "node:assert/strict";
import { TunnelServer } from "../../lib/tunnel/server.ts";
import {
  ClientMessageDecoder,
  encodeExtHello,
  encodeHello,
  encodeRoute,
  type Endpoint,
  POOLED_ROUTES,
} from "../../lib/tunnel/messages.ts";
import { Cap, EXT_VERSION } from "../../lib/tunnel/negotiation.ts";
import { routeKeyOf } from "../../lib/tunnel/route_key.ts";
import { until } from "../helpers/until.ts";

const T4 = { addr: new Uint8Array([10, 0, 0, 2]), port: 80 };
const T6 = { addr: new Uint8Array([0xfd, ...new Array(14).fill(0), 2]), port: 443 };
const client4 = (i: number) => ({ addr: new Uint8Array([10, 1, i >> 8, i & 255]), port: 1000 + i });
const client6 = (i: number) => ({
  addr: new Uint8Array([0xfd, 1, ...new Array(11).fill(0), 7, i >> 8, i & 255]),
  port: 2000 + i,
});

/** `n` adds, alternately IPv4 and IPv6, in one buffer; and their tuples. */
function adds(n: number): { bytes: Uint8Array; tuples: { client: Endpoint; target: Endpoint }[] } {
  const tuples = Array.from(
    { length: n },
    (_, i) => i % 2 ? { client: client6(i), target: T6 } : { client: client4(i), target: T4 },
  );
  const parts = tuples.map((t) => encodeRoute("add", t.client, t.target));
  const bytes = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) bytes.set(p, at), at += p.length;
  return { bytes, tuples };
}

Deno.test("decode: more route messages in one chunk than pooled, each record right, reused by the next decode", () => {
  const d = new ClientMessageDecoder();
  assert.equal(d.decode(encodeHello()), 1);
  d.extensions = true;
  const n = 3 * POOLED_ROUTES;
  const { bytes, tuples } = adds(n);
  assert.equal(d.decode(bytes), n);
  assert.equal(d.error, undefined);
  const keys = new Set<string>();
  for (let i = 0; i < n; i++) {
    const m = d.messages[i];
    assert.ok(m.kind === "add");
    assert.deepEqual(m.client, tuples[i].client, `client of route ${i}`);
    assert.deepEqual(m.target, tuples[i].target, `target of route ${i}`);
    keys.add(routeKeyOf(m.client, m.target));
  }
  assert.equal(keys.size, n, "no two records share their bytes");
  const first = d.messages[0];
  const del = encodeRoute("del", client4(99), T4);
  assert.equal(d.decode(del), 1);
  assert.equal(d.messages[0], first, "the next decode reuses the first record");
  assert.deepEqual(d.messages[0], { kind: "del", client: client4(99), target: T4 });
  // push keeps its contract: fresh messages that stay as they were
  const kept = d.push(del).items[0];
  d.decode(encodeRoute("add", client4(5), T4));
  assert.deepEqual(kept, { kind: "del", client: client4(99), target: T4 });
});

Deno.test("decode: errors stop the chunk and stay, as push's do", () => {
  const d = new ClientMessageDecoder();
  const bytes = new Uint8Array(3 * 14);
  bytes.set(encodeHello(), 0);
  bytes.set(encodeRoute("add", client4(1), T4), 14);
  bytes.set(encodeHello(), 28);
  assert.equal(d.decode(bytes), 2, "hello and the add, then the error");
  assert.equal(d.error, "second hello on one connection");
  assert.equal(d.decode(encodeRoute("add", client4(2), T4)), 0);
  assert.equal(d.push(new Uint8Array(14)).error, "second hello on one connection");
});

Deno.test("server: a chunk of many IPv4 and IPv6 adds stores every route as sent, dels remove theirs", async () => {
  const s = TunnelServer.listen({ port: 0, hostname: "127.0.0.1", log: () => {} });
  const c = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    await c.write(encodeHello());
    await c.write(encodeExtHello(EXT_VERSION, Cap.IPV6 | Cap.ROUTE_DEL, 0));
    const ack = new Uint8Array(12);
    for (let have = 0; have < ack.length;) {
      const r = await c.read(ack.subarray(have));
      assert.ok(r !== null, "EXT_ACK");
      have += r;
    }
    const n = 4 * POOLED_ROUTES;
    const { bytes, tuples } = adds(n);
    for (let at = 0; at < bytes.length;) at += await c.write(bytes.subarray(at));
    await until(() => s.dispatcher.routes.size === n, 3000, "every route");
    const now = performance.now();
    for (const [i, t] of tuples.entries()) {
      assert.notEqual(
        s.dispatcher.routes.peek(routeKeyOf(t.client, t.target), now),
        undefined,
        `route ${i}`,
      );
    }
    // deleting the even ones (one chunk) leaves exactly the odd ones
    const dels = tuples.filter((_, i) => i % 2 === 0).map((t) =>
      encodeRoute("del", t.client, t.target)
    );
    const chunk = new Uint8Array(dels.length * 14);
    dels.forEach((p, i) => chunk.set(p, 14 * i));
    for (let at = 0; at < chunk.length;) at += await c.write(chunk.subarray(at));
    await until(() => s.dispatcher.routes.size === n / 2, 3000, "dels");
    for (const [i, t] of tuples.entries()) {
      const held = s.dispatcher.routes.peek(routeKeyOf(t.client, t.target), performance.now());
      assert.equal(held !== undefined, i % 2 === 1, `route ${i} after the dels`);
    }
  } finally {
    c.close();
    await s.close();
  }
});
