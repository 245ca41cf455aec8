/**
 * Live capture through an AF_PACKET TPACKET_V3 receive ring mapped into JS: the kernel writes
 * packets into shared blocks, JS walks them with one DataView ({@link RingWalker}): no FFI call
 * and no copy per packet, one awaited poll() per wake-up. libpcap is used only to compile the
 * BPF filter, which is attached to the socket with SO_ATTACH_FILTER.
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
import { LinkType, loadPcap, pcapError } from "./pcap_lib.ts";
import type { CaptureStats, LiveOptions } from "./pcap.ts";
import type { PacketHandler } from "./pcap_records.ts";
import { FdWaiter } from "./readiness.ts";
import { sharedReactor } from "./reactor.ts";
import {
  Packet,
  type RingGeometry,
  ringGeometry,
  RingWalker,
  TPACKET_STATS_V3_SIZE,
  tpacketReq3,
} from "./ring_layout.ts";
import { openSocket, Sock } from "./socket.ts";

/** Which packets to keep: received only (default), or received and sent by this host. */
export type CaptureDirection = "in" | "inout";

/** Options of {@link RingCapture.openLive}: those of PcapCapture, plus the direction. */
export interface RingOptions extends LiveOptions {
  /** "in": leave out packets this host sends (default); "inout": keep them */
  direction?: CaptureDirection;
}

/** Counters of a ring capture, cumulative since it was opened. */
export interface RingStats extends CaptureStats {
  /** times the kernel found the ring full and froze it (tp_freeze_q_cnt) */
  freezes: number;
}

const PCAP_NETMASK_UNKNOWN = 0xffffffff;
const SIOCGIFFLAGS = 0x8913n, SIOCGIFHWADDR = 0x8927n, IFF_UP = 1;
const ARPHRD_ETHER = 1, ARPHRD_LOOPBACK = 772;
const POLLERR = 0x008, POLLHUP = 0x010, POLLNVAL = 0x020;
const SO_ERROR = 4;
/** Longest sleep after a busy wake-up (the retire timeout may be set up to 10 s). */
export const MAX_NAP_MS = 100;

/** A live capture on one device through a TPACKET_V3 ring. */
export class RingCapture {
  /** DLT_* of the frames delivered: EN10MB (1) or RAW (12). */
  readonly linkType: number;
  /** the most bytes kept per packet */
  readonly snaplen: number;
  /** the ring's blocks */
  readonly geometry: RingGeometry;
  readonly #fd: number;
  readonly #ring: Deno.PointerObject;
  readonly #walker: RingWalker;
  readonly #waiter: FdWaiter;
  readonly #probe = new NativeMemory(8); // struct pollfd for a 0 ms poll after a wake-up
  readonly #statBuf = new Uint32Array(3);
  readonly #statLen = new Uint32Array(1);
  #received = 0;
  #dropped = 0;
  #freezes = 0;
  #error: IoError | null = null;
  #closed = false;
  #busy = false; // the last wait found a block: expect the next one within a retire period
  readonly #napMs: number; // min(retire timeout, MAX_NAP_MS)

  private constructor(
    readonly device: string,
    fd: number,
    ring: Deno.PointerObject,
    geometry: RingGeometry,
    linkType: number,
    snaplen: number,
    skipOutgoing: boolean,
    retireMs: number,
  ) {
    this.#fd = fd;
    this.#napMs = Math.min(retireMs, MAX_NAP_MS);
    this.#ring = ring;
    this.geometry = geometry;
    this.linkType = linkType;
    this.snaplen = snaplen;
    const size = geometry.blockSize * geometry.blockCount;
    const buffer = Deno.UnsafePointerView.getArrayBuffer(ring, size);
    this.#walker = new RingWalker(
      new Uint8Array(buffer),
      new DataView(buffer),
      geometry,
      skipOutgoing,
    );
    this.#waiter = new FdWaiter(fd);
    this.#probe.dv.setInt32(0, fd, true);
    this.#probe.dv.setInt16(4, 1, true); // POLLIN
  }

  /**
   * Opens the ring and starts capturing. Throws an {@link IoError}: "device" (no such device,
   * device down), "filter" (libpcap's message and the expression), "privilege" (root or
   * CAP_NET_RAW), "library" (libpcap, for the filter compiler), "system" (the kernel refused
   * the ring, e.g. ENOMEM for a large `bufferSize`), "ffi-permission".
   */
  static openLive(opts: RingOptions): RingCapture {
    const C = loadLibc();
    const P = loadPcap(); // fails early (kind "library") when the filter compiler is missing
    const device = opts.device;
    const any = device === "any";
    const snaplen = clampInt(opts.snaplen ?? 65535, 64, 262144);
    const geometry = ringGeometry(clampInt(opts.bufferSize ?? 64 << 20, 1 << 16, 2 ** 31 - 1));
    const retireMs = clampInt(opts.timeoutMs ?? 10, 1, 10_000);
    const what = `an AF_PACKET capture socket on "${device}"`;

    let ifindex = 0, dgram = any;
    if (!any) {
      ifindex = device.length === 0 || device.length > 15 ? 0 : C.if_nametoindex(cstr(device));
      if (ifindex === 0) {
        throw new IoError("device", `cannot capture on "${device}": no such network device`);
      }
    }
    // protocol 0: the socket receives nothing until bind(), after the ring and filter are set
    let fd = openSocket(Sock.AF_PACKET, any ? Packet.SOCK_DGRAM : Sock.SOCK_RAW, 0, what);
    let ring: Deno.PointerObject | null = null;
    const size = geometry.blockSize * geometry.blockCount;
    try {
      if (!any) {
        const { up, hatype } = interfaceInfo(fd, device);
        if (!up) throw new IoError("device", `cannot capture on "${device}": the device is down`);
        dgram = hatype !== ARPHRD_ETHER && hatype !== ARPHRD_LOOPBACK;
        if (dgram) {
          C.close(fd);
          fd = -1;
          fd = openSocket(Sock.AF_PACKET, Packet.SOCK_DGRAM, 0, what);
        }
      }
      const linkType = dgram ? LinkType.RAW : LinkType.EN10MB;
      must(fd, Packet.SOL_PACKET, Packet.PACKET_VERSION, int32(Packet.TPACKET_V3), "TPACKET_V3");
      let skipOutgoing = false;
      if ((opts.direction ?? "in") === "in") {
        const ignore = int32(1);
        skipOutgoing =
          C.setsockopt(fd, Packet.SOL_PACKET, Packet.PACKET_IGNORE_OUTGOING, ignore, 4) !== 0;
      }
      const req = tpacketReq3(geometry, retireMs);
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
      attachFilter(P, fd, linkType, snaplen, opts.filter ?? "");
      if (opts.promisc && !any) {
        const mreq = new DataView(new ArrayBuffer(16)); // struct packet_mreq
        mreq.setInt32(0, ifindex, true);
        mreq.setUint16(4, Packet.PACKET_MR_PROMISC, true);
        const bytes = new Uint8Array(mreq.buffer);
        must(fd, Packet.SOL_PACKET, Packet.PACKET_ADD_MEMBERSHIP, bytes, "promiscuous mode");
      }
      const sll = new DataView(new ArrayBuffer(20)); // struct sockaddr_ll
      sll.setUint16(0, Sock.AF_PACKET, true);
      sll.setUint16(2, Packet.ETH_P_ALL_BE, true);
      sll.setInt32(4, ifindex, true);
      if (C.bind(fd, new Uint8Array(sll.buffer), 20) !== 0) {
        const e = errno();
        const kind = e === Errno.ENODEV || e === Errno.ENETDOWN ? "device" : "system";
        throw new IoError(kind, `cannot capture on "${device}": bind: ${describeErrno(e)}`);
      }
      return new RingCapture(
        device,
        fd,
        ring,
        geometry,
        linkType,
        snaplen,
        skipOutgoing,
        retireMs,
      );
    } catch (e) {
      if (ring !== null) C.munmap(ring, BigInt(size));
      if (fd >= 0) C.close(fd);
      throw e;
    }
  }

  /**
   * Waits until packets may be available. Resolves `true` when a block is ready (or
   * `timeoutMs` elapsed: a drain then finds nothing), `false` once {@link stop} was called.
   * stop() ends a pending wait within one nap (at most {@link MAX_NAP_MS}). Returns at once
   * when packets are waiting; right after a busy wake-up it first sleeps one block retire
   * period on a reactor timer.
   */
  async wait(timeoutMs = Infinity): Promise<boolean> {
    if (this.#closed || this.#waiter.stopped) return false;
    if (this.#walker.ready() || this.#error !== null) return true;
    if (this.#busy && timeoutMs >= this.#napMs) {
      // a block was ready at the last wake-up: under steady traffic the next one is retired
      // within one retire period, so one timer wake-up replaces a poll() wake-up per block
      // (measured with an awaited poll(): ~20 % less CPU per packet at 100 kpps). Idle links
      // go back to poll().
      this.#busy = false;
      await sharedReactor().sleep(this.#napMs);
      if (this.#closed || this.#waiter.stopped) return false;
      if (this.#walker.ready()) return (this.#busy = true);
      timeoutMs -= this.#napMs;
    }
    if (!await this.#waiter.wait(timeoutMs)) return false;
    if (this.#closed) return false;
    if (this.#walker.ready()) this.#busy = true;
    else this.#checkSocketError();
    return true;
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
    return this.#walker.drain(onPacket, max);
  }

  /**
   * Kernel counters since the capture started: `received` packets that passed the filter
   * (including the dropped ones, as libpcap counts), `dropped` because the ring was full.
   */
  stats(): RingStats {
    if (!this.#closed) {
      this.#statLen[0] = TPACKET_STATS_V3_SIZE;
      const s = this.#statBuf;
      const rc = loadLibc().getsockopt(
        this.#fd,
        Packet.SOL_PACKET,
        Packet.PACKET_STATISTICS,
        new Uint8Array(s.buffer),
        new Uint8Array(this.#statLen.buffer),
      );
      if (rc === 0) { // the kernel resets its counters on every read: accumulate
        this.#received += s[0];
        this.#dropped += s[1];
        this.#freezes += s[2];
      }
    }
    return {
      received: this.#received,
      dropped: this.#dropped,
      ifDropped: 0,
      freezes: this.#freezes,
    };
  }

  /** Makes a pending and any later {@link wait} resolve `false`; safe from signal handlers. */
  stop(): void {
    this.#waiter.stop();
  }

  /** Stops and releases everything (the socket once a pending poll returned). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.stats(); // keep the last counters readable after close
    this.stop();
    this.#closed = true;
    const size = BigInt(this.geometry.blockSize * this.geometry.blockCount);
    loadLibc().munmap(this.#ring, size);
    this.#probe.free();
    const fd = this.#fd;
    this.#waiter.close().then(() => loadLibc().close(fd));
  }

  /** After a wake-up without a ready block: turns a socket error (POLLERR) into #error. */
  #checkSocketError(): void {
    const C = loadLibc();
    if (C.poll(this.#probe.pointer, 1n, 0) <= 0) return;
    const revents = this.#probe.dv.getInt16(6, true);
    if ((revents & (POLLERR | POLLHUP | POLLNVAL)) === 0) return;
    const v = new Int32Array(1), len = new Uint32Array([4]);
    C.getsockopt(this.#fd, Sock.SOL_SOCKET, SO_ERROR, v, len); // reading clears it
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

/**
 * Compiles `filter` for `linkType` with libpcap (an empty filter still yields a program that
 * enforces the snaplen) and attaches it to the socket. struct bpf_program {u_int; ptr} has the
 * layout of struct sock_fprog {u16; ptr} on little-endian LP64, so its 16 bytes go as they are.
 */
function attachFilter(
  P: ReturnType<typeof loadPcap>,
  fd: number,
  linkType: number,
  snaplen: number,
  filter: string,
): void {
  const dead = P.pcap_open_dead(linkType, snaplen);
  if (dead === null) throw new IoError("system", "pcap_open_dead failed (out of memory?)");
  try {
    const prog = new Uint8Array(16);
    if (P.pcap_compile(dead, prog, cstr(filter), 1, PCAP_NETMASK_UNKNOWN) < 0) {
      throw new IoError("filter", `bad capture filter "${filter}": ${pcapError(dead)}`);
    }
    const rc = loadLibc().setsockopt(fd, Sock.SOL_SOCKET, Packet.SO_ATTACH_FILTER, prog, 16);
    const e = rc === 0 ? 0 : errno();
    P.pcap_freecode(prog);
    if (rc !== 0) {
      throw new IoError("filter", `cannot set filter "${filter}": ${describeErrno(e)}`);
    }
  } finally {
    P.pcap_close(dead);
  }
}
