/**
 * tcpcopy's tunnel client keeps a live route as its key and one row of holders (issue 14):
 * the key gives both endpoints back, the rows are reused, and which connection of each
 * intercept holds a route survives connection losses with several intercepts.
 */
import assert from "node:assert/strict";
import {
  ROUTE_KEY4_LENGTH,
  ROUTE_KEY6_LENGTH,
  routeKey4,
  routeKey6,
  routeKeyOf,
  routeOfKey,
} from "../../lib/tunnel/route_key.ts";
import { RouteHolders } from "../../lib/tunnel/route_holders.ts";
import { TunnelServer } from "../../lib/tunnel/server.ts";
import { TunnelClient } from "../../lib/tunnel/client.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";
import { until } from "../helpers/until.ts";

const ep = (a: number[], port: number) => ({ addr: new Uint8Array(a), port });

Deno.test("route key: decodes back to both endpoints, IPv4 and IPv6", () => {
  const int = randomInt(mulberry32(0x1d2c3b4a));
  const bytes = (n: number) => Array.from({ length: n }, () => int(256));
  const edge = [[0, 0, 0, 0], [255, 255, 255, 255], [10, 0, 0, 1], [0, 255, 0, 255]];
  const cases: [number[], number, number[], number][] = [];
  for (const a of edge) for (const b of edge) cases.push([a, 0, b, 65535]);
  for (let i = 0; i < 200; i++) {
    const n = i % 2 ? 16 : 4;
    cases.push([bytes(n), int(65536), bytes(n), int(65536)]);
  }
  cases.push([new Array(16).fill(255), 65535, new Array(16).fill(0), 0]);
  for (const [ca, cp, ta, tp] of cases) {
    const client = ep(ca, cp), target = ep(ta, tp);
    const key = routeKeyOf(client, target);
    assert.equal(key.length, ca.length === 4 ? ROUTE_KEY4_LENGTH : ROUTE_KEY6_LENGTH);
    const back = routeOfKey(key);
    assert.deepEqual(back, { client, target }, `round trip of ${ca}:${cp} > ${ta}:${tp}`);
    assert.equal(routeKeyOf(back.client, back.target), key);
  }
  // keys at an offset of a packet buffer are the same as from endpoints
  const buf = new Uint8Array(40).map((_, i) => i * 7);
  const k6 = routeKey6(buf, 3, 1234, buf, 20, 80);
  assert.deepEqual(routeOfKey(k6).client.addr, buf.subarray(3, 19));
  assert.deepEqual(routeOfKey(k6).target.addr, buf.subarray(20, 36));
  assert.equal(
    routeKey4(buf, 1, 5, buf, 9, 6),
    routeKeyOf(ep([...buf.subarray(1, 5)], 5), ep([...buf.subarray(9, 13)], 6)),
  );
  for (const bad of ["", "x", "1234567", "a".repeat(17), "a".repeat(19)]) {
    assert.throws(() => routeOfKey(bad), RangeError);
  }
});

Deno.test("route holders: rows start empty, are freed and reused, grow keeping their holders", () => {
  const h = new RouteHolders(3, 4);
  assert.throws(() => new RouteHolders(0), RangeError);
  const rows = Array.from({ length: 100 }, () => h.alloc());
  assert.equal(new Set(rows).size, 100, "distinct rows");
  assert.ok(h.capacity >= 100 && h.capacity <= 128, `capacity ${h.capacity}`);
  assert.equal(h.live, 100);
  for (const r of rows) for (let s = 0; s < 3; s++) assert.equal(h.get(r, s), -1);
  for (const r of rows) h.set(r, r % 3, r % 11);
  for (const r of rows) {
    for (let s = 0; s < 3; s++) assert.equal(h.get(r, s), s === r % 3 ? r % 11 : -1);
  }
  // connection 4 of intercept 1 lost: only those holders go
  h.forget(1, 4);
  for (const r of rows) {
    const want = r % 3 === 1 && r % 11 === 4 ? -1 : r % 3 === 1 ? r % 11 : undefined;
    if (want !== undefined) assert.equal(h.get(r, 1), want);
    if (r % 3 !== 1) assert.equal(h.get(r, r % 3), r % 11);
  }
  // a freed row comes back empty, and the table does not grow while rows are free
  const cap = h.capacity;
  h.set(rows[5], 0, 7);
  for (const r of rows.slice(0, 50)) h.free(r);
  assert.equal(h.live, 50);
  const again = Array.from({ length: 50 }, () => h.alloc());
  assert.deepEqual(new Set(again), new Set(rows.slice(0, 50)));
  for (const r of again) for (let s = 0; s < 3; s++) assert.equal(h.get(r, s), -1);
  assert.equal(h.capacity, cap);
});

Deno.test("route holders: a mostly free table is rebuilt smaller, live rows keep their holders", () => {
  const h = new RouteHolders(2);
  const rows = Array.from({ length: 3000 }, () => h.alloc());
  assert.equal(h.capacity, 4096);
  for (const r of rows) h.set(r, r % 2, r % 5);
  for (const r of rows.slice(0, 2400)) h.free(r);
  assert.equal(h.sparse, false, "600 of 4,096 live: not yet");
  for (const r of rows.slice(2400, 2950)) h.free(r);
  assert.equal(h.live, 50);
  assert.ok(h.sparse);
  const keep = rows.slice(2950).reverse();
  const c = h.compacted(keep);
  assert.equal(c.capacity, 128);
  assert.equal(c.live, 50);
  assert.equal(c.sparse, false);
  keep.forEach((r, i) => {
    assert.equal(c.get(i, r % 2), r % 5);
    assert.equal(c.get(i, 1 - (r % 2)), -1);
  });
  assert.equal(c.alloc(), 50, "the next row after the live ones");
  assert.equal(c.get(50, 0), -1);
});

const listen = () => TunnelServer.listen({ port: 0, hostname: "127.0.0.1", log: () => {} });

Deno.test("tunnel client: 3 intercepts, IPv4 and IPv6 routes: holders survive a lost connection", async () => {
  const servers = [listen(), listen(), listen()];
  const client = await TunnelClient.connect({
    servers: servers.map((s) => ({ hostname: "127.0.0.1", port: s.port })),
    connections: 3,
    onReply: () => {},
    log: () => {},
    moveDelayMs: 20,
  });
  const T4 = [10, 0, 0, 2], T6 = [0x20, 1, 0xd, 0xb8, ...new Array(11).fill(0), 2];
  const c4 = (p: number) => ep([192, 0, 2, p & 255], 30000 + p);
  const c6 = (p: number) =>
    ep([0x20, 1, 0xd, 0xb8, ...new Array(10).fill(0), 1, p & 255], 30000 + p);
  const N = 60;
  const routeOf = (p: number) =>
    p % 3 === 0 ? [c6(p), ep(T6, 443)] as const : [c4(p), ep(T4, 80)] as const;
  try {
    assert.ok(client.canRoute(true), "extensions answered: IPv6 routes can go");
    for (let p = 0; p < N; p++) assert.ok(client.addRoute(...routeOf(p)), `route ${p}`);
    assert.equal(client.routes, N);
    assert.ok(client.addRoute(...routeOf(0)), "a live route again: still one route");
    assert.equal(client.routes, N);
    await until(() => servers.every((s) => s.dispatcher.routes.size === N), 5000, "all routes");
    // The middle intercept closes one of its three connections and forgets its routes.
    const mid = servers[1];
    mid.disconnect([...mid.dispatcher.peers][1], "test");
    await until(() => client.connected === 8, 5000, "one connection lost");
    await until(() => mid.dispatcher.routes.size === N, 5000, "its routes moved");
    assert.ok(client.counters.routesResent > 0 && client.counters.routesResent < N);
    // Delete half; every CLIENT_DEL must reach the connection that now holds the route.
    for (let p = 0; p < N; p += 2) assert.ok(client.delRoute(...routeOf(p)), `del ${p}`);
    assert.equal(client.delRoute(...routeOf(0)), false, "deleted already");
    assert.equal(client.routes, N / 2);
    await until(() => servers.every((s) => s.dispatcher.routes.size === N / 2), 5000, "half gone");
    // New routes reuse the freed rows and get their own holders.
    for (let p = N; p < N + 10; p++) assert.ok(client.addRoute(...routeOf(p)));
    await until(
      () => servers.every((s) => s.dispatcher.routes.size === N / 2 + 10),
      5000,
      "new ones",
    );
    for (let p = 1; p < N; p += 2) assert.ok(client.delRoute(...routeOf(p)));
    for (let p = N; p < N + 10; p++) assert.ok(client.delRoute(...routeOf(p)));
    await until(
      () => servers.every((s) => s.dispatcher.routes.size === 0),
      5000,
      "every route deleted by its owner",
    );
    assert.equal(client.routes, 0);
    for (const s of servers) assert.equal(s.dispatcher.counters.routesContested, 0);
    assert.equal(client.counters.routeFailures, 0);
  } finally {
    await client.close();
    for (const s of servers) await s.close();
  }
});

Deno.test("tunnel client: mismatched or odd endpoints are neither added nor deleted", async () => {
  const s = listen();
  const client = await TunnelClient.connect({
    servers: [{ hostname: "127.0.0.1", port: s.port }],
    onReply: () => {},
    log: () => {},
  });
  try {
    const v4 = ep([10, 0, 0, 1], 5000), v6 = ep(new Array(16).fill(0), 5000);
    assert.equal(client.addRoute(v4, v6), false);
    assert.equal(client.addRoute(ep([1, 2, 3, 4, 5], 1), ep([1, 2, 3, 4, 5], 2)), false);
    assert.equal(client.routes, 0);
    assert.ok(client.addRoute(ep([1, 2, 3, 4], 1), ep([1, 2, 3, 4], 2)));
    assert.equal(client.delRoute(ep([1, 2, 3, 4, 5], 1), ep([1, 2, 3, 4, 5], 2)), false);
    assert.equal(client.delRoute(v6, v4), false);
    assert.equal(client.routes, 1);
  } finally {
    await client.close();
    await s.close();
  }
});

Deno.test("tunnel client: the holder table shrinks after a burst; holders survive it and a loss", async () => {
  const s = listen();
  const client = await TunnelClient.connect({
    servers: [{ hostname: "127.0.0.1", port: s.port }],
    connections: 2,
    onReply: () => {},
    log: () => {},
    moveDelayMs: 20,
  });
  // one client address, ports in sequence: spread over both connections (lib/tunnel/spread.ts)
  const r = (p: number) => [ep([198, 51, 100, 7], 20000 + p), ep([10, 0, 0, 2], 80)] as const;
  try {
    for (let p = 0; p < 1500; p++) assert.ok(client.addRoute(...r(p)));
    assert.equal(client.routeRows, 2048);
    await until(() => s.dispatcher.routes.size === 1500, 5000, "burst registered");
    for (let p = 0; p < 1400; p++) assert.ok(client.delRoute(...r(p)));
    assert.equal(client.routes, 100);
    // rebuilt when 255 were left (under an eighth of 2,048), with room for twice as many
    assert.equal(client.routeRows, 512);
    await until(() => s.dispatcher.routes.size === 100, 5000, "burst deleted");
    s.disconnect([...s.dispatcher.peers][0], "test");
    await until(() => client.connected === 1, 5000, "one connection lost");
    await until(() => s.dispatcher.routes.size === 100, 5000, "its routes moved");
    assert.ok(
      client.counters.routesResent > 0 && client.counters.routesResent < 100,
      `resent ${client.counters.routesResent}`,
    );
    for (let p = 1400; p < 1500; p++) assert.ok(client.delRoute(...r(p)));
    await until(() => s.dispatcher.routes.size === 0, 5000, "every route deleted by its owner");
  } finally {
    await client.close();
    await s.close();
  }
});
