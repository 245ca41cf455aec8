/**
 * One way to open a live capture, whichever engine does the work:
 *
 * - "ring": {@link RingCapture}, an AF_PACKET TPACKET_V3 ring read straight from JS (Linux;
 *   the default for live devices there);
 * - "pcap": {@link PcapCapture}, libpcap's own capture (the fallback when the ring cannot be set
 *   up, and the choice on other systems).
 *
 * Both deliver the same frames for the same device and filter. The default choice leaves out
 * packets this host sends (`direction: "in"`): the ring with PACKET_IGNORE_OUTGOING, the pcap
 * fallback with `pcap_setdirection`. An explicitly chosen "pcap" engine keeps libpcap's own
 * behaviour (both directions). `direction` on the result says which applies.
 *
 * ```ts
 * const cap = openCapture({ device: "eth0", filter: "tcp dst port 80" });
 * if (cap.fallbackReason) log.warn(`ring capture unavailable: ${cap.fallbackReason}`);
 * while (await cap.wait()) cap.drain(onPacket);
 * cap.close();
 * ```
 *
 * @module
 */

import { IoError } from "./errors.ts";
import { type CaptureStats, type LiveOptions, PcapCapture } from "./pcap.ts";
import type { PacketHandler } from "./pcap_records.ts";
import { type CaptureDirection, RingCapture } from "./ring.ts";

export type { CaptureStats, LiveOptions } from "./pcap.ts";
export type { PacketHandler } from "./pcap_records.ts";
export type { CaptureDirection } from "./ring.ts";

/** What {@link PcapCapture} and {@link RingCapture} have in common. */
export interface Capture {
  /** the device captured on */
  readonly device: string;
  /** DLT_* of the frames delivered (see lib/wire/link.ts) */
  readonly linkType: number;
  /** the most bytes kept per packet */
  readonly snaplen: number;
  /** resolves true when packets may be available, false once stopped */
  wait(timeoutMs?: number): Promise<boolean>;
  /** hands the packets available now (at most `max`) to `onPacket`; returns how many */
  drain(onPacket: PacketHandler, max?: number): number;
  /** kernel counters since the capture started */
  stats(): CaptureStats;
  /** ends a pending wait promptly; safe from signal handlers */
  stop(): void;
  /** releases everything; idempotent */
  close(): void;
}

/** The capture engines. */
export type CaptureEngine = "ring" | "pcap";

/** Options of {@link openCapture}. */
export interface CaptureOptions extends LiveOptions {
  /** engine to use; unset: "ring" on Linux, falling back to "pcap" when the ring fails */
  engine?: CaptureEngine;
  /** "in": leave out packets this host sends (default); "inout": keep them */
  direction?: CaptureDirection;
  /**
   * The ring starts at `bufferSize` and doubles up to this many bytes as it fills (see
   * RingCapture); libpcap, when used instead, gets this size from the start.
   */
  maxBufferSize?: number;
}

/** A capture plus how it was opened. */
export interface OpenedCapture extends Capture {
  /** the engine doing the work */
  readonly engine: CaptureEngine;
  /** the packets delivered: "in" (received only) or "inout" (also those this host sent) */
  readonly direction: CaptureDirection;
  /** why the ring was not used, when the default choice fell back to "pcap" */
  readonly fallbackReason?: string;
}

/**
 * Opens a live capture. An explicit `engine` is used as asked (its errors are thrown). Without
 * one, Linux tries the ring first; when the ring fails for a reason libpcap might not share
 * (kind "system" or "device", e.g. a kernel without TPACKET_V3 or a pseudo-device only libpcap
 * knows) the pcap engine is tried and the ring's reason kept in `fallbackReason`. Filter,
 * privilege, library and permission errors are thrown as they are: libpcap would fail alike.
 */
export function openCapture(opts: CaptureOptions): OpenedCapture {
  const engine = opts.engine ?? (Deno.build.os === "linux" ? "ring" : "pcap");
  if (engine === "pcap") {
    const pcapOpts = { ...opts, bufferSize: opts.maxBufferSize ?? opts.bufferSize };
    return new Opened(PcapCapture.openLive({ ...pcapOpts, direction: "inout" }), "pcap", "inout");
  }
  try {
    return new Opened(RingCapture.openLive(opts), "ring", opts.direction ?? "in");
  } catch (e) {
    const retry = opts.engine === undefined && e instanceof IoError &&
      (e.kind === "system" || e.kind === "device");
    if (!retry) throw e;
    const pcap = PcapCapture.openLive({
      ...opts,
      bufferSize: opts.maxBufferSize ?? opts.bufferSize,
      direction: opts.direction ?? "in",
    });
    return new Opened(pcap, "pcap", pcap.direction, e.message);
  }
}

/** A capture tagged with its engine; forwards every call (once per wake-up, not per packet). */
class Opened implements OpenedCapture {
  constructor(
    readonly inner: Capture,
    readonly engine: CaptureEngine,
    readonly direction: CaptureDirection,
    readonly fallbackReason?: string,
  ) {}
  get device(): string {
    return this.inner.device;
  }
  get linkType(): number {
    return this.inner.linkType;
  }
  get snaplen(): number {
    return this.inner.snaplen;
  }
  wait(timeoutMs?: number): Promise<boolean> {
    return this.inner.wait(timeoutMs);
  }
  drain(onPacket: PacketHandler, max?: number): number {
    return this.inner.drain(onPacket, max);
  }
  stats(): CaptureStats {
    return this.inner.stats();
  }
  stop(): void {
    this.inner.stop();
  }
  close(): void {
    this.inner.close();
  }
}
