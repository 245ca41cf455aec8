/**
 * Parsing pcap savefile records in memory (pure, no I/O). Each record is a 16-byte header
 * `{u32 ts_sec, u32 ts_usec, u32 caplen, u32 len}` in host byte order (little-endian here),
 * followed by `caplen` bytes of the frame.
 *
 * @module
 */

/**
 * Receives one captured frame. `frame` is a view into a reused buffer: it is only valid during
 * the call, copy what you keep. `tsMicros` is the capture time in microseconds since the epoch,
 * `wireLen` the original length on the wire (>= frame.length when the snaplen cut it).
 */
export type PacketHandler = (frame: Uint8Array, tsMicros: number, wireLen: number) => void;

/** Size of a savefile record header. */
export const RECORD_HEADER = 16;

/**
 * Calls `onPacket` for each complete record in `u8[start, end)`; returns the number of records.
 * A truncated record at the end (or a caplen running past `end`) stops the walk.
 */
export function forEachRecord(
  u8: Uint8Array,
  dv: DataView,
  start: number,
  end: number,
  onPacket: PacketHandler,
): number {
  let n = 0;
  for (let o = start; o + RECORD_HEADER <= end;) {
    const caplen = dv.getUint32(o + 8, true);
    const next = o + RECORD_HEADER + caplen;
    if (next > end) break;
    const ts = dv.getUint32(o, true) * 1e6 + dv.getUint32(o + 4, true);
    onPacket(u8.subarray(o + RECORD_HEADER, next), ts, dv.getUint32(o + 12, true));
    n++;
    o = next;
  }
  return n;
}
