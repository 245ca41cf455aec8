/**
 * Route keys: the exact 4-tuple (client address, client port, target address, target port)
 * as an opaque string, built the same way from CLIENT_ADD messages and from reply headers.
 * Unlike the C original's 16-bit hash remainder, two different tuples never share a key.
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

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function hex16(b: Uint8Array, off: number): string {
  let s = "";
  for (let i = 0; i < 16; i++) s += HEX[b[off + i]];
  return s;
}

/** Key of an IPv6 tuple; addresses are 16 bytes at the given offsets. */
export function routeKey6(
  c: Uint8Array,
  cOff: number,
  cPort: number,
  t: Uint8Array,
  tOff: number,
  tPort: number,
): string {
  return `6${hex16(c, cOff)}.${cPort}>${hex16(t, tOff)}.${tPort}`;
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
