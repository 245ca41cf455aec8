/**
 * The few header fields the tunnel needs from a captured reply (bytes starting at the IP
 * header): family, where the TCP header sits, its length, the payload length and the route
 * key. Deliberately tiny: the tunnel never interprets anything else.
 */
import { routeKey4, routeKey6 } from "./route_key.ts";

/** What the tunnel knows about one captured reply; reused by the caller (no allocation). */
export interface ReplyInfo {
  family: 4 | 6;
  /** Offset of the TCP header (IPv4: ihl*4, IPv6: 40). */
  l4: number;
  /** TCP header length in bytes (doff*4). */
  tcpLen: number;
  /** Payload length from the IP length field (may exceed the captured bytes). */
  payloadLen: number;
  /** Payload bytes actually present in the capture. */
  capturedPayload: number;
  /** TCP flags byte. */
  flags: number;
  /** Route key of the reply's destination (client) and source (target). */
  key: string;
}

/** Creates a reusable ReplyInfo. */
export function newReplyInfo(): ReplyInfo {
  return { family: 4, l4: 0, tcpLen: 0, payloadLen: 0, capturedPayload: 0, flags: 0, key: "" };
}

/** TCP flag bits used by the delay queue. */
export const TCP_SYN = 0x02;
/** TCP RST flag. */
export const TCP_RST = 0x04;

/**
 * Fills `out` from a reply packet. Returns undefined on success or a short reason for
 * packets that are not a well-formed IPv4/IPv6 TCP segment (counted by the caller).
 */
export function inspectReply(p: Uint8Array, out: ReplyInfo): string | undefined {
  if (p.length < 1) return "empty packet";
  const version = p[0] >> 4;
  let l4: number, ipPayloadEnd: number;
  if (version === 4) {
    const ihl = (p[0] & 0x0f) * 4;
    if (ihl < 20 || p.length < ihl + 20) return "truncated IPv4/TCP header";
    if (p[9] !== 6) return "not TCP";
    l4 = ihl;
    ipPayloadEnd = (p[2] << 8) | p[3];
    if (ipPayloadEnd < ihl + 20) return "IPv4 total length too small";
    out.family = 4;
    out.key = routeKey4(p, 16, port(p, ihl + 2), p, 12, port(p, ihl));
  } else if (version === 6) {
    if (p.length < 60) return "truncated IPv6/TCP header";
    if (p[6] !== 6) return "IPv6 next header is not TCP";
    l4 = 40;
    ipPayloadEnd = 40 + ((p[4] << 8) | p[5]);
    out.family = 6;
    out.key = routeKey6(p, 24, port(p, 42), p, 8, port(p, 40));
  } else {
    return `IP version ${version}`;
  }
  const tcpLen = (p[l4 + 12] >> 4) * 4;
  if (tcpLen < 20 || ipPayloadEnd < l4 + tcpLen) return "bad TCP data offset";
  if (p.length < l4 + tcpLen) return "truncated TCP options";
  out.l4 = l4;
  out.tcpLen = tcpLen;
  out.flags = p[l4 + 13];
  out.payloadLen = ipPayloadEnd - l4 - tcpLen;
  out.capturedPayload = Math.max(0, Math.min(out.payloadLen, p.length - l4 - tcpLen));
  return undefined;
}

function port(p: Uint8Array, at: number): number {
  return (p[at] << 8) | p[at + 1];
}
