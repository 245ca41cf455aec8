/**
 * A tiny pure reader of classic pcap savefiles (what `tcpdump -w` writes): either byte
 * order, microsecond or nanosecond timestamps. Tests use it to replay recordings without
 * libpcap; pcapng is not supported (lib/io/pcap_file.ts reads it through libpcap).
 */

/** One record of a savefile; `data` is a view into the file's bytes. */
export interface SavefileRecord {
  tsMicros: number;
  data: Uint8Array;
  wireLen: number;
}

/** A parsed savefile. */
export interface Savefile {
  linkType: number;
  records: SavefileRecord[];
}

/** Parse a whole pcap file; an error text when it is not one or a record is cut short. */
export function readPcap(bytes: Uint8Array): Savefile | string {
  if (bytes.length < 24) return "shorter than a pcap file header";
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicBe = v.getUint32(0, false);
  let le: boolean, nano: boolean;
  if (magicBe === 0xa1b2c3d4 || magicBe === 0xa1b23c4d) {
    le = false;
    nano = magicBe === 0xa1b23c4d;
  } else {
    const magicLe = v.getUint32(0, true);
    if (magicLe !== 0xa1b2c3d4 && magicLe !== 0xa1b23c4d) return "not a classic pcap file";
    le = true;
    nano = magicLe === 0xa1b23c4d;
  }
  const linkType = v.getUint32(20, le) & 0x0fffffff;
  const records: SavefileRecord[] = [];
  let off = 24;
  while (off < bytes.length) {
    if (off + 16 > bytes.length) return `record header cut at offset ${off}`;
    const sec = v.getUint32(off, le);
    const frac = v.getUint32(off + 4, le);
    const caplen = v.getUint32(off + 8, le);
    const wireLen = v.getUint32(off + 12, le);
    off += 16;
    if (off + caplen > bytes.length) return `record data cut at offset ${off}`;
    records.push({
      tsMicros: sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac),
      data: bytes.subarray(off, off + caplen),
      wireLen,
    });
    off += caplen;
  }
  return { linkType, records };
}
