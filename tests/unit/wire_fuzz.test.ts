/**
 * Fuzz-style tests: random buffers and every truncation of valid frames of every
 * link type must give an error value or a self-consistent result, never an
 * exception, and the parser must never index outside the buffer (checked with
 * a Proxy that records every out-of-range index).
 */
import assert from "node:assert/strict";
import { addressPair, buildTcpPacket, type TcpPacketRepr } from "../../lib/wire/build.ts";
import { fillTcpChecksum, tcpChecksumIpv6 } from "../../lib/wire/checksum.ts";
import { WIRE_ERRORS } from "../../lib/wire/error.ts";
import { LinkType } from "../../lib/wire/link.ts";
import { ParsedTcp, parseTcpPacket } from "../../lib/wire/packet.ts";
import { parseTcpHeaderOptions, parseTcpOptions } from "../../lib/wire/tcp_options.ts";
import { mulberry32 } from "../helpers/prng.ts";

/** A Uint8Array stand-in that records reads outside [0, length). */
function guarded(bytes: Uint8Array, oob: number[]): Uint8Array {
  return new Proxy(bytes, {
    get(target, prop) {
      if (typeof prop === "string" && /^-?\d+$/.test(prop)) {
        const i = Number(prop);
        if (i < 0 || i >= target.length) oob.push(i);
        return target[i];
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

const ALL_LINKS = [
  LinkType.EN10MB,
  LinkType.LINUX_SLL,
  LinkType.LINUX_SLL2,
  LinkType.RAW,
  LinkType.RAW_OPENBSD,
  LinkType.RAW_LINKTYPE,
  LinkType.IPV4,
  LinkType.IPV6,
  LinkType.NULL,
  LinkType.LOOP,
];

const KNOWN_ERRORS = new Set<string>(WIRE_ERRORS);

/** Either a known error code, or a result whose offsets all lie inside the frame. */
function assertConsistent(frame: Uint8Array, err: string | null, p: ParsedTcp, what: string) {
  if (err !== null) {
    assert.ok(KNOWN_ERRORS.has(err), `${what}: unknown error ${err}`);
    return;
  }
  assert.ok(p.family === 4 || p.family === 6, what);
  assert.ok(p.ipOffset >= 0, what);
  assert.equal(p.tcpOffset, p.ipOffset + p.ipHeaderLength, what);
  assert.ok(p.tcpHeaderLength >= 20 && p.tcpHeaderLength <= 60, what);
  assert.equal(p.payloadOffset, p.tcpOffset + p.tcpHeaderLength, what);
  assert.ok(p.payloadOffset <= frame.length, what);
  assert.ok(p.capturedPayloadLength >= 0, what);
  assert.ok(p.payloadOffset + p.capturedPayloadLength <= frame.length, what);
  assert.ok(p.capturedPayloadLength <= p.payloadLength, what);
  assert.equal(p.payloadTruncated, p.capturedPayloadLength < p.payloadLength, what);
  for (const v of [p.srcPort, p.dstPort, p.window, p.checksum, p.urgent, p.ipId]) {
    assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffff, what);
  }
  for (const v of [p.seq, p.ack]) assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff);
  assert.ok(p.srcAddr.length > 0 && p.dstAddr.length > 0, what);
}

function frameFor(linkType: number, ip: Uint8Array, v6: boolean): Uint8Array {
  const et = v6 ? [0x86, 0xdd] : [0x08, 0x00];
  let head: number[];
  switch (linkType) {
    case LinkType.EN10MB:
      head = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0, 0, 3, ...et];
      break;
    case LinkType.LINUX_SLL:
      head = [0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, ...et];
      break;
    case LinkType.LINUX_SLL2:
      head = [...et, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
      break;
    case LinkType.NULL:
      head = [v6 ? 30 : 2, 0, 0, 0];
      break;
    case LinkType.LOOP:
      head = [0, 0, 0, v6 ? 28 : 2];
      break;
    default:
      head = [];
  }
  const f = new Uint8Array(head.length + ip.length);
  f.set(head);
  f.set(ip, head.length);
  return f;
}

function validIp(rnd: () => number, v6: boolean): Uint8Array {
  const r32 = () => Math.floor(rnd() * 2 ** 32);
  const repr: TcpPacketRepr = {
    ...addressPair(v6 ? "fd00::1" : "10.1.1.1", v6 ? "fd00::2" : "10.1.1.2"),
    srcPort: 1000,
    dstPort: 2000,
    seq: r32(),
    ack: r32(),
    flags: 0x18,
    window: 100,
    options: {
      sackPermitted: false,
      sackBlocks: [[r32(), r32()]],
      unknown: [],
      timestamp: { tsval: r32(), tsecr: r32() },
    },
    payload: new Uint8Array(Math.floor(rnd() * 40)),
  };
  const out = new Uint8Array(200);
  const n = buildTcpPacket(repr, out);
  if (!v6) return out.slice(0, n);
  // IPv6: add a hop-by-hop and a destination-options header in front of TCP.
  const b = new Uint8Array(n + 16);
  b.set(out.subarray(0, 40));
  b[6] = 0;
  b.set([60, 0, 1, 4, 0, 0, 0, 0], 40);
  b.set([6, 0, 1, 4, 0, 0, 0, 0], 48);
  b.set(out.subarray(40, n), 56);
  const plen = n + 16 - 40;
  b[4] = plen >> 8;
  b[5] = plen & 0xff;
  return b;
}

Deno.test("fuzz: every truncation of valid frames of every link type", () => {
  const rnd = mulberry32(1);
  const p = new ParsedTcp();
  let ok = 0;
  for (const v6 of [false, true]) {
    for (const linkType of ALL_LINKS) {
      if ((linkType === LinkType.IPV4 && v6) || (linkType === LinkType.IPV6 && !v6)) continue;
      for (let rep = 0; rep < 3; rep++) {
        const ip = validIp(rnd, v6);
        const frame = frameFor(linkType, ip, v6);
        for (let len = 0; len <= frame.length; len++) {
          const oob: number[] = [];
          const cut = frame.slice(0, len);
          const what = `link ${linkType} v${v6 ? 6 : 4} len ${len}/${frame.length}`;
          const err = parseTcpPacket(guarded(cut, oob), linkType, p);
          assert.deepEqual(oob, [], `${what}: out-of-bounds reads`);
          assertConsistent(cut, err, p, what);
          if (err === null) {
            ok++;
            // Whenever headers are complete the parse equals the full frame's, minus payload.
            assert.equal(
              p.payloadLength,
              ip.length - (p.payloadOffset - (frame.length - ip.length)),
            );
          }
          if (len === frame.length) assert.equal(err, null, what);
          const oobOpts: number[] = [];
          if (err === null) parseTcpHeaderOptions(guarded(cut, oobOpts), p.tcpOffset);
          assert.deepEqual(oobOpts, [], `${what}: option reads`);
        }
      }
    }
  }
  assert.ok(ok > 100);
});

Deno.test("fuzz: random buffers and random corruptions never throw or overread", () => {
  const rnd = mulberry32(20240601);
  const p = new ParsedTcp();
  const seen = new Map<string, number>();
  for (let i = 0; i < 20000; i++) {
    const linkType = ALL_LINKS[Math.floor(rnd() * ALL_LINKS.length)];
    let frame: Uint8Array;
    if (i % 2 === 0) {
      frame = new Uint8Array(Math.floor(rnd() * 120));
      for (let j = 0; j < frame.length; j++) frame[j] = rnd() * 256;
      // Make the IP version nibble plausible half of the time.
      if (rnd() < 0.5) {
        const at = frameFor(linkType, new Uint8Array(0), rnd() < 0.5).length;
        if (at < frame.length) frame[at] = (rnd() < 0.5 ? 0x40 : 0x60) | (frame[at] & 0x0f);
      }
    } else {
      const v6 = linkType === LinkType.IPV6 || (linkType !== LinkType.IPV4 && rnd() < 0.5);
      frame = frameFor(linkType, validIp(rnd, v6), v6);
      const flips = 1 + Math.floor(rnd() * 4);
      for (let f = 0; f < flips; f++) frame[Math.floor(rnd() * frame.length)] = rnd() * 256;
    }
    const oob: number[] = [];
    const err = parseTcpPacket(guarded(frame, oob), linkType, p);
    assert.deepEqual(oob, [], `iteration ${i}: out-of-bounds reads`);
    assertConsistent(frame, err, p, `iteration ${i}`);
    seen.set(err ?? "ok", (seen.get(err ?? "ok") ?? 0) + 1);
    if (err === null) {
      const o = parseTcpOptions(frame, p.tcpOffset + 20, p.payloadOffset);
      assert.ok(typeof o === "string" ? KNOWN_ERRORS.has(o) : Array.isArray(o.sackBlocks));
      // Checksum helpers on arbitrary parsed input must not throw either.
      fillTcpChecksum(frame.slice(), p.ipOffset);
      if (p.family === 6) tcpChecksumIpv6(frame, p.ipOffset);
    }
  }
  // The corpus reaches both success and the main error paths.
  for (const k of ["ok", "truncated", "not_ip", "bad_ip_version", "not_tcp", "bad_tcp_offset"]) {
    assert.ok((seen.get(k) ?? 0) > 0, `never saw ${k}: ${JSON.stringify([...seen])}`);
  }
});

Deno.test("the out-of-bounds guard itself detects overreads", () => {
  const oob: number[] = [];
  const g = guarded(Uint8Array.of(1, 2), oob);
  assert.equal(g[1], 2);
  assert.equal(g.length, 2);
  assert.equal(g[2], undefined);
  assert.equal(g[-1], undefined);
  assert.deepEqual(oob, [2, -1]);
});
