/**
 * Hand-made pcapng files for tests: libpcap reads them, and tcpdump here only writes classic
 * pcap.
 *
 * @module
 */

/**
 * A minimal pcapng: section header, one interface of `linkType` (default Ethernet), and one
 * enhanced packet block per packet (`ts` in microseconds).
 */
export function pcapng(packets: { ts: number; data: Uint8Array }[], linkType = 1): Uint8Array {
  const blocks: Uint8Array[] = [];
  const block = (type: number, body: Uint8Array) => {
    const b = new Uint8Array(12 + body.length), dv = new DataView(b.buffer);
    dv.setUint32(0, type, true);
    dv.setUint32(4, b.length, true);
    b.set(body, 8);
    dv.setUint32(b.length - 4, b.length, true);
    blocks.push(b);
  };
  const shb = new DataView(new ArrayBuffer(16));
  shb.setUint32(0, 0x1a2b3c4d, true);
  shb.setUint16(4, 1, true);
  shb.setBigInt64(8, -1n, true);
  block(0x0a0d0d0a, new Uint8Array(shb.buffer));
  const idb = new DataView(new ArrayBuffer(8));
  idb.setUint16(0, linkType, true);
  idb.setUint32(4, 65535, true);
  block(1, new Uint8Array(idb.buffer));
  for (const { ts, data } of packets) {
    const body = new Uint8Array(20 + ((data.length + 3) & ~3)), dv = new DataView(body.buffer);
    dv.setUint32(4, Math.floor(ts / 2 ** 32), true);
    dv.setUint32(8, ts % 2 ** 32, true);
    dv.setUint32(12, data.length, true);
    dv.setUint32(16, data.length, true);
    body.set(data, 20);
    block(6, body);
  }
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  blocks.reduce((o, b) => (out.set(b, o), o + b.length), 0);
  return out;
}
