/**
 * Extension negotiation, designed so a C peer never sees anything but the v6 protocol.
 *
 *   our tcpcopy -> intercept: HELLO(6), then EXT_HELLO(version, caps, prefix).
 *   - a C intercept logs EXT_HELLO as an unknown type and carries on: the client never gets
 *     an EXT_ACK and keeps speaking plain v6 (IPv4 CLIENT_ADD only).
 *   - our intercept answers with an EXT_ACK frame holding the granted subset; from then on
 *     it sends extension frames on that connection, and the client may send extension
 *     messages (CLIENT_DEL, ADD6/DEL6, HEARTBEAT) for the granted capabilities.
 *   An authenticated peer granted Cap.ANSWERS sends one COMPARE message (its first-bytes N
 *   and digest mode) right after the EXT_ACK; intercept then sends ANSWER frames for its
 *   routes (answer_frame.ts).
 *   old C tcpcopy -> our intercept: it never sends EXT_HELLO, so the connection stays v6:
 *   64-byte IPv4 records in combined frames, no heartbeats; IPv6 replies cannot be routed
 *   to it.
 */

/** The extension protocol version this code speaks. */
export const EXT_VERSION = 1;

/** Capability bits (EXT_HELLO caps / EXT_ACK granted caps). */
export const Cap = {
  /** IPv6 routes and IPv6 reply records. */
  IPV6: 1,
  /** CLIENT_DEL is honoured (explicit route deletion). */
  ROUTE_DEL: 2,
  /** HEARTBEAT messages both ways. */
  HEARTBEAT: 4,
  /** Reply records carry up to `prefix` payload bytes (granted to authenticated peers only). */
  PAYLOAD_PREFIX: 8,
  /** Challenge-response over the shared secret (auth.ts) before the EXT_ACK. */
  AUTH: 16,
  /**
   * Answer summaries (issue 15): after a COMPARE message, intercept sends one ANSWER frame
   * per target answer of the peer's routes. Granted to authenticated peers of an intercept
   * started with `--compare` only.
   */
  ANSWERS: 32,
} as const;

/** Every capability this code implements. */
export const ALL_CAPS = Cap.IPV6 | Cap.ROUTE_DEL | Cap.HEARTBEAT | Cap.PAYLOAD_PREFIX |
  Cap.AUTH | Cap.ANSWERS;

/** Heartbeat period when negotiated; a peer silent for 3 periods is considered dead. */
export const HEARTBEAT_INTERVAL_MS = 5000;

/**
 * What the server grants: a version it speaks, the shared caps and the prefix limit.
 * `authenticated` says whether the peer passed the challenge: only then are Cap.AUTH, a
 * payload prefix and answer summaries granted (a stranger never gets payload bytes);
 * answers also need `answers` (intercept's `--compare`).
 */
export function grant(
  requested: { extVersion: number; caps: number; prefix: number },
  maxPrefix: number,
  authenticated = false,
  answers = false,
): { extVersion: number; caps: number; prefix: number } {
  const extVersion = Math.min(requested.extVersion, EXT_VERSION);
  let caps = requested.caps & ALL_CAPS;
  if (!authenticated) {
    caps &= ~Cap.AUTH;
    maxPrefix = 0;
  }
  if (!authenticated || !answers) caps &= ~Cap.ANSWERS;
  const prefix = caps & Cap.PAYLOAD_PREFIX ? Math.min(requested.prefix, maxPrefix) : 0;
  if (prefix === 0) caps &= ~Cap.PAYLOAD_PREFIX;
  return { extVersion, caps, prefix };
}
