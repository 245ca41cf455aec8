/**
 * Hand-built reply packets for the tunnel's tests and benchmarks (byte layout straight from
 * RFC 791 / RFC 8200 / RFC 9293; checksums are left zero, the tunnel never reads them).
 */

/** Fields of a fixture TCP segment. */
export interface SegmentSpec {
  src: number[];
  dst: number[];
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  /** TCP options (padded to 4 bytes). */
  options?: number[];
  /** IPv4 options (padded to 4 bytes). */
  ipOptions?: number[];
  payload?: Uint8Array;
  /** Bytes of payload actually present (default all): models a short capture. */
  captured?: number;
}

function pad4(a: number[]): number[] {
  const out = [...a];
  while (out.length % 4) out.push(0);
  return out;
}

/** An IPv4 or IPv6 (by address length) TCP segment starting at the IP header. */
export function segment(s: SegmentSpec): Uint8Array {
  const v6 = s.src.length === 16;
  const opts = pad4(s.options ?? []);
  const ipOpts = v6 ? [] : pad4(s.ipOptions ?? []);
  const payload = s.payload ?? new Uint8Array(0);
  const ipLen = v6 ? 40 : 20 + ipOpts.length;
  const tcpLen = 20 + opts.length;
  const total = ipLen + tcpLen + payload.length;
  const captured = ipLen + tcpLen + Math.min(s.captured ?? payload.length, payload.length);
  const b = new Uint8Array(total);
  const dv = new DataView(b.buffer);
  if (v6) {
    b[0] = 0x60;
    dv.setUint16(4, tcpLen + payload.length);
    b[6] = 6;
    b[7] = 64;
    b.set(s.src, 8);
    b.set(s.dst, 24);
  } else {
    b[0] = 0x40 | (ipLen / 4);
    dv.setUint16(2, total);
    dv.setUint16(4, 0x1234);
    dv.setUint16(6, 0x4000);
    b[8] = 64;
    b[9] = 6;
    b.set(s.src, 12);
    b.set(s.dst, 16);
    b.set(ipOpts, 20);
  }
  const t = ipLen;
  dv.setUint16(t, s.sport);
  dv.setUint16(t + 2, s.dport);
  dv.setUint32(t + 4, s.seq ?? 1000);
  dv.setUint32(t + 8, s.ack ?? 2000);
  b[t + 12] = (tcpLen / 4) << 4;
  b[t + 13] = s.flags ?? 0x10;
  dv.setUint16(t + 14, s.window ?? 65535);
  b.set(opts, t + 20);
  b.set(payload, t + tcpLen);
  return b.subarray(0, captured);
}

/** TCP flag values for fixtures. */
export const F = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16 } as const;
