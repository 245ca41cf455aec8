/**
 * Live capture with libpcap, drained in batches without a promise or an FFI object per packet.
 *
 * Reading pattern: `await cap.wait()` (one awaited poll() per wake-up, stoppable), then
 * `cap.drain(onPacket)` synchronously. drain() calls `pcap_dispatch` with libpcap's own C
 * `pcap_dump` as the handler, writing savefile records into an fmemopen()'d malloc buffer that
 * JS then walks with a DataView: no JS callback from C, no per-packet native calls.
 *
 * Buffered (TPACKET_V3) mode by default: packets are handed over when a ring block fills or after
 * `timeoutMs` (default 10 ms), about a thousand per wake-up at 100 kpps. `immediate` hands each
 * packet over as it arrives (libpcap's immediate mode, a TPACKET_V2 ring on Linux): for a reader
 * that something waits on, such as intercept's pcap mode, where every reply the target sends is
 * the answer a replayed session needs before its next request.
 *
 * The offline classes ({@link PcapFile}, {@link PcapWriter}) are re-exported from here.
 *
 * @module
 */

import { IoError, PRIVILEGE_HINT } from "./errors.ts";
import { cstr, fromCstr, loadLibc, NativeMemory } from "./libc.ts";
import {
  ERRBUF_SIZE,
  loadPcap,
  type Pcap,
  PcapDirection,
  pcapDumpAddress,
  pcapError,
  PcapStatus,
  pcapStatusText,
} from "./pcap_lib.ts";
import { forEachRecord, type PacketHandler } from "./pcap_records.ts";
import { FdWaiter } from "./readiness.ts";

export { PcapFile, type PcapRecord, PcapWriter } from "./pcap_file.ts";
export { LinkType } from "../wire/link.ts";
export type { PacketHandler } from "./pcap_records.ts";

/** Options of {@link PcapCapture.openLive}. */
export interface LiveOptions {
  /** network device, or "any" */
  device: string;
  /** BPF filter expression compiled by libpcap, e.g. "tcp and dst port 80" (none: all) */
  filter?: string;
  /** bytes kept per packet (65535) */
  snaplen?: number;
  /** kernel ring size in bytes (64 MiB: small rings drop at 100 kpps) */
  bufferSize?: number;
  /** promiscuous mode (false) */
  promisc?: boolean;
  /** longest time a packet waits in a partly filled ring block, ms (10) */
  timeoutMs?: number;
  /** hand each packet over at once, not a ring block at a time (false; see the module doc) */
  immediate?: boolean;
  /** size of the in-memory savefile that one drain step fills (16 MiB) */
  drainBufferSize?: number;
  /**
   * "in": leave out packets this host sends (`pcap_setdirection(PCAP_D_IN)`); "inout": keep
   * them. PcapCapture keeps both unless told otherwise; see {@link PcapCapture.direction}.
   */
  direction?: "in" | "inout";
}

/** Capture counters (pcap_stats). */
export interface CaptureStats {
  /** packets received by the filter */
  received: number;
  /** packets dropped because the ring was full */
  dropped: number;
  /** packets dropped by the interface or driver */
  ifDropped: number;
  /** the kernel buffer's size now, bytes (rings that grow report it) */
  bufferBytes?: number;
  /**
   * the most bytes of ring found waiting to be read at a wake-up or drain step, in whole
   * blocks (rings only): how close the ring came to full, and so to dropping packets
   */
  peakBytes?: number;
}

const PCAP_NETMASK_UNKNOWN = 0xffffffff;
const SEEK_SET = 0, IONBF = 2;

/** A live libpcap capture on one device. */
export class PcapCapture {
  /** DLT_* of the frames delivered (see {@link LinkType}). */
  readonly linkType: number;
  /** effective snaplen */
  readonly snaplen: number;
  /**
   * The packets delivered: "in" when `direction: "in"` was asked for and libpcap accepted it,
   * else "inout" (also the packets this host sends).
   */
  readonly direction: "in" | "inout";
  /** Why libpcap refused `direction: "in"` (its message), when it did. */
  readonly directionError?: string;
  readonly #P: Pcap;
  readonly #p: Deno.PointerObject;
  readonly #waiter: FdWaiter;
  readonly #mem: NativeMemory;
  readonly #file: Deno.PointerObject;
  readonly #dumper: Deno.PointerObject;
  readonly #dump: Deno.PointerObject;
  readonly #perCall: number;
  readonly #statBuf = new Uint32Array(3);
  #closed = false;

  private constructor(
    readonly device: string,
    P: Pcap,
    p: Deno.PointerObject,
    drainBufferSize: number,
    direction: { delivered: "in" | "inout"; error?: string },
  ) {
    const C = loadLibc();
    this.direction = direction.delivered;
    if (direction.error !== undefined) this.directionError = direction.error;
    this.#P = P;
    this.#p = p;
    this.linkType = P.pcap_datalink(p);
    this.snaplen = P.pcap_snapshot(p);
    this.#dump = pcapDumpAddress();
    this.#mem = new NativeMemory(drainBufferSize);
    const file = C.fmemopen(this.#mem.pointer, BigInt(drainBufferSize), cstr("w"));
    if (file === null) throw new IoError("system", "fmemopen failed for the capture buffer");
    C.setvbuf(file, null, IONBF, 0n); // C writes straight into the buffer, no stdio copy
    const dumper = P.pcap_dump_fopen(p, file);
    if (dumper === null) throw new IoError("system", `pcap_dump_fopen: ${pcapError(p)}`);
    this.#file = file;
    this.#dumper = dumper;
    C.fseek(file, 0n, SEEK_SET); // drop the 24-byte file header: only records follow
    // never let records overflow the buffer (fmemopen truncates silently)
    this.#perCall = Math.max(1, Math.floor((drainBufferSize - 64) / (16 + this.snaplen)));
    this.#waiter = new FdWaiter(P.pcap_get_selectable_fd(p));
  }

  /**
   * Opens and activates a live capture. Throws an {@link IoError}: kind "library" (install
   * libpcap0.8 or set TCPCOPY_LIBPCAP), "privilege" (root or CAP_NET_RAW), "device" (libpcap's
   * message and the device), "filter" (libpcap's message and the expression), "ffi-permission".
   */
  static openLive(opts: LiveOptions): PcapCapture {
    const P = loadPcap();
    const errbuf = new Uint8Array(ERRBUF_SIZE);
    const p = P.pcap_create(cstr(opts.device), errbuf);
    if (p === null) {
      throw new IoError("device", `cannot capture on "${opts.device}": ${fromCstr(errbuf)}`);
    }
    try {
      P.pcap_set_snaplen(p, clampInt(opts.snaplen ?? 65535, 64, 262144));
      P.pcap_set_promisc(p, opts.promisc ? 1 : 0);
      P.pcap_set_timeout(p, clampInt(opts.timeoutMs ?? 10, 1, 10_000));
      if (opts.immediate) P.pcap_set_immediate_mode(p, 1);
      P.pcap_set_buffer_size(p, clampInt(opts.bufferSize ?? 64 << 20, 1 << 16, 2 ** 31 - 1));
      const rc = P.pcap_activate(p);
      if (rc < 0) throw activationError(rc, opts.device, p);
      if (opts.filter !== undefined && opts.filter !== "") setFilter(P, p, opts.filter);
      const direction = opts.direction === "in"
        ? setDirectionIn(P, p)
        : { delivered: "inout" as const };
      if (P.pcap_setnonblock(p, 1, errbuf) < 0) {
        throw new IoError("system", `pcap_setnonblock: ${fromCstr(errbuf)}`);
      }
      if (P.pcap_get_selectable_fd(p) < 0) {
        throw new IoError("device", `"${opts.device}" has no selectable descriptor`);
      }
      return new PcapCapture(opts.device, P, p, opts.drainBufferSize ?? 16 << 20, direction);
    } catch (e) {
      P.pcap_close(p);
      throw e;
    }
  }

  /**
   * Waits until packets may be available. Resolves `true` when the ring has data (or
   * `timeoutMs` elapsed: a drain then finds nothing), `false` once {@link stop} was called.
   * stop() ends a pending wait at once.
   */
  wait(timeoutMs = Infinity): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    return this.#waiter.wait(timeoutMs);
  }

  /**
   * Synchronously hands every packet available now (at most `max`) to `onPacket`; returns how
   * many. The frame passed to `onPacket` is a view into a reused buffer, valid only during the
   * call: copy what you keep. Throws an IoError when the capture fails (e.g. device gone).
   */
  drain(onPacket: PacketHandler, max = Infinity): number {
    if (this.#closed) return 0;
    const C = loadLibc(), P = this.#P;
    const { u8, dv } = this.#mem;
    let total = 0;
    while (total < max) {
      const want = Math.min(this.#perCall, max - total);
      const n = P.pcap_dispatch(this.#p, want, this.#dump, this.#dumper);
      if (n < 0) {
        if (n === PcapStatus.BREAK) break;
        throw new IoError("device", `capture on "${this.device}" failed: ${pcapError(this.#p)}`);
      }
      if (n === 0) break;
      const end = Number(C.ftell(this.#file));
      C.fseek(this.#file, 0n, SEEK_SET);
      total += forEachRecord(u8, dv, 0, end, onPacket);
      if (n < want) break;
    }
    return total;
  }

  /** Kernel counters since the capture started. */
  stats(): CaptureStats {
    if (this.#closed || this.#P.pcap_stats(this.#p, this.#statBuf) < 0) {
      return { received: 0, dropped: 0, ifDropped: 0 };
    }
    const s = this.#statBuf;
    return { received: s[0], dropped: s[1], ifDropped: s[2] };
  }

  /** Makes a pending and any later {@link wait} resolve `false`; safe from signal handlers. */
  stop(): void {
    this.#waiter.stop();
    if (!this.#closed) this.#P.pcap_breakloop(this.#p);
  }

  /** Stops and releases everything. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.stop();
    this.#closed = true;
    this.#P.pcap_dump_close(this.#dumper); // also fclose()s the fmemopen stream
    this.#mem.free();
    this.#waiter.close(); // frees its pollfd once a pending poll returns
    this.#P.pcap_close(this.#p);
  }
}

function clampInt(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.floor(v)));
}

function activationError(rc: number, device: string, p: Deno.PointerObject): IoError {
  const detail = rc === PcapStatus.ERROR ? pcapError(p) : `${pcapStatusText(rc)} (${pcapError(p)})`;
  switch (rc) {
    case PcapStatus.PERM_DENIED:
    case PcapStatus.PROMISC_PERM_DENIED:
      return new IoError(
        "privilege",
        `cannot capture on "${device}": ${detail}; ${PRIVILEGE_HINT}`,
      );
    case PcapStatus.NO_SUCH_DEVICE:
    case PcapStatus.IFACE_NOT_UP:
      return new IoError("device", `cannot capture on "${device}": ${detail}`);
    default:
      return new IoError("system", `cannot capture on "${device}": ${detail}`);
  }
}

/**
 * Asks libpcap to deliver received packets only. On Linux it drops the packets the socket
 * marks PACKET_OUTGOING in userland; a device or platform without support refuses, and the
 * capture then keeps both directions (reported, never fatal).
 */
function setDirectionIn(
  P: Pcap,
  p: Deno.PointerObject,
): { delivered: "in" | "inout"; error?: string } {
  if (P.pcap_setdirection(p, PcapDirection.IN) === 0) return { delivered: "in" };
  return { delivered: "inout", error: `pcap_setdirection: ${pcapError(p)}` };
}

function setFilter(P: Pcap, p: Deno.PointerObject, filter: string): void {
  const prog = new Uint8Array(16); // struct bpf_program { u_int bf_len; struct bpf_insn *bf_insns; }
  if (P.pcap_compile(p, prog, cstr(filter), 1, PCAP_NETMASK_UNKNOWN) < 0) {
    throw new IoError("filter", `bad capture filter "${filter}": ${pcapError(p)}`);
  }
  const rc = P.pcap_setfilter(p, prog);
  P.pcap_freecode(prog);
  if (rc < 0) throw new IoError("filter", `cannot set filter "${filter}": ${pcapError(p)}`);
}
