/**
 * Recordings of real traffic as engine input: split a savefile into connections to one
 * server port, keep the client->server segments (what tcpcopy captures) and reassemble each
 * direction's byte stream independently of the engine, so a replay can be checked
 * byte for byte. HTTP helpers find request boundaries and the online server's response
 * lengths (the simulated target answers with the same lengths).
 */

import type { CapturedSegment, Endpoint, EngineConfig } from "../../lib/engine/mod.ts";
import { addrText, ownEndpoint, SYN } from "../../lib/engine/mod.ts";
import { capturedSegmentOf } from "../../lib/tcpcopy/convert.ts";
import assert from "node:assert/strict";
import { ParsedTcp, parseTcpPacket } from "../../lib/wire/packet.ts";
import { Scenario } from "./harness.ts";
import type { Savefile } from "./pcap.ts";

/** One recorded connection. */
export interface RecordedConn {
  /** "addr|port" of the client (the simulated target's connection key). */
  key: string;
  client: Endpoint;
  server: Endpoint;
  /** Client->server segments in capture order. */
  segments: CapturedSegment[];
  /** Server->client segments in capture order (for the online responses). */
  replies: CapturedSegment[];
  /** The client's SYN is in the recording. */
  synSeen: boolean;
  /** Largest client payload in one captured segment (TSO/GRO shows up here). */
  maxPayload: number;
}

/** A recording split by connection. */
export interface Recording {
  /** Connections in order of first appearance. */
  conns: RecordedConn[];
  /** Frames that are not TCP to or from the server port, or do not parse. */
  skipped: number;
}

/** Split `file` into the connections to `serverPort`. */
export function splitRecording(file: Savefile, serverPort: number): Recording {
  const byKey = new Map<string, RecordedConn>();
  const conns: RecordedConn[] = [];
  const p = new ParsedTcp();
  let skipped = 0;
  for (const r of file.records) {
    if (parseTcpPacket(r.data, file.linkType, p) !== null || p.payloadTruncated) {
      skipped++;
      continue;
    }
    const toServer = p.dstPort === serverPort;
    if (!toServer && p.srcPort !== serverPort) {
      skipped++;
      continue;
    }
    const seg = capturedSegmentOf(p, r.tsMicros / 1000);
    if (seg === null) {
      skipped++;
      continue;
    }
    seg.payload = seg.payload.slice(); // the parser's view is into the shared file bytes
    seg.src = ownEndpoint(seg.src); // and its address buffers are reused for the next packet
    seg.dst = ownEndpoint(seg.dst);
    const client = toServer ? seg.src : seg.dst;
    const key = `${addrText(client)}|${client.port}`;
    let c = byKey.get(key);
    if (!c) {
      c = {
        key,
        client: { ...client },
        server: toServer ? { ...seg.dst } : { ...seg.src },
        segments: [],
        replies: [],
        synSeen: false,
        maxPayload: 0,
      };
      byKey.set(key, c);
      conns.push(c);
    }
    if (toServer) {
      c.segments.push(seg);
      if (seg.flags & SYN) c.synSeen = true;
      c.maxPayload = Math.max(c.maxPayload, seg.payload.length);
    } else c.replies.push(seg);
  }
  return { conns, skipped };
}

/**
 * The byte stream of one direction: payloads placed by sequence number from the SYN (or
 * the lowest data sequence number), duplicates and overlaps collapsed, up to the first hole.
 */
export function reassemble(segs: CapturedSegment[]): Uint8Array {
  let base: number | undefined;
  for (const s of segs) {
    if (s.flags & SYN) {
      base = (s.seq + 1) >>> 0;
      break;
    }
  }
  if (base === undefined) {
    for (const s of segs) {
      if (s.payload.length > 0 && (base === undefined || ((s.seq - base) | 0) < 0)) base = s.seq;
    }
  }
  if (base === undefined) return new Uint8Array(0);
  let size = 0;
  for (const s of segs) {
    const off = (s.seq - base) | 0;
    if (s.payload.length > 0 && off >= 0) size = Math.max(size, off + s.payload.length);
  }
  const bytes = new Uint8Array(size);
  const have = new Uint8Array(size);
  for (const s of segs) {
    const off = (s.seq - base) | 0;
    if (s.payload.length === 0 || off < 0) continue;
    bytes.set(s.payload, off);
    have.fill(1, off, off + s.payload.length);
  }
  const hole = have.indexOf(0);
  return hole < 0 ? bytes : bytes.slice(0, hole);
}

const latin1 = new TextDecoder("latin1");

/** Bytes as a string, one character per byte. */
export function text(bytes: Uint8Array | number[]): string {
  return latin1.decode(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
}

/** Offsets where the HTTP/1.x messages of a stream start, and where the last one ends. */
export function httpMessages(stream: string): { starts: number[]; end: number } {
  const starts: number[] = [];
  let off = 0;
  for (;;) {
    const h = stream.indexOf("\r\n\r\n", off);
    if (h < 0) break;
    const head = stream.slice(off, h);
    const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
    const informational = /^HTTP\/1\.\d 1\d\d/.test(head);
    const end = h + 4 + (m && !informational ? Number(m[1]) : 0);
    if (end > stream.length) break;
    starts.push(off);
    off = end;
  }
  return { starts, end: off };
}

/** Lengths of the HTTP responses in a server byte stream, in order. */
export function httpResponseLengths(stream: string): number[] {
  const { starts, end } = httpMessages(stream);
  return starts.map((s, i) => (i + 1 < starts.length ? starts[i + 1] : end) - s);
}

/**
 * Replay recorded connections through the engine against the simulated target, which
 * answers each HTTP request with as many bytes as the online server did. A connection whose
 * first `cut` requests were removed from the recording (mid-stream pick-up) gets the online
 * answers from request `cut` on.
 */
export function replayRecording(
  conns: ReplayCase[],
  config: Omit<EngineConfig, "transfers"> = {},
): Scenario {
  const answers = new Map<string, number[]>();
  for (const { conn, cut } of conns) {
    answers.set(conn.key, httpResponseLengths(text(reassemble(conn.replies))).slice(cut ?? 0));
  }
  const sc = new Scenario(config, {
    http: { answerLength: (key, i) => answers.get(key)?.[i] ?? 200 },
  });
  const all = conns.flatMap(({ segments }) => segments);
  all.sort((a, b) => a.timeMs - b.timeMs); // stable: capture order within a time
  if (all.length === 0) return sc;
  const first = all[0].timeMs;
  const offset = sc.now + 1 - first;
  sc.feed(all, offset);
  sc.run(all[all.length - 1].timeMs + offset + 120_000, 2_000_000);
  return sc;
}

/** One recorded connection as replayed, and what the target must receive. */
export interface ReplayCase {
  conn: RecordedConn;
  /** The client segments fed to the engine. */
  segments: CapturedSegment[];
  /** Requests removed from the front of the recording. */
  cut?: number;
  /** The client byte stream the target must receive. */
  expected: string;
  /** HTTP requests in `expected`. */
  requests: number;
}

/** The connection whose client stream contains `marker`. */
export function findConn(conns: RecordedConn[], marker: string): RecordedConn {
  const c = conns.find((c) => text(reassemble(c.segments)).includes(marker));
  assert.ok(c, `no recorded connection carries ${marker}`);
  return c;
}

/** Replay a recorded connection as it is. */
export function wholeCase(conn: RecordedConn): ReplayCase {
  const expected = text(reassemble(conn.segments));
  return {
    conn,
    segments: conn.segments,
    expected,
    requests: httpMessages(expected).starts.length,
  };
}

/**
 * Replay a connection from its request number `cut` on: every segment captured before that
 * request's first segment (SYN and handshake included) is removed, so the engine must pick
 * the connection up mid-stream.
 */
export function midStreamCase(conn: RecordedConn, cut: number): ReplayCase {
  assert.ok(conn.synSeen, `${conn.key}: the SYN is in the recording`);
  const whole = text(reassemble(conn.segments));
  const from = httpMessages(whole).starts[cut];
  assert.ok(from !== undefined, `${conn.key}: has request ${cut}`);
  const cutSeq = (conn.segments[0].seq + 1 + from) >>> 0;
  const at = conn.segments.findIndex((s) => s.payload.length > 0 && s.seq === cutSeq);
  assert.ok(at > 0, `${conn.key}: request ${cut} starts a captured segment`);
  const expected = whole.slice(from);
  return {
    conn,
    segments: conn.segments.slice(at),
    cut,
    expected,
    requests: httpMessages(expected).starts.length,
  };
}

/**
 * The replay delivered every case's stream exactly once, byte for byte, with turn-taking
 * (a request reached the target after the answer to the previous one was complete, unless
 * the client had pipelined it: sent with the same ACK as its predecessor), nothing lost.
 */
export function verifyReplay(cases: ReplayCase[], sc: Scenario): void {
  const st = sc.engine.stats;
  const lost = Object.entries(st.lost).filter(([, n]) => n > 0);
  assert.deepEqual(lost, [], "nothing counted as lost");
  assert.equal(
    st.handshakes.synthesized,
    cases.filter((c) => !c.segments.some((s) => s.flags & SYN)).length,
    "connections picked up mid-stream",
  );
  assert.equal(sc.target.accepted.length, cases.length, "one target connection per recorded one");
  for (const c of cases) {
    const got = sc.target.accepted.filter((a) => a.key === c.conn.key);
    assert.equal(got.length, 1, `${c.conn.key}: one target connection`);
    const stream = text(got[0].stream);
    if (stream !== c.expected) {
      let i = 0;
      while (i < stream.length && stream[i] === c.expected[i]) i++;
      assert.fail(
        `${c.conn.key}: ${stream.length} bytes delivered, ${c.expected.length} expected; ` +
          `first difference at ${i}`,
      );
    }
    const reqs = sc.target.requests.filter((r) => r.conn === c.conn.key);
    assert.equal(reqs.length, c.requests, `${c.conn.key}: requests seen by the target`);
    const pipelined = pipelinedRequests(c);
    for (let i = 1; i < reqs.length; i++) {
      if (pipelined.has(i)) continue;
      const prev = reqs[i - 1];
      assert.ok(prev.answerEndAt !== undefined, `${c.conn.key}: ${prev.line} answered`);
      assert.ok(
        reqs[i].at >= prev.answerEndAt!,
        `${c.conn.key}: ${reqs[i].line} overtook the answer to ${prev.line}`,
      );
    }
  }
  // A request, for the engine's counters, is a turn (see lib/engine/README.md).
  let turns = 0, answered = 0;
  for (const c of cases) {
    const t = onlineTurns(c.segments, c.conn.replies);
    turns += t.turns;
    answered += t.answered;
  }
  assert.deepEqual(st.requests, { captured: turns, sent: turns, answered });
  assert.equal(st.sessions.active, 0);
  assert.equal(st.queued_bytes, 0);
}

/** Indexes of requests whose first segment carried the same ACK as the previous request's. */
export function pipelinedRequests(c: ReplayCase): Set<number> {
  const starts = httpMessages(c.expected).starts;
  const data = c.segments.filter((s) => s.payload.length > 0);
  const base = data.length > 0 ? data[0].seq : 0;
  const ackAt = (off: number) => {
    const seq = (base + off) >>> 0;
    const s = data.find((s) => ((seq - s.seq) | 0) >= 0 && ((seq - s.seq) | 0) < s.payload.length);
    return s?.ack;
  };
  const out = new Set<number>();
  for (let i = 1; i < starts.length; i++) {
    if (ackAt(starts[i]) === ackAt(starts[i - 1])) out.add(i);
  }
  return out;
}

/**
 * Turns of a recorded client stream, computed from the capture alone: runs of in-order
 * client payload that carry the same online ACK (a pipelined batch is one turn, an HTTP
 * request whose body followed an early answer is two). A turn was answered online when the
 * server sent payload beyond the turn's ACK.
 */
export function onlineTurns(
  segs: CapturedSegment[],
  replies: CapturedSegment[],
): { turns: number; answered: number } {
  const data = segs.filter((s) => s.payload.length > 0);
  if (data.length === 0) return { turns: 0, answered: 0 };
  const ordered = [...data].sort((a, b) => (a.seq - b.seq) | 0);
  const acks: number[] = [];
  let next = ordered[0].seq;
  for (const s of ordered) {
    const end = (s.seq + s.payload.length) >>> 0;
    if (((end - next) | 0) <= 0) continue; // retransmission
    if (acks.length === 0 || ((s.ack - acks[acks.length - 1]) | 0) > 0) acks.push(s.ack);
    next = end;
  }
  let answered = 0;
  for (const a of acks) {
    if (replies.some((r) => r.payload.length > 0 && ((r.seq + r.payload.length - a) | 0) > 0)) {
      answered++;
    }
  }
  return { turns: acks.length, answered };
}
