/**
 * Error values of the wire layer.
 *
 * Parsers never throw on malformed input: they return one of these reason codes,
 * which doubles as a counter label (`drops[reason]++`). Success is `null`.
 *
 * @module
 */

/** Why a buffer was not accepted as an IP/TCP packet. */
export type WireError =
  /** The buffer ends before a header that must be present. */
  | "truncated"
  /** The link-layer frame does not carry IPv4 or IPv6 (ARP, LLDP, ...). */
  | "not_ip"
  /** The link type is not one this library decodes. */
  | "unsupported_link"
  /** The IP version nibble is neither 4 nor 6 (or disagrees with the link layer). */
  | "bad_ip_version"
  /** IPv4 header length below 20 bytes or beyond the buffer. */
  | "bad_ihl"
  /** An IP length field is inconsistent (total length below the header size, zero, ...). */
  | "bad_length"
  /** An IPv6 extension header is malformed or the chain is too long. */
  | "bad_ext_header"
  /** The IP packet does not carry TCP. */
  | "not_tcp"
  /** A non-first IP fragment: it carries no TCP header. */
  | "fragment"
  /** TCP data offset below 5 words or beyond the IP payload. */
  | "bad_tcp_offset"
  /** A TCP option has a malformed length or overruns the header. */
  | "bad_option"
  /** Text that is not an IPv4 or IPv6 address. */
  | "bad_address";

/** Every {@link WireError} code, e.g. to pre-create counters. */
export const WIRE_ERRORS: readonly WireError[] = [
  "truncated",
  "not_ip",
  "unsupported_link",
  "bad_ip_version",
  "bad_ihl",
  "bad_length",
  "bad_ext_header",
  "not_tcp",
  "fragment",
  "bad_tcp_offset",
  "bad_option",
  "bad_address",
];
