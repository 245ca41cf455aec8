/**
 * Pure conversions between the layers tcpcopy wires together: the validated command line ->
 * the engine's configuration; parsed packets (lib/wire) <-> the engine's segment objects.
 */
import type { TcpcopyConfig } from "../cli/config.ts";
import type { EngineConfig } from "../engine/config.ts";
import { defaultMaxFlows, defaultMaxSessions, engineBudgetOf } from "../engine/budget.ts";
import type {
  CapturedSegment,
  Endpoint,
  OutSegment,
  ReplySegment,
  SegmentOptions,
} from "../engine/segment.ts";
import type { ParsedTcp } from "../wire/packet.ts";
import { SYN } from "../wire/tcp.ts";
import { SEQ_FIELD_INIT } from "../wire/seq.ts";
import type { TcpPacketRepr } from "../wire/build.ts";
import type { ModuleOptions } from "../engine/module_bridge.ts";
import type { ProtocolModule } from "../modules/module.ts";
import { lookupModule, replyPrefixOf } from "../modules/registry.ts";

const NO_ADDRESS = new Uint8Array(0);

/**
 * The engine's configuration for a command line. Durations become milliseconds. Module names
 * were checked by the parser; `modules` carries the `--auth-file` passwords read at start.
 */
export function engineConfigOf(c: TcpcopyConfig, modules?: ModuleOptions): EngineConfig {
  const budget = engineBudgetOf(c.maxMemoryMiB * 1024 * 1024);
  return {
    transfers: c.transfers.map((t) => ({
      online: { addr: t.onlineIp ?? "", port: t.onlinePort },
      target: { addr: t.targetIp, port: t.targetPort },
      ...(t.module !== null ? { module: moduleOf(t.module) } : {}),
    })),
    ...(modules !== undefined
      ? { modules: { ...modules, readOnly: c.readOnly, trustLogins: c.trustLogins } }
      : {}),
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
    maxMemoryBytes: budget,
    memoryBudgetBytes: budget,
    maxSessions: c.maxSessions ?? defaultMaxSessions(budget),
    maxFlows: c.maxFlows ?? defaultMaxFlows(budget),
    maxPps: c.maxPps,
    maxMbps: c.maxMbps,
  };
}

/** A module the parser accepted (a name not built in is a programming error here). */
function moduleOf(name: string): ProtocolModule {
  const found = lookupModule(name);
  if (!found.ok) throw new Error(found.error);
  return found.module;
}

/** The reply payload prefix tcpcopy asks intercept for: what its modules need (0: none). */
export function replyPrefixFor(c: TcpcopyConfig): number {
  return replyPrefixOf(c.transfers.map((t) => t.module === null ? undefined : moduleOf(t.module)));
}

/** Options with every field present and nothing set (one shape for all segments). */
export function emptySegmentOptions(): SegmentOptions {
  return { mss: undefined, wscale: undefined, sackPermitted: false, timestamp: undefined };
}

/**
 * A captured client segment. `payload` stays a view into the capture buffer (the engine
 * copies what it keeps); null when the TCP options are malformed.
 */
export function capturedSegmentOf(p: ParsedTcp, timeMs: number): CapturedSegment | null {
  const seg = emptyCapturedSegment();
  return readCapturedSegment(p, timeMs, seg, seg.options, emptyTimestamps()) ? seg : null;
}

/**
 * A timestamp pair to fill packet after packet; its fields start at {@link SEQ_FIELD_INIT}
 * (doubles from the start, like the sequence fields: one hidden class whatever the values).
 */
export function emptyTimestamps(): { tsval: number; tsecr: number } {
  return { tsval: SEQ_FIELD_INIT, tsecr: SEQ_FIELD_INIT };
}

/** A captured segment to fill with {@link readCapturedSegment} (one shape for every segment). */
export function emptyCapturedSegment(): CapturedSegment {
  return {
    src: { addr: NO_ADDRESS, family: 4, port: 0 },
    dst: { addr: NO_ADDRESS, family: 4, port: 0 },
    seq: SEQ_FIELD_INIT,
    ack: SEQ_FIELD_INIT,
    flags: 0,
    window: 0,
    options: emptySegmentOptions(),
    payload: NO_ADDRESS,
    ipId: undefined,
    timeMs: 0,
  };
}

/**
 * Fills the reused `seg` with the parsed client packet (false: malformed TCP options). Its
 * endpoints are the parser's address buffers and its payload a view into the capture buffer
 * (an empty payload: a shared empty array), valid until the next parse: the engine copies
 * what it keeps. Its options are read into the reused `options` and `ts`, except a SYN's: the
 * engine keeps a SYN's options (the session's `clientOpts`), so a SYN gets a fresh object.
 * No object per captured packet otherwise (bench/burst_heap.ts: a short connection's five
 * captured packets allocated ~1.8 KB of young garbage this way).
 */
export function readCapturedSegment(
  p: ParsedTcp,
  timeMs: number,
  seg: CapturedSegment,
  options: SegmentOptions,
  ts: { tsval: number; tsecr: number },
): boolean {
  if (p.flags & SYN) {
    seg.options = emptySegmentOptions();
    ts = emptyTimestamps();
  } else seg.options = options;
  if (p.readOptions(seg.options, ts) !== null) return false;
  readEndpoints(p, seg.src, seg.dst);
  seg.seq = p.seq;
  seg.ack = p.ack;
  seg.flags = p.flags;
  seg.window = p.window;
  seg.payload = p.capturedPayloadLength === 0 ? NO_ADDRESS : p.payload();
  seg.ipId = p.family === 4 ? p.ipId : undefined;
  seg.timeMs = timeMs;
  return true;
}

/**
 * Fills reused endpoints with the parsed packet's source and destination (the parser's
 * address buffers, valid until the next parse: whoever keeps them copies).
 */
export function readEndpoints(p: ParsedTcp, src: Endpoint, dst: Endpoint): void {
  src.addr = p.srcAddr;
  src.family = p.family;
  src.port = p.srcPort;
  dst.addr = p.dstAddr;
  dst.family = p.family;
  dst.port = p.dstPort;
}

/** A reply segment to fill with {@link readReplySegment} (one shape for every reply). */
export function emptyReplySegment(): ReplySegment {
  return {
    src: { addr: NO_ADDRESS, family: 4, port: 0 },
    dst: { addr: NO_ADDRESS, family: 4, port: 0 },
    seq: SEQ_FIELD_INIT,
    ack: SEQ_FIELD_INIT,
    flags: 0,
    window: 0,
    options: emptySegmentOptions(),
    payloadLength: 0,
    payloadPrefix: undefined,
  };
}

/**
 * Fills `seg` (from {@link emptyReplySegment}, reused reply after reply: the engine reads a
 * reply and keeps nothing of it) from the reply header `p`, its timestamps into `ts`; false
 * when its options are malformed. The payload length comes from the IP header. Bytes after
 * the TCP header are passed on as `payloadPrefix` (a view, valid during the call) only when
 * the record's connection was granted a payload prefix (`prefix` > 0): C v6 records are zero
 * padded to 64 bytes instead. At most `prefix` and at most the payload length are passed.
 */
export function readReplySegment(
  p: ParsedTcp,
  seg: ReplySegment,
  ts: { tsval: number; tsecr: number },
  prefix = 0,
): boolean {
  if (p.readOptions(seg.options, ts) !== null) return false;
  readEndpoints(p, seg.src, seg.dst);
  seg.seq = p.seq;
  seg.ack = p.ack;
  seg.flags = p.flags;
  seg.window = p.window;
  seg.payloadLength = p.payloadLength;
  if (prefix > 0 && p.capturedPayloadLength > 0) {
    const all = p.payload();
    const n = Math.min(all.length, prefix, p.payloadLength);
    seg.payloadPrefix = n === all.length ? all : all.subarray(0, n);
  } else seg.payloadPrefix = undefined;
  return true;
}

const NO_SACK_BLOCKS: [number, number][] = [];
const NO_UNKNOWN: { kind: number; data: Uint8Array }[] = [];

/** A packet description to fill with {@link fillPacketRepr}. */
export function emptyPacketRepr(): TcpPacketRepr {
  return {
    family: 4,
    srcAddr: NO_ADDRESS,
    dstAddr: NO_ADDRESS,
    srcPort: 0,
    dstPort: 0,
    seq: SEQ_FIELD_INIT,
    ack: SEQ_FIELD_INIT,
    flags: 0,
    window: 0,
    ipId: undefined,
    options: {
      mss: undefined,
      wscale: undefined,
      sackPermitted: false,
      sackBlocks: NO_SACK_BLOCKS,
      timestamp: undefined,
      unknown: NO_UNKNOWN,
    },
    payload: undefined,
  };
}

/**
 * Describes the engine output segment `s` (its endpoints carry address bytes and family) in
 * `repr` (from {@link emptyPacketRepr}; reused packet after packet: lib/wire builds the bytes
 * and keeps nothing). Returns `repr`.
 */
export function fillPacketRepr(s: OutSegment, repr: TcpPacketRepr): TcpPacketRepr {
  const o = s.options;
  const options = repr.options!;
  options.mss = o.mss;
  options.wscale = o.wscale;
  options.sackPermitted = o.sackPermitted === true;
  options.timestamp = o.timestamp;
  repr.family = s.dst.family;
  repr.srcAddr = s.src.addr;
  repr.dstAddr = s.dst.addr;
  repr.srcPort = s.src.port;
  repr.dstPort = s.dst.port;
  repr.seq = s.seq;
  repr.ack = s.ack;
  repr.flags = s.flags;
  repr.window = s.window;
  repr.ipId = s.ipId;
  repr.payload = s.payload;
  return repr;
}
