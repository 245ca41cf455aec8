/**
 * Route keys: the exact 4-tuple (client address, client port, target address, target port)
 * as an opaque string, built the same way from CLIENT_ADD messages and from reply headers.
 * Unlike the C original's 16-bit hash remainder, two different tuples never share a key, and
 * a key gives its endpoints back ({@link routeOfKey}: tcpcopy's tunnel client keeps nothing
 * else per route). Keys are 16-bit code units (address halves and ports): 6 for IPv4, 18 for
 * IPv6, so the length tells the family.
 */

/**
 * Key of an IPv4 tuple; addresses are 4 bytes at the given offsets of the given buffers.
 * Six UTF-16 code units (address halves and ports): cheap to build and to hash.
 */
export function routeKey4(
  c: Uint8Array,
  cOff: number,
  cPort: number,
  t: Uint8Array,
  tOff: number,
  tPort: number,
): string {
  return String.fromCharCode(
    (c[cOff] << 8) | c[cOff + 1],
    (c[cOff + 2] << 8) | c[cOff + 3],
    cPort,
    (t[tOff] << 8) | t[tOff + 1],
    (t[tOff + 2] << 8) | t[tOff + 3],
    tPort,
  );
}

/**
 * Key of an IPv6 tuple; addresses are 16 bytes at the given offsets. Eighteen UTF-16 code units
 * (eight address halves and the port, twice), one flat string: no hex text, no concatenation.
 */
export function routeKey6(
  c: Uint8Array,
  cOff: number,
  cPort: number,
  t: Uint8Array,
  tOff: number,
  tPort: number,
): string {
  const h = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];
  return String.fromCharCode(
    h(c, cOff),
    h(c, cOff + 2),
    h(c, cOff + 4),
    h(c, cOff + 6),
    h(c, cOff + 8),
    h(c, cOff + 10),
    h(c, cOff + 12),
    h(c, cOff + 14),
    cPort,
    h(t, tOff),
    h(t, tOff + 2),
    h(t, tOff + 4),
    h(t, tOff + 6),
    h(t, tOff + 8),
    h(t, tOff + 10),
    h(t, tOff + 12),
    h(t, tOff + 14),
    tPort,
  );
}

/** Key from route endpoints (raw address bytes, 4 or 16 each). */
export function routeKeyOf(
  client: { addr: Uint8Array; port: number },
  target: { addr: Uint8Array; port: number },
): string {
  return client.addr.length === 16
    ? routeKey6(client.addr, 0, client.port, target.addr, 0, target.port)
    : routeKey4(client.addr, 0, client.port, target.addr, 0, target.port);
}

/** Length of an IPv4 key ({@link routeKey4}) and of an IPv6 key ({@link routeKey6}). */
export const ROUTE_KEY4_LENGTH = 6;
export const ROUTE_KEY6_LENGTH = 18;

/**
 * The endpoints a key was built from ({@link routeKeyOf} backwards): fresh address bytes (4 or
 * 16 each). Throws a RangeError for a string that is not a route key (wrong length).
 */
export function routeOfKey(key: string): {
  client: { addr: Uint8Array; port: number };
  target: { addr: Uint8Array; port: number };
} {
  const halves = key.length === ROUTE_KEY4_LENGTH ? 2 : key.length === ROUTE_KEY6_LENGTH ? 8 : -1;
  if (halves < 0) throw new RangeError(`not a route key (${key.length} code units)`);
  const endpoint = (at: number) => {
    const addr = new Uint8Array(halves * 2);
    for (let i = 0; i < halves; i++) {
      const u = key.charCodeAt(at + i);
      addr[2 * i] = u >> 8;
      addr[2 * i + 1] = u & 255;
    }
    return { addr, port: key.charCodeAt(at + halves) };
  };
  return { client: endpoint(0), target: endpoint(halves + 1) };
}
