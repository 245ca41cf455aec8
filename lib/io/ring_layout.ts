/**
 * The TPACKET_V3 receive ring as memory (pure, no I/O): the kernel's constants and struct
 * offsets (linux/if_packet.h, x86_64/aarch64 little-endian) and {@link RingWalker}, which walks
 * blocks and packets through one DataView and hands blocks back to the kernel.
 *
 * A ring is `blockCount` blocks of `blockSize` bytes. Each block starts with
 * `struct tpacket_block_desc`; when the kernel retires a block (full, or `tp_retire_blk_tov` ms
 * after its first packet) it sets `block_status` to TP_STATUS_USER. The packets follow as
 * `struct tpacket3_hdr` + `struct sockaddr_ll` + frame, chained by `tp_next_offset`. Writing
 * TP_STATUS_KERNEL (0) to `block_status` returns the block. The reader consumes blocks in ring
 * order, as the kernel fills them.
 *
 * Reading `block_status` and the packet bytes without a memory barrier is fine on x86 (TSO);
 * it is not guaranteed on weakly ordered CPUs.
 *
 * @module
 */

import type { PacketHandler } from "./pcap_records.ts";

/** Socket-level constants of AF_PACKET rings (Linux). */
export const Packet = {
  SOL_PACKET: 263,
  PACKET_ADD_MEMBERSHIP: 1,
  PACKET_RX_RING: 5,
  PACKET_STATISTICS: 6,
  PACKET_VERSION: 10,
  PACKET_IGNORE_OUTGOING: 23,
  PACKET_MR_PROMISC: 1,
  TPACKET_V3: 2,
  /** htons(ETH_P_ALL) */
  ETH_P_ALL_BE: 0x0300,
  SOCK_DGRAM: 2,
  SOL_SOCKET: 1,
  SO_ATTACH_FILTER: 26,
} as const;

/** `sll_pkttype` values (linux/if_packet.h). */
export const PacketType = {
  HOST: 0,
  BROADCAST: 1,
  MULTICAST: 2,
  OTHERHOST: 3,
  OUTGOING: 4,
} as const;

/** TP_STATUS_KERNEL: the block belongs to the kernel. */
export const TP_STATUS_KERNEL = 0;
/** TP_STATUS_USER: the block is retired and ours to read. */
export const TP_STATUS_USER = 1;

/** Offsets in `struct tpacket_block_desc` (version, offset_to_priv, then tpacket_hdr_v1). */
export const BlockDesc = {
  BLOCK_STATUS: 8,
  NUM_PKTS: 12,
  OFFSET_TO_FIRST_PKT: 16,
  BLK_LEN: 20,
  /** struct tpacket_bd_ts {u32 ts_sec; u32 ts_nsec} of the block's first and last packet */
  TS_FIRST_PKT: 32,
  TS_LAST_PKT: 40,
  /** size of the descriptor; packets start at or after it */
  SIZE: 48,
} as const;

/** Offsets in `struct tpacket3_hdr`, and of `struct sockaddr_ll` after it. */
export const Tp3Hdr = {
  NEXT_OFFSET: 0,
  SEC: 4,
  NSEC: 8,
  SNAPLEN: 12,
  LEN: 16,
  STATUS: 20,
  MAC: 24,
  NET: 26,
  /** TPACKET_ALIGN(sizeof(struct tpacket3_hdr)): where sockaddr_ll starts */
  SIZE: 48,
  /** sockaddr_ll.sll_pkttype, relative to the packet header */
  PKTTYPE: 48 + 10,
} as const;

/** Size of `struct tpacket_stats_v3` (tp_packets, tp_drops, tp_freeze_q_cnt). */
export const TPACKET_STATS_V3_SIZE = 12;
/** Frame size given to the kernel (V3 ignores it for packing but checks it divides the block). */
export const RING_FRAME_SIZE = 2048;

/** Geometry of a ring: `blockCount` blocks of `blockSize` bytes each. */
export interface RingGeometry {
  blockSize: number;
  blockCount: number;
}

/** TP_STATUS_LOSING in a retired block's status: the kernel dropped packets since the last stats read. */
export const TP_STATUS_LOSING = 4;

/**
 * Bytes a frame costs in a block besides its own: the block descriptor, `struct tpacket3_hdr`
 * and `struct sockaddr_ll` before the frame (the kernel puts the network header at
 * TPACKET_ALIGN(68 + 16) = 96) and the 16-byte alignment after it.
 */
export const RING_FRAME_OVERHEAD = BlockDesc.SIZE + 96 + 16;
/** Smallest block: 16 KiB (a block per retire period must not waste much at low rates). */
export const MIN_BLOCK_SIZE = 16 << 10;
/** Largest block: 256 KiB (a frame up to 262,144 bytes needs 512 KiB; it is then cut there). */
export const MAX_BLOCK_SIZE = 256 << 10;
/** Retire timeout of a 128 KiB block (shorter for smaller blocks, at least {@link MIN_RETIRE_MS}). */
export const RETIRE_MS_PER_128K = 20;
/** Shortest default block retire timeout. */
export const MIN_RETIRE_MS = 10;

/**
 * The block size for frames of up to `snaplen` bytes: the smallest power of two that holds one
 * whole frame (TPACKET_V3 cuts a frame at its block's end, and a GRO/GSO packet on a NIC or
 * veth is up to 64 KiB: snaplen 65535 gives 128 KiB), within {@link MIN_BLOCK_SIZE} ..
 * {@link MAX_BLOCK_SIZE}. A power of two because the kernel allocates each block as one
 * 2^order page run: any other size would take kernel memory the process does not see.
 */
export function blockSizeFor(snaplen: number): number {
  let size = MIN_BLOCK_SIZE;
  while (size < MAX_BLOCK_SIZE && size < snaplen + RING_FRAME_OVERHEAD) size *= 2;
  return size;
}

/**
 * The default block retire timeout for `blockSize`: {@link RETIRE_MS_PER_128K} ms per 128 KiB,
 * at least {@link MIN_RETIRE_MS}. The kernel hands a block over when it is full or this long
 * after its first packet, so at low rates every block holds one retire period of traffic: an
 * N-block ring then holds N × retire ms, whatever its size in bytes. 12 MiB in 128 KiB blocks
 * retired every 20 ms hold 1.92 s of light traffic (8 MiB of 256 KiB blocks every 10 ms:
 * 0.32 s). A packet waits up to this long before the reader sees it, and `--compare`'s target
 * latency counts that wait (40 ms added ~60 ms to the first requests' figure: hence 20).
 */
export function retireMsFor(blockSize: number): number {
  return Math.max(MIN_RETIRE_MS, Math.round((blockSize / (128 << 10)) * RETIRE_MS_PER_128K));
}

/**
 * The geometry for a total of about `bufferSize` bytes in blocks of `blockSize` (a multiple of
 * the page size and of {@link RING_FRAME_SIZE}): at least 2 blocks.
 */
export function ringGeometry(bufferSize: number, blockSize = 256 << 10): RingGeometry {
  return { blockSize, blockCount: Math.max(2, Math.floor(bufferSize / blockSize)) };
}

/** What a growing ring looks at when it decides (see {@link nextRingSize}). */
export interface RingFill {
  /** blocks ready for the reader now, counted up to the threshold */
  readyBlocks: number;
  blockCount: number;
  /** the kernel dropped packets (a retired block said TP_STATUS_LOSING, or the stats did) */
  losing: boolean;
  /** the ring's size now, its start size and the largest allowed, bytes */
  size: number;
  minSize: number;
  maxSize: number;
  /** ms since a reader last found 1/{@link BUSY_FILL} of the ring waiting (or it grew) */
  quietMs: number;
  /** bytes of the replaced rings still mapped (being read) */
  olderBytes?: number;
  /**
   * ms until the free blocks are filled too, at the rate the newest waiting blocks were filled
   * (Infinity: none filled yet; left out: unknown, a ring half full is then added as before)
   */
  roomMs?: number;
  /**
   * the longest the reader recently went between two looks at the ring while packets were
   * left in it (a drain step's work, a reactor round, a collection, a starved CPU), ms
   */
  stallMs?: number;
}

/**
 * A ring may be added when a reader finds at least 1/GROW_FILL of the ring's blocks waiting
 * (half; the quarter rule grew held20k's ring 12 -> 24 -> 48 MiB for at most 8 MiB ever
 * waiting), but only when the free half is short of room ({@link WAIT_ROOM_MS},
 * {@link WAIT_STALLS}); from {@link LATE_FREE} on, always.
 */
export const GROW_FILL = 2;
/**
 * A ring is added whatever the room once at most 1/LATE_FREE of its blocks are free (three
 * quarters waiting): the backstop when the room estimate (the newest blocks' fill rate, the
 * reader's past stalls) said the free half would last. A reader that skipped at half with the
 * free half lasting {@link WAIT_STALLS} stalls still has, at the same rate, the free quarter's
 * {@link WAIT_STALLS} / 2 stalls to get here, and the new ring's decision (as large or twice)
 * is the same as at half.
 */
export const LATE_FREE = 4;
/**
 * At half full (below {@link LATE_FREE}) no ring is added while the free half lasts at least
 * this long at the rate the newest blocks were filled, and at least {@link WAIT_STALLS} of the
 * reader's recent stalls. Light traffic (a block per 20 ms retire period) gives tcpcopy's 12
 * MiB start ring 48 × 20 = 960 ms at half; held10k's second requests found 50 of 96 blocks
 * waiting with 785 ms left and a 75 ms longest stall, and the ring added then (same size, 12
 * MiB more mapped: tcpcopy's peak 94–100 MiB instead of 84–88) was never needed.
 */
export const WAIT_ROOM_MS = 750;
/** See {@link WAIT_ROOM_MS}: the free half must last this many of the reader's recent stalls. */
export const WAIT_STALLS = 8;
/**
 * A ring whose half would be full in less than this, at the rate its newest blocks were
 * filled (the time left to its free blocks scaled to half the ring: at half full, the free
 * half's; at three quarters, twice the free quarter's, as the new ring as large starts empty),
 * is replaced by one twice as large: its reader (stalled by a busy CPU or a long collection)
 * would have less than this to catch up. tcpcopy's 12 MiB ring (96 blocks of 128 KiB retired
 * every 20 ms) has at least 48 × 20 ms = 0.96 s per half whatever the rate up to ~6 MB/s
 * (abshort's bursts: a ring as large); tests/e2e/io_ring.test.ts's 1 MiB ring, flooded, would
 * be full within milliseconds (it doubles, as it did before).
 */
export const MIN_ROOM_MS = 500;
/**
 * The new ring is twice as large when half the ring would be full ({@link MIN_ROOM_MS}) within
 * this many of the reader's recent stalls ({@link RingFill.stallMs}): a new ring as large gives the
 * reader that long per stall before the next switch must have happened.
 */
export const STALL_ROOMS = 2;
/** A reader finding 1/BUSY_FILL of the ring waiting keeps a grown ring from shrinking. */
export const BUSY_FILL = 16;
/**
 * A grown ring halves (down to its start size) after this long without being busy; checked at
 * wake-ups and drain steps (tcpcopy's capture loop drains at least once a second, packets or
 * not). 10 s (formerly a minute): a ring doubled for a stall in held20k's ramp of 20,000
 * connections was still 24 MiB when their second requests came 15 s later; rings of the same
 * size are added again within a drain step if the traffic comes back.
 */
export const SHRINK_AFTER_MS = 10_000;

/**
 * The size of the ring that should replace the current one now, or 0 to keep it. When half of
 * the blocks wait to be read and the free half would be full within {@link WAIT_ROOM_MS} or
 * {@link WAIT_STALLS} of the reader's recent stalls, or when three quarters wait
 * ({@link LATE_FREE}) whatever the room (the reader checks at every wake-up and every drain
 * step, so a reader slowed down by a busy CPU adds room while the kernel still has a part of
 * the ring to fill), a new ring of the same size takes the packets from then on while the
 * reader catches up on the old one, which is closed once drained; a reader that stays behind
 * adds rings of that size one after the other (they are read oldest first), so the rings
 * mapped follow the backlog in steps of one ring, and each is unmapped as soon as it is read.
 * (Formerly a ring was added at half full whatever the room: held10k's second requests mapped
 * 12 MiB more for a free half 785 ms from full and a reader stalling 75 ms at most.) The new
 * ring is twice as large (at most `maxSize`) only when the kernel dropped packets or when half
 * the ring would be full, at the newest blocks' rate, within {@link MIN_ROOM_MS} or within
 * {@link STALL_ROOMS} of the reader's recent stalls: a ring as large would leave it too little
 * time per stall. (Formerly a quarter of the new ring waiting while an older one was read
 * doubled it: abshort and held20k then mapped 12 + 24 + 48 = 84 MiB of rings for at most 8–12
 * MiB ever waiting.) No new ring while the rings mapped would exceed 2 × `maxSize` (what a
 * doubling ring could have mapped at most: an old ring below the maximum and a new one at it).
 * A grown ring that never had 1/16 of it waiting for {@link SHRINK_AFTER_MS} halves, down to
 * `minSize`. A ring of `minSize` = `maxSize` is fixed.
 */
export function nextRingSize(f: RingFill): number {
  if (f.minSize >= f.maxSize) return 0;
  if (f.losing || f.readyBlocks * GROW_FILL >= f.blockCount) {
    if (f.size >= f.maxSize) return 0;
    const stall = f.stallMs ?? 0, room = f.roomMs, free = f.blockCount - f.readyBlocks;
    const late = free * LATE_FREE <= f.blockCount;
    const roomy = room !== undefined && room >= Math.max(WAIT_ROOM_MS, WAIT_STALLS * stall);
    if (!f.losing && !late && roomy) return 0;
    // the time half a ring takes to fill at this rate: the new ring's room at the next switch
    const halfMs = free > 0 ? ((room ?? Infinity) * f.blockCount) / (2 * free) : 0;
    const double = f.losing || halfMs < Math.max(MIN_ROOM_MS, STALL_ROOMS * stall);
    const next = double ? Math.min(f.maxSize, f.size * 2) : f.size;
    return (f.olderBytes ?? 0) + f.size + next > f.maxSize * 2 ? 0 : next;
  }
  if (f.size > f.minSize && f.quietMs >= SHRINK_AFTER_MS) {
    return Math.max(f.minSize, Math.floor(f.size / 2));
  }
  return 0;
}

/** The longest stall noted by a {@link StallMeter} halves every this many ms. */
export const STALL_HALF_LIFE_MS = 10_000;

/**
 * How long a ring's reader went without looking at the ring while packets were left in it
 * ({@link RingFill.stallMs}): the time from a look after which {@link behind} was set (a drain
 * that stopped at its limit, or replaced rings still to read) to the next look counts (the
 * drain's own work, a reactor round, a collection, a starved CPU all do); {@link ms} is the
 * longest such stall, decaying by half every {@link STALL_HALF_LIFE_MS}.
 */
export class StallMeter {
  /** the longest recent stall, ms */
  ms = 0;
  /** packets were left to read at the last look: the time until the next one is a stall */
  behind = false;
  #at = -1; // time of the last look

  /** A look at the ring at `now` (ms, monotonic). */
  look(now: number): void {
    if (this.#at >= 0) {
      const gap = now - this.#at;
      const decayed = this.ms * 0.5 ** (gap / STALL_HALF_LIFE_MS);
      this.ms = this.behind ? Math.max(gap, decayed) : decayed;
    }
    this.#at = now;
  }
}

/**
 * `struct tpacket_req3` for `geometry` with a block retire timeout of `retireMs`: the bytes to
 * pass to `setsockopt(SOL_PACKET, PACKET_RX_RING)`.
 */
export function tpacketReq3(geometry: RingGeometry, retireMs: number): Uint8Array<ArrayBuffer> {
  const { blockSize, blockCount } = geometry;
  const req = new Uint32Array([
    blockSize, // tp_block_size
    blockCount, // tp_block_nr
    RING_FRAME_SIZE, // tp_frame_size
    (blockSize / RING_FRAME_SIZE) * blockCount, // tp_frame_nr
    retireMs, // tp_retire_blk_tov
    0, // tp_sizeof_priv
    0, // tp_feature_req_word
  ]);
  return new Uint8Array(req.buffer);
}

/**
 * Reads a ring in kernel fill order. {@link drain} may stop in the middle of a block (when
 * `max` is reached); the next call continues there. A block is handed back as soon as its last
 * packet has been passed on, so frames are only valid during the `onPacket` call.
 *
 * Blocks whose header or packet chain points outside the block are released without reading
 * further (counted in {@link malformed}), never read out of bounds.
 */
export class RingWalker {
  /** index of the block read next */
  block = 0;
  /** blocks with an impossible packet chain (should stay 0 with a real kernel) */
  malformed = 0;
  /** packets skipped as PACKET_OUTGOING */
  skippedOutgoing = 0;
  /** a block read since the owner last cleared this said the kernel dropped packets */
  losing = false;
  #left = 0; // packets left in the current block (0: block not opened yet)
  #off = 0; // absolute offset of the next packet header in the current block

  /**
   * @param u8 the whole ring
   * @param dv a DataView over the same bytes
   * @param skipOutgoing drop frames whose sll_pkttype is PACKET_OUTGOING
   */
  constructor(
    readonly u8: Uint8Array,
    readonly dv: DataView,
    readonly geometry: RingGeometry,
    readonly skipOutgoing: boolean,
  ) {}

  /** True when the block at {@link block} is ours to read (a drain would find packets). */
  ready(): boolean {
    return this.#left > 0 ||
      (this.dv.getUint32(this.block * this.geometry.blockSize + BlockDesc.BLOCK_STATUS, true) &
          TP_STATUS_USER) !== 0;
  }

  /**
   * True while packets may still come out of this ring: a block is ready, or the block the
   * kernel fills next already holds packets (its retire timer hands it over).
   */
  pending(): boolean {
    if (this.ready()) return true;
    const base = this.block * this.geometry.blockSize;
    return this.dv.getUint32(base + BlockDesc.NUM_PKTS, true) !== 0;
  }

  /**
   * How many blocks, from {@link block} on in fill order, are ours to read (counted up to
   * `limit`): how full the ring is right now (the kernel fills blocks in order, so the first
   * kernel-owned block ends it).
   */
  readyBlocks(limit = this.geometry.blockCount): number {
    const { blockSize, blockCount } = this.geometry;
    const stop = Math.min(limit, blockCount);
    let n = 0;
    for (let b = this.block; n < stop; b = b + 1 === blockCount ? 0 : b + 1, n++) {
      if (
        (this.dv.getUint32(b * blockSize + BlockDesc.BLOCK_STATUS, true) & TP_STATUS_USER) === 0
      ) {
        break;
      }
    }
    return n;
  }

  /**
   * Milliseconds between the first packet of the ready block `from` blocks after the next one
   * to read and the last packet of the `n`-th block from there (the kernel's block
   * timestamps): how long those blocks took to fill. 0 for n < 1.
   */
  spanMs(from: number, n: number): number {
    if (n < 1) return 0;
    const { blockSize, blockCount } = this.geometry;
    const b = (this.block + from) % blockCount;
    const first = b * blockSize + BlockDesc.TS_FIRST_PKT;
    const last = ((b + n - 1) % blockCount) * blockSize + BlockDesc.TS_LAST_PKT;
    const dv = this.dv;
    return (dv.getUint32(last, true) - dv.getUint32(first, true)) * 1000 +
      (dv.getUint32(last + 4, true) - dv.getUint32(first + 4, true)) / 1e6;
  }

  /**
   * Passes every packet available now (at most `max`) to `onPacket`, in arrival order; returns
   * how many were passed. `tsMicros` comes from the packet's own kernel timestamp.
   */
  drain(onPacket: PacketHandler, max = Infinity): number {
    const { u8, dv } = this;
    const { blockSize, blockCount } = this.geometry;
    let delivered = 0;
    while (delivered < max) {
      const base = this.block * blockSize;
      if (this.#left === 0) {
        if ((dv.getUint32(base + BlockDesc.BLOCK_STATUS, true) & TP_STATUS_USER) === 0) break;
        if ((dv.getUint32(base + BlockDesc.BLOCK_STATUS, true) & TP_STATUS_LOSING) !== 0) {
          this.losing = true;
        }
        const n = dv.getUint32(base + BlockDesc.NUM_PKTS, true);
        const first = dv.getUint32(base + BlockDesc.OFFSET_TO_FIRST_PKT, true);
        if (n === 0 || first < BlockDesc.SIZE || first >= blockSize) {
          if (n !== 0) this.malformed++;
          this.#release(base, blockCount);
          continue;
        }
        this.#left = n;
        this.#off = base + first;
      }
      const end = base + blockSize;
      let off = this.#off, bad = false;
      while (this.#left > 0 && delivered < max) {
        if (off + Tp3Hdr.SIZE > end) {
          bad = true;
          break;
        }
        const start = off + dv.getUint16(off + Tp3Hdr.MAC, true);
        const stop = start + dv.getUint32(off + Tp3Hdr.SNAPLEN, true);
        if (stop > end) {
          bad = true;
          break;
        }
        const next = dv.getUint32(off + Tp3Hdr.NEXT_OFFSET, true);
        this.#left--;
        if (!this.skipOutgoing || u8[off + Tp3Hdr.PKTTYPE] !== PacketType.OUTGOING) {
          const ts = dv.getUint32(off + Tp3Hdr.SEC, true) * 1e6 +
            ((dv.getUint32(off + Tp3Hdr.NSEC, true) / 1000) | 0);
          onPacket(u8.subarray(start, stop), ts, dv.getUint32(off + Tp3Hdr.LEN, true));
          delivered++;
        } else {
          this.skippedOutgoing++;
        }
        if (this.#left > 0 && next === 0) {
          bad = true;
          break;
        }
        off += next;
      }
      this.#off = off;
      if (!bad && this.#left > 0) break; // max reached: resume inside this block next time
      if (bad) this.malformed++;
      this.#release(base, blockCount);
    }
    return delivered;
  }

  #release(base: number, blockCount: number): void {
    this.dv.setUint32(base + BlockDesc.BLOCK_STATUS, TP_STATUS_KERNEL, true);
    this.#left = 0;
    this.block = this.block + 1 === blockCount ? 0 : this.block + 1;
  }
}
