// Tunnel hot paths: reply routing on intercept, frame decoding on tcpcopy, route messages.
// Run: deno bench -A bench/tunnel_bench.ts
import { Dispatcher } from "../lib/tunnel/dispatch.ts";
import { ReplyBatcher } from "../lib/tunnel/batcher.ts";
import { inspectReply, newReplyInfo } from "../lib/tunnel/reply_packet.ts";
import { routeKeyOf } from "../lib/tunnel/route_key.ts";
import { ClientMessageDecoder, encodeHello, encodeRoute } from "../lib/tunnel/messages.ts";
import { ServerStreamDecoder } from "../lib/tunnel/replies.ts";
import { F, segment } from "../tests/helpers/tunnel_fixtures.ts";

const ROUTES = 10_000;
const T = [10, 0, 0, 2];
const client = (i: number) => [10, 1, (i >> 8) & 0xff, i & 0xff];

class Peer {
  batcher = new ReplyBatcher({ maxQueuedBytes: 1 << 30 });
}

// 10k routes over 4 connections; replies cycle through all of them (with TCP timestamps)
const peers = [new Peer(), new Peer(), new Peer(), new Peer()];
const dispatcher = new Dispatcher<Peer>();
for (const p of peers) dispatcher.addPeer(p);
const replies: Uint8Array[] = [];
for (let i = 0; i < ROUTES; i++) {
  const c = { addr: new Uint8Array(client(i)), port: 30000 + (i % 1000) };
  dispatcher.addRoute(peers[i % 4], routeKeyOf(c, { addr: new Uint8Array(T), port: 80 }), 0);
  replies.push(segment({
    src: T,
    dst: client(i),
    sport: 80,
    dport: c.port,
    flags: F.ACK,
    options: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
    payload: new Uint8Array(100),
  }));
}
let r = 0;
let now = 0;

Deno.bench(
  "intercept: route one IPv4 reply into a v6 batch (10k routes)",
  { group: "reply" },
  () => {
    dispatcher.reply(replies[r++ % ROUTES], now);
    if ((r & 1023) === 0) {
      now++;
      for (const p of peers) {
        p.batcher.flush();
        const out = p.batcher.takeOutput();
        if (out) p.batcher.written(out.length);
      }
    }
  },
);

const info = newReplyInfo();
Deno.bench("intercept: inspect one reply (parse + route key)", { group: "reply" }, () => {
  inspectReply(replies[r++ % ROUTES], info);
});

// a stream of full 16-record frames, decoded in 1448-byte chunks (TCP MSS-sized reads)
const batcher = new ReplyBatcher({ maxQueuedBytes: 1 << 30 });
for (let i = 0; i < 16 * 64; i++) {
  inspectReply(replies[i], info);
  batcher.add(replies[i], info, 0);
}
const stream = batcher.takeOutput()!;
const chunks: Uint8Array[] = [];
for (let at = 0; at < stream.length; at += 1448) chunks.push(stream.subarray(at, at + 1448));
Deno.bench("tcpcopy: decode 1024 reply records (64 frames of 16)", { group: "decode" }, () => {
  const d = new ServerStreamDecoder();
  let n = 0;
  for (const c of chunks) n += d.push(c).items.length;
  if (n !== 1024) throw new Error(`decoded ${n}`);
});

// 1000 CLIENT_ADD messages after the hello, decoded in 1400-byte chunks
const msgs = new Uint8Array(14 * 1001);
msgs.set(encodeHello(), 0);
for (let i = 0; i < 1000; i++) {
  const c = { addr: new Uint8Array(client(i)), port: 30000 + i };
  msgs.set(encodeRoute("add", c, { addr: new Uint8Array(T), port: 80 }), 14 * (i + 1));
}
Deno.bench("intercept: decode + register 1000 CLIENT_ADD", { group: "routes" }, () => {
  const d = new ClientMessageDecoder();
  const disp = new Dispatcher<Peer>();
  const p = peers[0];
  for (let at = 0; at < msgs.length; at += 1400) {
    for (const m of d.push(msgs.subarray(at, at + 1400)).items) {
      if (m.kind === "add") disp.addRoute(p, routeKeyOf(m.client, m.target), 0);
    }
  }
  if (disp.routes.size !== 1000) throw new Error("routes");
});
