/**
 * The `--compare` capture filter run by libpcap's own compiler (tcpdump reading a capture file
 * written here): the online server's IPv4 packets without payload and without SYN, FIN or RST
 * are left out, everything the comparison reads (SYN-ACK, answer bytes, FIN, RST), the client's
 * packets, IPv6 and a module transfer's packets stay.
 */
import assert from "node:assert/strict";
import { buildCaptureFilter } from "../../lib/cli/filter.ts";
import { PcapWriter } from "../../lib/io/pcap_file.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../../lib/wire/build.ts";
import { run } from "../helpers/netns.ts";

interface Pkt {
  name: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  flags: number;
  payload?: string;
}

function frame(p: Pkt): Uint8Array {
  const repr = {
    ...addressPair(p.src, p.dst),
    srcPort: p.sport,
    dstPort: p.dport,
    seq: 1000,
    ack: 5000,
    flags: p.flags,
    window: 512,
    options: { sackPermitted: false, sackBlocks: [], unknown: [] },
    payload: new TextEncoder().encode(p.payload ?? ""),
  };
  const ip = new Uint8Array(tcpPacketLength(repr));
  buildTcpPacket(repr, ip);
  const f = new Uint8Array(14 + ip.length);
  f.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
  f.set(p.src.includes(":") ? [0x86, 0xdd] : [0x08, 0x00], 12);
  f.set(ip, 14);
  return f;
}

/** The names of the packets `filter` keeps (tcpdump over a file of all of them). */
async function kept(filter: string, pkts: Pkt[]): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "filter_acks" });
  try {
    const path = `${dir}/f.pcap`;
    const w = PcapWriter.create(path);
    // (each packet's index is its timestamp's second: tcpdump prints it back)
    pkts.forEach((p, i) => w.write(frame(p), (i + 1) * 1e6));
    w.close();
    const out = await run(["tcpdump", "-nn", "-tt", "-r", path, filter]);
    return out.stdout.trim().split("\n").filter((l) => l !== "").map((l) =>
      pkts[Number(l.split(".")[0]) - 1].name
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const C = "192.168.1.10", S = "10.0.0.1", C6 = "fd00::10", S6 = "fd00::1";
const srv = { src: S, dst: C, sport: 80, dport: 40000 };
const cli = { src: C, dst: S, sport: 40000, dport: 80 };
const PKTS: Pkt[] = [
  { name: "client SYN", ...cli, flags: 0x02 },
  { name: "SYN-ACK", ...srv, flags: 0x12 },
  { name: "client ACK", ...cli, flags: 0x10 },
  { name: "request", ...cli, flags: 0x18, payload: "GET / HTTP/1.1\r\n\r\n" },
  { name: "server ACK", ...srv, flags: 0x10 },
  { name: "server PSH without bytes", ...srv, flags: 0x18 },
  { name: "answer", ...srv, flags: 0x18, payload: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" },
  { name: "one answer byte", ...srv, flags: 0x10, payload: "x" },
  { name: "server FIN", ...srv, flags: 0x11 },
  { name: "server RST", ...srv, flags: 0x14 },
  { name: "client FIN", ...cli, flags: 0x11 },
  { name: "IPv6 server ACK", src: S6, dst: C6, sport: 80, dport: 40000, flags: 0x10 },
  { name: "IPv6 answer", src: S6, dst: C6, sport: 80, dport: 40000, flags: 0x18, payload: "y" },
  { name: "postgres ACK", src: S, dst: C, sport: 5432, dport: 40001, flags: 0x10 },
];

Deno.test("capture filter --compare: the online server's bare ACKs are left out in the kernel, nothing else", async () => {
  const transfers = [
    { onlineIp: null, onlinePort: 80, targetIp: "10.0.0.2", targetPort: 8080, module: null },
    { onlineIp: S, onlinePort: 5432, targetIp: "10.0.0.2", targetPort: 5432, module: "postgres" },
  ];
  const all = PKTS.map((p) => p.name);
  const drop = (...names: string[]) => all.filter((n) => !names.includes(n));
  assert.deepEqual(
    await kept(buildCaptureFilter(transfers as never, true, true), PKTS),
    drop("server ACK", "server PSH without bytes"),
  );
  // without the module's answers (--module-trust-logins) its bare ACKs go too
  assert.deepEqual(
    await kept(buildCaptureFilter(transfers as never, true, false), PKTS),
    drop("server ACK", "server PSH without bytes", "postgres ACK"),
  );
  // without --compare: the module transfer's packets only, all of them
  assert.deepEqual(
    await kept(buildCaptureFilter(transfers as never, false, true), PKTS),
    ["client SYN", "client ACK", "request", "client FIN", "postgres ACK"],
  );
});
