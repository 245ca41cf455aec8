/**
 * What the tunnel client's route table costs per live route (issue 14), loopback only: a real
 * TunnelClient connected to `--intercepts` fake intercepts in this process (each answers the
 * extension hello with IPv6 + CLIENT_DEL and discards what it reads, so only the client's
 * memory grows) registers `--routes` routes (one per replayed session: distinct client
 * address/port, one target), in batches that let the route messages go out. Prints the V8
 * heap used and the memory outside the heap (ArrayBuffer backing stores) after forced GCs,
 * from before the routes, per route; then the same once every route is deleted again (what a
 * deleted route leaves behind). Checks that every route was taken (routes added, no failures)
 * and that every deletion was sent.
 *
 *   deno run -A --v8-flags=--expose-gc bench/route_table_heap.ts
 *       [--routes 100000] [--family 4|6] [--intercepts 1] [--connections 2] [--json]
 *
 * @module
 */
import { benchArgs, intArg } from "./args.ts";
import { TunnelClient } from "../lib/tunnel/client.ts";
import { Cap, EXT_VERSION } from "../lib/tunnel/negotiation.ts";
import { encodeExtAck } from "../lib/tunnel/replies.ts";
import {
  CLIENT_MSG6_SIZE,
  CLIENT_MSG_SIZE,
  encodeExtHello,
  encodeHello,
} from "../lib/tunnel/messages.ts";
import { exposedGc, settledHeap } from "./settle.ts";

const { values } = benchArgs(import.meta.url, {
  args: Deno.args,
  options: {
    routes: { type: "string", default: "100000" },
    family: { type: "string", default: "4" },
    intercepts: { type: "string", default: "1" },
    connections: { type: "string", default: "2" },
    json: { type: "boolean", default: false },
  },
});

/** A whole number in [min, max] from flag `name` (else one line and exit 2: bench/args.ts). */
const intFlag = (name: string, text: string, min: number, max: number) =>
  intArg(import.meta.url, name, text, min, max);

const routes = intFlag("routes", values.routes, 1, 4_000_000);
const family = intFlag("family", values.family, 4, 6);
if (family !== 4 && family !== 6) {
  console.error(`route_table_heap: --family ${family}: expected 4 or 6`);
  Deno.exit(2);
}
const intercepts = intFlag("intercepts", values.intercepts, 1, 16);
const connections = intFlag("connections", values.connections, 1, 11);

const gc = exposedGc("route_table_heap");

/** Forced full GCs (50 ms apart); heap used and external bytes after. */
function settled(): Promise<{ heap: number; external: number }> {
  return settledHeap(gc, 50);
}

/** A fake intercept: grants IPv6 + CLIENT_DEL to every connection, reads and forgets. */
function fakeIntercept(): { port: number; close: () => void; bytes: () => number } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let bytes = 0;
  const ack = encodeExtAck(EXT_VERSION, Cap.IPV6 | Cap.ROUTE_DEL, 0);
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(65536);
        try {
          await conn.write(ack);
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            bytes += n;
          }
        } catch { /* closed */ }
        conns.delete(conn);
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    bytes: () => bytes,
    close: () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

/** Client endpoint of route `i`: 10.x.y.z (or 2001:db8::x:y:z) and a port, all distinct. */
function clientOf(i: number): { addr: Uint8Array; port: number } {
  const host = Math.floor(i / 50_000), port = 10_000 + (i % 50_000);
  const addr = new Uint8Array(family === 4 ? 4 : 16);
  if (family === 4) addr.set([10, (host >> 16) & 255, (host >> 8) & 255, host & 255]);
  else addr.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, host >> 8, host & 255]);
  return { addr, port };
}

const target = {
  addr: family === 4
    ? new Uint8Array([10, 0, 0, 2])
    : new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
  port: 80,
};
const msgSize = family === 4 ? CLIENT_MSG_SIZE : CLIENT_MSG6_SIZE;

const servers = Array.from({ length: intercepts }, fakeIntercept);
const client = await TunnelClient.connect({
  servers: servers.map((s) => ({ hostname: "127.0.0.1", port: s.port })),
  connections,
  caps: Cap.IPV6 | Cap.ROUTE_DEL,
  onReply: () => {},
  log: (l) => console.error(l),
});

/** Waits until the fake intercepts read `want` bytes in all (bounded). */
async function drained(want: number): Promise<void> {
  const end = performance.now() + 30_000;
  while (servers.reduce((n, s) => n + s.bytes(), 0) < want) {
    if (performance.now() > end) throw new Error("route_table_heap: route messages stuck");
    await new Promise((r) => setTimeout(r, 5));
  }
}

try {
  if (!client.canRoute(family === 6)) throw new Error("route_table_heap: no usable connection");
  const hello = intercepts * connections *
    (encodeHello().length + encodeExtHello(EXT_VERSION, Cap.IPV6 | Cap.ROUTE_DEL, 0).length);
  const before = await settled();
  const BATCH = 2000;
  for (let i = 0; i < routes; i += BATCH) {
    for (let j = i; j < Math.min(routes, i + BATCH); j++) client.addRoute(clientOf(j), target);
    client.flush();
    await drained(hello + Math.min(routes, i + BATCH) * msgSize * intercepts);
  }
  if (client.counters.routesAdded !== routes || client.counters.routeFailures !== 0) {
    throw new Error(
      `route_table_heap: ${client.counters.routesAdded} routes added, ` +
        `${client.counters.routeFailures} failures (expected ${routes}, 0)`,
    );
  }
  const held = await settled();
  for (let i = 0; i < routes; i += BATCH) {
    for (let j = i; j < Math.min(routes, i + BATCH); j++) client.delRoute(clientOf(j), target);
    client.flush();
    await drained(hello + (routes + Math.min(routes, i + BATCH)) * msgSize * intercepts);
  }
  if (client.counters.routesDeleted !== routes || client.routes !== 0) {
    throw new Error(`route_table_heap: ${client.counters.routesDeleted} routes deleted`);
  }
  const after = await settled();
  const per = (a: number, b: number) => Math.round((a - b) / routes * 10) / 10;
  const result = {
    routes,
    family,
    intercepts,
    connections,
    heapPerRoute: per(held.heap, before.heap),
    externalPerRoute: per(held.external, before.external),
    heapPerRouteAfterDelete: per(after.heap, before.heap),
    externalPerRouteAfterDelete: per(after.external, before.external),
  };
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(
      `${routes.toLocaleString("en-US")} IPv${family} routes, ${intercepts} intercept(s) × ` +
        `${connections} connections`,
    );
    console.log(
      `held:    ${result.heapPerRoute} B heap + ${result.externalPerRoute} B external per route`,
    );
    console.log(
      `deleted: ${result.heapPerRouteAfterDelete} B heap + ${result.externalPerRouteAfterDelete} ` +
        `B external per route still held`,
    );
  }
} finally {
  await client.close();
  for (const s of servers) s.close();
}
