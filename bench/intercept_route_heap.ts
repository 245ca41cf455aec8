/**
 * What intercept's per-connection state costs (issue 14), no network: the tunnel server's
 * dispatcher (lib/tunnel/dispatch.ts: the route table of lib/tunnel/routing.ts) with
 * `--peers` fake tunnel connections (real reply batchers, output discarded) registers
 * `--routes` routes (CLIENT_ADD keys, one per replayed connection: distinct client
 * address/port, one target, spread over the peers), routes one SYN-ACK and one reply with
 * payload per route (as a held connection does; with `--answers` each peer has an answer
 * tracker, lib/intercept/answers.ts, so every route also has a flow), then deletes every
 * route (CLIENT_DEL) and runs the housekeeping tick. Prints the V8 heap used and the memory outside it after forced GCs,
 * per route, with the routes held and after they are deleted; then `--cycles` times the same
 * again (routes of new connections: new client ports), for what a table that was used and
 * emptied keeps. Checks that every route was taken, routed and deleted.
 *
 *   deno run -A --v8-flags=--expose-gc bench/intercept_route_heap.ts
 *       [--routes 20000] [--peers 2] [--family 4|6] [--answers] [--cycles 2] [--json]
 *
 * @module
 */
import { benchArgs, intArg } from "./args.ts";
import { Dispatcher, type TunnelPeer } from "../lib/tunnel/dispatch.ts";
import { ReplyBatcher } from "../lib/tunnel/batcher.ts";
import { routeKeyOf } from "../lib/tunnel/route_key.ts";
import { AnswerTracker, newAnswerCounters } from "../lib/intercept/answers.ts";
import { F, segment } from "../tests/helpers/tunnel_fixtures.ts";
import { exposedGc, settledHeap } from "./settle.ts";

const { values } = benchArgs(import.meta.url, {
  args: Deno.args,
  options: {
    routes: { type: "string", default: "20000" },
    peers: { type: "string", default: "2" },
    family: { type: "string", default: "4" },
    cycles: { type: "string", default: "2" },
    answers: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});

/** A whole number in [min, max] from flag `name` (else one line and exit 2: bench/args.ts). */
const intFlag = (name: string, text: string, min: number, max: number) =>
  intArg(import.meta.url, name, text, min, max);

const routes = intFlag("routes", values.routes, 1, 4_000_000);
const peerCount = intFlag("peers", values.peers, 1, 64);
const family = intFlag("family", values.family, 4, 6);
const cycles = intFlag("cycles", values.cycles, 1, 100);
if (family !== 4 && family !== 6) {
  console.error(`intercept_route_heap: --family ${family}: expected 4 or 6`);
  Deno.exit(2);
}

const gc = exposedGc("intercept_route_heap");

/** Forced full GCs (20 ms apart); heap used and external bytes after. */
function settled(): Promise<{ heap: number; external: number }> {
  return settledHeap(gc, 20);
}

/** A fake tunnel connection: a real batcher whose output is taken and forgotten. */
interface FakePeer extends TunnelPeer {
  readonly batcher: ReplyBatcher;
  readonly deletesRoutes: boolean;
  answers: AnswerTracker | undefined;
}

const counters = newAnswerCounters();
const peers: FakePeer[] = Array.from({ length: peerCount }, () => {
  const batcher = new ReplyBatcher({ ext: true, prefix: 0 });
  const p: FakePeer = { batcher, deletesRoutes: true, answers: undefined };
  if (values.answers) p.answers = new AnswerTracker({ bytes: 64, mode: "auto" }, counters, batcher);
  return p;
});

/** Discards what the peers' batchers hold (the writer's part). */
function drain(): void {
  for (const p of peers) {
    p.answers?.settle();
    p.batcher.flush();
    for (let out = p.batcher.takeOutput(); out !== undefined; out = p.batcher.takeOutput()) {
      p.batcher.written(out.length);
    }
  }
}

const target = family === 4 ? [10, 0, 0, 2] : [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 2];
const targetEp = { addr: new Uint8Array(target), port: 80 };

/** Client endpoint of route `i` in cycle `c`: all distinct within a cycle. */
function clientOf(i: number, c: number): { addr: number[]; port: number } {
  const host = Math.floor(i / 50_000), port = 10_000 + ((i + c * 7919) % 50_000);
  const addr = family === 4
    ? [10, 1 + (host >> 16 & 127), (host >> 8) & 255, host & 255]
    : [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, host >> 8, host & 255];
  return { addr, port };
}

const d = new Dispatcher<FakePeer>({ routeTtlMs: 660_000 });
for (const p of peers) d.addPeer(p);
const body = new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
let now = 1_000;

/** One cycle: register, route two replies each, measure, delete, measure. */
async function cycle(c: number, before: { heap: number; external: number }) {
  const BATCH = 1000;
  for (let i = 0; i < routes; i += BATCH) {
    const end = Math.min(routes, i + BATCH);
    for (let j = i; j < end; j++) {
      const cl = clientOf(j, c);
      d.addRoute(
        peers[j % peerCount],
        routeKeyOf({ ...cl, addr: new Uint8Array(cl.addr) }, targetEp),
        now,
      );
    }
    for (let j = i; j < end; j++) {
      const cl = clientOf(j, c);
      const base = { src: target, dst: cl.addr, sport: 80, dport: cl.port, ack: 1001 };
      if (!d.reply(segment({ ...base, seq: 5000, flags: F.SYN | F.ACK }), now)) {
        throw new Error(`intercept_route_heap: route ${j} not routed`);
      }
      if (!d.reply(segment({ ...base, seq: 5001, flags: F.ACK | F.PSH, payload: body }), now)) {
        throw new Error(`intercept_route_heap: route ${j} not routed`);
      }
    }
    drain();
    now += 1;
  }
  if (d.routes.size !== routes) {
    throw new Error(`intercept_route_heap: ${d.routes.size} routes held (expected ${routes})`);
  }
  const held = await settled();
  for (let j = 0; j < routes; j++) {
    const cl = clientOf(j, c);
    const key = routeKeyOf({ ...cl, addr: new Uint8Array(cl.addr) }, targetEp);
    if (!d.deleteRoute(peers[j % peerCount], key)) {
      throw new Error(`intercept_route_heap: route ${j} not deleted`);
    }
  }
  drain();
  d.tick(now); // the server's housekeeping (a mostly empty table is rebuilt smaller)
  if (d.routes.size !== 0) throw new Error(`intercept_route_heap: ${d.routes.size} left`);
  const after = await settled();
  const per = (a: number, b: number) => Math.round((a - b) / routes * 10) / 10;
  return {
    cycle: c,
    heapPerRoute: per(held.heap, before.heap),
    externalPerRoute: per(held.external, before.external),
    heapPerRouteAfterDelete: per(after.heap, before.heap),
    externalPerRouteAfterDelete: per(after.external, before.external),
  };
}

const before = await settled();
const results = [];
for (let c = 0; c < cycles; c++) results.push(await cycle(c, before));
const out = { routes, peers: peerCount, family, answers: values.answers, cycles: results };
if (values.json) console.log(JSON.stringify(out));
else {
  console.log(
    `${routes.toLocaleString("en-US")} IPv${family} routes over ${peerCount} peer(s)` +
      (values.answers ? ", answer summaries on" : ""),
  );
  for (const r of results) {
    console.log(
      `cycle ${r.cycle}: held ${r.heapPerRoute} B heap + ${r.externalPerRoute} B external per ` +
        `route; deleted: ${r.heapPerRouteAfterDelete} B heap + ${r.externalPerRouteAfterDelete} ` +
        `B external per route still held`,
    );
  }
}
