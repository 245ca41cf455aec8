/**
 * The offline packet source without a network: capture files written with lib/io PcapWriter
 * (Ethernet and raw IP), read by ReplayReader, filtered and rewritten by OfflineFeed and paced
 * by OfflinePump on a fake clock; bad files give one line with the byte offset.
 */
import assert from "node:assert/strict";
import { pcapng } from "../helpers/pcapng.ts";
import { PcapWriter } from "../../lib/io/pcap_file.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../../lib/wire/build.ts";
import { LinkType } from "../../lib/wire/link.ts";
import type { ParsedTcp } from "../../lib/wire/packet.ts";
import { OfflineFeed } from "../../lib/offline/feed.ts";
import {
  DUE_SLACK_MS,
  OfflinePump,
  type PumpOptions,
  YIELD_EVERY,
} from "../../lib/offline/pump.ts";
import { ReplayReader } from "../../lib/offline/reader.ts";
import { passPort, passSeq } from "../../lib/offline/schedule.ts";
import { PCAP_FILE_HEADER, PCAP_RECORD_HEADER, sniffSavefile } from "../../lib/offline/savefile.ts";
import {
  nothingReplicated,
  offlineStats,
  progressLine,
  summaryLines,
} from "../../lib/offline/report.ts";
import { emptyStats } from "../../lib/engine/stats.ts";

const SERVER = "10.0.0.1", CLIENT = "192.168.1.10", OTHER = "192.168.1.99";
const T0 = 1_700_000_000_000_000;

interface Pkt {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  flags: number;
  payload?: string;
  /** microseconds after T0 */
  at: number;
}

function ipPacket(p: Pkt): Uint8Array {
  const repr = {
    ...addressPair(p.src, p.dst),
    srcPort: p.sport,
    dstPort: p.dport,
    seq: p.seq,
    ack: 5000,
    flags: p.flags,
    window: 512,
    options: { sackPermitted: false, sackBlocks: [], unknown: [] },
    payload: new TextEncoder().encode(p.payload ?? ""),
  };
  const out = new Uint8Array(tcpPacketLength(repr));
  assert.equal(buildTcpPacket(repr, out), out.length);
  return out;
}

function ethernet(ip: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + ip.length);
  f.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
  f.set(ip, 14);
  return f;
}

/** A recorded HTTP exchange on port 80 plus noise: the server's answers, SSH, ARP. */
function recording(): Pkt[] {
  const c = { src: CLIENT, dst: SERVER, sport: 40000, dport: 80 };
  const s = { src: SERVER, dst: CLIENT, sport: 80, dport: 40000 };
  return [
    { ...c, seq: 100, flags: 0x02, at: 0 }, // SYN
    { ...s, seq: 900, flags: 0x12, at: 1_000 }, // SYN-ACK (server: ignored)
    { ...c, seq: 101, flags: 0x10, at: 2_000 }, // ACK
    { ...c, seq: 101, flags: 0x18, payload: "GET / HTTP/1.1\r\n\r\n", at: 3_000 },
    { ...s, seq: 901, flags: 0x18, payload: "HTTP/1.1 200 OK\r\n\r\n", at: 4_000 },
    {
      src: OTHER,
      dst: SERVER,
      sport: 50000,
      dport: 22,
      seq: 1,
      flags: 0x18,
      payload: "x",
      at: 5_000,
    },
    { ...c, seq: 119, flags: 0x11, at: 2_005_000 }, // FIN after a 2 s idle gap
  ];
}

async function withFile(
  pkts: Pkt[],
  fn: (path: string) => void | Promise<void>,
  linkType: number = LinkType.EN10MB,
  extra?: (w: PcapWriter) => void,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "offline_source" });
  try {
    const path = `${dir}/rec.pcap`;
    const w = PcapWriter.create(path, { linkType });
    for (const p of pkts) {
      const ip = ipPacket(p);
      w.write(linkType === LinkType.EN10MB ? ethernet(ip) : ip, T0 + p.at);
    }
    extra?.(w);
    w.close();
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const TRANSFERS = [{ online: { addr: "", port: 80 }, target: { addr: "10.9.0.2", port: 8080 } }];

interface Sent {
  srcPort: number;
  seq: number;
  flags: number;
  ts: number;
  now: number;
}

/** Runs a pump over `path` with a fake clock that jumps to each deadline it sleeps until. */
async function replay(
  path: string,
  timing: { accelerate: number; skipGapMs: number },
  passes = 1,
  extra: Partial<PumpOptions> = {},
) {
  let clock = 1_000_000;
  const sleeps: number[] = [];
  const sent: Sent[] = [];
  let flushes = 0;
  const warnings: string[] = [];
  const feed = new OfflineFeed(TRANSFERS, timing, clock);
  const pump = new OfflinePump({
    feed,
    sink: {
      inject: (p: ParsedTcp, ts, now) =>
        sent.push({ srcPort: p.srcPort, seq: p.seq, flags: p.flags, ts, now }),
      flush: () => flushes++,
    },
    open: () => ReplayReader.open(path),
    passes,
    now: () => clock,
    sleep: (ms) => {
      sleeps.push(ms);
      clock += ms;
      return Promise.resolve();
    },
    stopped: () => false,
    warn: (l) => warnings.push(l),
    ...extra,
  });
  const result = await pump.run();
  return { result, sent, sleeps, flushes, feed, warnings, pump, elapsed: clock - 1_000_000 };
}

Deno.test("offline source: only client packets to a -x port are replayed, on time", async () => {
  await withFile(recording(), async (path) => {
    const r = await replay(path, { accelerate: 1, skipGapMs: 0 });
    assert.equal(r.result.error, null);
    assert.equal(r.result.passes, 1);
    assert.deepEqual(r.sent.map((s) => s.flags), [0x02, 0x10, 0x18, 0x11]);
    assert.ok(r.sent.every((s) => s.srcPort === 40000));
    assert.deepEqual(r.feed.counters, {
      packetsRead: 7,
      packetsMatched: 4,
      notTcp: 0,
      connections: 1,
    });
    // due times follow the recorded client gaps: 0, 2, 3 ms, then 2.005 s
    assert.deepEqual(r.sent.map((s) => s.ts / 1000 - 1_000_000), [0, 2, 3, 2005]);
    // each is sent at its deadline, or up to DUE_SLACK_MS early instead of sleeping
    for (const s of r.sent) assert.ok(s.now <= s.ts / 1000 && s.now >= s.ts / 1000 - DUE_SLACK_MS);
    assert.equal(r.elapsed, 2005);
    assert.equal(r.pump.fraction, 1);
    assert.equal(r.feed.otherPorts(), "40000 (2), 22 (1)");
  });
});

Deno.test("offline source: -a divides the gaps, -I collapses the idle one once", async () => {
  await withFile(recording(), async (path) => {
    const fast = await replay(path, { accelerate: 10, skipGapMs: 0 });
    assert.equal(fast.elapsed, 200.5);
    const skip = await replay(path, { accelerate: 1, skipGapMs: 500 });
    assert.equal(skip.feed.schedule.gapsCollapsed, 1);
    assert.deepEqual(skip.sent.map((s) => s.ts / 1000 - 1_000_000), [0, 2, 3, 3]);
    assert.ok(skip.elapsed <= 3, `${skip.elapsed}`);
  });
});

Deno.test("offline source: -T passes get fresh ports and ISNs, pass 0 as recorded", async () => {
  await withFile(recording(), async (path) => {
    const r = await replay(path, { accelerate: 1000, skipGapMs: 0 }, 3);
    assert.equal(r.result.passes, 3);
    assert.equal(r.sent.length, 12);
    const syns = r.sent.filter((s) => s.flags === 0x02);
    assert.deepEqual(syns.map((s) => s.srcPort), [0, 1, 2].map((k) => passPort(40000, k)));
    assert.deepEqual(syns.map((s) => s.seq), [0, 1, 2].map((k) => passSeq(100, k)));
    assert.equal(new Set(syns.map((s) => s.srcPort)).size, 3);
    // passes follow each other: time never goes backwards
    for (let i = 1; i < r.sent.length; i++) assert.ok(r.sent[i].now >= r.sent[i - 1].now);
    assert.equal(r.feed.counters.connections, 1, "connections counted in the file, once");
    assert.equal(r.feed.counters.packetsMatched, 12);
  });
});

Deno.test("offline source: raw IP files work; a late replay yields every YIELD_EVERY packets", async () => {
  const pkts: Pkt[] = [];
  for (let i = 0; i < YIELD_EVERY * 2 + 10; i++) {
    pkts.push({
      src: CLIENT,
      dst: SERVER,
      sport: 41000,
      dport: 80,
      seq: 1 + i,
      flags: 0x18,
      payload: "a",
      at: 0,
    });
  }
  await withFile(pkts, async (path) => {
    const r = await replay(path, { accelerate: 1, skipGapMs: 0 });
    assert.equal(r.sent.length, pkts.length);
    assert.equal(r.sleeps.length, 2, "yields at 1024 and 2048 packets");
    assert.ok(r.sleeps.every((ms) => ms === 0));
  }, LinkType.RAW);
});

Deno.test("offline source: a truncated last record is counted, skipped and described", async () => {
  await withFile(recording(), async (path) => {
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 7));
    const r = await replay(path, { accelerate: 1000, skipGapMs: 0 }, 2);
    assert.equal(r.result.error, null);
    assert.equal(r.result.truncatedRecords, 2, "once per pass");
    assert.equal(r.sent.length, 6, "the FIN was in the cut record");
    assert.equal(r.warnings.length, 2);
    // offset of record 7 = file header + 6 records
    let offset = PCAP_FILE_HEADER;
    for (const p of recording().slice(0, 6)) offset += PCAP_RECORD_HEADER + 14 + ipPacket(p).length;
    assert.match(r.warnings[0], new RegExp(`record 7 at byte ${offset} is truncated`));
    assert.match(r.warnings[0], /rec\.pcap/);
  });
});

Deno.test("offline source: a corrupt record ends the replay with its offset", async () => {
  await withFile(recording(), async (path) => {
    const bytes = await Deno.readFile(path);
    const second = PCAP_FILE_HEADER + PCAP_RECORD_HEADER + 14 + ipPacket(recording()[0]).length;
    new DataView(bytes.buffer).setUint32(second + 8, 0x7fffffff, true); // caplen
    await Deno.writeFile(path, bytes);
    const r = await replay(path, { accelerate: 1000, skipGapMs: 0 }, 3);
    assert.equal(r.result.passes, 1);
    assert.equal(r.sent.length, 1);
    assert.match(
      r.result.error ?? "",
      new RegExp(`record 2 at byte ${second} is corrupt: .*2147483647`),
    );
  });
});

Deno.test("offline source: stopping ends the pass at the next sleep", async () => {
  await withFile(recording(), async (path) => {
    let stop = false;
    const r = await replay(path, { accelerate: 1, skipGapMs: 0 }, 2, {
      stopped: () => stop,
      sleep: () => {
        stop = true;
        return Promise.resolve();
      },
    });
    assert.equal(r.result.stopped, true);
    assert.equal(r.result.passes, 1);
    assert.equal(r.sent.length, 1);
  });
});

Deno.test("offline reader: missing, empty, foreign and cut files are one line each", async () => {
  const dir = await Deno.makeTempDir({ prefix: "offline_reader" });
  try {
    const cases: [string, Uint8Array | null, RegExp][] = [
      ["missing.pcap", null, /^cannot read .*missing\.pcap: no such file$/],
      ["empty.pcap", new Uint8Array(0), /empty\.pcap: the file is empty \(0 bytes\)/],
      [
        "random.pcap",
        new Uint8Array([0xde, 0xad, 0xbe, 0xef, ...new Array(60).fill(7)]),
        /random\.pcap: not a pcap or pcapng file \(unknown magic 0xdeadbeef at byte 0\)/,
      ],
      [
        "short.pcap",
        new Uint8Array([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0]),
        /short\.pcap: truncated file header at byte 10/,
      ],
    ];
    for (const [name, bytes, re] of cases) {
      if (bytes !== null) await Deno.writeFile(`${dir}/${name}`, bytes);
      const r = ReplayReader.open(`${dir}/${name}`);
      assert.equal(typeof r, "string", name);
      assert.match(r as string, re);
      assert.ok(!(r as string).includes("\n"));
    }
    const d = ReplayReader.open(dir);
    assert.match(d as string, /is a directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("offline reader: an unsupported link type is refused at open", async () => {
  await withFile([], (path) => {
    const r = ReplayReader.open(path);
    assert.match(r as string, /link type DLT_105 is not supported/);
  }, 105);
});

Deno.test("savefile sniffing knows pcap, pcapng and their byte orders", () => {
  const le = new Uint8Array(24);
  new DataView(le.buffer).setUint32(0, 0xa1b2c3d4, true);
  assert.equal(sniffSavefile(le, 24), "pcap");
  const be = new Uint8Array(24);
  new DataView(be.buffer).setUint32(0, 0xa1b23c4d, false);
  assert.equal(sniffSavefile(be, 100), "pcap");
  const ng = new Uint8Array(24);
  new DataView(ng.buffer).setUint32(0, 0x0a0d0d0a, true);
  assert.equal(sniffSavefile(ng, 100), "pcapng");
  assert.match(sniffSavefile(ng, 20) as string, /truncated section header at byte 20/);
});

Deno.test("offline report: stats object, progress, summary and the nothing-replicated line", () => {
  const state = {
    file: "/x.pcap",
    feed: { packetsRead: 10, packetsMatched: 0, notTcp: 2, connections: 0 },
    pass: 1,
    passes: 3,
    gapsCollapsed: 4,
    truncatedRecords: 1,
  };
  assert.deepEqual(offlineStats(state), {
    file: "/x.pcap",
    packets_read: 10,
    packets_matched: 0,
    pass: 2,
    passes: 3,
    gaps_collapsed: 4,
    truncated_records: 1,
  });
  const line = progressLine(state, 0.25, 10_000);
  assert.match(line, /25\.0% of the file \(pass 2\/3\), elapsed 10\.0 s, ETA 30\.0 s/);
  const e = emptyStats();
  assert.match(
    nothingReplicated(state, e, "80-10.0.0.2:80", "8080 (7)")!,
    /no packet in \/x\.pcap matched -x 80-10\.0\.0\.2:80 \(10 packets read: TCP to port\(s\) 8080 \(7\)\)/,
  );
  const matched = { ...state, feed: { ...state.feed, packetsMatched: 5 } };
  assert.match(nothingReplicated(matched, e, "", "")!, /carry no client data/);
  e.sessions.created = 2;
  e.handshakes.failed = 2;
  assert.match(nothingReplicated(matched, e, "", "")!, /none reached the target/);
  e.handshakes.established = 1;
  e.requests.captured = 5;
  e.requests.sent = 4;
  e.requests.answered = 3;
  e.lost.timeout = 1;
  assert.equal(nothingReplicated(matched, e, "", ""), null);
  const summary = summaryLines(matched, e).join("\n");
  assert.match(summary, /2\/3 pass\(es\), 10 packets read, 5 replayed, 4 gap\(s\) collapsed/);
  assert.match(summary, /1 truncated record\(s\) skipped/);
  assert.match(summary, /5 from the file .* 4 sent, 3 answered; lost: timeout 1; unfinished/);
  assert.match(summary, /unfinished at the end: 1/);
});

Deno.test("offline source: pcapng files replay like pcap; cut ones are counted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "offline_ng" });
  try {
    const bytes = pcapng(recording().map((p) => ({ ts: T0 + p.at, data: ethernet(ipPacket(p)) })));
    const path = `${dir}/rec.pcapng`;
    await Deno.writeFile(path, bytes);
    const r = await replay(path, { accelerate: 1, skipGapMs: 0 });
    assert.equal(r.result.error, null);
    assert.deepEqual(r.sent.map((s) => s.flags), [0x02, 0x10, 0x18, 0x11]);
    assert.deepEqual(r.sent.map((s) => s.ts / 1000 - 1_000_000), [0, 2, 3, 2005]);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 10));
    const cut = await replay(path, { accelerate: 1000, skipGapMs: 0 });
    assert.equal(cut.result.truncatedRecords, 1);
    assert.equal(cut.sent.length, 3);
    assert.match(cut.warnings[0], /record 7 after byte ~\d+ \(pcapng offsets are estimates\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
