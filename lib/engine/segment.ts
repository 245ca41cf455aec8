/**
 * Plain TCP segment objects exchanged between the session engine and the glue code.
 *
 * The engine never sees bytes on the wire: the glue parses captured packets and reply
 * headers (lib/wire) into these objects and builds packets from {@link OutSegment}s.
 * Sequence and acknowledgement numbers are unsigned 32-bit values. Flag bits: lib/wire/tcp.ts.
 */
import type { TcpOptionFields } from "../wire/tcp_options.ts";

/**
 * One end of a TCP connection: address bytes (4 for IPv4, 16 for IPv6, network order) and
 * their family. In captured and reply segments the bytes may belong to the parser (reused
 * for the next packet): the engine copies what it keeps. Text: `endpoint.ts`, at the edges.
 */
export interface Endpoint {
  addr: Uint8Array;
  family: 4 | 6;
  port: number;
}

/** The TCP options the engine understands (lib/wire's hot-path set); anything else is dropped. */
export type SegmentOptions = TcpOptionFields;

/** The TCP header fields every segment the engine sees or makes carries. */
export interface SegmentHeader {
  src: Endpoint;
  dst: Endpoint;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options: SegmentOptions;
}

/** A client->server TCP segment as captured on the online host (original addresses). */
export interface CapturedSegment extends SegmentHeader {
  /** May be a view into a reused capture buffer: the engine copies what it keeps. */
  payload: Uint8Array;
  ipId?: number;
  /** Capture time in milliseconds (for RTT measurement and offline pacing). */
  timeMs: number;
}

/** Header of a reply the target sent, as received through intercept. */
export interface ReplySegment extends SegmentHeader {
  /** The target. */
  src: Endpoint;
  /** The emulated client. */
  dst: Endpoint;
  payloadLength: number;
  payloadPrefix?: Uint8Array;
}

/** A packet the engine wants sent to the target (the glue builds the bytes). */
export interface OutSegment extends SegmentHeader {
  payload: Uint8Array;
  ipId?: number;
}
