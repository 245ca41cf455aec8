/**
 * Cost of tcpcopy's glue (lib/tcpcopy/replicator.ts) per packet, without the engine: a captured
 * Ethernet frame parsed into a CapturedSegment, a reply header parsed into a ReplySegment, and
 * an engine output segment built into a sender slot. The engine is a no-op here; its own cost
 * is measured by bench/engine_bench.ts.
 */
import { Replicator } from "../lib/tcpcopy/replicator.ts";
import { Logger } from "../lib/stats/logger.ts";
import { emptyStats } from "../lib/engine/stats.ts";
import type { OutSegment } from "../lib/engine/segment.ts";
import { endpointOf } from "../lib/engine/endpoint.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../lib/wire/build.ts";
import { LinkType } from "../lib/wire/link.ts";

const slotBuf = new Uint8Array(2048);
const sender = {
  pending: 0,
  slot: (len: number) => slotBuf.subarray(0, len),
  flush: () => 0,
};
const r = new Replicator({ v4: sender, v6: null, log: new Logger(() => {}), now: () => 0 });
r.attach({
  stats: emptyStats(),
  onCaptured() {},
  onReply() {},
  tick() {},
  nextDeadline: () => undefined,
  closeAll() {},
});

const ts = { tsval: 123456, tsecr: 654321 };
const repr = {
  ...addressPair("192.168.1.10", "10.0.0.1"),
  srcPort: 40000,
  dstPort: 80,
  seq: 1000,
  ack: 2000,
  flags: 0x18,
  window: 512,
  options: { sackPermitted: false, sackBlocks: [], unknown: [], timestamp: ts },
  payload: new TextEncoder().encode("GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n"),
};
const ip = new Uint8Array(tcpPacketLength(repr));
buildTcpPacket(repr, ip);
const frame = new Uint8Array(14 + ip.length);
frame.set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00]);
frame.set(ip, 14);
const reply = ip.subarray(0, 52); // header only, as intercept sends it

const out: OutSegment = {
  src: endpointOf("192.168.1.10", 40000),
  dst: endpointOf("10.0.0.2", 80),
  seq: 1000,
  ack: 2000,
  flags: 0x18,
  window: 512,
  options: { timestamp: ts },
  payload: repr.payload,
};

Deno.bench("replicator: captured Ethernet frame -> CapturedSegment", () => {
  r.onFrame(frame, LinkType.EN10MB, 1_700_000_000_000_000, 0);
});

Deno.bench("replicator: reply header -> ReplySegment", () => {
  r.onReplyBytes(reply, 0);
});

Deno.bench("replicator: OutSegment -> packet built in a sender slot", () => {
  r.send(out);
});
