/**
 * Pure conversions between the layers tcpcopy wires together: the validated command line ->
 * the engine's configuration; parsed packets (lib/wire) <-> the engine's segment objects.
 */
import type { TcpcopyConfig } from "../cli/config.ts";
import type { EngineConfig } from "../engine/config.ts";
import type {
  CapturedSegment,
  OutSegment,
  ReplySegment,
  SegmentOptions,
} from "../engine/segment.ts";
import type { ParsedTcp } from "../wire/packet.ts";
import type { TcpPacketRepr } from "../wire/build.ts";
import { parseTcpHeaderOptions, type TcpOptions } from "../wire/tcp_options.ts";

/** The engine's configuration for a command line. Durations become milliseconds. */
export function engineConfigOf(c: TcpcopyConfig): EngineConfig {
  return {
    transfers: c.transfers.map((t) => ({
      online: { addr: t.onlineIp ?? "", port: t.onlinePort },
      target: { addr: t.targetIp, port: t.targetPort },
    })),
    clientIps: c.clientIps,
    copies: c.copies,
    portShift: c.portShift,
    samplePercent: c.samplePct,
    gradual: c.gradual,
    mss: c.mss,
    mtu: c.mtu,
    sessionTimeoutMs: Math.round(c.sessionTimeoutS * 1000),
    keepaliveTimeoutMs: Math.round(c.keepaliveTimeoutS * 1000),
    onlyComplete: c.onlyComplete,
    noWait: c.noWait,
    maxMemoryBytes: c.maxMemoryMiB * 1024 * 1024,
  };
}

/**
 * The options of the TCP header `p` describes, in the engine's form; null when they are
 * malformed (the packet is then counted and skipped by the caller).
 */
export function segmentOptionsOf(p: ParsedTcp): SegmentOptions | null {
  if (p.tcpHeaderLength === 20) return {};
  const o = parseTcpHeaderOptions(p.bytes, p.tcpOffset);
  if (typeof o === "string") return null;
  const out: SegmentOptions = {};
  if (o.mss !== undefined) out.mss = o.mss;
  if (o.wscale !== undefined) out.wscale = o.wscale;
  if (o.sackPermitted) out.sackPermitted = true;
  if (o.timestamp) out.timestamp = { tsval: o.timestamp.tsval, tsecr: o.timestamp.tsecr };
  return out;
}

/**
 * A captured client segment. `payload` stays a view into the capture buffer (the engine
 * copies what it keeps); null when the TCP options are malformed.
 */
export function capturedSegmentOf(p: ParsedTcp, timeMs: number): CapturedSegment | null {
  const options = segmentOptionsOf(p);
  if (options === null) return null;
  return {
    src: { addr: p.srcAddr, port: p.srcPort },
    dst: { addr: p.dstAddr, port: p.dstPort },
    seq: p.seq,
    ack: p.ack,
    flags: p.flags,
    window: p.window,
    options,
    payload: p.payload(),
    ipId: p.family === 4 ? p.ipId : undefined,
    timeMs,
  };
}

/**
 * A reply header from intercept (payload length from the IP header). Bytes after the TCP
 * header are not passed on as a payload prefix: C v6 records are zero padded to 64 bytes, and
 * tcpcopy does not ask intercept for payload prefixes.
 */
export function replySegmentOf(p: ParsedTcp): ReplySegment | null {
  const options = segmentOptionsOf(p);
  if (options === null) return null;
  const seg: ReplySegment = {
    src: { addr: p.srcAddr, port: p.srcPort },
    dst: { addr: p.dstAddr, port: p.dstPort },
    seq: p.seq,
    ack: p.ack,
    flags: p.flags,
    window: p.window,
    options,
    payloadLength: p.payloadLength,
  };
  return seg;
}

/** The packet description lib/wire builds for an engine output segment. */
export function packetReprOf(s: OutSegment): TcpPacketRepr {
  const o = s.options;
  const options: TcpOptions = {
    sackPermitted: o.sackPermitted === true,
    sackBlocks: [],
    unknown: [],
  };
  if (o.mss !== undefined) options.mss = o.mss;
  if (o.wscale !== undefined) options.wscale = o.wscale;
  if (o.timestamp) options.timestamp = o.timestamp;
  return {
    srcAddr: s.src.addr,
    dstAddr: s.dst.addr,
    srcPort: s.src.port,
    dstPort: s.dst.port,
    seq: s.seq,
    ack: s.ack,
    flags: s.flags,
    window: s.window,
    ipId: s.ipId,
    options,
    payload: s.payload,
  };
}
