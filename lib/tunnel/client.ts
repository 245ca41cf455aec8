/**
 * tcpcopy side of the tunnel. Connects to one or more intercepts with `connections` TCP
 * connections each (tcpcopy's `-C`, default 2), says hello (v6) and asks for extensions
 * (harmless to a C intercept), registers routes round-robin over each intercept's
 * connections, and hands every received reply to `onReply` as bytes starting at the IP
 * header (plus the payload prefix when negotiated).
 *
 * Routes are spread over an intercept's connections by a hash of the tuple rather than a
 * plain round-robin counter: the spread is as even. The client remembers which connection of
 * each intercept holds each live route, so its CLIENT_DEL travels on the connection that owns
 * it (intercept only lets the owner delete it). When a connection is lost, intercept forgets
 * its routes: they are registered again on the intercept's other connections (after a short
 * pause, so that intercept has seen the close) or, when none is left, on the first connection
 * that comes back (`-L`), so established sessions continue (`routesResent`).
 *
 * With a shared secret (`secret`, tcpcopy --secret-file) every connection asks for Cap.AUTH,
 * answers intercept's challenge with this instance's id and proof (auth.ts) and checks
 * intercept's proof in the EXT_ACK; a connection is used for routes only once both proofs
 * passed, and one whose intercept does not authenticate (a C intercept, no secret there, a
 * wrong secret) is closed with a logged reason. The instance id is the same on every
 * connection of this client: intercept lets any of them update the instance's routes.
 *
 * Answer summaries (issue 15): with `compare` and a secret, every connection asks for
 * Cap.ANSWERS and, when granted, sends the COMPARE message (first bytes, digest mode) before
 * any route; intercept then sends one ANSWER frame per target answer of this client's routes,
 * delivered to `onAnswer`. Where it is not granted: one log line per intercept and
 * `answersGranted(server)` says "refused".
 *
 *   const t = await TunnelClient.connect({ servers: [{ hostname: "10.0.0.9" }], onReply });
 *   t.addRoute({ addr, port }, { addr, port });   // before forwarding the SYN
 *   t.delRoute(...);                              // when the session ends
 *   t.connected; t.counters; await t.close();
 */
import {
  encodeAuth,
  encodeCompare,
  encodeExtHello,
  encodeHeartbeat,
  encodeHello,
  encodeRouteInto,
  type Endpoint,
  type RouteOp,
  routeSize,
} from "./messages.ts";
import { ALL_CAPS, Cap, EXT_VERSION, HEARTBEAT_INTERVAL_MS } from "./negotiation.ts";
import { type ControlItem, ServerStreamDecoder } from "./replies.ts";
import {
  clientProof,
  INSTANCE_ID_SIZE,
  NONCE_SIZE,
  randomBytes,
  serverProof,
  timingSafeEqual,
} from "./auth.ts";
import { DEFAULT_TUNNEL_PORT } from "./defaults.ts";
import { routeKeyOf, routeOfKey } from "./route_key.ts";
import { RouteHolders } from "./route_holders.ts";
import { spread } from "./spread.ts";
import { connectTcp, type ReactorConn } from "../io/stream.ts";
import { formatHostPort, sameFamily } from "../wire/addr.ts";
import type { DigestMode } from "../compare/answer.ts";
import type { TunnelAnswer } from "./answer_frame.ts";

/** An intercept to connect to. */
export interface InterceptAddress {
  hostname: string;
  port?: number;
}

/** Settings of a TunnelClient. */
export interface TunnelClientOptions {
  servers: InterceptAddress[];
  /** Connections per intercept (1..11, like tcpcopy -C). */
  connections?: number;
  /** Capabilities to ask for; 0 = plain v6 (no extension hello at all). */
  caps?: number;
  /** Payload prefix bytes to ask for (with Cap.PAYLOAD_PREFIX). */
  prefix?: number;
  /** Reconnect with back-off when connections drop ("lonely" mode, tcpcopy -L). */
  lonely?: boolean;
  /**
   * Receives each reply: bytes from the IP header, valid only during the call (a view into
   * the read buffer: copy what you keep); `server` indexes `servers`. `prefix` is the payload
   * prefix granted on the connection it came through: bytes after the TCP header are reply
   * payload only when it is above 0 (a v6 record is zero padded instead).
   */
  onReply: (bytes: Uint8Array, server: number, prefix: number) => void;
  /**
   * Called after the replies of one read were handed to `onReply` (one call per read, so
   * the caller can flush what they released in one go).
   */
  onReadDone?: () => void;
  /** Called when no connection is left and lonely mode is off. */
  onAllDown?: () => void;
  /** Log sink. */
  log?: (line: string) => void;
  /** Most unsent bytes per connection before route messages fail. */
  maxQueuedBytes?: number;
  /** Heartbeat period when negotiated (protocol default 5 s; tests shorten it). */
  heartbeatMs?: number;
  /** Pause before a lost connection's routes move to the intercept's other connections. */
  moveDelayMs?: number;
  /** The shared secret as an HMAC key (auth.ts): every connection must authenticate. */
  secret?: CryptoKey;
  /** This instance's id in the AUTH message (default: random per client). */
  instanceId?: Uint8Array;
  /**
   * Ask for answer summaries (Cap.ANSWERS, issue 15): `bytes` first bytes per answer
   * (MIN_COMPARE_BYTES..MAX_COMPARE_BYTES) and the digest mode. Needs `secret`: intercept
   * sends them to authenticated peers only.
   */
  compare?: { bytes: number; mode: DigestMode };
  /**
   * Receives each target answer. The object (its summary and endpoints too) is reused for the
   * next answer and its first bytes are a view of the read buffer: valid only during the call
   * (keep a copy: `ownAnswer` in answer_frame.ts). `server`
   * indexes `servers`.
   */
  onAnswer?: (answer: TunnelAnswer, server: number) => void;
  /**
   * Asked first with each answer as far as its header goes (endpoints, ack, seq, part, end;
   * its summary is not decoded yet): false skips it, `onAnswer` is not called (the answer is
   * still counted in `answers`). Absent: every answer goes to `onAnswer`.
   */
  answerWanted?: (head: TunnelAnswer) => boolean;
}

/**
 * Answer summaries from one intercept: not asked for, waiting for its answer, granted, or
 * refused (a C intercept, no `--compare` or no secret there, or no secret here).
 */
export type AnswerGrant = "off" | "pending" | "granted" | "refused";

/** Client counters (monotonic). */
export interface ClientCounters {
  replies: number;
  routesAdded: number;
  routesDeleted: number;
  routeFailures: number;
  reconnects: number;
  protocolErrors: number;
  /** Live routes registered again after a connection came back or was lost. */
  routesResent: number;
  /** Connections closed because the intercept did not authenticate. */
  authFailures: number;
  /** Connections on which intercept granted a smaller payload prefix than requested. */
  prefixShort: number;
  /** Answer summaries received (Cap.ANSWERS). */
  answers: number;
  /** ANSWER frames with a malformed body (skipped). */
  answersMalformed: number;
  /** Connections on which answer summaries were asked for and not granted. */
  answersRefused: number;
  /** Heartbeat answers that gave a round trip sample ({@link TunnelClient.rttMs}). */
  rttSamples: number;
}

/** A link's first output buffer, and the size above which an emptied one is made again. */
const OUT_START = 4096, OUT_KEEP = 65536;

class Link {
  conn: ReactorConn | undefined;
  decoder = new ServerStreamDecoder();
  caps = 0;
  prefix = 0;
  /**
   * Messages not written yet, in order: `out[0..queued)`. Route messages are encoded straight
   * into it (no array per message); it grows by doubling, up to maxQueuedBytes.
   */
  out = new Uint8Array(OUT_START);
  queued = 0;
  writing = false;
  lastHeard = 0;
  openedAt = 0;
  retryMs = 500;
  /** Both proofs passed (only meaningful with a secret). */
  authed = false;
  /** The client nonce and the challenge it answered. */
  nonce: Uint8Array | undefined;
  serverNonce: Uint8Array | undefined;
  /** Routes may be registered on it (hello sent, extensions answered or given up on). */
  ready = false;
  /** When the unanswered heartbeat went out (NaN: none outstanding). */
  heartbeatSentAt = NaN;
  /** Smoothed heartbeat round trip on this connection, ms (NaN: no sample yet). */
  srttMs = NaN;
  constructor(readonly server: number, readonly index: number) {}
}

/** The tunnel client. */
export class TunnelClient {
  readonly counters: ClientCounters = {
    replies: 0,
    routesAdded: 0,
    routesDeleted: 0,
    routeFailures: 0,
    reconnects: 0,
    protocolErrors: 0,
    routesResent: 0,
    authFailures: 0,
    prefixShort: 0,
    answers: 0,
    answersMalformed: 0,
    answersRefused: 0,
    rttSamples: 0,
  };
  /** This instance's id (sent in the AUTH message with a secret). */
  readonly instanceId: Uint8Array;
  readonly #opts:
    & Required<
      Omit<
        TunnelClientOptions,
        | "onAllDown"
        | "onReadDone"
        | "secret"
        | "instanceId"
        | "compare"
        | "onAnswer"
        | "answerWanted"
      >
    >
    & TunnelClientOptions;
  /** Per intercept: answer summaries asked for / granted / refused. */
  readonly #answers: AnswerGrant[];
  /** The COMPARE message every connection sends when granted (undefined: not asked). */
  readonly #compareMsg: Uint8Array | undefined;
  readonly #links: Link[][];
  #closed = false;
  #timer: ReturnType<typeof setInterval>;
  #pending = new Set<Promise<void>>();
  #retryTimers = new Set<ReturnType<typeof setTimeout>>();
  /**
   * Live routes (added, not deleted yet): key (route_key.ts, it holds both endpoints) -> row
   * of {@link #holders}.
   */
  readonly #routes = new Map<string, number>();
  /** Which connection of each intercept holds each live route. */
  #holders: RouteHolders;
  /** A microtask will flush the queued messages (see {@link flush}). */
  #flushQueued = false;
  /** Inside connect(): a connection that fails there is reported by connect(), not onAllDown. */
  #connecting = true;

  private constructor(opts: TunnelClientOptions) {
    this.#opts = {
      connections: 2,
      caps: ALL_CAPS & ~(Cap.PAYLOAD_PREFIX | Cap.ANSWERS),
      prefix: 0,
      lonely: false,
      log: (line: string) => console.error(line),
      maxQueuedBytes: 1 << 20,
      heartbeatMs: HEARTBEAT_INTERVAL_MS,
      moveDelayMs: 250,
      ...opts,
    };
    if (opts.prefix && opts.caps === undefined) this.#opts.caps = ALL_CAPS & ~Cap.ANSWERS;
    if (opts.secret) this.#opts.caps |= Cap.AUTH;
    else this.#opts.caps &= ~Cap.AUTH;
    // answers need the parameters (COMPARE message) and authentication
    const c = opts.compare;
    this.#compareMsg = c && opts.secret ? encodeCompare(c.bytes, c.mode) : undefined;
    if (this.#compareMsg) this.#opts.caps |= Cap.ANSWERS;
    else this.#opts.caps &= ~Cap.ANSWERS;
    this.#answers = opts.servers.map(() => c ? (opts.secret ? "pending" : "refused") : "off");
    if (c && !opts.secret) {
      this.#opts.log(
        "tunnel: answer summaries need --secret-file (intercept sends them to authenticated " +
          "peers only): target answers will be missing",
      );
    }
    this.instanceId = opts.instanceId ?? randomBytes(INSTANCE_ID_SIZE);
    const n = Math.max(1, Math.min(11, this.#opts.connections));
    this.#links = opts.servers.map((_, s) => Array.from({ length: n }, (_, i) => new Link(s, i)));
    this.#holders = new RouteHolders(Math.max(1, opts.servers.length));
    this.#timer = setInterval(() => this.#heartbeat(), this.#opts.heartbeatMs);
  }

  /**
   * Connects every connection once and, when extensions are requested, waits up to
   * `ackWaitMs` (default 500 ms) for the intercepts' answers, so that IPv6 routes can be
   * registered right away (a C intercept never answers: it costs that wait once). Rejects if
   * nothing could be connected and lonely mode is off; in lonely mode the failed ones keep
   * retrying in the background.
   */
  static async connect(opts: TunnelClientOptions, ackWaitMs = 500): Promise<TunnelClient> {
    const c = new TunnelClient(opts);
    await Promise.all(c.#links.flat().map((l) => c.#open(l, false)));
    if (c.#links.flat().every((l) => !l.conn) && !c.#opts.lonely) {
      await c.close();
      const list = opts.servers.map((s) =>
        formatHostPort(s.hostname, s.port ?? DEFAULT_TUNNEL_PORT)
      );
      throw new Error(`cannot connect to any intercept (${list.join(", ")})`);
    }
    const secret = opts.secret !== undefined;
    const end = performance.now() + (c.#opts.caps ? (secret ? ackWaitMs * 4 : ackWaitMs) : 0);
    const waiting = (l: Link) => l.conn && (secret ? !l.authed : l.caps === 0);
    while (c.#links.flat().some(waiting) && performance.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
    }
    if (secret) {
      for (const l of c.#links.flat()) {
        if (waiting(l)) {
          c.#authFailed(l, "no authenticated answer (a C intercept, or none of ours?)");
        }
      }
      if (c.connected === 0 && !c.#opts.lonely) {
        await c.close();
        throw new Error("cannot authenticate to any intercept (is --secret-file the same there?)");
      }
    }
    for (const l of c.#links.flat()) if (l.conn) c.#ready(l);
    c.#connecting = false;
    if (c.connected === 0 && !c.#opts.lonely) queueMicrotask(() => c.#opts.onAllDown?.());
    return c;
  }

  /** Live routes remembered (added and not deleted). */
  get routes(): number {
    return this.#routes.size;
  }

  /** Rows the route holder table has room for now (it grows and shrinks with the routes). */
  get routeRows(): number {
    return this.#holders.capacity;
  }

  /**
   * Whether a route of this family can be registered now: some intercept connection is up
   * (and, for IPv6, has the extension). tcpcopy opens no new session otherwise.
   */
  canRoute(v6: boolean): boolean {
    for (const links of this.#links) {
      for (const l of links) if (l.conn && l.ready && (!v6 || l.caps & Cap.IPV6)) return true;
    }
    return false;
  }

  /** Open connections usable for routes (authenticated when a secret is set). */
  get connected(): number {
    return this.#links.flat().filter((l) => l.conn && this.#authOk(l)).length;
  }

  /** No secret, or both proofs passed on `l`. */
  #authOk(l: Link): boolean {
    return this.#opts.secret === undefined || l.authed;
  }

  /**
   * Answer summaries from intercept `server`: "off" (not asked for), "pending" (no answer to
   * the extension hello yet), "granted", or "refused" (logged once).
   */
  answersGranted(server: number): AnswerGrant {
    return this.#answers[server] ?? "off";
  }

  /** Capabilities granted per server (0 for a C intercept or while not yet acknowledged). */
  capsOf(server: number): number {
    const l = this.#links[server].find((l) => l.conn);
    return l ? l.caps : 0;
  }

  /** Reply payload prefix granted by `server` (bytes; 0 when none or not yet acknowledged). */
  prefixOf(server: number): number {
    const l = this.#links[server].find((l) => l.conn);
    return l ? l.prefix : 0;
  }

  /**
   * Registers a route on every connected intercept; false if no intercept took it (or the
   * two endpoints are not both IPv4 or both IPv6).
   */
  addRoute(client: Endpoint, target: Endpoint): boolean {
    if (!sameFamily(client.addr, target.addr)) {
      this.counters.routeFailures++;
      return false;
    }
    const key = routeKeyOf(client, target);
    let row = this.#routes.get(key);
    if (row === undefined) {
      row = this.#holders.alloc();
      this.#routes.set(key, row);
    }
    let any = false;
    for (let s = 0; s < this.#links.length; s++) {
      if (this.#register(row, client, target, s, false)) any = true;
    }
    if (any) this.counters.routesAdded++;
    else this.counters.routeFailures++;
    return any;
  }

  /**
   * Registers `r` on intercept `s`: on the connection holding it when that one is up, else on
   * the first ready connection from the tuple's spread. `force` ignores the queue bound (a
   * re-registration of live routes: bounded by the live sessions).
   */
  #register(row: number, client: Endpoint, target: Endpoint, s: number, force: boolean): boolean {
    const links = this.#links[s];
    const v6 = client.addr.length === 16;
    const held = this.#holders.get(row, s);
    const n = links.length;
    // the connection holding it, else the tuple's spread: first, first + 1, ... (mod n)
    const only = held >= 0 && links[held].conn && links[held].ready;
    const first = only ? held : spread(client, target);
    for (let i = 0; i < (only ? 1 : n); i++) {
      const l = links[(first + i) % n];
      if (!l.conn || !l.ready || (v6 && !(l.caps & Cap.IPV6))) continue;
      if (!this.#sendRoute(l, "add", client, target, force)) continue;
      this.#holders.set(row, s, l.index);
      return true;
    }
    return false;
  }

  /** Deletes a route where the intercept supports it (extensions); false if none did. */
  delRoute(client: Endpoint, target: Endpoint): boolean {
    if (!sameFamily(client.addr, target.addr)) return false;
    const key = routeKeyOf(client, target);
    const row = this.#routes.get(key);
    if (row === undefined) return false;
    this.#routes.delete(key);
    let any = false;
    for (let s = 0; s < this.#links.length; s++) {
      const i = this.#holders.get(row, s);
      if (i < 0) continue;
      const l = this.#links[s][i];
      if (!l.conn || !(l.caps & Cap.ROUTE_DEL)) continue;
      if (this.#sendRoute(l, "del", client, target, false)) any = true;
    }
    this.#holders.free(row);
    if (this.#holders.sparse) {
      // rows renumbered in the map's order; setting an existing key keeps its place
      this.#holders = this.#holders.compacted(this.#routes.values());
      let i = 0;
      for (const k of this.#routes.keys()) this.#routes.set(k, i++);
    }
    if (any) this.counters.routesDeleted++;
    return any;
  }

  /**
   * Registers again, on intercept `s`, every live route no connection of it holds (its
   * connection was lost, or it could not be registered then).
   */
  #resync(s: number): void {
    if (this.#closed) return;
    for (const [key, row] of this.#routes) {
      if (this.#holders.get(row, s) >= 0) continue;
      const { client, target } = routeOfKey(key);
      if (this.#register(row, client, target, s, true)) {
        this.counters.routesResent++;
      }
    }
  }

  /** `l` may carry routes from now on: register the routes its intercept is missing. */
  #ready(l: Link): void {
    if (l.ready || !l.conn || !this.#authOk(l)) return;
    l.ready = true;
    this.#resync(l.server);
    // a first round trip sample right away, not one heartbeat period later
    if (l.caps & Cap.HEARTBEAT) this.#sendHeartbeat(l);
  }

  /** Sends a heartbeat and notes when (the last one sent is the one an answer measures). */
  #sendHeartbeat(l: Link): void {
    if (this.#send(l, encodeHeartbeat())) l.heartbeatSentAt = performance.now();
  }

  /** An answer to our heartbeat: one round trip sample, smoothed like TCP's SRTT (1/8). */
  #heartbeatAnswered(l: Link): void {
    if (Number.isNaN(l.heartbeatSentAt)) return; // unsolicited, or already measured
    const sample = performance.now() - l.heartbeatSentAt;
    l.heartbeatSentAt = NaN;
    l.srttMs = Number.isNaN(l.srttMs) ? sample : l.srttMs + (sample - l.srttMs) / 8;
    this.counters.rttSamples++;
  }

  /**
   * The tunnel's own delay: the largest smoothed heartbeat round trip (ms, 3 decimals) over
   * the open connections, or null when none has been measured (no heartbeats negotiated: a
   * C intercept, or no answer yet). Our intercept answers every heartbeat of a peer that
   * asked for answer summaries, so the figure includes the time replies queue in the tunnel.
   */
  rttMs(): number | null {
    let max = NaN;
    for (const l of this.#links.flat()) {
      if (l.conn && !Number.isNaN(l.srttMs) && !(l.srttMs <= max)) max = l.srttMs;
    }
    return Number.isNaN(max) ? null : Math.round(max * 1000) / 1000;
  }

  #send(l: Link, bytes: Uint8Array, force = false): boolean {
    if (!this.#room(l, bytes.length, force)) return false;
    l.out.set(bytes, l.queued);
    l.queued += bytes.length;
    this.#queued(l);
    return true;
  }

  /** Queues a route message on `l`, encoded in place (see {@link #send}). */
  #sendRoute(l: Link, op: RouteOp, client: Endpoint, target: Endpoint, force: boolean): boolean {
    if (!this.#room(l, routeSize(client), force)) return false;
    l.queued += encodeRouteInto(l.out, l.queued, op, client, target);
    this.#queued(l);
    return true;
  }

  /** False when `l` is down or `len` more bytes would pass the bound; else room for them. */
  #room(l: Link, len: number, force: boolean): boolean {
    const need = l.queued + len;
    if (!l.conn || (!force && need > this.#opts.maxQueuedBytes)) return false;
    if (need > l.out.length) {
      let size = l.out.length * 2;
      while (size < need) size *= 2;
      const out = new Uint8Array(size);
      out.set(l.out.subarray(0, l.queued));
      l.out = out;
    }
    return true;
  }

  /** Bytes were queued on `l`: a microtask flushes them unless a flush comes sooner. */
  #queued(l: Link): void {
    if (!l.writing && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushAll);
    }
  }

  /**
   * Sends every queued message now. Messages queued in one stretch of work (the routes of a
   * capture drain) go out together, in one syscall per connection, at the latest in a
   * microtask; tcpcopy calls this before it sends the packets those routes belong to.
   */
  flush(): void {
    for (const links of this.#links) for (const l of links) if (l.queued > 0) this.#flush(l);
  }

  #flushAll = (): void => {
    this.#flushQueued = false;
    this.flush();
  };

  /**
   * Writes the link's queue now, as far as the send buffer takes it (the route messages of one
   * reactor round go out in one syscall when they were queued together); the rest goes out
   * when the socket is writable again.
   */
  #flush(l: Link): void {
    const conn = l.conn;
    if (!conn || l.writing) return;
    try {
      if (l.queued === 0) return;
      const n = conn.send(l.out.subarray(0, l.queued));
      if (n < l.queued) {
        l.out.copyWithin(0, n, l.queued);
        l.queued -= n;
        l.writing = true;
        conn.whenWritable(() => {
          l.writing = false;
          if (l.conn === conn) this.#flush(l);
        });
        return;
      }
      l.queued = 0;
      if (l.out.length > OUT_KEEP) l.out = new Uint8Array(OUT_START); // a backlog's buffer
    } catch (e) {
      this.#drop(l, `write error: ${(e as Error).message}`);
    }
  }

  #track(p: Promise<void>): void {
    this.#pending.add(p);
    p.finally(() => this.#pending.delete(p));
  }

  async #open(l: Link, retry: boolean): Promise<void> {
    const s = this.#opts.servers[l.server];
    const port = s.port ?? DEFAULT_TUNNEL_PORT;
    try {
      const conn = await connectTcp(s.hostname, port);
      if (this.#closed) {
        conn.close();
        return;
      }
      conn.setNoDelay(true);
      l.conn = conn;
      l.decoder = new ServerStreamDecoder();
      l.caps = 0;
      l.prefix = 0;
      if (l.out.length > OUT_KEEP) l.out = new Uint8Array(OUT_START);
      l.queued = 0;
      l.retryMs = 500;
      l.ready = false;
      l.authed = false;
      l.nonce = l.serverNonce = undefined;
      l.heartbeatSentAt = l.srttMs = NaN;
      l.lastHeard = l.openedAt = performance.now();
      if (retry) this.counters.reconnects++;
      this.#send(l, encodeHello());
      if (this.#opts.caps) {
        l.decoder.expectAck = true;
        this.#send(l, encodeExtHello(EXT_VERSION, this.#opts.caps, this.#opts.prefix));
      }
      this.#read(l, conn);
      // A reconnection is ready once the extensions are answered (routes of both families
      // can go), or after the wait a C intercept that never answers costs.
      if (retry) {
        if (!this.#opts.caps) this.#ready(l);
        else this.#later(500, () => l.conn === conn && this.#ready(l));
      }
    } catch (e) {
      if (!retry) {
        this.#opts.log(
          `tunnel: cannot connect to ${formatHostPort(s.hostname, port)}: ${(e as Error).message}`,
        );
      }
      this.#retry(l);
    }
  }

  /** Runs `fn` after `ms` unless the client is closed by then. */
  #later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#retryTimers.delete(t);
      if (!this.#closed) fn();
    }, ms);
    this.#retryTimers.add(t);
  }

  #retry(l: Link): void {
    if (!this.#opts.lonely || this.#closed) return;
    const ms = l.retryMs;
    l.retryMs = Math.min(l.retryMs * 2, 12_000);
    const t = setTimeout(() => {
      this.#retryTimers.delete(t);
      this.#track(this.#open(l, true));
    }, ms);
    this.#retryTimers.add(t);
  }

  #read(l: Link, conn: ReactorConn): void {
    conn.startReading(new Uint8Array(65536), (chunk) => {
      if (l.conn !== conn) return;
      l.lastHeard = performance.now();
      const error = l.decoder.feed(chunk, (bytes) => {
        this.counters.replies++;
        this.#opts.onReply(bytes, l.server, l.prefix);
      }, (it) => this.#control(l, conn, it));
      this.#opts.onReadDone?.();
      if (error) {
        this.counters.protocolErrors++;
        this.#drop(l, `protocol error: ${error}`);
      }
    }, (error) => {
      if (l.conn === conn) {
        this.#drop(l, error === null ? "intercept closed the connection" : `read error: ${error}`);
      }
    });
  }

  /** An item from intercept other than a reply. */
  #control(l: Link, conn: ReactorConn, it: ControlItem): void {
    switch (it.kind) {
      case "challenge":
        void this.#answer(l, conn, it.nonce);
        break;
      case "ext-ack":
        if (this.#opts.secret) void this.#checkAck(l, conn, it);
        else {
          l.caps = it.caps;
          l.prefix = it.prefix;
          this.#checkPrefix(l);
          this.#checkAnswers(l);
          this.#ready(l);
        }
        break;
      case "heartbeat":
        // hearing anything is proof of life (lastHeard was set by the read); the answer to
        // our outstanding heartbeat also measures the tunnel's round trip
        this.#heartbeatAnswered(l);
        break;
      case "answer":
        this.counters.answers++;
        this.#opts.onAnswer?.(it.answer, l.server);
        break;
      case "answer-unwanted":
        this.counters.answers++;
        break;
      case "answer-malformed": {
        const n = ++this.counters.answersMalformed;
        if (n === 1 || n % 1000 === 0) {
          this.#opts.log(`tunnel: malformed answer summary skipped (${n} so far): ${it.reason}`);
        }
        break;
      }
      default: {
        const never: never = it;
        this.#drop(l, `protocol error: unknown item ${(never as ControlItem).kind}`);
      }
    }
  }

  #transcript(l: Link) {
    return {
      serverNonce: l.serverNonce!,
      clientNonce: l.nonce!,
      instanceId: this.instanceId,
      request: { extVersion: EXT_VERSION, caps: this.#opts.caps, prefix: this.#opts.prefix },
    };
  }

  /** Answers intercept's challenge with the AUTH message. */
  async #answer(l: Link, conn: ReactorConn, serverNonce: Uint8Array): Promise<void> {
    if (!this.#opts.secret) return this.#authFailed(l, "challenge without a secret set here");
    l.serverNonce = serverNonce;
    l.nonce = randomBytes(NONCE_SIZE);
    const proof = await clientProof(this.#opts.secret, this.#transcript(l));
    if (l.conn !== conn) return;
    this.#send(l, encodeAuth(this.instanceId, l.nonce, proof));
  }

  /** With a secret: the EXT_ACK must grant Cap.AUTH and carry intercept's valid proof. */
  async #checkAck(
    l: Link,
    conn: ReactorConn,
    ack: { extVersion: number; caps: number; prefix: number; proof?: Uint8Array },
  ): Promise<void> {
    const key = this.#opts.secret!;
    if (!(ack.caps & Cap.AUTH) || !ack.proof || !l.serverNonce) {
      return this.#authFailed(l, "intercept does not authenticate (no --secret-file there?)");
    }
    const want = await serverProof(key, this.#transcript(l), ack);
    if (l.conn !== conn) return;
    if (!timingSafeEqual(want, ack.proof)) {
      return this.#authFailed(l, "intercept's proof is wrong (a different secret?)");
    }
    l.caps = ack.caps;
    l.prefix = ack.prefix;
    l.authed = true;
    this.#checkPrefix(l);
    this.#checkAnswers(l);
    this.#ready(l);
  }

  /**
   * After the EXT_ACK: where answers were asked for, send the COMPARE message (before any
   * route, so every route of the connection gets answers) or log the refusal once.
   */
  #checkAnswers(l: Link): void {
    const msg = this.#compareMsg;
    if (!msg) return;
    if (l.caps & Cap.ANSWERS) {
      this.#send(l, msg, true);
      l.decoder.answerBytes = this.#opts.compare!.bytes;
      l.decoder.answerWanted = this.#opts.answerWanted ?? null;
      this.#answers[l.server] = "granted";
      return;
    }
    this.counters.answersRefused++;
    if (this.#answers[l.server] === "refused") return;
    this.#answers[l.server] = "refused";
    const s = this.#opts.servers[l.server];
    this.#opts.log(
      `tunnel: ${formatHostPort(s.hostname, s.port ?? DEFAULT_TUNNEL_PORT)} does not send ` +
        `answer summaries (start intercept with --compare and the same --secret-file): ` +
        `target answers will be missing`,
    );
  }

  /** One line and a count when intercept granted less reply payload than asked for. */
  #checkPrefix(l: Link): void {
    const want = this.#opts.prefix;
    if (want <= 0 || l.prefix >= want) return;
    this.counters.prefixShort++;
    const s = this.#opts.servers[l.server];
    this.#opts.log(
      `tunnel: ${formatHostPort(s.hostname, s.port ?? DEFAULT_TUNNEL_PORT)} grants a reply ` +
        `payload prefix of ${l.prefix} bytes, ${want} requested (${
          this.#opts.secret ? "raise intercept's --max-prefix" : "it needs --secret-file"
        }); module sessions see the rest as gaps`,
    );
  }

  #authFailed(l: Link, reason: string): void {
    this.counters.authFailures++;
    this.#drop(l, reason);
  }

  #drop(l: Link, reason: string): void {
    const conn = l.conn;
    if (!conn) return;
    l.conn = undefined;
    l.ready = false;
    // intercept forgets the routes of a closed connection: nobody holds them any more.
    this.#holders.forget(l.server, l.index);
    if (!this.#closed) this.#later(this.#opts.moveDelayMs, () => this.#resync(l.server));
    try {
      conn.close();
    } catch { /* closed */ }
    if (this.#closed) return;
    const s = this.#opts.servers[l.server];
    this.#opts.log(
      `tunnel: connection to ${
        formatHostPort(s.hostname, s.port ?? DEFAULT_TUNNEL_PORT)
      } lost: ${reason}`,
    );
    if (this.#opts.lonely) this.#retry(l);
    else if (this.connected === 0 && !this.#connecting) this.#opts.onAllDown?.();
  }

  #heartbeat(): void {
    const now = performance.now();
    for (const l of this.#links.flat()) {
      if (l.conn && this.#opts.secret && !l.authed && now - l.openedAt > 5000) {
        this.#authFailed(l, "no authenticated answer");
        continue;
      }
      if (!l.conn || !(l.caps & Cap.HEARTBEAT)) continue;
      if (now - l.lastHeard > 3 * this.#opts.heartbeatMs) this.#drop(l, "heartbeat timeout");
      else this.#sendHeartbeat(l);
    }
  }

  /** Closes every connection and stops reconnecting. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const t of this.#retryTimers) clearTimeout(t);
    for (const l of this.#links.flat()) {
      const c = l.conn;
      l.conn = undefined;
      try {
        c?.close();
      } catch { /* closed */ }
    }
    await Promise.allSettled([...this.#pending]);
  }
}
