/**
 * intercept's cost of tcpcopy's route messages (issue 14): every replayed connection brings a
 * CLIENT_ADD and a CLIENT_DEL over the tunnel. This feeds add+del pairs through what the tunnel
 * server's `#onBytes` runs per message, without the network: `ClientMessageDecoder` (its
 * `decode`, the server's path; `push` in a checkout that has no `decode`), the route key
 * (`routeKeyOf`) and the dispatcher's `addRoute` / `deleteRoute`.
 *
 *     ./build.sh deno run -A bench/route_message_cost.ts [--pairs 100000] [--batch 1] [--ipv6]
 *
 * `--batch K`: K messages per read (K connections' CLIENT_ADDs in one chunk, then their
 * CLIENT_DELs in another); 1 (default) is short connections at a moderate rate, one message per
 * read. Prints CPU ns per add+del pair (process CPU, median of 5 passes after a warm-up pass)
 * and heap bytes allocated per pair (V8's counter: deterministic, unlike CPU time on a shared
 * machine).
 */
import { benchArgs, intArg } from "./args.ts";
import { timedPasses } from "./passes.ts";
import { Dispatcher } from "../lib/tunnel/dispatch.ts";
import { ReplyBatcher } from "../lib/tunnel/batcher.ts";
import { routeKeyOf } from "../lib/tunnel/route_key.ts";
import {
  type ClientMessage,
  ClientMessageDecoder,
  encodeHello,
  encodeRoute,
} from "../lib/tunnel/messages.ts";

const { values } = benchArgs(import.meta.url, {
  options: {
    pairs: { type: "string", default: "100000" },
    batch: { type: "string", default: "1" },
    ipv6: { type: "boolean", default: false },
  },
});
const BATCH = intArg(import.meta.url, "batch", values.batch, 1, 64);
const PAIRS = intArg(import.meta.url, "pairs", values.pairs, BATCH) / BATCH * BATCH;
const CONNS = 2048; // distinct client tuples, cycled (each deleted before it comes round)

class Peer {
  batcher = new ReplyBatcher({ maxQueuedBytes: 1 << 20 });
  authenticated = false;
}

const v6 = values.ipv6;
const target = {
  addr: new Uint8Array(v6 ? [0xfd, 0, ...new Array(13).fill(0), 2] : [10, 0, 0, 2]),
  port: 80,
};
function client(i: number) {
  const a = v6 ? [0xfd, 0, ...new Array(11).fill(0), 1, i >> 8, i & 255] : [10, 1, i >> 8, i & 255];
  return { addr: new Uint8Array(a), port: 20000 + i };
}
/** The chunks of one lap: per batch, one read of K adds, then one of K dels. */
const size = v6 ? 46 : 14;
const laps: Uint8Array[] = [];
for (let i = 0; i < CONNS; i += BATCH) {
  for (const op of ["add", "del"] as const) {
    const chunk = new Uint8Array(size * BATCH);
    for (let k = 0; k < BATCH; k++) chunk.set(encodeRoute(op, client(i + k), target), size * k);
    laps.push(chunk);
  }
}

const peer = new Peer();
const dispatcher = new Dispatcher<Peer>();
dispatcher.addPeer(peer);
const decoder = new ClientMessageDecoder();
decoder.push(encodeHello());
decoder.extensions = true;
const pooled = typeof (decoder as { decode?: unknown }).decode === "function"; // the server path
let now = 0;

function handle(m: ClientMessage): void {
  if (m.kind === "add") dispatcher.addRoute(peer, routeKeyOf(m.client, m.target), now);
  else if (m.kind === "del") dispatcher.deleteRoute(peer, routeKeyOf(m.client, m.target));
}

function read(chunk: Uint8Array): void {
  if (pooled) {
    const n = decoder.decode(chunk), messages = decoder.messages;
    for (let i = 0; i < n; i++) handle(messages[i]);
    if (decoder.error) throw new Error(decoder.error);
  } else {
    const { items, error } = decoder.push(chunk);
    for (const m of items) handle(m);
    if (error) throw new Error(error);
  }
}

function pass(pairs: number): void {
  for (let done = 0; done < pairs;) {
    for (let j = 0; j < laps.length && done < pairs; j += 2, done += BATCH) {
      now += 0.05;
      read(laps[j]);
      read(laps[j + 1]);
    }
  }
  if (dispatcher.routes.size !== 0) throw new Error(`${dispatcher.routes.size} routes left`);
}

const { ns: times, bytes } = timedPasses(() => pass(PAIRS), PAIRS);
console.log(
  `${pooled ? "decode" : "push"} ${v6 ? "IPv6" : "IPv4"} batch ${BATCH}: ${
    times[2].toFixed(0)
  } ns/pair (range ${times[0].toFixed(0)}-${times[4].toFixed(0)}), heap ${
    bytes.toFixed(0)
  } bytes/pair, routes added ${dispatcher.counters.routesAdded}`,
);
