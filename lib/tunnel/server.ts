/**
 * Intercept side of the tunnel: a TCP listener (default port 36524) accepting any number of
 * tcpcopy connections. Each connection says hello (v6), may negotiate extensions, then
 * registers routes; `reply(pkt)` routes a captured reply to the connection that registered
 * its 4-tuple. Connections live on the reactor (lib/io/stream.ts): reads are handled in the
 * poll round that saw them, writes go out synchronously as far as the send buffer takes them,
 * the rest when the socket is writable again, within a bounded queue per connection, so a
 * slow or dead tcpcopy never stalls the others. A peer sending garbage is disconnected with
 * a logged reason.
 *
 * Access control (see README.md "Security model"): the peer's address is checked against the
 * allow-list and the per-address connection cap right after accept(), before anything is
 * allocated for it. With a shared secret, a peer that is not on the allow-list must pass the
 * challenge-response (auth.ts) before it may register routes. A connection that has not
 * completed its hello (and authentication) within the idle timeout, or that negotiated
 * heartbeats and went silent, is closed. Routes belong to their owner (dispatch.ts): an
 * authenticated tcpcopy instance (its id is in the AUTH message) or else the connection.
 * Peer events are logged through a rate limit (event_log.ts).
 *
 * Latency: the capture source brackets each drain of its queue with `beginCycle()` and
 * `endCycle()`; at `endCycle()` every connection that got replies closes its open frame and
 * starts one write. A drain at a high rate returns many packets, so frames stay full; at a
 * low rate nothing is held back. The flush deadline (`flushMs`) only applies to replies
 * routed outside a cycle.
 *
 * Answer summaries (issue 15, `answers`: intercept --compare): an authenticated peer granted
 * Cap.ANSWERS sends a COMPARE message; from then on the replies of its routes also feed its
 * AnswerTracker (lib/intercept/answers.ts), which queues one ANSWER frame per answer ahead of
 * the reply header that ended it. A timer sends answers quiet for `answerQuietMs`.
 */
import { ReplyBatcher } from "./batcher.ts";
import { Dispatcher, type DispatchOptions } from "./dispatch.ts";
import {
  type ClientMessage,
  ClientMessageDecoder,
  type ClientMessageKind,
  type Endpoint,
} from "./messages.ts";
import { Cap, grant, HEARTBEAT_INTERVAL_MS } from "./negotiation.ts";
import { encodeChallenge, encodeExtAck, encodeExtFrame, FrameKind, MAX_BATCH } from "./replies.ts";
import { AllowList } from "./access.ts";
import { clientProof, NONCE_SIZE, randomBytes, serverProof, timingSafeEqual } from "./auth.ts";
import { EventLog } from "./event_log.ts";
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_PEER_ROUTES,
  DEFAULT_MAX_PER_IP,
  DEFAULT_TUNNEL_PORT,
} from "./defaults.ts";
import { routeKeyOf } from "./route_key.ts";
import { formatHostPort, formatIpv4, formatIpv6 } from "../wire/addr.ts";
import { type ReactorConn, ReactorListener } from "../io/stream.ts";
import { sharedReactor } from "../io/reactor.ts";
import {
  ANSWER_QUIET_MS,
  type AnswerCounters,
  AnswerTracker,
  newAnswerCounters,
} from "../intercept/answers.ts";

/** Our heartbeat answer (the same bytes every time). */
const HEARTBEAT_FRAME = encodeExtFrame(FrameKind.HEARTBEAT);

/** The C original's tunnel port (defaults.ts, so command lines need not load this module). */
export { DEFAULT_TUNNEL_PORT };

/** Settings of a TunnelServer. */
export interface TunnelServerOptions {
  /** Listen port (0 = any free port). */
  port: number;
  /** Bind address. */
  hostname: string;
  /** Largest payload prefix granted to a peer. */
  maxPrefix: number;
  /** Batch flush deadline. */
  flushMs: number;
  /** Records per batch (1..16). */
  maxBatch: number;
  /** Bound of each connection's unsent bytes. */
  maxQueuedBytes: number;
  /** Idle route expiry. */
  routeTtlMs: number;
  /**
   * Idle timeout: a connection that has not completed its hello (and authentication) within
   * this time is closed, and so is a peer that negotiated heartbeats and sent nothing for
   * this long (at most 3 and at least 2 heartbeat periods: 15 s with the defaults).
   */
  idleTimeoutMs: number;
  /** Addresses that may connect (empty = any; see the module comment). */
  allow: AllowList;
  /** The shared secret as an HMAC key (auth.ts); undefined = no authentication. */
  secret?: CryptoKey;
  /** Most connections open at once from one source address. */
  maxPerIp: number;
  /** Most routes of one owner (tcpcopy instance or C connection). */
  maxPeerRoutes: number;
  /** Peer event lines per 10 s before they are only counted (event_log.ts). */
  logBurst: number;
  /**
   * Most tunnel connections at once (each holds a read buffer and a batcher); connections
   * beyond it are closed at once and counted (`rejected`), so a connection flood costs no
   * memory. Legitimate use is a few tcpcopy instances times `-C` (at most 16).
   */
  maxConnections: number;
  /** Heartbeat period of peers that negotiated heartbeats (silent 3 periods = dead). */
  heartbeatMs: number;
  /** Log sink (one line per call). */
  log: (line: string) => void;
  /** Clock in ms (injectable for tests). */
  now: () => number;
  /**
   * Grant answer summaries (Cap.ANSWERS) to authenticated peers that ask (intercept
   * --compare; the capture must then keep whole payloads).
   */
  answers: boolean;
  /** An answer without new reply bytes for this long is sent as it is (ms). */
  answerQuietMs: number;
  /** Live accumulators per peer (0 = by the peer's first bytes, answers.ts maxLiveFor). */
  maxLiveAnswers: number;
}

/**
 * Defaults: 0.0.0.0:36524, 128-byte prefix limit (authenticated peers only), 2 ms, 16 records,
 * 1 MiB per connection, 15 s idle timeout, 32 connections per address, 250,000 routes per
 * owner, no allow-list and no secret.
 */
export const DEFAULT_SERVER: TunnelServerOptions = {
  port: DEFAULT_TUNNEL_PORT,
  hostname: "0.0.0.0",
  maxPrefix: 128,
  flushMs: 2,
  maxBatch: MAX_BATCH,
  maxQueuedBytes: 1 << 20,
  routeTtlMs: 660_000,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  allow: new AllowList([]),
  maxPerIp: DEFAULT_MAX_PER_IP,
  maxPeerRoutes: DEFAULT_MAX_PEER_ROUTES,
  logBurst: 10,
  maxConnections: 1024,
  heartbeatMs: HEARTBEAT_INTERVAL_MS,
  log: (line) => console.error(line),
  now: () => performance.now(),
  answers: false,
  answerQuietMs: ANSWER_QUIET_MS,
  maxLiveAnswers: 0,
};

/** Messages a connection may send before it is ready (hello and authentication done). */
function allowedBeforeReady(kind: ClientMessageKind): boolean {
  switch (kind) {
    case "hello":
    case "ext-hello":
    case "auth":
      return true;
    case "add":
    case "del":
    case "heartbeat":
    case "compare":
      return false;
    default: {
      const never: never = kind; // a new message kind does not compile until handled above
      void never;
      return false;
    }
  }
}

/** Kinds of peer events in the rate-limited log (the counts in its summary line). */
export type PeerEvent =
  | "refused"
  | "connected"
  | "extensions"
  | "disconnected"
  | "idle"
  | "auth-failed";

/** Where a connection stands with authentication. */
export type AuthState = "none" | "challenged" | "verifying" | "ok";

/** Authentication lets the connection register routes (or is not required of it). */
function authDone(auth: AuthState, needsAuth: boolean): boolean {
  switch (auth) {
    case "ok":
      return true;
    case "none":
      return !needsAuth;
    case "challenged":
    case "verifying":
      return false;
    default: {
      const never: never = auth; // a new state does not compile until handled above
      void never;
      return false;
    }
  }
}

/** The owner of an authenticated tcpcopy instance's routes (shared by its connections). */
export interface InstanceOwner {
  readonly id: string;
  connections: number;
}

/** One accepted tunnel connection. */
export class TunnelConnection {
  readonly batcher: ReplyBatcher;
  readonly decoder = new ClientMessageDecoder();
  readonly remote: string;
  /** The peer's address (per-address cap). */
  readonly host: string;
  /** The address is on the allow-list. */
  listed = false;
  /** A secret is configured and the address is not on the allow-list. */
  needsAuth = false;
  auth: AuthState = "none";
  /** The challenge sent and the extension hello it answers. */
  nonce: Uint8Array | undefined;
  request: { extVersion: number; caps: number; prefix: number } | undefined;
  /** Set once authenticated: the instance owning this connection's routes. */
  owner: InstanceOwner | undefined;
  helloed = false;
  caps = 0;
  prefix = 0;
  lastHeard: number;
  readonly openedAt: number;
  /** Waiting for the socket to take the rest of {@link out}. */
  writing = false;
  /** Output taken from the batcher and not fully sent, and how much of it went. */
  out: Uint8Array | null = null;
  outAt = 0;
  closed = false;
  /** Has replies routed in the current cycle (listed in the server's dirty list). */
  dirty = false;
  /** Answer summaries of its routes (after its COMPARE message). */
  answers: AnswerTracker | undefined;

  /** The peer negotiated CLIENT_DEL: it deletes its routes when its sessions end. */
  get deletesRoutes(): boolean {
    return (this.caps & Cap.ROUTE_DEL) !== 0;
  }

  /** Passed the challenge-response (its routes outrank unauthenticated peers'). */
  get authenticated(): boolean {
    return this.auth === "ok";
  }

  /** Hello done, no challenge pending, authenticated when required: may register routes. */
  get ready(): boolean {
    return this.helloed && authDone(this.auth, this.needsAuth);
  }

  constructor(readonly conn: ReactorConn, opts: TunnelServerOptions) {
    const a = conn.remoteAddr;
    this.host = a.hostname;
    this.remote = formatHostPort(a.hostname, a.port);
    this.batcher = new ReplyBatcher({
      flushMs: opts.flushMs,
      maxRecords: opts.maxBatch,
      maxQueuedBytes: opts.maxQueuedBytes,
    });
    this.lastHeard = this.openedAt = opts.now();
  }
}

/** Server-wide counters (monotonic). */
export interface ServerCounters {
  accepted: number;
  rejected: number;
  bytesOut: number;
  frames: number;
  records: number;
  /** Frames dropped because a peer's output queue was full (closed connections). */
  framesDropped: number;
  writeErrors: number;
  delIgnored: number;
  /** Refused at accept: address not on the allow-list. */
  refusedAllow: number;
  /** Refused at accept: too many connections from that address. */
  refusedPerIp: number;
  /** Closed for a protocol error (garbage, messages out of order). */
  protocolErrors: number;
  /** Closed by the idle timeout (no hello/authentication, or silent). */
  idleClosed: number;
  /** Peers that passed the challenge-response / failed it. */
  authOk: number;
  authFailed: number;
  /** Closed because authentication was required and not attempted. */
  authRequired: number;
  /** Heartbeats not answered because output was already waiting for the peer. */
  heartbeatsCoalesced: number;
}

/** The tunnel server. */
export class TunnelServer {
  readonly opts: TunnelServerOptions;
  readonly dispatcher: Dispatcher<TunnelConnection>;
  readonly counters: ServerCounters = {
    accepted: 0,
    rejected: 0,
    bytesOut: 0,
    frames: 0,
    records: 0,
    framesDropped: 0,
    writeErrors: 0,
    delIgnored: 0,
    refusedAllow: 0,
    refusedPerIp: 0,
    protocolErrors: 0,
    idleClosed: 0,
    authOk: 0,
    authFailed: 0,
    authRequired: 0,
    heartbeatsCoalesced: 0,
  };
  /** Peer events, rate-limited. */
  readonly events: EventLog<PeerEvent>;
  readonly #listener: ReactorListener;
  /** Open connections per source address. */
  readonly #perIp = new Map<string, number>();
  /** Authenticated instances by id. */
  readonly #owners = new Map<string, InstanceOwner>();
  readonly #conns = new Set<TunnelConnection>();
  /** Flush deadline of replies routed outside a cycle (a reactor timer: 2 ms matters). */
  readonly #flushTimer = sharedReactor().timer(() => this.#onFlushDeadline());
  /** Answer counters of every peer, closed ones included. */
  readonly answerCounters: AnswerCounters = newAnswerCounters();
  /** Checks the quiet period of open answers while there are some. */
  readonly #answerTimer = sharedReactor().timer(() => this.#onAnswerTick());
  #inCycle = false;
  /** Listening and accepting (see {@link TunnelServer.open}). */
  #open = false;
  readonly #dirty: TunnelConnection[] = [];
  #houseTimer: ReturnType<typeof setInterval>;
  #closing = false;
  #overLimit = 0;
  /** One read buffer for every connection: reads are handled synchronously, one at a time. */
  readonly #readBuf = new Uint8Array(16384);

  private constructor(listener: ReactorListener, opts: TunnelServerOptions) {
    this.opts = opts;
    this.#listener = listener;
    this.events = new EventLog<PeerEvent>(opts.log, { burst: opts.logBurst });
    const d: Partial<DispatchOptions> = {
      routeTtlMs: opts.routeTtlMs,
      maxPeerRoutes: opts.maxPeerRoutes,
      // only authenticated peers get payload bytes: without a secret, keep none
      delayPrefix: opts.secret ? opts.maxPrefix : 0,
    };
    this.dispatcher = new Dispatcher<TunnelConnection>(d);
    const houseMs = Math.max(50, Math.min(1000, opts.heartbeatMs, opts.idleTimeoutMs / 4));
    this.#houseTimer = setInterval(() => this.#housekeeping(), houseMs);
  }

  /** Starts listening; throws an IoError naming the errno (e.g. EADDRINUSE) to the caller. */
  static listen(opts: Partial<TunnelServerOptions> = {}): TunnelServer {
    const server = TunnelServer.bind(opts);
    server.open();
    return server;
  }

  /**
   * Takes the port (throws an IoError naming the errno, e.g. EADDRINUSE) without listening:
   * a tcpcopy that connects is refused until {@link open}. intercept binds first, installs
   * its rules and binds its queue, then opens: a peer it accepted could otherwise replay
   * sessions whose replies leave the target before the rules are in (to the real clients).
   */
  static bind(opts: Partial<TunnelServerOptions> = {}): TunnelServer {
    const o = { ...DEFAULT_SERVER, ...opts };
    return new TunnelServer(ReactorListener.bind(o.hostname, o.port), o);
  }

  /** Listens and accepts peers (once; later calls do nothing). Throws an IoError. */
  open(): void {
    if (this.#open || this.#closing) return;
    // a deep accept queue: a burst of strangers' connects must not drop a real tcpcopy's SYN
    // (the kernel would retry it only a second later); each is refused at accept anyway
    this.#listener.listen(1024);
    this.#open = true;
    this.#listener.startAccepting(
      (conn) => this.#onConnection(conn),
      (e) => this.opts.log(`tunnel: accept failed: ${e.message}`),
    );
  }

  /** The bound port. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** Connections that completed the hello. */
  get peersConnected(): number {
    return this.dispatcher.peers.size;
  }

  /** Tunnel connections open (including those still in their hello or authentication). */
  get connectionsOpen(): number {
    return this.#conns.size;
  }

  /** What protects the tunnel, for stats and the start-up log. */
  get security(): { auth: "secret" | "none"; allow: "any" | "list" } {
    return {
      auth: this.opts.secret ? "secret" : "none",
      allow: this.opts.allow.empty ? "any" : "list",
    };
  }

  /** Frames and records sent so far, including closed connections. */
  batchTotals(): { frames: number; records: number; dropped: number } {
    let frames = this.counters.frames, records = this.counters.records;
    let dropped = this.counters.framesDropped;
    for (const c of this.#conns) {
      frames += c.batcher.frames;
      records += c.batcher.records;
      dropped += c.batcher.framesDropped;
    }
    return { frames, records, dropped };
  }

  /**
   * Routes one captured reply (bytes from the IP header). Inside a cycle it is written at
   * `endCycle()`; outside one, when its frame fills up or at the flush deadline.
   */
  reply(pkt: Uint8Array): void {
    const peer = this.dispatcher.reply(pkt, this.opts.now());
    if (!peer) return;
    if (peer.answers && peer.answers.openAnswers > 0 && !this.#answerTimer.armed) {
      this.#answerTimer.armIn(this.#answerTickMs);
    }
    if (this.#inCycle) {
      if (!peer.dirty) {
        peer.dirty = true;
        this.#dirty.push(peer);
      }
    } else if (peer.batcher.hasOutput) this.#write(peer);
    else if (!this.#flushTimer.armed) this.#flushTimer.armIn(this.opts.flushMs);
  }

  /** Starts a capture cycle: replies routed until `endCycle()` are held, then written. */
  beginCycle(): void {
    this.#inCycle = true;
  }

  /**
   * Ends a capture cycle: every connection that got replies since `beginCycle()` closes its
   * open frame and starts one write (or adds to the write in flight).
   */
  endCycle(): void {
    this.#inCycle = false;
    const dirty = this.#dirty;
    for (let i = 0; i < dirty.length; i++) {
      const c = dirty[i];
      c.dirty = false;
      c.answers?.settle();
      c.batcher.flush();
      if (!c.writing) this.#write(c);
    }
    dirty.length = 0;
  }

  /**
   * Logs a refused route (see DispatchCounters.routesContested): the first one, then every
   * 1000th, since one cause usually contests many routes.
   */
  #contested(c: TunnelConnection, client: Endpoint, holder: TunnelConnection): void {
    const n = this.dispatcher.counters.routesContested;
    if (n !== 1 && n % 1000 !== 0) return;
    const addr = client.addr.length === 4 ? formatIpv4(client.addr) : formatIpv6(client.addr);
    this.opts.log(
      `tunnel: peer ${c.remote} registered ${addr}:${client.port} while peer ${holder.remote} ` +
        `held it: refused (${n} so far); a hijack attempt, or two tcpcopy instances replaying ` +
        `onto the same client tuples (give each a different -f or its own -c addresses)`,
    );
  }

  /** Answer timer period: a quarter of the quiet period (10 ms at least). */
  get #answerTickMs(): number {
    return Math.max(10, this.opts.answerQuietMs / 4);
  }

  /** Sends the answers that went quiet; runs again while answers are open. */
  #onAnswerTick(): void {
    const now = this.opts.now();
    let open = false;
    for (const c of this.#conns) {
      const a = c.answers;
      if (!a || c.closed) continue;
      a.settle(); // answers of replies routed outside a cycle
      a.tick(now, this.opts.answerQuietMs);
      if (c.batcher.hasOutput) this.#write(c);
      if (a.openAnswers > 0) open = true;
    }
    if (open) this.#answerTimer.armIn(this.#answerTickMs);
  }

  /** Answers in progress, accumulators in use and flows known, over every peer. */
  answerGauges(): { open: number; live: number; flows: number } {
    let open = 0, live = 0, flows = 0;
    for (const c of this.#conns) {
      if (!c.answers) continue;
      open += c.answers.openAnswers;
      live += c.answers.live;
      flows += c.answers.flows;
    }
    return { open, live, flows };
  }

  #onFlushDeadline(): void {
    let open = false;
    for (const p of this.dispatcher.tick(this.opts.now())) this.#write(p);
    for (const p of this.dispatcher.peers) if (p.batcher.openRecords > 0) open = true;
    if (open) this.#flushTimer.armIn(this.opts.flushMs);
  }

  #onConnection(conn: ReactorConn): void {
    if (this.#closing) {
      conn.close();
      return;
    }
    const now = this.opts.now();
    const host = conn.remoteAddr.hostname;
    const o = this.opts;
    const listed = !o.allow.empty && o.allow.has(host);
    let refused: string | undefined;
    if (!o.allow.empty && !listed && !o.secret) {
      this.counters.refusedAllow++;
      refused = "not in --allow";
    } else if ((this.#perIp.get(host) ?? 0) >= o.maxPerIp) {
      this.counters.refusedPerIp++;
      refused = `${o.maxPerIp} connections from this address already (--max-conns-per-ip)`;
    } else if (this.#conns.size >= o.maxConnections) {
      this.#overLimit++;
      refused = `${o.maxConnections} connections open`;
    }
    if (refused !== undefined) {
      this.counters.rejected++;
      try {
        conn.close();
      } catch { /* closed */ }
      this.events.note("refused", `tunnel: connection refused from ${host}: ${refused}`, now);
      return;
    }
    try {
      conn.setNoDelay(true);
    } catch { /* closed already */ }
    this.counters.accepted++;
    const c = new TunnelConnection(conn, this.opts);
    c.listed = listed;
    c.needsAuth = o.secret !== undefined && !listed;
    this.#perIp.set(host, (this.#perIp.get(host) ?? 0) + 1);
    this.#conns.add(c);
    conn.startReading(this.#readBuf, (bytes) => {
      if (c.closed) return;
      c.lastHeard = this.opts.now();
      const err = this.#onBytes(c, bytes);
      if (err) {
        this.counters.rejected++;
        if (err.startsWith("authentication required")) this.counters.authRequired++;
        else this.counters.protocolErrors++;
        this.#close(c, err);
      }
    }, (error) => {
      this.#close(c, error === null ? "peer closed the connection" : `read error: ${error}`);
    });
  }

  /** Handles bytes from a peer; returns a reason to disconnect it, if any. */
  #onBytes(c: TunnelConnection, bytes: Uint8Array): string | undefined {
    // route messages are the decoder's reused records: used at once, nothing of them is kept
    // (the dispatcher keeps the key string, #contested formats the address there and then)
    const d = c.decoder, n = d.decode(bytes), messages = d.messages;
    const now = this.opts.now();
    for (let i = 0; i < n; i++) {
      const m = messages[i];
      if (c.closed) return undefined;
      if (!c.ready && !allowedBeforeReady(m.kind)) {
        return c.auth === "none"
          ? "authentication required (not on --allow; give tcpcopy --secret-file)"
          : "message before authentication completed";
      }
      switch (m.kind) {
        case "hello":
          c.helloed = true;
          this.dispatcher.addPeer(c);
          this.events.note(
            "connected",
            `tunnel: peer ${c.remote} connected (internal version ${m.version})`,
            now,
          );
          break;
        case "ext-hello": {
          if (c.caps !== 0 || c.decoder.extensions || c.auth !== "none") {
            return "second extension hello";
          }
          if (m.extVersion === 0) return "extension hello with version 0";
          if (m.caps & Cap.AUTH && this.opts.secret) {
            c.auth = "challenged";
            c.nonce = randomBytes(NONCE_SIZE);
            c.request = { extVersion: m.extVersion, caps: m.caps, prefix: m.prefix };
            c.decoder.authExpected = true;
            c.batcher.addFrame(encodeChallenge(c.nonce));
            break;
          }
          if (c.needsAuth) return "authentication required (the peer did not ask for it)";
          this.#ack(c, grant(m, this.opts.maxPrefix, false));
          break;
        }
        case "auth":
          if (c.auth !== "challenged") return "unexpected auth message";
          c.auth = "verifying";
          void this.#verify(c, m.instanceId, m.clientNonce, m.proof);
          break;
        case "add": {
          if (m.client.addr.length === 16 && !(c.caps & Cap.IPV6)) {
            return "IPv6 route not negotiated";
          }
          const holder = this.dispatcher.addRoute(c, routeKeyOf(m.client, m.target), now);
          if (holder) this.#contested(c, m.client, holder);
          break;
        }
        case "del":
          if (c.caps & Cap.ROUTE_DEL) {
            this.dispatcher.deleteRoute(c, routeKeyOf(m.client, m.target));
          } else this.counters.delIgnored++;
          break;
        case "compare":
          if (!(c.caps & Cap.ANSWERS)) return "answer summaries not negotiated";
          if (c.answers) return "second compare message";
          c.answers = new AnswerTracker(
            {
              bytes: m.bytes,
              mode: m.mode,
              ...(this.opts.maxLiveAnswers > 0 ? { maxLive: this.opts.maxLiveAnswers } : {}),
            },
            this.answerCounters,
            c.batcher, // frames are written in place into its output buffer
          );
          this.events.note(
            "extensions",
            `tunnel: peer ${c.remote} asks for answer summaries (${m.bytes} first bytes, ` +
              `digest ${m.mode}, at most ${c.answers.maxLive} open)`,
            now,
          );
          break;
        case "heartbeat":
          if (!(c.caps & Cap.HEARTBEAT)) return "heartbeat not negotiated";
          // answered only when nothing is waiting to go out: pending bytes tell the peer we
          // are alive anyway, and a peer that sends heartbeats and never reads queues nothing.
          // A peer that asked for answer summaries (authenticated) measures the tunnel's round
          // trip with them: always answered, behind what is queued (bounded by the batcher).
          if (c.batcher.queuedBytes === 0 || c.answers) c.batcher.addFrame(HEARTBEAT_FRAME);
          else this.counters.heartbeatsCoalesced++;
          break;
        default: {
          const never: never = m;
          return `unknown message ${(never as ClientMessage).kind}`;
        }
      }
    }
    // delayed replies handed over by a CLIENT_ADD go out now: this read is their cycle
    if (c.answers && c.answers.openAnswers > 0 && !this.#answerTimer.armed) {
      this.#answerTimer.armIn(this.#answerTickMs);
    }
    c.batcher.flush();
    if (c.batcher.hasOutput) this.#write(c);
    return d.error;
  }

  /** Sends the EXT_ACK (with the server proof when authenticated) and switches framing. */
  #ack(
    c: TunnelConnection,
    g: { extVersion: number; caps: number; prefix: number },
    proof?: Uint8Array,
  ): void {
    c.caps = g.caps;
    c.prefix = g.prefix;
    c.batcher.addFrame(encodeExtAck(g.extVersion, g.caps, g.prefix, proof));
    c.batcher.reconfigure({ ext: true, prefix: g.prefix });
    c.decoder.extensions = true;
    this.events.note(
      "extensions",
      `tunnel: peer ${c.remote} extensions v${g.extVersion} caps 0x${g.caps.toString(16)}` +
        ` prefix ${g.prefix}${c.auth === "ok" ? ` authenticated as ${c.owner?.id}` : ""}`,
      this.opts.now(),
    );
  }

  /** Checks the AUTH message's proof (WebCrypto is asynchronous) and answers. */
  async #verify(
    c: TunnelConnection,
    instanceId: Uint8Array,
    clientNonce: Uint8Array,
    proof: Uint8Array,
  ): Promise<void> {
    const key = this.opts.secret!;
    const t = { serverNonce: c.nonce!, clientNonce, instanceId, request: c.request! };
    const g = grant(c.request!, this.opts.maxPrefix, true, this.opts.answers);
    let ok = false;
    let answer: Uint8Array | undefined;
    try {
      ok = timingSafeEqual(await clientProof(key, t), proof);
      if (ok) answer = await serverProof(key, t, g);
    } catch {
      ok = false;
    }
    if (c.closed || this.#closing) return;
    if (!ok || !answer) {
      this.counters.authFailed++;
      this.counters.rejected++;
      this.#close(c, "authentication failed (wrong secret?)", "auth-failed");
      return;
    }
    this.counters.authOk++;
    c.auth = "ok";
    const id = Array.from(instanceId, (b) => b.toString(16).padStart(2, "0")).join("");
    let owner = this.#owners.get(id);
    if (!owner) this.#owners.set(id, owner = { id, connections: 0 });
    owner.connections++;
    c.owner = owner;
    this.#ack(c, g, answer);
    c.batcher.flush();
    this.#write(c);
  }

  /**
   * Writes the connection's pending output now, as far as the send buffer takes it; the rest
   * goes out when the socket is writable again (the batcher's bound caps what piles up).
   */
  #write(c: TunnelConnection): void {
    if (c.writing || c.closed) return;
    try {
      for (;;) {
        if (c.out === null) {
          const next = c.batcher.takeOutput();
          if (next === undefined) return;
          c.out = next;
          c.outAt = 0;
        }
        const out = c.out;
        const n = c.conn.send(out.subarray(c.outAt));
        c.outAt += n;
        if (c.outAt < out.length) {
          c.writing = true;
          c.conn.whenWritable(() => {
            c.writing = false;
            this.#write(c);
          });
          return;
        }
        c.out = null;
        c.batcher.written(out.length);
        this.counters.bytesOut += out.length;
      }
    } catch (e) {
      this.counters.writeErrors++;
      this.#close(c, `write error: ${(e as Error).message}`);
    }
  }

  #close(c: TunnelConnection, reason: string, kind: PeerEvent = "disconnected"): void {
    if (c.closed) return;
    c.closed = true;
    this.#conns.delete(c);
    const n = (this.#perIp.get(c.host) ?? 1) - 1;
    if (n > 0) this.#perIp.set(c.host, n);
    else this.#perIp.delete(c.host);
    const before = this.dispatcher.counters.routesDeleted;
    c.answers?.clear();
    this.dispatcher.removePeer(c);
    const routes = this.dispatcher.counters.routesDeleted - before;
    if (c.owner && --c.owner.connections === 0) this.#owners.delete(c.owner.id);
    this.counters.frames += c.batcher.frames;
    this.counters.records += c.batcher.records;
    this.counters.framesDropped += c.batcher.framesDropped;
    try {
      c.conn.close();
    } catch { /* already closed */ }
    if (!this.#closing) {
      this.events.note(
        kind,
        `tunnel: peer ${c.remote} disconnected: ${reason} (${routes} routes removed)`,
        this.opts.now(),
      );
    }
  }

  #housekeeping(): void {
    const now = this.opts.now();
    this.dispatcher.tick(now);
    const idle = this.opts.idleTimeoutMs;
    const hb = this.opts.heartbeatMs;
    const silent = Math.max(2 * hb, Math.min(idle, 3 * hb));
    for (const c of this.#conns) {
      if (!c.ready && now - c.openedAt > idle) {
        this.counters.rejected++;
        this.counters.idleClosed++;
        this.#close(c, c.helloed ? "no authentication in time" : "no hello in time", "idle");
        continue;
      }
      c.answers?.sweep(now);
      if (c.caps & Cap.HEARTBEAT && now - c.lastHeard > silent) {
        this.counters.idleClosed++;
        this.#close(c, "heartbeat timeout", "idle");
      } else if (c.batcher.hasOutput) this.#write(c);
    }
    this.events.tick(now);
  }

  /** Closes one tunnel connection as if it had failed: its routes go with it (logged). */
  disconnect(c: TunnelConnection, reason: string): void {
    this.#close(c, reason);
  }

  /** Stops accepting new connections; the ones up stay (intercept's drain on SIGTERM). */
  stopAccepting(): void {
    try {
      this.#listener.close();
    } catch { /* closed */ }
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#houseTimer);
    this.#flushTimer.cancel();
    this.#answerTimer.cancel();
    try {
      this.#listener.close();
    } catch { /* closed */ }
    for (const c of [...this.#conns]) this.#close(c, "server closing");
    this.events.flush();
    await Promise.resolve();
  }
}
