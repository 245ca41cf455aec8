/**
 * The few header fields the tunnel needs from a captured reply (bytes starting at the IP
 * header): family, where the TCP header sits, its length, the payload length and the route
 * key. The parsing is lib/wire's (`parseIpTcp`, the parser tcpcopy uses on the other side):
 * IPv4 options and IPv6 extension headers are accepted alike on both ends.
 */
import type { WireError } from "../wire/error.ts";
import { ParsedTcp, parseIpTcp } from "../wire/packet.ts";
import { routeKey4, routeKey6 } from "./route_key.ts";

/** What the tunnel knows about one captured reply; reused by the caller (no allocation). */
export interface ReplyInfo {
  family: 4 | 6;
  /** Offset of the TCP header (IPv4: ihl*4, IPv6: 40 + extension headers). */
  l4: number;
  /** TCP header length in bytes (doff*4). */
  tcpLen: number;
  /** Payload length from the IP length field (may exceed the captured bytes). */
  payloadLen: number;
  /** Payload bytes actually present in the capture. */
  capturedPayload: number;
  /** TCP flags byte. */
  flags: number;
  /** Sequence and acknowledgement numbers (answer cutting, issue 15). */
  seq: number;
  ack: number;
  /** Route key of the reply's destination (client) and source (target). */
  key: string;
}

/** Creates a reusable ReplyInfo. */
export function newReplyInfo(): ReplyInfo {
  return {
    family: 4,
    l4: 0,
    tcpLen: 0,
    payloadLen: 0,
    capturedPayload: 0,
    flags: 0,
    seq: 0,
    ack: 0,
    key: "",
  };
}

const parsed = new ParsedTcp();

/**
 * Fills `out` from a reply packet. Returns undefined on success or the lib/wire reason for
 * packets that are not a well-formed IPv4/IPv6 TCP segment (counted by the caller).
 */
export function inspectReply(p: Uint8Array, out: ReplyInfo): WireError | undefined {
  const err = parseIpTcp(p, 0, parsed);
  if (err !== null) return err;
  out.family = parsed.family;
  out.key = parsed.family === 4
    ? routeKey4(parsed.dstAddr, 0, parsed.dstPort, parsed.srcAddr, 0, parsed.srcPort)
    : routeKey6(parsed.dstAddr, 0, parsed.dstPort, parsed.srcAddr, 0, parsed.srcPort);
  out.l4 = parsed.tcpOffset;
  out.tcpLen = parsed.tcpHeaderLength;
  out.flags = parsed.flags;
  out.seq = parsed.seq;
  out.ack = parsed.ack;
  out.payloadLen = parsed.payloadLength;
  out.capturedPayload = parsed.capturedPayloadLength;
  return undefined;
}
