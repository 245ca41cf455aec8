/**
 * The tunnel's defaults that command lines need (tcpcopy's `-s host[:port]`, intercept's
 * `-p`, `--max-conns-per-ip`, `--max-peer-routes`, `--idle-timeout`), in a module with no
 * imports: a command-line parser reads them without loading the tunnel server, the reactor and
 * the FFI graph behind it. server.ts and client.ts use the same values.
 */

/** The C original's tunnel port (SERVER_PORT): intercept listens on it, tcpcopy dials it. */
export const DEFAULT_TUNNEL_PORT = 36524;

/** Tunnel connections at once from one source address (`--max-conns-per-ip`). */
export const DEFAULT_MAX_PER_IP = 32;

/** Routes one owner (tcpcopy instance or C connection) may hold (`--max-peer-routes`). */
export const DEFAULT_MAX_PEER_ROUTES = 250_000;

/** Hello/authentication deadline and heartbeat silence limit, ms (`--idle-timeout`). */
export const DEFAULT_IDLE_TIMEOUT_MS = 15_000;

/**
 * Largest reply payload prefix intercept may grant (`--max-prefix`): a whole segment of a
 * 1500-byte MTU path (protocol modules see every reply byte of such a path).
 */
export const MAX_REPLY_PREFIX = 1460;
