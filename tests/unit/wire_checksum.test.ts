import assert from "node:assert/strict";
import { addressPair, buildTcpPacket, type TcpPacketRepr } from "../../lib/wire/build.ts";
import {
  fillIpv4HeaderChecksum,
  fillTcpChecksum,
  internetChecksum,
  onesComplementSum,
} from "../../lib/wire/checksum.ts";
import { mulberry32 } from "../helpers/prng.ts";

/** Textbook RFC 1071 sum, written independently of lib/wire: pairs of bytes, then fold. */
function referenceChecksum(bytes: number[]): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += bytes[i] * 256 + (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return 0xffff - sum;
}

Deno.test("RFC 1071 example: sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2", () => {
  const b = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(onesComplementSum(b, 0, b.length), 0xddf2);
  assert.equal(internetChecksum(b, 0, b.length), 0x220d);
});

Deno.test("odd lengths pad with a zero byte; ranges clamp to the buffer", () => {
  const b = new Uint8Array([0x12, 0x34, 0x56]);
  assert.equal(onesComplementSum(b, 0, 3), 0x1234 + 0x5600);
  assert.equal(onesComplementSum(b, 0, 99), 0x1234 + 0x5600);
  assert.equal(onesComplementSum(b, -4, 2), 0x1234);
  assert.equal(onesComplementSum(b, 0, 2, 0xffff), 0x1234); // end-around carry
});

Deno.test("property: internetChecksum equals an independent reference on random data", () => {
  const rnd = mulberry32(7);
  for (let i = 0; i < 2000; i++) {
    const len = Math.floor(rnd() * 200);
    const data = Array.from({ length: len }, () => Math.floor(rnd() * 256));
    if (rnd() < 0.1) data.fill(0xff);
    assert.equal(internetChecksum(Uint8Array.from(data), 0, len), referenceChecksum(data));
  }
});

Deno.test("property: long ranges at every buffer alignment match the reference", () => {
  const rnd = mulberry32(11);
  const backing = new Uint8Array(4096);
  for (let i = 0; i < 400; i++) {
    for (let j = 0; j < backing.length; j++) backing[j] = rnd() * 256;
    const viewOffset = Math.floor(rnd() * 8);
    const view = backing.subarray(viewOffset);
    const start = Math.floor(rnd() * 8);
    const end = start + Math.floor(rnd() * 2000);
    const ref = referenceChecksum([...view.subarray(start, end)]);
    assert.equal(internetChecksum(view, start, end), ref, `view ${viewOffset} start ${start}`);
    const initial = Math.floor(rnd() * 0x20000);
    const folded = onesComplementSum(view, start, end, initial);
    assert.ok(folded <= 0xffff);
    assert.equal(folded % 0xffff, (0xffff - ref + initial) % 0xffff);
  }
});

function randomPacket(rnd: () => number, v6: boolean, out: Uint8Array): number {
  const r32 = () => Math.floor(rnd() * 2 ** 32);
  const r16 = () => Math.floor(rnd() * 65536);
  const v4addr = () => [0, 0, 0, 0].map(() => Math.floor(rnd() * 256)).join(".");
  const v6addr = () => Array.from({ length: 8 }, () => r16().toString(16)).join(":");
  const payload = new Uint8Array(Math.floor(rnd() * 1461));
  for (let i = 0; i < payload.length; i++) payload[i] = rnd() * 256;
  const repr: TcpPacketRepr = {
    ...addressPair(v6 ? v6addr() : v4addr(), v6 ? v6addr() : v4addr()),
    srcPort: r16(),
    dstPort: r16(),
    seq: r32(),
    ack: r32(),
    flags: Math.floor(rnd() * 256),
    window: r16(),
    ipId: r16(),
    options: {
      sackPermitted: rnd() < 0.5,
      sackBlocks: rnd() < 0.5 ? [[r32(), r32()]] : [],
      unknown: rnd() < 0.3 ? [{ kind: 30, data: Uint8Array.of(1, 2, 3) }] : [],
      timestamp: rnd() < 0.8 ? { tsval: r32(), tsecr: r32() } : undefined,
    },
    payload,
  };
  if (repr.options!.timestamp === undefined) delete repr.options!.timestamp;
  return buildTcpPacket(repr, out, 0);
}

Deno.test("fill functions write the values the compute functions return", () => {
  const rnd = mulberry32(5);
  const buf = new Uint8Array(1600);
  for (let i = 0; i < 50; i++) {
    const n = randomPacket(rnd, i % 2 === 1, buf);
    const pkt = buf.subarray(0, n);
    const good = pkt.slice();
    pkt[i % 2 === 1 ? 40 + 16 : 20 + 16] ^= 0xff;
    if (i % 2 === 0) {
      pkt[10] ^= 0x55;
      fillIpv4HeaderChecksum(pkt, 0);
    }
    assert.ok(fillTcpChecksum(pkt, 0) >= 0);
    assert.deepEqual(pkt, good);
  }
  assert.equal(fillTcpChecksum(new Uint8Array(10), 0), -1);
  assert.equal(fillTcpChecksum(Uint8Array.of(0x45), 0), -1);
});
