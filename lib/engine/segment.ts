/**
 * Plain TCP segment objects exchanged between the session engine and the glue code.
 *
 * The engine never sees bytes on the wire: the glue parses captured packets and reply
 * headers (lib/wire) into these objects and builds packets from {@link OutSegment}s.
 * Sequence and acknowledgement numbers are unsigned 32-bit values.
 */

/** One end of a TCP connection; `addr` is canonical IPv4 or IPv6 text. */
export interface Endpoint {
  addr: string;
  port: number;
}

/** The TCP options the engine understands; anything else is dropped. */
export interface SegmentOptions {
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  timestamp?: { tsval: number; tsecr: number };
}

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

/** TCP header flag bits (RFC 9293 §3.1). */
export const FIN = 1, SYN = 2, RST = 4, PSH = 8, ACK = 16, URG = 32;

/** Flags as the usual letters ("SA", "FPA", ...), for logs and test messages. */
export function flagsText(flags: number): string {
  let s = "";
  if (flags & SYN) s += "S";
  if (flags & FIN) s += "F";
  if (flags & RST) s += "R";
  if (flags & PSH) s += "P";
  if (flags & ACK) s += "A";
  if (flags & URG) s += "U";
  return s || ".";
}
