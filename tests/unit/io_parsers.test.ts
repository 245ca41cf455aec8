/**
 * The pure parsers of lib/io on hand-made bytes (no root, no network): pcap records,
 * NFQUEUE netlink datagrams, /proc queue counters, MAC addresses, errno names.
 */

import assert from "node:assert/strict";
import { forEachRecord } from "../../lib/io/pcap_records.ts";
import { type NfqParseCounts, parseNfqDatagram } from "../../lib/io/nfq_netlink.ts";
import { kernelQueueStats } from "../../lib/io/nfqueue.ts";
import { formatMac, parseMac } from "../../lib/wire/addr.ts";
import { Errno, errnoName } from "../../lib/io/libc.ts";

/** Savefile records in host (little-endian) order. */
function records(list: { ts: number; data: number[]; wire?: number }[]): Uint8Array {
  const parts = list.map(({ ts, data, wire }) => {
    const r = new Uint8Array(16 + data.length), dv = new DataView(r.buffer);
    dv.setUint32(0, Math.floor(ts / 1e6), true);
    dv.setUint32(4, ts % 1e6, true);
    dv.setUint32(8, data.length, true);
    dv.setUint32(12, wire ?? data.length, true);
    r.set(data, 16);
    return r;
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
  return out;
}

Deno.test("pcap records: timestamps, lengths and views; a truncated tail is not delivered", () => {
  const bytes = records([
    { ts: 1_700_000_000_123_456, data: [1, 2, 3] },
    { ts: 1_700_000_001_000_001, data: [], wire: 60 },
    { ts: 1_700_000_002_999_999, data: [9, 8, 7, 6, 5], wire: 1500 },
  ]);
  const dv = new DataView(bytes.buffer);
  const seen: [number[], number, number][] = [];
  const n = forEachRecord(bytes, dv, 0, bytes.length, (f, ts, w) => seen.push([[...f], ts, w]));
  assert.equal(n, 3);
  assert.deepEqual(seen, [
    [[1, 2, 3], 1_700_000_000_123_456, 3],
    [[], 1_700_000_001_000_001, 60],
    [[9, 8, 7, 6, 5], 1_700_000_002_999_999, 1500],
  ]);
  for (let cut = 0; cut < bytes.length; cut++) {
    const got: number[] = [];
    const m = forEachRecord(bytes, dv, 0, cut, (f) => got.push(f.length));
    const complete = cut >= 16 + 3 + 16 ? (cut >= 16 + 3 + 16 + 16 + 5 ? 3 : 2) : cut >= 19 ? 1 : 0;
    assert.equal(m, complete, `cut at ${cut}`);
    assert.equal(got.length, complete);
  }
});

/** One netlink message: nlmsghdr + nfgenmsg + attributes ({type, value}). */
function nlmsg(type: number, attrs: { type: number; value: number[] }[], lenOverride?: number) {
  const body: number[] = [2, 0, 0, 7]; // nfgenmsg: AF_INET, version 0, res_id 7 (BE)
  for (const a of attrs) {
    const len = 4 + a.value.length;
    body.push(len & 0xff, len >> 8, a.type & 0xff, a.type >> 8, ...a.value);
    while (body.length % 4) body.push(0);
  }
  const m = new Uint8Array(16 + body.length), dv = new DataView(m.buffer);
  dv.setUint32(0, lenOverride ?? m.length, true);
  dv.setUint16(4, type, true);
  m.set(body, 16);
  return m;
}

const be32 = (n: number) => [n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const packetHdr = (id: number) => ({ type: 1, value: [...be32(id), 0x08, 0x00, 3] });

function parse(bytes: Uint8Array, len = bytes.length) {
  const got: { id: number; payload: number[]; orig: number }[] = [];
  const counts: NfqParseCounts = { packets: 0, skipped: 0 };
  parseNfqDatagram(new DataView(bytes.buffer), 0, len, (id, off, plen, orig) => {
    got.push({ id, payload: [...bytes.subarray(off, off + plen)], orig });
  }, counts);
  return { got, counts };
}

Deno.test("NFQUEUE datagram: big-endian packet id, payload, cap_len, several messages", () => {
  const a = nlmsg(0x0300, [
    packetHdr(0x01020304),
    { type: 0x8000 | 10, value: [0x45, 0, 0, 40, 9, 9] }, // NLA_F_NESTED bit is masked
    { type: 13, value: be32(1500) },
  ]);
  const b = nlmsg(0x0300, [packetHdr(0xfffffffe), { type: 10, value: [0x45, 1] }]);
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  const { got, counts } = parse(both);
  assert.deepEqual(got, [
    { id: 0x01020304, payload: [0x45, 0, 0, 40, 9, 9], orig: 1500 },
    { id: 0xfffffffe, payload: [0x45, 1], orig: 2 },
  ]);
  assert.deepEqual(counts, { packets: 2, skipped: 0 });
});

Deno.test("NFQUEUE datagram: malformed and foreign messages are counted, never thrown", () => {
  const ok = nlmsg(0x0300, [packetHdr(5), { type: 10, value: [0x45, 2, 3, 4, 5, 6, 7, 8] }]);
  // truncated datagram: the payload is cut, the id still arrives (so the packet gets a verdict)
  const cut = parse(ok, ok.length - 4);
  assert.deepEqual(cut.got, [{ id: 5, payload: [0x45, 2, 3, 4], orig: 4 }]);
  // an error message (type 2) and a packet message without NFQA_PACKET_HDR are skipped
  const foreign = parse(nlmsg(2, [{ type: 1, value: be32(0) }]));
  assert.deepEqual(foreign.counts, { packets: 0, skipped: 1 });
  const noHdr = parse(nlmsg(0x0300, [{ type: 10, value: [0x45] }]));
  assert.deepEqual(noHdr.counts, { packets: 0, skipped: 1 });
  // nlmsg_len smaller than a header: stop, count once
  const bad = parse(nlmsg(0x0300, [packetHdr(1)], 3));
  assert.deepEqual(bad.counts, { packets: 0, skipped: 1 });
  // nlmsg_len larger than the datagram: attributes are clamped to what arrived
  const long = parse(nlmsg(0x0300, [packetHdr(9)], 4000));
  assert.deepEqual(long.got.map((g) => g.id), [9]);
  // zero-length attribute: the walk stops without looping
  const zero = nlmsg(0x0300, [packetHdr(3), { type: 10, value: [] }]);
  zero[16 + 4 + 12] = 0;
  assert.deepEqual(parse(zero).got.map((g) => g.id), [3]);
  // random bytes never throw
  for (let i = 0; i < 500; i++) {
    const junk = crypto.getRandomValues(new Uint8Array(1 + (i % 97)));
    parse(junk);
  }
});

Deno.test("kernel queue counters from /proc text", () => {
  const text =
    "    7  12345     3 2   128     11    22 999 1\n   42  1     0 2   65535  0 5 10 1\n";
  assert.deepEqual(kernelQueueStats(7, text), { waiting: 3, queueDropped: 11, userDropped: 22 });
  assert.deepEqual(kernelQueueStats(42, text), { waiting: 0, queueDropped: 0, userDropped: 5 });
  assert.deepEqual(kernelQueueStats(8, text), {});
  assert.deepEqual(kernelQueueStats(7, ""), {});
});

Deno.test("MAC addresses and errno names", () => {
  assert.deepEqual(parseMac("02:AB:0c:d:ee:ff"), new Uint8Array([2, 0xab, 0x0c, 0x0d, 0xee, 0xff]));
  assert.equal(parseMac("02-ab-0c-0d-ee-ff")?.[5], 0xff);
  for (
    const bad of [
      "",
      "02:ab:0c:0d:ee",
      "02:ab:0c:0d:ee:ff:00",
      "0g:ab:0c:0d:ee:ff",
      "123:1:1:1:1:1",
    ]
  ) {
    assert.equal(parseMac(bad), null, bad);
  }
  assert.equal(formatMac(new Uint8Array([2, 0xab, 0x0c, 0x0d, 0xee, 0xff])), "02:ab:0c:0d:ee:ff");
  assert.equal(errnoName(Errno.ENOBUFS), "ENOBUFS");
  assert.equal(errnoName(105), "ENOBUFS");
  assert.equal(errnoName(90), "EMSGSIZE");
  assert.equal(errnoName(4242), "E4242");
});
