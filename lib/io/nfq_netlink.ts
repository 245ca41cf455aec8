/**
 * Parsing NFQUEUE netlink datagrams in JS (pure, no I/O).
 *
 * A datagram holds one or more netlink messages: `nlmsghdr` (16 B: u32 len, u16 type, u16
 * flags, u32 seq, u32 pid, host order), then for NFQUEUE packets (type `NFNL_SUBSYS_QUEUE << 8 |
 * NFQNL_MSG_PACKET` = 0x0300) an `nfgenmsg` (4 B), then `{u16 len, u16 type}` attributes padded
 * to 4 bytes. Attribute payloads are network byte order: `NFQA_PACKET_HDR.packet_id` is
 * BIG-endian.
 *
 * @module
 */

/** Netlink / NFQUEUE constants. */
export const Nfq = {
  NLMSG_HDRLEN: 16,
  NFGENMSG_LEN: 4,
  NLMSG_ERROR: 2,
  MSG_PACKET: 0x0300,
  ATTR_PACKET_HDR: 1,
  ATTR_PAYLOAD: 10,
  ATTR_CAP_LEN: 13,
  ATTR_TYPE_MASK: 0x3fff,
} as const;

/**
 * Receives one queued packet found in a datagram: its id, where its payload (IP header first)
 * lies in the buffer, and its original length (`capLen` when the copy range cut it, else the
 * payload length).
 */
export type NfqMessageHandler = (
  id: number,
  payloadOff: number,
  payloadLen: number,
  origLen: number,
) => void;

/** Result counters of {@link parseNfqDatagram}. */
export interface NfqParseCounts {
  /** packet messages delivered */
  packets: number;
  /** messages skipped: not a packet, or malformed (too short, no packet header) */
  skipped: number;
}

/**
 * Walks the netlink messages in `dv[off, off + len)` and calls `onPacket` for each NFQUEUE
 * packet message. Never throws on malformed input: bad messages are counted in `skipped` and
 * the walk stops where lengths stop making sense.
 */
export function parseNfqDatagram(
  dv: DataView,
  off: number,
  len: number,
  onPacket: NfqMessageHandler,
  counts: NfqParseCounts,
): void {
  const end = Math.min(off + len, dv.byteLength);
  let at = off;
  while (at + Nfq.NLMSG_HDRLEN <= end) {
    const msgLen = dv.getUint32(at, true);
    if (msgLen < Nfq.NLMSG_HDRLEN) { // corrupt: cannot advance safely
      counts.skipped++;
      return;
    }
    const msgEnd = Math.min(at + msgLen, end);
    if (dv.getUint16(at + 4, true) !== Nfq.MSG_PACKET) {
      counts.skipped++;
    } else {
      parsePacketMessage(dv, at, msgEnd, onPacket, counts);
    }
    if (msgLen >= end - at) return; // last message (or one claiming more than arrived)
    at += msgLen + ((4 - (msgLen & 3)) & 3); // NLMSG_ALIGN, without 32-bit overflow
  }
}

function parsePacketMessage(
  dv: DataView,
  at: number,
  msgEnd: number,
  onPacket: NfqMessageHandler,
  counts: NfqParseCounts,
): void {
  let id = -1, payloadOff = 0, payloadLen = 0, capLen = -1;
  let a = at + Nfq.NLMSG_HDRLEN + Nfq.NFGENMSG_LEN;
  while (a + 4 <= msgEnd) {
    const attrLen = dv.getUint16(a, true);
    if (attrLen < 4) break;
    const type = dv.getUint16(a + 2, true) & Nfq.ATTR_TYPE_MASK;
    const valueEnd = Math.min(a + attrLen, msgEnd); // a truncated datagram cuts the payload
    if (type === Nfq.ATTR_PACKET_HDR && a + 8 <= valueEnd) {
      id = dv.getUint32(a + 4, false);
    } else if (type === Nfq.ATTR_PAYLOAD) {
      payloadOff = a + 4;
      payloadLen = valueEnd - payloadOff;
    } else if (type === Nfq.ATTR_CAP_LEN && a + 8 <= valueEnd) {
      capLen = dv.getUint32(a + 4, false);
    }
    a += (attrLen + 3) & ~3;
  }
  if (id < 0) {
    counts.skipped++;
    return;
  }
  counts.packets++;
  onPacket(id, payloadOff, payloadLen, capLen >= 0 ? capLen : payloadLen);
}
