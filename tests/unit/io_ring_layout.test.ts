/**
 * The TPACKET_V3 ring walker on hand-made ring memory (no root, no network): order across
 * blocks, wrap-around, hand-back, resuming after `max`, outgoing frames skipped, malformed
 * blocks released without reading out of bounds; and the sizing decisions (block size from the
 * snaplen, retire timeout, when a growing ring grows).
 */

import assert from "node:assert/strict";
import {
  BlockDesc,
  blockSizeFor,
  MIN_ROOM_MS,
  nextRingSize,
  PacketType,
  retireMsFor,
  RING_FRAME_OVERHEAD,
  ringGeometry,
  RingWalker,
  SHRINK_AFTER_MS,
  STALL_HALF_LIFE_MS,
  STALL_ROOMS,
  StallMeter,
  Tp3Hdr,
  TP_STATUS_KERNEL,
  TP_STATUS_LOSING,
  TP_STATUS_USER,
  tpacketReq3,
  WAIT_ROOM_MS,
  WAIT_STALLS,
} from "../../lib/io/ring_layout.ts";
import { mulberry32 } from "../helpers/prng.ts";

interface FakePacket {
  bytes: Uint8Array;
  sec: number;
  nsec: number;
  wireLen?: number;
  pkttype?: number;
}

const GEOMETRY = { blockSize: 4096, blockCount: 3 };
/** tcpcopy's start ring half full: 96 blocks of 128 KiB, 12 MiB, up to 64 MiB. */
const START_RING = {
  readyBlocks: 48,
  blockCount: 96,
  losing: false,
  size: 12 << 20,
  minSize: 12 << 20,
  maxSize: 64 << 20,
  quietMs: 0,
} as const;
const MAC_OFFSET = 80; // after tpacket3_hdr (48) + sockaddr_ll (20), aligned as the kernel does

function fakeRing() {
  const buffer = new ArrayBuffer(GEOMETRY.blockSize * GEOMETRY.blockCount);
  return { u8: new Uint8Array(buffer), dv: new DataView(buffer) };
}

/** Writes `packets` into block `index` the way the kernel lays them out, and retires it. */
function fillBlock(dv: DataView, index: number, packets: FakePacket[]): void {
  const base = index * GEOMETRY.blockSize;
  const u8 = new Uint8Array(dv.buffer);
  let off = base + BlockDesc.SIZE;
  packets.forEach((p, i) => {
    const next = (MAC_OFFSET + p.bytes.length + 15) & ~15;
    dv.setUint32(off + Tp3Hdr.NEXT_OFFSET, i + 1 < packets.length ? next : 0, true);
    dv.setUint32(off + Tp3Hdr.SEC, p.sec, true);
    dv.setUint32(off + Tp3Hdr.NSEC, p.nsec, true);
    dv.setUint32(off + Tp3Hdr.SNAPLEN, p.bytes.length, true);
    dv.setUint32(off + Tp3Hdr.LEN, p.wireLen ?? p.bytes.length, true);
    dv.setUint16(off + Tp3Hdr.MAC, MAC_OFFSET, true);
    dv.setUint16(off + Tp3Hdr.NET, MAC_OFFSET + 14, true);
    u8[off + Tp3Hdr.PKTTYPE] = p.pkttype ?? PacketType.HOST;
    u8.set(p.bytes, off + MAC_OFFSET);
    off += next;
  });
  dv.setUint32(base + BlockDesc.NUM_PKTS, packets.length, true);
  dv.setUint32(base + BlockDesc.OFFSET_TO_FIRST_PKT, BlockDesc.SIZE, true);
  dv.setUint32(base + BlockDesc.BLOCK_STATUS, TP_STATUS_USER, true);
}

function packet(tag: number, len = 60 + (tag % 50)): FakePacket {
  const bytes = new Uint8Array(len).map((_, i) => (tag * 7 + i) & 0xff);
  return { bytes, sec: 1_700_000_000 + tag, nsec: tag * 1000 + 999, wireLen: len + tag };
}

function collect(walker: RingWalker, max?: number) {
  const got: { bytes: number[]; ts: number; wireLen: number }[] = [];
  const n = walker.drain((f, ts, wireLen) => got.push({ bytes: [...f], ts, wireLen }), max);
  assert.equal(n, got.length);
  return got;
}

const status = (dv: DataView, i: number) =>
  dv.getUint32(i * GEOMETRY.blockSize + BlockDesc.BLOCK_STATUS, true);

Deno.test("walker: packets in block order with timestamps and wire length; blocks handed back", () => {
  const { u8, dv } = fakeRing();
  const w = new RingWalker(u8, dv, GEOMETRY, false);
  assert.equal(w.ready(), false);
  assert.equal(w.drain(() => assert.fail("no packet expected")), 0);
  const first = [packet(1), packet(2), packet(3)], second = [packet(4), packet(5, 200)];
  fillBlock(dv, 0, first);
  fillBlock(dv, 1, second);
  assert.equal(w.ready(), true);
  const got = collect(w);
  const want = [...first, ...second];
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    assert.deepEqual(g.bytes, [...want[i].bytes]);
    assert.equal(g.ts, want[i].sec * 1e6 + Math.floor(want[i].nsec / 1000));
    assert.equal(g.wireLen, want[i].wireLen);
  });
  assert.equal(status(dv, 0), TP_STATUS_KERNEL);
  assert.equal(status(dv, 1), TP_STATUS_KERNEL);
  assert.equal(w.block, 2);
  assert.equal(w.ready(), false);
  // wrap-around: block 2, then block 0 again
  fillBlock(dv, 2, [packet(6)]);
  fillBlock(dv, 0, [packet(7)]);
  assert.deepEqual(collect(w).map((g) => g.wireLen), [packet(6).wireLen, packet(7).wireLen]);
  assert.equal(w.block, 1);
});

Deno.test("walker: max stops inside a block, which stays ours until its last packet", () => {
  const { u8, dv } = fakeRing();
  const w = new RingWalker(u8, dv, GEOMETRY, false);
  const pk = [1, 2, 3, 4, 5].map((t) => packet(t));
  fillBlock(dv, 0, pk.slice(0, 3));
  fillBlock(dv, 1, pk.slice(3));
  assert.deepEqual(collect(w, 2).map((g) => g.wireLen), [pk[0].wireLen, pk[1].wireLen]);
  assert.equal(status(dv, 0), TP_STATUS_USER, "not handed back mid-block");
  assert.equal(w.ready(), true);
  assert.deepEqual(collect(w, 2).map((g) => g.wireLen), [pk[2].wireLen, pk[3].wireLen]);
  assert.equal(status(dv, 0), TP_STATUS_KERNEL);
  assert.equal(status(dv, 1), TP_STATUS_USER);
  assert.deepEqual(collect(w).map((g) => g.wireLen), [pk[4].wireLen]);
  assert.equal(status(dv, 1), TP_STATUS_KERNEL);
});

Deno.test("walker: PACKET_OUTGOING frames skipped only when asked", () => {
  const pk = [
    packet(1),
    { ...packet(2), pkttype: PacketType.OUTGOING },
    { ...packet(3), pkttype: PacketType.BROADCAST },
  ];
  for (const skip of [true, false]) {
    const { u8, dv } = fakeRing();
    const w = new RingWalker(u8, dv, GEOMETRY, skip);
    fillBlock(dv, 0, pk);
    const got = collect(w).map((g) => g.wireLen);
    const want = skip ? [pk[0], pk[2]] : pk;
    assert.deepEqual(got, want.map((p) => p.wireLen));
    assert.equal(w.skippedOutgoing, skip ? 1 : 0);
    assert.equal(status(dv, 0), TP_STATUS_KERNEL);
  }
});

Deno.test("walker: malformed blocks are released without reading past them", () => {
  const { u8, dv } = fakeRing();
  const w = new RingWalker(u8, dv, GEOMETRY, false);
  // chain ends early: 3 announced, next_offset 0 after the first
  fillBlock(dv, 0, [packet(1)]);
  dv.setUint32(BlockDesc.NUM_PKTS, 3, true);
  // first packet beyond the block
  fillBlock(dv, 1, [packet(2)]);
  dv.setUint32(GEOMETRY.blockSize + BlockDesc.OFFSET_TO_FIRST_PKT, GEOMETRY.blockSize + 8, true);
  // snaplen running past the end of the last block (and of the ring)
  fillBlock(dv, 2, [packet(3)]);
  dv.setUint32(2 * GEOMETRY.blockSize + BlockDesc.SIZE + Tp3Hdr.SNAPLEN, 1 << 20, true);
  assert.deepEqual(collect(w).map((g) => g.wireLen), [packet(1).wireLen]);
  assert.equal(w.malformed, 3);
  for (let i = 0; i < 3; i++) assert.equal(status(dv, i), TP_STATUS_KERNEL);
  assert.equal(w.block, 0);
});

Deno.test("walker: random ring contents never throw and frames stay inside their block", () => {
  const rand = mulberry32(12345);
  for (let round = 0; round < 300; round++) {
    const { u8, dv } = fakeRing();
    for (let i = 0; i < u8.length; i++) u8[i] = rand() < 0.7 ? 0 : (rand() * 256) | 0;
    for (let b = 0; b < GEOMETRY.blockCount; b++) {
      const base = b * GEOMETRY.blockSize;
      if (rand() < 0.8) dv.setUint32(base + BlockDesc.BLOCK_STATUS, TP_STATUS_USER, true);
      dv.setUint32(base + BlockDesc.NUM_PKTS, (rand() * 40) | 0, true);
      if (rand() < 0.7) dv.setUint32(base + BlockDesc.OFFSET_TO_FIRST_PKT, BlockDesc.SIZE, true);
    }
    const w = new RingWalker(u8, dv, GEOMETRY, rand() < 0.5);
    w.drain((f) => {
      const block = Math.floor(f.byteOffset / GEOMETRY.blockSize);
      assert.ok(f.byteOffset + f.length <= (block + 1) * GEOMETRY.blockSize || f.length === 0);
    }, rand() < 0.5 ? Infinity : (rand() * 20) | 0);
  }
});

Deno.test("geometry and tpacket_req3: 256 KiB blocks, at least two, frame count consistent", () => {
  assert.deepEqual(ringGeometry(64 << 20), { blockSize: 256 << 10, blockCount: 256 });
  assert.deepEqual(ringGeometry(1000), { blockSize: 256 << 10, blockCount: 2 });
  const req = new DataView(tpacketReq3(ringGeometry(8 << 20), 10).buffer);
  const fields = Array.from({ length: 7 }, (_, i) => req.getUint32(i * 4, true));
  assert.deepEqual(fields, [256 << 10, 32, 2048, 128 * 32, 10, 0, 0]);
});

Deno.test("block size: the smallest power of two that holds a whole frame of snaplen, 16-256 KiB", () => {
  assert.equal(blockSizeFor(65535), 128 << 10); // a 64 KiB GRO/GSO frame does not fit 64 KiB
  assert.equal(blockSizeFor(1514), 16 << 10);
  assert.equal(blockSizeFor(96), 16 << 10);
  assert.equal(blockSizeFor((32 << 10) - RING_FRAME_OVERHEAD), 32 << 10);
  assert.equal(blockSizeFor((32 << 10) - RING_FRAME_OVERHEAD + 1), 64 << 10);
  assert.equal(blockSizeFor(262144), 256 << 10);
  for (const snaplen of [64, 1500, 9000, 20000, 65535, 131072]) {
    const size = blockSizeFor(snaplen);
    assert.ok(size >= snaplen + RING_FRAME_OVERHEAD, `${snaplen} fits ${size}`);
    assert.equal(size & (size - 1), 0, "a power of two");
    assert.equal(size % 2048, 0, "a multiple of the frame size and the page");
  }
});

Deno.test("retire timeout: 20 ms per 128 KiB block, at least 10 ms", () => {
  assert.equal(retireMsFor(128 << 10), 20);
  assert.equal(retireMsFor(256 << 10), 40);
  assert.equal(retireMsFor(64 << 10), 10);
  assert.equal(retireMsFor(16 << 10), 10);
  // what tcpcopy's start ring holds at low rates (a block per retire period): 1.92 s
  const g = ringGeometry(12 << 20, blockSizeFor(65535));
  assert.equal(g.blockCount * retireMsFor(g.blockSize), 1920);
});

Deno.test("growth: a ring as large at half full, twice as large on drops, fast fills or long stalls, never past the maximum", () => {
  const f = {
    readyBlocks: 0,
    blockCount: 64,
    losing: false,
    size: 8 << 20,
    minSize: 8 << 20,
    maxSize: 64 << 20,
    quietMs: 0,
  };
  assert.equal(nextRingSize(f), 0, "empty ring: keep");
  assert.equal(nextRingSize({ ...f, readyBlocks: 16 }), 0, "a quarter: keep");
  assert.equal(nextRingSize({ ...f, readyBlocks: 31 }), 0, "under half: keep");
  assert.equal(nextRingSize({ ...f, readyBlocks: 32 }), 8 << 20, "half: a new ring as large");
  assert.equal(
    nextRingSize({ ...f, readyBlocks: 32, olderBytes: 16 << 20 }),
    8 << 20,
    "half while older rings are still read: one more ring as large (no longer doubled)",
  );
  assert.equal(nextRingSize({ ...f, losing: true }), 16 << 20, "drops: double");
  const half = { ...f, readyBlocks: 32 };
  assert.equal(nextRingSize({ ...half, roomMs: MIN_ROOM_MS - 1 }), 16 << 20, "fast fill: double");
  assert.equal(nextRingSize({ ...half, roomMs: MIN_ROOM_MS }), 8 << 20, "room enough: as large");
  assert.equal(
    nextRingSize({ ...half, roomMs: 1000, stallMs: 1000 / STALL_ROOMS + 1 }),
    16 << 20,
    "the free half lasts less than two of the reader's recent stalls: double",
  );
  assert.equal(
    nextRingSize({ ...half, roomMs: 1000, stallMs: 1000 / STALL_ROOMS }),
    8 << 20,
    "it lasts two stalls: as large",
  );
  assert.equal(
    nextRingSize({ ...f, readyBlocks: 64, size: 48 << 20, losing: true }),
    64 << 20,
    "capped",
  );
  assert.equal(
    nextRingSize({ ...f, readyBlocks: 64, size: 32 << 20, losing: true }),
    64 << 20,
    "32 + 64 mapped",
  );
  assert.equal(
    nextRingSize({ ...f, readyBlocks: 64, size: 32 << 20, losing: true, olderBytes: 40 << 20 }),
    0,
    "more than twice the maximum would be mapped: keep",
  );
  assert.equal(
    nextRingSize({ ...half, olderBytes: 112 << 20 }),
    8 << 20,
    "as large, up to twice the maximum mapped",
  );
  assert.equal(nextRingSize({ ...half, olderBytes: 113 << 20 }), 0, "past it: keep");
  assert.equal(nextRingSize({ ...f, readyBlocks: 64, size: 64 << 20 }), 0, "at the maximum");
  assert.equal(
    nextRingSize({ ...f, losing: true, minSize: 8 << 20, maxSize: 8 << 20 }),
    0,
    "fixed ring (-B only)",
  );
});

Deno.test("growth at half full waits while the free half lasts; three quarters, short room or drops still add a ring", () => {
  const ring = { ...START_RING, readyBlocks: 50 };
  // held10k's second requests (main's rule added 12 MiB here; the backlog went no further)
  const held10k = { ...ring, roomMs: 785, stallMs: 75 };
  assert.equal(nextRingSize(held10k), 0, "50/96 waiting, 785 ms of room, 75 ms stalls: wait");
  assert.equal(
    nextRingSize({ ...ring, readyBlocks: 48, roomMs: 48 * 20, stallMs: 0 }),
    0,
    "light traffic at half (a block per 20 ms retire period): wait",
  );
  assert.equal(
    nextRingSize({ ...held10k, readyBlocks: 72, roomMs: 24 * 40 }),
    12 << 20,
    "three quarters waiting: a ring as large whatever the room",
  );
  assert.equal(
    nextRingSize({ ...held10k, readyBlocks: 71, roomMs: 25 * 40 }),
    0,
    "just under three quarters, room enough: wait",
  );
  assert.equal(
    nextRingSize({ ...held10k, readyBlocks: 80, roomMs: 16 * 5 }),
    24 << 20,
    "three quarters and half a ring full within MIN_ROOM_MS at this rate: twice as large",
  );
  assert.equal(
    nextRingSize({ ...held10k, readyBlocks: 80, roomMs: 16 * 15 }),
    12 << 20,
    "the free sixth 240 ms from full, half a ring 720 ms: as large (main doubled)",
  );
  assert.equal(
    nextRingSize({ ...held10k, roomMs: WAIT_ROOM_MS - 1 }),
    12 << 20,
    "the free half lasts less than WAIT_ROOM_MS: a ring as large",
  );
  assert.equal(
    nextRingSize({ ...held10k, roomMs: 1000, stallMs: 1000 / WAIT_STALLS + 1 }),
    12 << 20,
    "it lasts less than WAIT_STALLS of the reader's stalls: a ring as large",
  );
  assert.equal(
    nextRingSize({ ...held10k, roomMs: 1000, stallMs: 1000 / WAIT_STALLS }),
    0,
    "it lasts WAIT_STALLS stalls: wait",
  );
  assert.equal(
    nextRingSize({ ...held10k, roomMs: 300, stallMs: 20 }),
    24 << 20,
    "a flood (the free half full within MIN_ROOM_MS): twice as large",
  );
  assert.equal(
    nextRingSize({ ...held10k, roomMs: 900, stallMs: 600 }),
    24 << 20,
    "a reader stalling longer than half the room: twice as large",
  );
  assert.equal(
    nextRingSize({ ...held10k, losing: true }),
    24 << 20,
    "drops (a block said LOSING): twice as large, room or not",
  );
  assert.equal(
    nextRingSize({ ...held10k, readyBlocks: 3, losing: true }),
    24 << 20,
    "drops with the ring nearly empty: twice as large",
  );
  assert.equal(
    nextRingSize({ ...held10k, roomMs: undefined }),
    12 << 20,
    "no room estimate: a ring as large at half, as before",
  );
});

Deno.test("shrink: a grown ring halves after SHRINK_AFTER_MS quiet, down to its start size only", () => {
  const grown = {
    readyBlocks: 0,
    blockCount: 256,
    losing: false,
    size: 32 << 20,
    minSize: 12 << 20,
    maxSize: 64 << 20,
    quietMs: SHRINK_AFTER_MS,
  };
  assert.equal(nextRingSize(grown), 16 << 20, "quiet for SHRINK_AFTER_MS: halve");
  assert.equal(nextRingSize({ ...grown, quietMs: SHRINK_AFTER_MS - 1 }), 0, "not yet");
  assert.equal(nextRingSize({ ...grown, size: 24 << 20 }), 12 << 20, "down to the start size");
  assert.equal(nextRingSize({ ...grown, size: 16 << 20 }), 12 << 20, "not below it");
  assert.equal(nextRingSize({ ...grown, size: 12 << 20 }), 0, "at the start size: keep");
  assert.equal(nextRingSize({ ...grown, readyBlocks: 128 }), 32 << 20, "half: a new ring");
  assert.equal(nextRingSize({ ...grown, losing: true }), 64 << 20, "drops win over quiet");
  assert.equal(
    nextRingSize({ ...grown, size: 64 << 20, readyBlocks: 200 }),
    0,
    "at the maximum and busy: keep",
  );
});

Deno.test("walker: counts ready blocks up to a limit and notes blocks retired with TP_STATUS_LOSING", () => {
  const { u8, dv } = fakeRing();
  const w = new RingWalker(u8, dv, GEOMETRY, false);
  fillBlock(dv, 0, [packet(1)]);
  fillBlock(dv, 1, [packet(2)]);
  assert.equal(w.readyBlocks(), 2);
  assert.equal(w.readyBlocks(1), 1);
  assert.equal(w.losing, false);
  const s1 = 1 * GEOMETRY.blockSize + BlockDesc.BLOCK_STATUS;
  dv.setUint32(s1, TP_STATUS_USER | TP_STATUS_LOSING, true);
  assert.equal(collect(w, 1).length, 1);
  assert.equal(w.losing, false, "the first block did not say LOSING");
  assert.equal(collect(w).length, 1);
  assert.equal(w.losing, true);
  assert.equal(w.readyBlocks(), 0);
});

Deno.test("growth: held20k's burst (8 MiB waiting at most) adds one 12 MiB ring to the 12 MiB start ring", () => {
  const block = 128 << 10, MiB = 1 << 20;
  let size = 12 * MiB, mapped = size, added = 0;
  // the reader finds 3, 6 then 8 MiB waiting (as in issue 14's held20k run); after a switch
  // the waiting packets are in the old ring, the new one starts empty
  for (const waiting of [3 * MiB, 6 * MiB, 1 * MiB, 2 * MiB]) {
    const next = nextRingSize({
      readyBlocks: Math.floor(waiting / block),
      blockCount: size / block,
      losing: false,
      size,
      minSize: 12 * MiB,
      maxSize: 256 * MiB,
      quietMs: 0,
    });
    if (next > 0) {
      mapped = size + next;
      size = next;
      added++;
    }
  }
  assert.equal(added, 1, "a quarter rule went 12 -> 24 -> 48 MiB here");
  assert.equal(size, 12 * MiB, "the new ring is as large");
  assert.equal(mapped, 24 * MiB, "both mapped while the old one is read (doubling: 12 + 24)");
});

Deno.test("growth: a reader that stays behind adds 12 MiB rings one after the other, mapped only until read", () => {
  // A 24 MiB burst arriving faster than the reader reads it (abshort's start on a loaded CPU),
  // at a fill rate that leaves the free half 750 ms, drain steps 50 ms apart, stalls of up to
  // 100 ms: fewer than WAIT_STALLS of them, so a ring is added at half full. Each ring holds
  // what arrived while it was the current one; the reader reads them oldest first and unmaps
  // each once read.
  const MiB = 1 << 20, block = 128 << 10, arrivePerStep = 0.4 * MiB, readPerStep = 0.25 * MiB;
  const rings: { size: number; held: number }[] = [{ size: 12 * MiB, held: 0 }];
  let arrived = 0, mostMapped = 0, mostHeld = 0;
  for (let step = 0; step < 400; step++) {
    if (arrived < 24 * MiB) {
      rings[rings.length - 1].held += arrivePerStep;
      arrived += arrivePerStep;
    }
    let read = readPerStep; // oldest first
    while (read > 0 && rings[0].held > 0) {
      const take = Math.min(read, rings[0].held);
      rings[0].held -= take;
      read -= take;
      if (rings[0].held === 0 && rings.length > 1) rings.shift();
    }
    const now = rings[rings.length - 1];
    assert.ok(now.held <= now.size, "never full: nothing dropped");
    const next = nextRingSize({
      readyBlocks: Math.floor(now.held / block),
      blockCount: now.size / block,
      losing: false,
      size: now.size,
      minSize: 12 * MiB,
      maxSize: 64 * MiB,
      quietMs: 0,
      olderBytes: rings.slice(0, -1).reduce((s, r) => s + r.size, 0),
      roomMs: ((now.size - now.held) / arrivePerStep) * 50,
      stallMs: 100,
    });
    if (next > 0) rings.push({ size: next, held: 0 });
    mostMapped = Math.max(mostMapped, rings.reduce((s, r) => s + r.size, 0));
    mostHeld = Math.max(mostHeld, rings.reduce((s, r) => s + r.held, 0));
  }
  assert.ok(rings.every((r) => r.size === 12 * MiB), "every ring 12 MiB");
  assert.equal(rings.length, 1, "one ring left once the backlog is read");
  assert.equal(rings[0].held, 0);
  // at most 9 MiB waiting (24 × (1 - 0.25 / 0.4)) in rings switched at half full: 3 rings
  // mapped at once, not the 12 + 24 + 48 = 84 MiB of doubling ones
  assert.ok(Math.abs(mostHeld - 9 * MiB) < MiB, `${mostHeld}`);
  assert.equal(mostMapped, 36 * MiB);
});

Deno.test("walker: how long ready blocks took to fill, from their first and last packets' timestamps", () => {
  const { u8, dv } = fakeRing();
  const w = new RingWalker(u8, dv, GEOMETRY, false);
  const ts = (block: number, at: number, sec: number, nsec: number) => {
    dv.setUint32(block * GEOMETRY.blockSize + at, sec, true);
    dv.setUint32(block * GEOMETRY.blockSize + at + 4, nsec, true);
  };
  fillBlock(dv, 0, [packet(1)]);
  fillBlock(dv, 1, [packet(2)]);
  ts(0, BlockDesc.TS_FIRST_PKT, 100, 900_000_000);
  ts(0, BlockDesc.TS_LAST_PKT, 100, 950_000_000);
  ts(1, BlockDesc.TS_FIRST_PKT, 101, 0);
  ts(1, BlockDesc.TS_LAST_PKT, 101, 250_000_000);
  assert.equal(w.spanMs(0, 0), 0);
  assert.equal(w.spanMs(0, 1), 50);
  assert.equal(w.spanMs(0, 2), 350);
  assert.equal(w.spanMs(1, 1), 250);
  collect(w, 1); // block 0 handed back: block 1 is read next
  assert.equal(w.spanMs(0, 1), 250);
});

Deno.test("growth: a free half full within MIN_ROOM_MS at the current rate doubles the ring (a flood)", () => {
  const f = START_RING;
  assert.equal(nextRingSize({ ...f, roomMs: MIN_ROOM_MS - 1 }), 24 << 20, "flood: double");
  assert.equal(nextRingSize({ ...f, roomMs: MIN_ROOM_MS }), 12 << 20, "as large");
  assert.equal(
    nextRingSize({ ...f, roomMs: 1200 }),
    0,
    "abshort (a reader behind, the free half 1.2 s from full): wait (main added a ring as large)",
  );
  assert.equal(
    nextRingSize({ ...f, readyBlocks: 72, roomMs: 600 }),
    12 << 20,
    "three quarters, the free quarter 0.6 s from full (half a ring 1.2 s): as large",
  );
  assert.equal(
    nextRingSize({ ...f, readyBlocks: 72, roomMs: MIN_ROOM_MS / 2 - 1 }),
    24 << 20,
    "three quarters, half a ring would fill within MIN_ROOM_MS: double",
  );
});

Deno.test("stall meter: the time between looks counts only while packets were left, the longest decays", () => {
  const m = new StallMeter();
  m.look(1000);
  m.look(3000); // idle: the reader waited for packets
  assert.equal(m.ms, 0, "waiting for packets is no stall");
  m.behind = true;
  m.look(3400);
  assert.equal(m.ms, 400, "a drain left packets: 400 ms to the next look");
  m.look(3500);
  assert.equal(m.ms, 400 * 0.5 ** (100 / STALL_HALF_LIFE_MS), "the longest kept, decaying");
  m.behind = false;
  m.look(3500 + STALL_HALF_LIFE_MS);
  assert.ok(Math.abs(m.ms - 198.6) < 0.1, `halved after a half-life: ${m.ms}`);
  m.behind = true;
  m.look(3500 + STALL_HALF_LIFE_MS + 700);
  assert.equal(m.ms, 700, "a longer stall takes over");
});
