/**
 * Link layers seen by libpcap, and where the IP header starts in their frames.
 *
 * Link type numbers are libpcap's `DLT_*` values (the ones `pcap_datalink()`
 * returns, which for these types equal the pcap file `LINKTYPE_*` values, except
 * raw IP, which appears as 12, 14 or 101 depending on platform and source).
 *
 * @module
 */

import type { WireError } from "./error.ts";

/** libpcap link types decoded by {@link ipOffsetOf}. */
export const LinkType = {
  /** BSD loopback: 4-byte address family in host byte order. */
  NULL: 0,
  /** Ethernet II (with 802.1Q / 802.1ad tags). */
  EN10MB: 1,
  /** Raw IP (DLT_RAW on most platforms). */
  RAW: 12,
  /** Raw IP (DLT_RAW as defined on OpenBSD). */
  RAW_OPENBSD: 14,
  /** Raw IP (LINKTYPE_RAW in capture files). */
  RAW_LINKTYPE: 101,
  /** OpenBSD loopback: 4-byte address family in network byte order. */
  LOOP: 108,
  /** Linux cooked capture v1 (16-byte header). */
  LINUX_SLL: 113,
  /** Raw IPv4. */
  IPV4: 228,
  /** Raw IPv6. */
  IPV6: 229,
  /** Linux cooked capture v2 (20-byte header; the "any" device). */
  LINUX_SLL2: 276,
} as const;

/** EtherType of IPv4. */
export const ETHERTYPE_IPV4 = 0x0800;
/** EtherType of IPv6. */
export const ETHERTYPE_IPV6 = 0x86dd;
/** EtherType of an 802.1Q VLAN tag. */
export const ETHERTYPE_VLAN = 0x8100;
/** EtherType of an 802.1ad service tag (QinQ). */
export const ETHERTYPE_QINQ = 0x88a8;
/** Legacy QinQ EtherType still seen in the field. */
export const ETHERTYPE_QINQ_OLD = 0x9100;

/** Ethernet header length without tags. */
export const ETHERNET_HEADER_LEN = 14;
/** Linux cooked v1 header length. */
export const SLL_HEADER_LEN = 16;
/** Linux cooked v2 header length. */
export const SLL2_HEADER_LEN = 20;
/** At most this many VLAN tags are skipped. */
export const MAX_VLAN_TAGS = 2;

/** Address-family values meaning IPv4/IPv6 in BSD loopback headers, any platform. */
const BSD_AF_INET = 2;
const BSD_AF_INET6 = new Set([10, 24, 28, 30]);

/**
 * Skip up to {@link MAX_VLAN_TAGS} VLAN tags starting with the EtherType at
 * `frame[typeAt]`; return the IP header offset or an error.
 */
function afterEtherType(frame: Uint8Array, typeAt: number): number | WireError {
  for (let tags = 0;; tags++) {
    if (typeAt + 2 > frame.length) return "truncated";
    const type = (frame[typeAt] << 8) | frame[typeAt + 1];
    if (type === ETHERTYPE_IPV4 || type === ETHERTYPE_IPV6) return typeAt + 2;
    if (type !== ETHERTYPE_VLAN && type !== ETHERTYPE_QINQ && type !== ETHERTYPE_QINQ_OLD) {
      return "not_ip";
    }
    if (tags === MAX_VLAN_TAGS) return "not_ip";
    typeAt += 4; // TCI (2 bytes), then the inner EtherType.
  }
}

/** Is the 32-bit BSD address family an IP family, in either byte order? */
function isBsdIpFamily(frame: Uint8Array): boolean {
  const be = ((frame[0] << 24) | (frame[1] << 16) | (frame[2] << 8) | frame[3]) >>> 0;
  const le = ((frame[3] << 24) | (frame[2] << 16) | (frame[1] << 8) | frame[0]) >>> 0;
  return be === BSD_AF_INET || le === BSD_AF_INET || BSD_AF_INET6.has(be) ||
    BSD_AF_INET6.has(le);
}

/**
 * Offset of the IP header inside a captured `frame` of link type `linkType`,
 * or an error value: `"not_ip"` for other payloads (ARP, ...), `"truncated"`
 * when the link header is cut, `"unsupported_link"` for unknown link types.
 * The IP version itself is checked by the IP parser.
 */
export function ipOffsetOf(linkType: number, frame: Uint8Array): number | WireError {
  switch (linkType) {
    case LinkType.EN10MB:
      return afterEtherType(frame, 12);
    case LinkType.LINUX_SLL:
      return afterEtherType(frame, 14);
    case LinkType.LINUX_SLL2: {
      // The protocol comes first; VLAN tags are not re-inserted in this format.
      if (frame.length < SLL2_HEADER_LEN) return "truncated";
      const type = (frame[0] << 8) | frame[1];
      return type === ETHERTYPE_IPV4 || type === ETHERTYPE_IPV6 ? SLL2_HEADER_LEN : "not_ip";
    }
    case LinkType.RAW:
    case LinkType.RAW_OPENBSD:
    case LinkType.RAW_LINKTYPE:
    case LinkType.IPV4:
    case LinkType.IPV6:
      return 0;
    case LinkType.NULL:
    case LinkType.LOOP:
      if (frame.length < 4) return "truncated";
      return isBsdIpFamily(frame) ? 4 : "not_ip";
    default:
      return "unsupported_link";
  }
}

/** Human name of a link type, for logs. */
export function linkTypeName(linkType: number): string {
  for (const [name, value] of Object.entries(LinkType)) if (value === linkType) return name;
  return `DLT_${linkType}`;
}
