/**
 * The IPv6 data path of tcpcopy without sockets: captured IPv6 frames -> the real engine ->
 * IPv6 packets built in the IPv6 sender's slots (never the IPv4 one), 16-byte routes for the
 * tunnel, IPv6 reply headers from intercept driving the session, 60-byte headers kept within
 * the MTU, and captured IPv4 connections never replayed to an IPv6-only target.
 */
import assert from "node:assert/strict";
import { FakeSender } from "../helpers/fake_sender.ts";
import { Replicator, type RouteEndpoint } from "../../lib/tcpcopy/replicator.ts";
import { engineConfigOf } from "../../lib/tcpcopy/convert.ts";
import { parseTcpcopyArgs } from "../../lib/cli/tcpcopy.ts";
import { Engine } from "../../lib/engine/engine.ts";
import { Logger } from "../../lib/stats/logger.ts";
import {
  addressPair,
  buildTcpPacket,
  tcpPacketLength,
  type TcpPacketRepr,
} from "../../lib/wire/build.ts";
import { ParsedTcp, parseIpTcp } from "../../lib/wire/packet.ts";
import { tcpChecksumIpv6 } from "../../lib/wire/checksum.ts";
import { LinkType } from "../../lib/wire/link.ts";
import type { TcpOptions } from "../../lib/wire/tcp_options.ts";

const CLIENT = "fd00:1::2", ONLINE = "fd00:1::1", TARGET = "fd00:10::2";

type PacketSpec = Partial<Omit<TcpPacketRepr, "options">> & {
  family: 4 | 6;
  srcAddr: Uint8Array;
  dstAddr: Uint8Array;
  options?: Partial<TcpOptions>;
};

function packet(p: PacketSpec): Uint8Array {
  const repr: TcpPacketRepr = {
    srcPort: 40000,
    dstPort: 80,
    seq: 1000,
    ack: 0,
    flags: 0x10,
    window: 65535,
    ...p,
    options: { sackPermitted: false, sackBlocks: [], unknown: [], ...p.options },
  };
  const out = new Uint8Array(tcpPacketLength(repr));
  assert.equal(buildTcpPacket(repr, out), out.length);
  return out;
}

/** Parses a sent packet and checks its IPv6 framing and TCP checksum. */
function parseSent(bytes: Uint8Array): ParsedTcp {
  const p = new ParsedTcp();
  assert.equal(parseIpTcp(bytes, 0, p), null);
  assert.equal(p.family, 6);
  assert.equal(p.totalLength, bytes.length, "IPv6 payload length matches the packet");
  assert.equal(tcpChecksumIpv6(bytes, 0), p.checksum, "TCP checksum over the IPv6 pseudo-header");
  return p;
}

function setup(transfer: string, mtu = 1500) {
  const cli = parseTcpcopyArgs(["-x", transfer, "-s", "127.0.0.1", "-M", String(mtu)]);
  assert.equal(cli.kind, "run");
  if (cli.kind !== "run") throw new Error("bad command line");
  const v4 = new FakeSender(), v6 = new FakeSender();
  const routes: [RouteEndpoint, RouteEndpoint][] = [];
  const r = new Replicator({
    v4,
    v6,
    log: new Logger(() => {}, () => 0),
    now: () => 0,
    mtu: cli.config.mtu,
    routes: { addRoute: (c, t) => (routes.push([c, t]), true), delRoute: () => true },
  });
  const engine = new Engine(engineConfigOf(cli.config), r, 0);
  r.attach(engine);
  return { r, engine, v4, v6, routes };
}

Deno.test("ipv6: captured IPv6 connection is replayed as IPv6 packets with IPv6 routes", () => {
  const { r, engine, v4, v6, routes } = setup(`[${ONLINE}]:80-[${TARGET}]:80`);
  const ts = { tsval: 500, tsecr: 0 };
  r.onFrame(
    packet({
      ...addressPair(CLIENT, ONLINE),
      flags: 0x02,
      seq: 999,
      options: { mss: 1440, wscale: 7, sackPermitted: true, timestamp: ts },
    }),
    LinkType.RAW,
    1_000_000,
    1000,
  );
  r.flush();
  assert.equal(v4.sent.length, 0, "nothing on the IPv4 sender");
  assert.equal(v6.sent.length, 1);
  const syn = parseSent(v6.sent[0]);
  assert.equal(syn.srcText(), CLIENT);
  assert.equal(syn.dstText(), TARGET);
  assert.equal(syn.flags & 0x12, 0x02);
  // the route names both endpoints with 16-byte addresses
  assert.equal(routes.length, 1);
  assert.equal(routes[0][0].addr.length, 16);
  assert.equal(routes[0][1].addr.length, 16);
  assert.equal(routes[0][1].port, 80);

  // intercept hands back the target's SYN-ACK (an IPv6 header)
  const iss = 77_000;
  r.onReplyBytes(
    packet({
      ...addressPair(TARGET, CLIENT),
      srcPort: 80,
      dstPort: syn.srcPort,
      seq: iss,
      ack: syn.seq + 1,
      flags: 0x12,
      options: { mss: 1440, wscale: 7, timestamp: { tsval: 9, tsecr: 500 } },
    }),
    1001,
  );
  // the client's request: one full-sized segment (1,428 bytes + 12 bytes of timestamps)
  const body = new Uint8Array(1428).map((_, i) => 65 + (i % 26));
  r.onFrame(
    packet({
      ...addressPair(CLIENT, ONLINE),
      seq: 1000,
      ack: 5000,
      flags: 0x18,
      options: { timestamp: { tsval: 501, tsecr: 1 } },
      payload: body,
    }),
    LinkType.RAW,
    1_001_000,
    1002,
  );
  r.flush();
  assert.equal(r.counters.replyErrors, 0);
  assert.equal(r.counters.buildErrors, 0);
  assert.equal(engine.stats.handshakes.established, 1);
  const data = v6.sent.slice(1).map(parseSent).filter((p) => p.payloadLength > 0);
  assert.equal(data.length, 1);
  const d = data[0];
  assert.equal(d.ack, iss + 1, "the ACK is in the target's sequence space");
  assert.ok(v6.sent.every((b) => b.length <= 1500), "every packet fits the 1,500-byte MTU");
  assert.deepEqual(d.bytes.subarray(d.payloadOffset, d.payloadOffset + d.payloadLength), body);
  assert.equal(v4.sent.length, 0);
});

Deno.test("ipv6: a smaller -M splits payloads so that 60-byte headers still fit", () => {
  const { r, v6 } = setup(`[${ONLINE}]:80-[${TARGET}]:80`, 1280);
  r.onFrame(
    packet({ ...addressPair(CLIENT, ONLINE), flags: 0x02, seq: 999, options: { mss: 1440 } }),
    LinkType.RAW,
    0,
    0,
  );
  r.flush();
  const syn = parseSent(v6.sent[0]);
  r.onReplyBytes(
    packet({
      ...addressPair(TARGET, CLIENT),
      srcPort: 80,
      dstPort: syn.srcPort,
      seq: 1,
      ack: syn.seq + 1,
      flags: 0x12,
      options: { mss: 1440 },
    }),
    1,
  );
  const body = new Uint8Array(1440).fill(0x62);
  r.onFrame(
    packet({ ...addressPair(CLIENT, ONLINE), seq: 1000, flags: 0x18, payload: body }),
    LinkType.RAW,
    0,
    2,
  );
  r.flush();
  const data = v6.sent.slice(1).map(parseSent).filter((p) => p.payloadLength > 0);
  assert.ok(data.length >= 2, "the request was cut into several segments");
  assert.ok(v6.sent.every((b) => b.length <= 1280), v6.sent.map((b) => b.length).join(","));
  assert.equal(data.reduce((n, p) => n + p.payloadLength, 0), body.length);
});

Deno.test("ipv6: an IPv4 connection on the port of an IPv6-only transfer is not replayed", () => {
  const { r, engine, v4, v6, routes } = setup(`80-[${TARGET}]:80`);
  r.onFrame(
    packet({ ...addressPair("10.1.1.2", "10.1.1.1"), flags: 0x02, options: { mss: 1460 } }),
    LinkType.RAW,
    0,
    0,
  );
  r.flush();
  assert.equal(v4.sent.length + v6.sent.length, 0);
  assert.equal(routes.length, 0);
  assert.equal(r.counters.buildErrors, 0, "no session was opened to fail at build time");
  assert.equal(engine.stats.sessions.created, 0);
  assert.equal(engine.stats.ignored.no_transfer, 1);
  // while an IPv6 connection on that port is
  r.onFrame(
    packet({ ...addressPair(CLIENT, ONLINE), flags: 0x02, options: { mss: 1440 } }),
    LinkType.RAW,
    0,
    1,
  );
  r.flush();
  assert.equal(v6.sent.length, 1);
  assert.equal(engine.stats.sessions.created, 1);
});
