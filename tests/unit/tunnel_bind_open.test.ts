/**
 * intercept takes its tunnel port at start but serves tcpcopy only once its rules are in
 * (lib/intercept/run.ts): a peer accepted earlier would replay sessions whose replies leave
 * the target un-queued, to the real clients. TunnelServer.bind takes the port without
 * listening (connects refused, a busy port fails at once); open() starts serving.
 */
import assert from "node:assert/strict";
import { TunnelServer } from "../../lib/tunnel/server.ts";

/** Whether a TCP connect to 127.0.0.1:`port` is accepted (closed again at once). */
async function connects(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch (e) {
    assert.ok(e instanceof Deno.errors.ConnectionRefused, String(e));
    return false;
  }
}

Deno.test("tunnel: a bound server refuses peers until open(), then accepts them", async () => {
  const server = TunnelServer.bind({ port: 0, hostname: "127.0.0.1", log: () => {} });
  try {
    const port = server.port;
    assert.ok(port > 0);
    assert.equal(await connects(port), false, "refused while only bound");
    assert.equal(server.counters.accepted, 0);
    server.open();
    server.open(); // idempotent
    assert.equal(await connects(port), true, "accepted once open");
    for (let i = 0; i < 100 && server.counters.accepted === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(server.counters.accepted, 1);
  } finally {
    await server.close();
  }
});

Deno.test("tunnel: bind fails at once on a busy port (before any rule would go in)", async () => {
  const first = TunnelServer.listen({ port: 0, hostname: "127.0.0.1", log: () => {} });
  try {
    assert.throws(
      () => TunnelServer.bind({ port: first.port, hostname: "127.0.0.1", log: () => {} }),
      /EADDRINUSE/,
    );
  } finally {
    await first.close();
  }
});
