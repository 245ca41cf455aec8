/**
 * A small simulated target TCP (server side) for engine tests.
 *
 * Each connection has its own ISN, window (with window scale), timestamps, delayed ACKs,
 * and an application speaking a line protocol: every request is a line
 * `REQ <id> <responseLength> ...\n`; the answer is `responseLength` bytes (the last is
 * "\n"). Misbehaviour is configurable: greeting first, slow or short answers, RST in the
 * middle of a response, early FIN (keep-alive timeout), zero window, dropped segments.
 * The simulator only reorders nothing and never loses replies unless told to.
 *
 * With `http` set, the application speaks HTTP/1.x instead: a request is a header block up
 * to an empty line plus `Content-Length` bytes of body (pipelining works), and the answer's
 * length comes from `http.answerLength` (e.g. what the online server sent for that request).
 */

import type { Endpoint, OutSegment, ReplySegment, SegmentOptions } from "../../lib/engine/mod.ts";
import { ACK, addrText, FIN, PSH, RST, SYN } from "../../lib/engine/mod.ts";

const u32 = (n: number) => n >>> 0;
const lt = (a: number, b: number) => ((a - b) | 0) < 0;

/** Server behaviour knobs. */
export interface TargetBehaviour {
  mss?: number;
  wscale?: number;
  timestamps?: boolean;
  /** Receive buffer (bytes); the advertised window is what is free in it. */
  rcvBuf?: number;
  /** The application reads received bytes this long after they arrive (0 = at once). */
  readDelayMs?: number;
  /** Bytes sent before the first request (server speaks first). */
  greeting?: number;
  /** Time the application needs per request. */
  answerDelayMs?: number;
  /** Answers are this many bytes shorter than requested (>= 1 byte is always sent). */
  shortBy?: number;
  /** Requests (by id) that get no answer at all. */
  noAnswerIds?: Set<number>;
  /** After sending this many response bytes in total on a connection, send RST. */
  rstAfterResponseBytes?: number;
  /** Close (FIN) a connection after answering this many requests on it. */
  finAfterRequests?: number;
  /** Never answer SYNs (handshake failure), or answer the first N SYNs with nothing. */
  dropSyns?: number;
  /** Refuse connections with RST. */
  refuse?: boolean;
  /** Drop the inbound data segments with these ordinals (1-based, per target). */
  dropInbound?: Set<number>;
  /** Delayed ACK timeout (ms) for lone segments. */
  delayedAckMs?: number;
  /** ISN generator seed. */
  seed?: number;
  /** Speak HTTP/1.x instead of the line protocol (see the module comment). */
  http?: HttpBehaviour;
}

/** The HTTP application of the simulated target. */
export interface HttpBehaviour {
  /**
   * Bytes to answer the `index`-th request (0-based) of connection `conn` ("addr|port" of the
   * client) with; `head` is the request's header block. Default 200.
   */
  answerLength?: (conn: string, index: number, head: string) => number;
}

/** A request as the application received it. */
export interface AppRequest {
  conn: string;
  id: number;
  line: string;
  at: number;
  answeredAt?: number;
  answerEndAt?: number;
}

/** One simulated server connection (read-only for tests). */
export type SimConn = Conn;

interface Conn {
  key: string;
  client: Endpoint;
  self: Endpoint;
  state: "syn_rcvd" | "established" | "closed";
  iss: number;
  sndNxt: number;
  sndUna: number;
  rcvNxt: number;
  irs: number;
  clientWs: number;
  myWs: number;
  ts: boolean;
  tsRecent: number;
  sndWnd: number;
  /** Bytes delivered in order to the application. */
  stream: number[];
  unread: { at: number; n: number }[];
  readPos: number;
  pending: number[];
  lineBuf: string;
  outQueue: { bytes: number; fin: boolean; rst: boolean; reqId?: number }[];
  responseBytes: number;
  answered: number;
  ackOwed: number;
  ackAt: number;
  clientFin: boolean;
  finSent: boolean;
  greeted: boolean;
  pendingAnswers: { at: number; id: number; len: number }[];
  firstByteAt?: number;
  /** HTTP requests parsed on this connection. */
  httpRequests: number;
}

/** The simulated server; feed it engine output with {@link receive}, run {@link tick}. */
export class SimTarget {
  readonly conns = new Map<string, Conn>();
  /** Every connection ever accepted, in order, with its delivered byte stream. */
  readonly accepted: SimConn[] = [];
  readonly requests: AppRequest[] = [];
  readonly b:
    & Required<Omit<TargetBehaviour, "noAnswerIds" | "dropInbound" | "http">>
    & TargetBehaviour;
  inboundData = 0;
  synsSeen = 0;
  resetsReceived = 0;
  private rng: number;

  constructor(behaviour: TargetBehaviour, readonly reply: (r: ReplySegment) => void) {
    this.b = {
      mss: 1460,
      wscale: 7,
      timestamps: true,
      rcvBuf: 65535 * 4,
      readDelayMs: 0,
      greeting: 0,
      answerDelayMs: 0,
      shortBy: 0,
      rstAfterResponseBytes: 0,
      finAfterRequests: 0,
      dropSyns: 0,
      refuse: false,
      delayedAckMs: 40,
      seed: 1,
      ...behaviour,
    };
    this.rng = this.b.seed;
  }

  private random(): number {
    this.rng = (Math.imul(this.rng, 1103515245) + 12345) >>> 0;
    return this.rng;
  }

  /** The byte stream the application received on each accepted connection, as text. */
  streams(): string[] {
    return this.accepted.map((c) => new TextDecoder().decode(new Uint8Array(c.stream)));
  }

  /** A packet from the engine. */
  receive(seg: OutSegment, now: number): void {
    const key = `${addrText(seg.src)}|${seg.src.port}`;
    let c = this.conns.get(key);
    if (seg.flags & RST) {
      if (c && c.state !== "closed") {
        this.resetsReceived++;
        c.state = "closed";
        this.conns.delete(key);
      }
      return;
    }
    if (seg.flags & SYN) {
      this.synsSeen++;
      if (c && c.state === "established") {
        this.send(c, ACK, c.sndNxt, 0, now); // challenge ACK (RFC 5961)
        return;
      }
      if (this.b.dropSyns > 0) {
        this.b.dropSyns--;
        return;
      }
      if (this.b.refuse) {
        this.reply({
          src: seg.dst,
          dst: seg.src,
          seq: 0,
          ack: u32(seg.seq + 1),
          flags: RST | ACK,
          window: 0,
          options: {},
          payloadLength: 0,
        });
        return;
      }
      if (c && c.state === "syn_rcvd" && c.irs === seg.seq) {
        this.sendSynAck(c, now);
        return;
      }
      c = this.accept(seg, now);
      return;
    }
    if (!c) {
      // No socket: answer with RST (what a kernel does).
      this.reply({
        src: seg.dst,
        dst: seg.src,
        seq: seg.ack,
        ack: 0,
        flags: RST,
        window: 0,
        options: {},
        payloadLength: 0,
      });
      return;
    }
    const ts = seg.options.timestamp;
    if (c.ts && ts) c.tsRecent = ts.tsval;
    if (seg.flags & ACK) {
      if (c.state === "syn_rcvd" && seg.ack === u32(c.iss + 1)) {
        c.state = "established";
        c.sndUna = seg.ack;
        this.accepted.push(c);
        if (this.b.greeting > 0) {
          c.outQueue.push({ bytes: this.b.greeting, fin: false, rst: false });
          c.greeted = true;
        }
      }
      if (lt(c.sndUna, seg.ack) && !lt(c.sndNxt, seg.ack)) c.sndUna = seg.ack;
      c.sndWnd = seg.window << c.clientWs;
    }
    if (c.state !== "established") return;
    if (seg.payload.length > 0) {
      this.inboundData++;
      if (this.b.dropInbound?.has(this.inboundData)) return;
      if (seg.seq === c.rcvNxt) {
        const free = this.b.rcvBuf - c.pending.length - unreadBytes(c);
        const n = Math.min(seg.payload.length, Math.max(0, free));
        if (n > 0) {
          for (let i = 0; i < n; i++) c.stream.push(seg.payload[i]);
          c.unread.push({ at: now + this.b.readDelayMs, n });
          c.rcvNxt = u32(c.rcvNxt + n);
        }
        c.ackOwed++;
        if (c.ackOwed >= 2 || n < seg.payload.length) this.sendAckNow(c, now);
        else if (c.ackAt === Infinity) c.ackAt = now + this.b.delayedAckMs;
      } else {
        this.sendAckNow(c, now); // out of order or duplicate: immediate ACK
      }
    } else if (seg.seq === u32(c.sndUna - 1) || lt(seg.seq, c.rcvNxt)) {
      if (seg.flags & FIN) this.sendAckNow(c, now);
      else this.sendAckNow(c, now); // window probe / old segment
    }
    if (seg.flags & FIN && u32(seg.seq + seg.payload.length) === c.rcvNxt && !c.clientFin) {
      c.clientFin = true;
      c.rcvNxt = u32(c.rcvNxt + 1);
      this.sendAckNow(c, now);
      if (!c.finSent) c.outQueue.push({ bytes: 0, fin: true, rst: false });
    }
    this.run(c, now);
  }

  private accept(seg: OutSegment, now: number): Conn {
    const key = `${addrText(seg.src)}|${seg.src.port}`;
    const o = seg.options;
    const iss = this.random();
    const c: Conn = {
      key,
      client: { ...seg.src },
      self: { ...seg.dst },
      state: "syn_rcvd",
      iss,
      sndNxt: u32(iss + 1),
      sndUna: u32(iss + 1),
      irs: seg.seq,
      rcvNxt: u32(seg.seq + 1),
      clientWs: o.wscale !== undefined && this.b.wscale >= 0 ? o.wscale : 0,
      myWs: o.wscale !== undefined && this.b.wscale >= 0 ? this.b.wscale : 0,
      ts: !!o.timestamp && this.b.timestamps,
      tsRecent: o.timestamp?.tsval ?? 0,
      sndWnd: seg.window,
      stream: [],
      unread: [],
      readPos: 0,
      pending: [],
      lineBuf: "",
      outQueue: [],
      responseBytes: 0,
      answered: 0,
      ackOwed: 0,
      ackAt: Infinity,
      clientFin: false,
      finSent: false,
      greeted: false,
      pendingAnswers: [],
      httpRequests: 0,
    };
    this.conns.set(key, c);
    this.sendSynAck(c, now);
    return c;
  }

  private sendSynAck(c: Conn, now: number): void {
    const options: SegmentOptions = { mss: this.b.mss };
    if (c.myWs || (this.b.wscale >= 0 && c.clientWs !== 0)) options.wscale = c.myWs;
    if (c.ts) options.timestamp = { tsval: Math.floor(now), tsecr: c.tsRecent };
    this.reply({
      src: c.self,
      dst: c.client,
      seq: c.iss,
      ack: c.rcvNxt,
      flags: SYN | ACK,
      window: Math.min(65535, this.window(c)),
      options,
      payloadLength: 0,
    });
  }

  private window(c: Conn): number {
    return Math.max(0, this.b.rcvBuf - unreadBytes(c));
  }

  private sendAckNow(c: Conn, now: number): void {
    this.send(c, ACK, c.sndNxt, 0, now);
  }

  private send(c: Conn, flags: number, seq: number, len: number, now: number): void {
    const options: SegmentOptions = {};
    if (c.ts) options.timestamp = { tsval: Math.floor(now), tsecr: c.tsRecent };
    this.reply({
      src: c.self,
      dst: c.client,
      seq,
      ack: c.rcvNxt,
      flags,
      window: Math.min(65535, this.window(c) >> c.myWs),
      options,
      payloadLength: len,
    });
    c.ackOwed = 0;
    c.ackAt = Infinity;
  }

  /** Application and output processing. */
  private run(c: Conn, now: number): void {
    // The application reads what is due and answers complete lines.
    while (c.unread.length > 0 && c.unread[0].at <= now) {
      const u = c.unread.shift()!;
      const before = this.window(c);
      for (let i = 0; i < u.n; i++) c.lineBuf += String.fromCharCode(c.stream[c.readPos + i]);
      c.readPos += u.n;
      if (before === 0 && this.window(c) > 0) this.sendAckNow(c, now); // window update
    }
    if (this.b.http) this.parseHttp(c, this.b.http, now);
    let nl: number;
    while (!this.b.http && (nl = c.lineBuf.indexOf("\n")) >= 0) {
      const line = c.lineBuf.slice(0, nl);
      c.lineBuf = c.lineBuf.slice(nl + 1);
      const m = /^REQ (\d+) (\d+)/.exec(line);
      const id = m ? Number(m[1]) : -1;
      const len = m ? Number(m[2]) : 0;
      this.requests.push({ conn: c.key, id, line, at: now });
      if (this.b.noAnswerIds?.has(id)) continue;
      c.pendingAnswers.push({ at: now + this.b.answerDelayMs, id, len });
    }
    while (c.pendingAnswers.length > 0 && c.pendingAnswers[0].at <= now) {
      const a = c.pendingAnswers.shift()!;
      const n = Math.max(1, a.len - this.b.shortBy);
      c.outQueue.push({ bytes: n, fin: false, rst: false, reqId: a.id });
      c.answered++;
      if (this.b.finAfterRequests > 0 && c.answered >= this.b.finAfterRequests && !c.finSent) {
        c.outQueue.push({ bytes: 0, fin: true, rst: false });
      }
    }
    this.flush(c, now);
  }

  /** Complete HTTP requests in the receive buffer become requests with answers. */
  private parseHttp(c: Conn, http: HttpBehaviour, now: number): void {
    for (;;) {
      const end = c.lineBuf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = c.lineBuf.slice(0, end);
      const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
      const total = end + 4 + (m ? Number(m[1]) : 0);
      if (c.lineBuf.length < total) return;
      c.lineBuf = c.lineBuf.slice(total);
      const eol = head.indexOf("\r\n");
      const id = this.requests.length;
      this.requests.push({ conn: c.key, id, line: eol < 0 ? head : head.slice(0, eol), at: now });
      const len = http.answerLength?.(c.key, c.httpRequests, head) ?? 200;
      c.httpRequests++;
      c.pendingAnswers.push({ at: now + this.b.answerDelayMs, id, len });
    }
  }

  private flush(c: Conn, now: number): void {
    while (c.outQueue.length > 0 && c.state === "established") {
      const q = c.outQueue[0];
      if (q.bytes > 0) {
        const inFlight = (c.sndNxt - c.sndUna) >>> 0;
        const room = c.sndWnd - inFlight;
        if (room <= 0) return;
        if (this.b.rstAfterResponseBytes > 0 && c.responseBytes >= this.b.rstAfterResponseBytes) {
          this.send(c, RST | ACK, c.sndNxt, 0, now);
          c.state = "closed";
          this.conns.delete(c.key);
          return;
        }
        let n = Math.min(q.bytes, this.b.mss, room);
        if (this.b.rstAfterResponseBytes > 0) {
          n = Math.min(n, Math.max(1, this.b.rstAfterResponseBytes - c.responseBytes));
        }
        const req = q.reqId !== undefined ? this.requests.find((r) => r.id === q.reqId) : undefined;
        if (req && req.answeredAt === undefined) req.answeredAt = now;
        q.bytes -= n;
        c.responseBytes += n;
        if (c.firstByteAt === undefined) c.firstByteAt = now;
        this.send(c, ACK | (q.bytes === 0 ? PSH : 0), c.sndNxt, n, now);
        c.sndNxt = u32(c.sndNxt + n);
        if (q.bytes === 0 && req) req.answerEndAt = now;
        if (q.bytes === 0) c.outQueue.shift();
      } else if (q.fin) {
        this.send(c, FIN | ACK, c.sndNxt, 0, now);
        c.sndNxt = u32(c.sndNxt + 1);
        c.finSent = true;
        c.outQueue.shift();
      } else c.outQueue.shift();
    }
  }

  /** Earliest time something is due (application reads, answers, delayed ACKs). */
  nextDeadline(): number | undefined {
    let t = Infinity;
    for (const c of this.conns.values()) {
      if (c.ackAt < t) t = c.ackAt;
      if (c.unread.length > 0 && c.unread[0].at < t) t = c.unread[0].at;
      if (c.pendingAnswers.length > 0 && c.pendingAnswers[0].at < t) t = c.pendingAnswers[0].at;
    }
    return t === Infinity ? undefined : t;
  }

  /** Run what is due. */
  tick(now: number): void {
    for (const c of [...this.conns.values()]) {
      if (c.ackAt <= now) this.sendAckNow(c, now);
      this.run(c, now);
    }
  }
}

function unreadBytes(c: Conn): number {
  let n = 0;
  for (const u of c.unread) n += u.n;
  return n;
}
