/**
 * A scripted `--compare` comparer (lib/tcpcopy/comparer.ts) for unit tests: one online
 * connection (captured segments) and the replayed sessions following it (reply headers, tunnel
 * answer summaries), driven by hand. Used by compare_sessions.test.ts and the per-target
 * metrics tests (compare_target_metrics.test.ts, docs_metrics.test.ts).
 */
import { summarize } from "../../lib/compare/answer.ts";
import type { CompareRecord } from "../../lib/compare/record.ts";
import type { TargetAnswer } from "../../lib/compare/target_answer.ts";
import { endpointOf } from "../../lib/engine/endpoint.ts";
import type { Endpoint } from "../../lib/engine/segment.ts";
import { Comparer, type ComparerOptions } from "../../lib/tcpcopy/comparer.ts";

export const enc = (s: string) => new TextEncoder().encode(s);
export const ACK = 0x10, FIN = 0x01, SYN = 0x02;

export const CLIENT = endpointOf("192.0.2.7", 41000);
export const SERVER = endpointOf("192.0.2.1", 80);
export const ORIGINAL = { client: CLIENT, server: SERVER };
export const ISN_C = 1000, ISN_S = 50_000;

/** An HTTP/1.1 answer of `status` with `body`. */
export function http(status: number, body: string): string {
  return `HTTP/1.1 ${status} ${status === 200 ? "OK" : "Other"}\r\nContent-Length: ${body.length}` +
    `\r\n\r\n${body}`;
}

/** One replayed session: its rewritten client, target, copy index and reply sequence number. */
export interface Sess {
  client: Endpoint;
  target: Endpoint;
  copy: number;
  tSeq: number;
}

/**
 * A comparer with the tests' defaults (1024 first bytes, `auto`, no ignored headers, every
 * turn recorded, 1 MiB of state) whose records are pushed to `records` as JSON copies (what a
 * log line would hold); `opts` overrides any setting.
 */
export function recordingComparer(
  records: CompareRecord[],
  opts: Partial<ComparerOptions> = {},
): Comparer {
  return new Comparer({
    firstBytes: 1024,
    proto: "auto",
    ignoreHeaders: [],
    all: true,
    budgetBytes: 1 << 20,
    emit: (r) => records.push(JSON.parse(JSON.stringify(r))),
    ...opts,
  });
}

/** The online connection (shared) and the replayed sessions following it. */
export class Rig {
  readonly records: CompareRecord[] = [];
  readonly cmp: Comparer;
  now = 0;
  cSeq = ISN_C + 1;
  sSeq = ISN_S + 1;

  /** A comparer of `opts` (test defaults), or `cmp` as given (its own options, records). */
  constructor(opts: Partial<ComparerOptions> = {}, cmp?: Comparer) {
    this.cmp = cmp ?? recordingComparer(this.records, opts);
  }

  session(client: Endpoint, target: Endpoint, copy: number, isn: number): Sess {
    this.cmp.onSessionOpen(client, target, ORIGINAL, copy, false, this.now);
    this.cmp.onReply(target, client, isn, ISN_C + 1, SYN | ACK, 0, this.now);
    return { client, target, copy, tSeq: isn + 1 };
  }

  handshake(): void {
    this.cmp.onClient(CLIENT, SERVER, seg(ISN_C, 0, SYN, ""), this.now, this.now);
    this.cmp.onServer(SERVER, CLIENT, seg(ISN_S, ISN_C + 1, SYN | ACK, ""), this.now, this.now);
  }

  request(text: string, at = this.now): { start: number; end: number } {
    const start = this.cSeq;
    this.cmp.onClient(CLIENT, SERVER, seg(start, this.sSeq, ACK, text), at, this.now);
    this.cSeq += text.length;
    return { start, end: this.cSeq };
  }

  online(text: string, at = this.now): void {
    this.cmp.onServer(SERVER, CLIENT, seg(this.sSeq, this.cSeq, ACK, text), at, this.now);
    this.sSeq += text.length;
  }

  sent(s: Sess, r: { start: number; end: number }): void {
    this.cmp.onSent(s.client, s.target, r.start, r.end - r.start, this.now);
  }

  /** `s`'s target answers `text` to the request ending at `ack` (reply header, then summary). */
  target(s: Sess, ack: number, text: string): void {
    const seq = s.tSeq;
    this.cmp.onReply(s.target, s.client, seq, ack, ACK, text.length, this.now);
    s.tSeq += text.length;
    const a: TargetAnswer = {
      client: { addr: s.client.addr, port: s.client.port },
      target: { addr: s.target.addr, port: s.target.port },
      ack,
      seq,
      part: 0,
      summary: summarize(enc(text)),
    };
    if (this.cmp.answerWanted(a)) this.cmp.onAnswer(a, this.now);
  }

  close(): void {
    this.cmp.onClient(CLIENT, SERVER, seg(this.cSeq, this.sSeq, FIN | ACK, ""), this.now, this.now);
  }

  at(ms: number): void {
    this.now = ms;
    this.cmp.tick(ms);
  }
}

/** A scripted segment. */
export function seg(seq: number, ack: number, flags: number, text: string) {
  return { seq: seq >>> 0, ack: ack >>> 0, flags, payload: enc(text) };
}

export const PATHS = ["/a", "/b", "/c"];

/**
 * A keep-alive connection of three requests replayed by `sessions` (opened with the
 * connection): the online server answers "same" to each; `answer(s, i)` is session `s`'s
 * target body for request `i`. Sessions answer in turn, in the order given (or reversed); the
 * clock starts at `t0`.
 */
export function drive(
  rig: Rig,
  sessions: Sess[],
  answer: (s: Sess, i: number) => string,
  reversed = false,
  t0 = 1,
): void {
  let t = t0;
  for (let i = 0; i < PATHS.length; i++) {
    const r = rig.request(`GET ${PATHS[i]} HTTP/1.1\r\nHost: x\r\n\r\n`, t * 10);
    rig.at(t++);
    for (const s of sessions) rig.sent(s, r);
    rig.online(http(200, "same"), t * 10 + 2);
    rig.at(t++);
    const order = reversed ? [...sessions].reverse() : sessions;
    for (const s of order) rig.target(s, r.end, http(200, answer(s, i)));
  }
  rig.close();
  for (const s of sessions) rig.cmp.onSessionClose(s.client, s.target, t);
  rig.at(t + 5000);
}
