/**
 * Live capture through an AF_PACKET TPACKET_V3 receive ring mapped into JS: the kernel writes
 * packets into shared blocks, JS walks them with one DataView ({@link RingWalker}): no FFI call
 * and no copy per packet, one awaited poll() per wake-up. libpcap is used only to compile the
 * BPF filter, once per capture (lib/io/bpf_compile.ts: unloaded right after); every ring's
 * socket gets those instructions with SO_ATTACH_FILTER.
 *
 * Same public shape as {@link PcapCapture} (see `capture.ts` for choosing between them):
 *
 * ```ts
 * const cap = RingCapture.openLive({ device: "eth0", filter: "tcp dst port 80" });
 * while (await cap.wait()) cap.drain((frame, tsMicros, wireLen) => {});
 * cap.close();
 * ```
 *
 * A named Ethernet (or loopback) device gives Ethernet frames (linkType EN10MB, SOCK_RAW);
 * `any` and devices without an Ethernet header give packets starting at the IP header
 * (linkType RAW = 12, SOCK_DGRAM). Outgoing packets are left out unless `direction: "inout"`.
 *
 * @module
 */

import { IoError } from "./errors.ts";
import { cstr, describeErrno, Errno, errno, loadLibc, Mmap, NativeMemory } from "./libc.ts";
import { LinkType } from "../wire/link.ts";
import { attachProgram, compileFilter, mustAttach } from "./bpf_compile.ts";
import type { CaptureStats, LiveOptions } from "./pcap.ts";
import type { PacketHandler } from "./pcap_records.ts";
import { FdWaiter } from "./readiness.ts";
import { sharedReactor } from "./reactor.ts";
import {
  blockSizeFor,
  BUSY_FILL,
  GROW_FILL,
  nextRingSize,
  Packet,
  retireMsFor,
  type RingGeometry,
  ringGeometry,
  RingWalker,
  StallMeter,
  TPACKET_STATS_V3_SIZE,
  tpacketReq3,
} from "./ring_layout.ts";
import { openSocket, Sock } from "./socket.ts";

/** Which packets to keep: received only (default), or received and sent by this host. */
export type CaptureDirection = "in" | "inout";

/** Options of {@link RingCapture.openLive}: those of PcapCapture, plus direction and growth. */
export interface RingOptions extends LiveOptions {
  /** "in": leave out packets this host sends (default); "inout": keep them */
  direction?: CaptureDirection;
  /**
   * The ring starts at `bufferSize`; when a wake-up or a look during a drain finds half of it
   * waiting and its free half would fill soon for the reader's recent stalls, or three
   * quarters waiting, a new ring takes over while the old one is read ({@link nextRingSize}:
   * the same size, or twice it, up to this many bytes, when the kernel dropped packets, the
   * ring fills fast or the reader's recent stalls were long) (default: `bufferSize`, a fixed
   * ring).
   */
  maxBufferSize?: number;
}

/** Counters of a ring capture, cumulative since it was opened. */
export interface RingStats extends CaptureStats {
  /** times the kernel found the ring full and froze it (tp_freeze_q_cnt) */
  freezes: number;
  /** the current ring's size, bytes (replaced rings still being read come on top) */
  bufferBytes: number;
  /** times a new ring (of the same size or larger) took over from a filling one */
  grows: number;
  /** times a grown ring shrank back (quiet for SHRINK_AFTER_MS) */
  shrinks: number;
  /** bytes per block (every ring of a capture has the same) */
  blockSize: number;
  /** the most bytes found waiting at a wake-up or drain step, in whole blocks */
  peakBytes: number;
}

const SIOCGIFFLAGS = 0x8913n, SIOCGIFHWADDR = 0x8927n, IFF_UP = 1;
const ARPHRD_ETHER = 1, ARPHRD_LOOPBACK = 772;
const POLLERR = 0x008, POLLHUP = 0x010, POLLNVAL = 0x020;
const SO_ERROR = 4;
/** Longest sleep after a busy wake-up (the retire timeout may be set up to 10 s). */
export const MAX_NAP_MS = 100;
/** A ring replaced by a larger one is closed after this many retire periods without packets. */
const QUIET_PERIODS = 3;
/** A drain checks how full the ring is (and adds a ring) every this many packets. */
export const CHECK_EVERY = 512;

/** How every socket of one capture is set up (the first one decides the link type). */
interface RingSetup {
  device: string;
  any: boolean;
  ifindex: number;
  dgram: boolean;
  snaplen: number;
  /** block size of every ring of this capture ({@link blockSizeFor} the snaplen) */
  blockSize: number;
  retireMs: number;
  filter: string;
  /** `filter` compiled for the capture's link type by the first socket, reused by later rings */
  program?: Uint8Array;
  promisc: boolean;
  direction: CaptureDirection;
}

/** One AF_PACKET socket with its mapped ring, walker and reactor watch. */
class RingSocket {
  readonly walker: RingWalker;
  readonly waiter: FdWaiter;
  readonly probe = new NativeMemory(8); // struct pollfd for a 0 ms poll after a wake-up

  constructor(
    readonly fd: number,
    readonly ring: Deno.PointerObject,
    readonly geometry: RingGeometry,
    skipOutgoing: boolean,
  ) {
    const buffer = Deno.UnsafePointerView.getArrayBuffer(ring, this.size);
    this.walker = new RingWalker(
      new Uint8Array(buffer),
      new DataView(buffer),
      geometry,
      skipOutgoing,
    );
    this.waiter = new FdWaiter(fd);
    this.probe.dv.setInt32(0, fd, true);
    this.probe.dv.setInt16(4, 1, true); // POLLIN
  }

  get size(): number {
    return this.geometry.blockSize * this.geometry.blockCount;
  }

  /** Unmaps the ring and closes the socket once a pending poll returned. */
  close(): void {
    this.waiter.stop();
    loadLibc().munmap(this.ring, BigInt(this.size));
    this.probe.free();
    const fd = this.fd;
    this.waiter.close().then(() => loadLibc().close(fd));
  }
}

/**
 * A live capture on one device through a TPACKET_V3 ring. With `maxBufferSize` the ring starts
 * small and grows: a new ring (as large, or larger) is opened on another socket, the old one
 * gets a filter that takes nothing more, and it is drained before the new one (packets stay in
 * arrival order; the few that both rings saw in the switch-over look like retransmissions) and
 * then closed. Several replaced rings may wait to be read, oldest first.
 */
export class RingCapture {
  /** DLT_* of the frames delivered: EN10MB (1) or RAW (12). */
  readonly linkType: number;
  /** the most bytes kept per packet */
  readonly snaplen: number;
  readonly #setup: RingSetup;
  #maxBytes: number;
  readonly #minBytes: number; // the start size: a grown ring shrinks back to it when quiet
  #busySince = performance.now(); // last time a reader found 1/BUSY_FILL waiting, or a resize
  #shrinks = 0;
  #sock: RingSocket;
  /** replaced rings, oldest first: drained in this order before #sock, then closed */
  #olds: RingSocket[] = [];
  #oldQuietSince = 0; // of #olds[0]
  readonly #statBuf = new Uint32Array(3);
  readonly #statLen = new Uint32Array(1);
  #received = 0;
  #dropped = 0;
  #freezes = 0;
  #grows = 0;
  #growSoon = false; // the kernel dropped packets: grow at the next wake-up or drain step
  #highWater = 0; // most blocks found waiting at a wake-up or drain step (of the ring then)
  readonly #stalls = new StallMeter(); // the reader's longest recent stall, for growth
  #error: IoError | null = null;
  #closed = false;
  #stopped = false;
  #busy = false; // the last wait found a block: expect the next one within a retire period
  readonly #napMs: number; // min(retire timeout, MAX_NAP_MS)

  private constructor(setup: RingSetup, sock: RingSocket, maxBytes: number) {
    this.#setup = setup;
    this.#sock = sock;
    this.#maxBytes = maxBytes;
    this.#minBytes = sock.size;
    this.#napMs = Math.min(setup.retireMs, MAX_NAP_MS);
    this.linkType = setup.dgram ? LinkType.RAW : LinkType.EN10MB;
    this.snaplen = setup.snaplen;
  }

  /** the device captured on */
  get device(): string {
    return this.#setup.device;
  }

  /** the ring's blocks now */
  get geometry(): RingGeometry {
    return this.#sock.geometry;
  }

  /** the block retire timeout, ms */
  get retireMs(): number {
    return this.#setup.retireMs;
  }

  /**
   * Opens the ring and starts capturing. Throws an {@link IoError}: "device" (no such device,
   * device down), "filter" (libpcap's message and the expression), "privilege" (root or
   * CAP_NET_RAW), "library" (libpcap, for the filter compiler), "system" (the kernel refused
   * the ring, e.g. ENOMEM for a large `bufferSize`), "ffi-permission".
   */
  static openLive(opts: RingOptions): RingCapture {
    const C = loadLibc();
    const device = opts.device;
    const any = device === "any";
    const bytes = clampInt(opts.bufferSize ?? 64 << 20, 1 << 16, 2 ** 31 - 1);
    const snaplen = clampInt(opts.snaplen ?? 65535, 64, 262144);
    const blockSize = blockSizeFor(snaplen);
    const setup: RingSetup = {
      device,
      any,
      ifindex: 0,
      dgram: any,
      snaplen,
      blockSize,
      retireMs: clampInt(opts.timeoutMs ?? retireMsFor(blockSize), 1, 10_000),
      filter: opts.filter ?? "",
      promisc: opts.promisc ?? false,
      direction: opts.direction ?? "in",
    };
    if (!any) {
      setup.ifindex = device.length === 0 || device.length > 15
        ? 0
        : C.if_nametoindex(cstr(device));
      if (setup.ifindex === 0) {
        throw new IoError("device", `cannot capture on "${device}": no such network device`);
      }
    }
    const sock = openRingSocket(setup, ringGeometry(bytes, blockSize), true);
    const max = clampInt(opts.maxBufferSize ?? bytes, sock.size, 2 ** 31 - 1);
    return new RingCapture(setup, sock, max);
  }

  /**
   * Waits until packets may be available. Resolves `true` when a block is ready (or
   * `timeoutMs` elapsed: a drain then finds nothing), `false` once {@link stop} was called.
   * stop() ends a pending wait within one nap (at most {@link MAX_NAP_MS}). Returns at once
   * when packets are waiting; right after a busy wake-up it first sleeps one block retire
   * period on a reactor timer.
   */
  async wait(timeoutMs = Infinity): Promise<boolean> {
    if (this.#closed || this.#stopped) return false;
    if (this.#olds.length > 0) {
      if (this.#olds[0].walker.ready()) return true;
      timeoutMs = Math.min(timeoutMs, this.#napMs); // a drain decides when the old ring is done
    }
    const sock = this.#sock;
    if (this.#error !== null) return true;
    if (sock.walker.ready()) return this.#woke(sock);
    if (this.#busy && timeoutMs >= this.#napMs) {
      // a block was ready at the last wake-up: under steady traffic the next one is retired
      // within one retire period, so one timer wake-up replaces a poll() wake-up per block
      // (measured with an awaited poll(): ~20 % less CPU per packet at 100 kpps). Idle links
      // go back to poll().
      this.#busy = false;
      await sharedReactor().sleep(this.#napMs);
      if (this.#closed || this.#stopped) return false;
      if (sock.walker.ready()) return this.#woke(sock);
      timeoutMs -= this.#napMs;
    }
    if (!await sock.waiter.wait(timeoutMs)) return false;
    if (this.#closed || this.#stopped) return false;
    if (sock.walker.ready()) return this.#woke(sock);
    this.#checkSocketError();
    return true;
  }

  /** A wake-up that found packets: note it, and grow the ring if it is filling up. */
  #woke(sock: RingSocket): true {
    this.#busy = true;
    if (sock === this.#sock) this.#checkFill();
    return true;
  }

  /**
   * Notes how full the current ring is and grows it ({@link nextRingSize}) when it fills up or
   * the kernel dropped packets; at every wake-up and drain step, so a reader that the CPU
   * starves in the middle of a long drain still grows its ring before it is full.
   */
  #checkFill(): void {
    const sock = this.#sock, walker = sock.walker, { blockCount } = sock.geometry;
    const ready = walker.readyBlocks();
    if (ready > this.#highWater) this.#highWater = ready;
    const now = performance.now();
    this.#stalls.look(now);
    if (ready * BUSY_FILL >= blockCount) this.#busySince = now;
    const losingBlock = walker.losing;
    walker.losing = false;
    if (sock.size >= this.#maxBytes && sock.size <= this.#minBytes) return;
    // a block retired with TP_STATUS_LOSING: reading the counters adds the drops and resets
    // the kernel's, so later blocks say LOSING only for new drops
    const losing = this.#growSoon || (losingBlock && this.#readStats(sock) > 0);
    const next = nextRingSize({
      readyBlocks: ready,
      blockCount,
      losing,
      size: sock.size,
      minSize: this.#minBytes,
      maxSize: this.#maxBytes,
      quietMs: now - this.#busySince,
      olderBytes: this.#olds.reduce((sum, o) => sum + o.size, 0),
      roomMs: ready * GROW_FILL >= blockCount ? roomMs(walker, ready, blockCount) : Infinity,
      stallMs: this.#stalls.ms,
    });
    if (next > 0) this.#resize(next);
  }

  /** Opens a ring of `bytes` (larger or smaller) and retires the current one. */
  #resize(bytes: number): void {
    this.#busySince = performance.now();
    this.#growSoon = false;
    const old = this.#sock;
    let fresh: RingSocket;
    try {
      fresh = openRingSocket(this.#setup, ringGeometry(bytes, this.#setup.blockSize));
    } catch {
      // e.g. ENOMEM: keep the ring we have, stop trying to grow (a shrink is retried later)
      if (bytes >= old.size) this.#maxBytes = old.size;
      return;
    }
    if (!acceptNothing(old.fd)) {
      fresh.close(); // both would keep capturing (duplicates): stay with the old ring
      if (bytes >= old.size) this.#maxBytes = old.size;
      return;
    }
    if (this.#olds.length === 0) this.#oldQuietSince = 0;
    this.#olds.push(old);
    this.#sock = fresh;
    if (bytes >= old.size) this.#grows++;
    else this.#shrinks++;
  }

  /**
   * Synchronously hands every packet available now (at most `max`) to `onPacket`; returns how
   * many. The frame is a view into the ring, valid only during the call: copy what you keep.
   * Throws an IoError (kind "device") when the socket reported an error, e.g. the device went
   * down or away.
   */
  drain(onPacket: PacketHandler, max = Infinity): number {
    if (this.#closed) return 0;
    if (this.#error !== null) {
      const e = this.#error;
      this.#error = null;
      throw e;
    }
    let n = 0;
    while (n < max) {
      // the reader looks at the fill every CHECK_EVERY packets, not only between drain steps:
      // a step of 2,048 packets took up to 0.3 s in held20k's burst at load 10
      this.#checkFill();
      const step = Math.min(max - n, CHECK_EVERY);
      const got = this.#drainSome(onPacket, step);
      n += got;
      if (got < step) break;
      this.#stalls.behind = true; // more may be waiting: the time to the next look is a stall
    }
    this.#stalls.behind = n >= max || this.#olds.length > 0;
    return n;
  }

  /** Up to `max` packets: the replaced rings' first, oldest first, then the current one's. */
  #drainSome(onPacket: PacketHandler, max: number): number {
    let n = 0;
    while (this.#olds.length > 0) {
      // An old ring's last block is handed over by the kernel's retire timer: until the old
      // ring is closed, the newer ones (later packets) wait, so the order stays that of arrival.
      const old = this.#olds[0];
      const got = old.walker.drain(onPacket, max - n);
      n += got;
      if (!this.#retiredWhenQuiet(old, got)) return n;
    }
    return n + this.#sock.walker.drain(onPacket, max - n);
  }

  /**
   * Closes a replaced ring once nothing can come out of it any more (no ready block, none being
   * filled), or after a few retire periods without packets; true when closed. A packet that
   * still lands in it after that is also in the new ring, which was bound first.
   */
  #retiredWhenQuiet(old: RingSocket, delivered: number): boolean {
    const now = performance.now();
    if (delivered > 0 || this.#oldQuietSince === 0) this.#oldQuietSince = now;
    const quiet = now - this.#oldQuietSince > QUIET_PERIODS * this.#setup.retireMs;
    if (old.walker.pending() && !quiet) return false;
    this.#readStats(old);
    old.close();
    this.#olds.shift();
    this.#oldQuietSince = 0;
    return true;
  }

  /**
   * Kernel counters since the capture started: `received` packets that passed the filter
   * (including the dropped ones, as libpcap counts), `dropped` because the ring was full.
   */
  stats(): RingStats {
    if (!this.#closed) {
      for (const old of this.#olds) this.#readStats(old);
      if (this.#readStats(this.#sock) > 0 && this.#sock.size < this.#maxBytes) {
        this.#growSoon = true;
      }
    }
    return {
      received: this.#received,
      dropped: this.#dropped,
      ifDropped: 0,
      freezes: this.#freezes,
      bufferBytes: this.#sock.size,
      grows: this.#grows,
      shrinks: this.#shrinks,
      blockSize: this.#sock.geometry.blockSize,
      peakBytes: this.#highWater * this.#sock.geometry.blockSize,
    };
  }

  /** Adds the kernel's counters of `sock` (reset by every read); returns the new drops. */
  #readStats(sock: RingSocket): number {
    this.#statLen[0] = TPACKET_STATS_V3_SIZE;
    const s = this.#statBuf;
    const rc = loadLibc().getsockopt(
      sock.fd,
      Packet.SOL_PACKET,
      Packet.PACKET_STATISTICS,
      new Uint8Array(s.buffer),
      new Uint8Array(this.#statLen.buffer),
    );
    if (rc !== 0) return 0;
    this.#received += s[0];
    this.#dropped += s[1];
    this.#freezes += s[2];
    return s[1];
  }

  /** Makes a pending and any later {@link wait} resolve `false`; safe from signal handlers. */
  stop(): void {
    this.#stopped = true;
    this.#sock.waiter.stop();
    for (const old of this.#olds) old.waiter.stop();
  }

  /** Stops and releases everything (the socket once a pending poll returned). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.stats(); // keep the last counters readable after close
    this.stop();
    this.#closed = true;
    for (const old of this.#olds) old.close();
    this.#olds = [];
    this.#sock.close();
  }

  /** After a wake-up without a ready block: turns a socket error (POLLERR) into #error. */
  #checkSocketError(): void {
    const C = loadLibc();
    const sock = this.#sock;
    if (C.poll(sock.probe.pointer, 1n, 0) <= 0) return;
    const revents = sock.probe.dv.getInt16(6, true);
    if ((revents & (POLLERR | POLLHUP | POLLNVAL)) === 0) return;
    const v = new Int32Array(1), len = new Uint32Array([4]);
    C.getsockopt(sock.fd, Sock.SOL_SOCKET, SO_ERROR, v, len); // reading clears it
    const e = v[0];
    const why = e === Errno.ENETDOWN
      ? "the device went down"
      : e === Errno.ENODEV
      ? "the device went away"
      : e === 0
      ? `socket reported poll events 0x${revents.toString(16)}`
      : describeErrno(e);
    this.#error = new IoError("device", `capture on "${this.device}" failed: ${why}`);
  }
}

/** Blocks whose fill rate estimates how soon the ring is full (see {@link roomMs}). */
const RATE_BLOCKS = 8;

/**
 * Milliseconds until the ring's free blocks are full at the rate its newest
 * {@link RATE_BLOCKS} ready blocks were filled (block timestamps; at low rates the kernel
 * retires a block per retire period, which this counts as it is).
 */
function roomMs(walker: RingWalker, ready: number, blockCount: number): number {
  const n = Math.min(ready, RATE_BLOCKS);
  if (n < 1) return Infinity;
  return (walker.spanMs(ready - n, n) / n) * (blockCount - ready);
}

/**
 * Opens one socket of a capture with a ring of `geometry`, filter attached and bound (it
 * captures from then on). `first`: also checks the device and decides `setup.dgram`.
 */
function openRingSocket(setup: RingSetup, geometry: RingGeometry, first = false): RingSocket {
  const C = loadLibc();
  const { device, any } = setup;
  const what = `an AF_PACKET capture socket on "${device}"`;
  // protocol 0: the socket receives nothing until bind(), after the ring and filter are set
  let fd = openSocket(Sock.AF_PACKET, setup.dgram ? Packet.SOCK_DGRAM : Sock.SOCK_RAW, 0, what);
  let ring: Deno.PointerObject | null = null;
  const size = geometry.blockSize * geometry.blockCount;
  try {
    if (first && !any) {
      const { up, hatype } = interfaceInfo(fd, device);
      if (!up) throw new IoError("device", `cannot capture on "${device}": the device is down`);
      setup.dgram = hatype !== ARPHRD_ETHER && hatype !== ARPHRD_LOOPBACK;
      if (setup.dgram) {
        C.close(fd);
        fd = -1;
        fd = openSocket(Sock.AF_PACKET, Packet.SOCK_DGRAM, 0, what);
      }
    }
    const linkType = setup.dgram ? LinkType.RAW : LinkType.EN10MB;
    must(fd, Packet.SOL_PACKET, Packet.PACKET_VERSION, int32(Packet.TPACKET_V3), "TPACKET_V3");
    let skipOutgoing = false;
    if (setup.direction === "in") {
      const ignore = int32(1);
      skipOutgoing =
        C.setsockopt(fd, Packet.SOL_PACKET, Packet.PACKET_IGNORE_OUTGOING, ignore, 4) !== 0;
    }
    const req = tpacketReq3(geometry, setup.retireMs);
    if (C.setsockopt(fd, Packet.SOL_PACKET, Packet.PACKET_RX_RING, req, req.length) !== 0) {
      const e = errno();
      const hint = e === Errno.ENOMEM ? "; try a smaller buffer size" : "";
      throw new IoError(
        "system",
        `cannot set up a ${size} byte capture ring on "${device}": ${describeErrno(e)}${hint}`,
      );
    }
    const addr = C.mmap(
      null,
      BigInt(size),
      Mmap.PROT_READ | Mmap.PROT_WRITE,
      Mmap.MAP_SHARED,
      fd,
      0n,
    );
    if (addr === null || BigInt(Deno.UnsafePointer.value(addr)) === Mmap.MAP_FAILED) {
      throw new IoError("system", `cannot map the capture ring: ${describeErrno(errno())}`);
    }
    ring = addr;
    setup.program ??= compileFilter(linkType, setup.snaplen, setup.filter);
    mustAttach(fd, setup.program, setup.filter);
    if (setup.promisc && !any) {
      const mreq = new DataView(new ArrayBuffer(16)); // struct packet_mreq
      mreq.setInt32(0, setup.ifindex, true);
      mreq.setUint16(4, Packet.PACKET_MR_PROMISC, true);
      const bytes = new Uint8Array(mreq.buffer);
      must(fd, Packet.SOL_PACKET, Packet.PACKET_ADD_MEMBERSHIP, bytes, "promiscuous mode");
    }
    const sll = new DataView(new ArrayBuffer(20)); // struct sockaddr_ll
    sll.setUint16(0, Sock.AF_PACKET, true);
    sll.setUint16(2, Packet.ETH_P_ALL_BE, true);
    sll.setInt32(4, setup.ifindex, true);
    if (C.bind(fd, new Uint8Array(sll.buffer), 20) !== 0) {
      const e = errno();
      const kind = e === Errno.ENODEV || e === Errno.ENETDOWN ? "device" : "system";
      throw new IoError(kind, `cannot capture on "${device}": bind: ${describeErrno(e)}`);
    }
    return new RingSocket(fd, ring, geometry, skipOutgoing);
  } catch (e) {
    if (ring !== null) C.munmap(ring, BigInt(size));
    if (fd >= 0) C.close(fd);
    throw e;
  }
}

/** `ret #0` (BPF_RET | BPF_K, k = 0: keep 0 bytes), one `struct sock_filter`. */
const ACCEPT_NOTHING = new Uint8Array([0x06, 0, 0, 0, 0, 0, 0, 0]);

/**
 * Replaces the socket's filter with one that accepts nothing (`ret #0`): the ring keeps what
 * it holds and takes no more (the kernel copies the program).
 */
function acceptNothing(fd: number): boolean {
  return attachProgram(fd, ACCEPT_NOTHING) === 0;
}

function clampInt(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.floor(v)));
}

function int32(v: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new Int32Array([v]).buffer);
}

/** setsockopt or an IoError of kind "system" naming what was being set up. */
function must(fd: number, level: number, name: number, value: Uint8Array, what: string): void {
  if (loadLibc().setsockopt(fd, level, name, value, value.length) !== 0) {
    throw new IoError(
      "system",
      `cannot enable ${what} on the capture socket: ${describeErrno(errno())}`,
    );
  }
}

/** Up flag and hardware type (ARPHRD_*) of `device`, through ioctl on any socket. */
function interfaceInfo(fd: number, device: string): { up: boolean; hatype: number } {
  const C = loadLibc();
  const ifreq = new Uint8Array(40); // struct ifreq: char name[16], then the union
  ifreq.set(cstr(device));
  if (C.ioctl(fd, SIOCGIFFLAGS, ifreq) !== 0) {
    throw new IoError("device", `cannot capture on "${device}": ${describeErrno(errno())}`);
  }
  const up = (ifreq[16] & IFF_UP) !== 0;
  ifreq.fill(0, 16);
  if (C.ioctl(fd, SIOCGIFHWADDR, ifreq) !== 0) {
    throw new IoError("device", `cannot capture on "${device}": ${describeErrno(errno())}`);
  }
  return { up, hatype: ifreq[16] | (ifreq[17] << 8) };
}
