/**
 * Reconnect that resumes (issue 12, item 7): when an intercept connection comes back, tcpcopy
 * registers the routes of every live session again, so established sessions continue; while
 * no intercept is connected, no new session is opened (`lost.no_intercept`).
 */
import assert from "node:assert/strict";
import { TunnelServer } from "../../lib/tunnel/server.ts";
import { TunnelClient } from "../../lib/tunnel/client.ts";
import { Engine } from "../../lib/engine/engine.ts";
import { endpointOf } from "../../lib/engine/endpoint.ts";
import { SYN } from "../../lib/wire/tcp.ts";
import { Replicator } from "../../lib/tcpcopy/replicator.ts";
import { Logger } from "../../lib/stats/logger.ts";
import { FakeSender } from "../helpers/fake_sender.ts";
import { until } from "../helpers/until.ts";

const ep = (a: number[], port: number) => ({ addr: new Uint8Array(a), port });
const T = [10, 0, 0, 2];

/** A captured SYN from 192.0.2.1:`port` to the online server 10.0.0.1:80, at time 0. */
const syn = (port: number) => ({
  src: endpointOf("192.0.2.1", port),
  dst: endpointOf("10.0.0.1", 80),
  seq: 1,
  ack: 0,
  flags: SYN,
  window: 1000,
  options: {},
  payload: new Uint8Array(0),
  timeMs: 0,
});

const listen = (port = 0) => TunnelServer.listen({ port, hostname: "127.0.0.1", log: () => {} });

Deno.test("resume: an intercept that comes back gets every live route again", async () => {
  const a = listen(), b = listen();
  const bPort = b.port;
  let b2: TunnelServer | undefined;
  const client = await TunnelClient.connect({
    servers: [{ hostname: "127.0.0.1", port: a.port }, { hostname: "127.0.0.1", port: bPort }],
    connections: 2,
    lonely: true,
    onReply: () => {},
    log: () => {},
    moveDelayMs: 20,
  });
  try {
    for (let p = 0; p < 45; p++) assert.ok(client.addRoute(ep([10, 0, 0, 1], 4000 + p), ep(T, 80)));
    // and five IPv6 ones (they need the extension: re-sent once B's extensions are answered)
    const C6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
    const T6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02];
    for (let p = 45; p < 50; p++) assert.ok(client.addRoute(ep(C6, 4000 + p), ep(T6, 80)));
    await until(() => a.dispatcher.routes.size === 50 && b.dispatcher.routes.size === 50, 5000);
    await b.close();
    await until(() => client.connected === 2, 5000, "B's connections noticed gone");
    // Sessions end while B is away; others start (A takes them at once).
    for (let p = 0; p < 10; p++) client.delRoute(ep([10, 0, 0, 1], 4000 + p), ep(T, 80));
    assert.ok(client.addRoute(ep([10, 0, 0, 1], 5000), ep(T, 80)));
    await until(() => a.dispatcher.routes.size === 41, 5000, "A follows");
    b2 = listen(bPort);
    await until(() => client.connected === 4, 8000, "B back");
    await until(() => b2!.dispatcher.routes.size === 41, 5000, "B has the live routes again");
    assert.ok(client.counters.routesResent >= 41);
    assert.equal(a.dispatcher.routes.size, 41, "A untouched");
    assert.equal(a.dispatcher.counters.routesContested, 0);
    assert.equal(b2.dispatcher.counters.routesContested, 0);
    // Each route's CLIENT_DEL goes to the connection that holds it: all are accepted.
    for (let p = 10; p < 45; p++) client.delRoute(ep([10, 0, 0, 1], 4000 + p), ep(T, 80));
    for (let p = 45; p < 50; p++) client.delRoute(ep(C6, 4000 + p), ep(T6, 80));
    client.delRoute(ep([10, 0, 0, 1], 5000), ep(T, 80));
    await until(() => b2!.dispatcher.routes.size === 0 && a.dispatcher.routes.size === 0, 5000);
    assert.equal(client.routes, 0);
  } finally {
    await client.close();
    await a.close();
    await b2?.close();
  }
});

Deno.test("resume: a lost connection's routes move to the intercept's other connection", async () => {
  const s = listen();
  const client = await TunnelClient.connect({
    servers: [{ hostname: "127.0.0.1", port: s.port }],
    connections: 2,
    onReply: () => {},
    log: () => {},
    moveDelayMs: 20,
  });
  try {
    for (let p = 0; p < 40; p++) assert.ok(client.addRoute(ep([10, 0, 0, 1], 4000 + p), ep(T, 80)));
    await until(() => s.dispatcher.routes.size === 40, 5000);
    // intercept closes one of the two connections (and forgets its routes).
    s.disconnect([...s.dispatcher.peers][0], "test");
    await until(() => client.connected === 1, 5000, "one connection lost");
    await until(() => client.counters.routesResent > 0, 5000, "routes moved");
    assert.ok(client.counters.routesResent > 0 && client.counters.routesResent < 40);
    // Every route now lives on the remaining connection: its CLIENT_DELs are all accepted.
    for (let p = 0; p < 40; p++) client.delRoute(ep([10, 0, 0, 1], 4000 + p), ep(T, 80));
    await until(() => s.dispatcher.routes.size === 0, 5000, "every route deleted by its owner");
  } finally {
    await client.close();
    await s.close();
  }
});

Deno.test("no intercept: no new session is opened, counted as lost.no_intercept", () => {
  let up = false;
  const v4 = new FakeSender();
  const r = new Replicator({
    v4,
    v6: null,
    log: new Logger(() => {}, () => 0),
    now: () => 0,
    routes: { addRoute: () => up, delRoute: () => up, canRoute: () => up },
  });
  const e = new Engine(
    { transfers: [{ online: { addr: "", port: 80 }, target: { addr: "10.0.0.2", port: 80 } }] },
    r,
    0,
  );
  r.attach(e);
  e.onCaptured(syn(1000), 0);
  r.flush();
  assert.equal(e.stats.lost.no_intercept, 1);
  assert.equal(e.stats.sessions.created, 0);
  assert.equal(v4.sent.length, 0, "no SYN whose SYN-ACK would reach the real client");
  up = true;
  e.onCaptured(syn(1001), 0);
  r.flush();
  assert.equal(e.stats.sessions.created, 1);
  assert.equal(v4.sent.length, 1);
});

Deno.test("resume: engine + replicator + tunnel: a live session's route survives an intercept restart", async () => {
  const s1 = listen();
  const port = s1.port;
  let s2: TunnelServer | undefined;
  const v4 = new FakeSender();
  const r = new Replicator({ v4, v6: null, log: new Logger(() => {}, () => 0), now: () => 0 });
  const e = new Engine(
    { transfers: [{ online: { addr: "", port: 80 }, target: { addr: "10.0.0.2", port: 80 } }] },
    r,
    0,
  );
  r.attach(e);
  const client = await TunnelClient.connect({
    servers: [{ hostname: "127.0.0.1", port }],
    connections: 1,
    lonely: true,
    onReply: () => {},
    log: () => {},
  });
  r.setRoutes(client);
  try {
    e.onCaptured(syn(1000), 0);
    client.flush();
    r.flush();
    await until(() => s1.dispatcher.routes.size === 1, 5000, "route registered");
    await s1.close();
    await until(() => client.connected === 0, 5000, "intercept gone");
    e.onCaptured(syn(1001), 1);
    r.flush();
    assert.equal(e.stats.lost.no_intercept, 1, "no new session while no intercept is up");
    assert.equal(e.stats.sessions.active, 1, "the live one stays");
    assert.equal(v4.sent.length, 1, "only the first SYN went out");
    s2 = listen(port);
    await until(() => s2!.dispatcher.routes.size === 1, 8000, "live route re-registered");
    assert.equal(client.counters.routesResent, 1);
    e.onCaptured(syn(1002), 2);
    client.flush();
    r.flush();
    await until(() => s2!.dispatcher.routes.size === 2, 5000, "new sessions again");
  } finally {
    await client.close();
    await s1.close();
    await s2?.close();
  }
});
