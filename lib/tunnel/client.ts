/**
 * tcpcopy side of the tunnel. Connects to one or more intercepts with `connections` TCP
 * connections each (tcpcopy's `-C`, default 2), says hello (v6) and asks for extensions
 * (harmless to a C intercept), registers routes round-robin over each intercept's
 * connections, and hands every received reply to `onReply` as bytes starting at the IP
 * header (plus the payload prefix when negotiated).
 *
 * Routes are spread over an intercept's connections by a hash of the tuple rather than a
 * plain round-robin counter: the spread is as even, and a route's CLIENT_DEL then travels on
 * the connection that owns the route (intercept only lets the owner delete it).
 *
 *   const t = await TunnelClient.connect({ servers: [{ hostname: "10.0.0.9" }], onReply });
 *   t.addRoute({ addr, port }, { addr, port });   // before forwarding the SYN
 *   t.delRoute(...);                              // when the session ends
 *   t.connected; t.counters; await t.close();
 *
 * With a shared secret (`secret`, tcpcopy --secret-file) every connection asks for Cap.AUTH,
 * answers intercept's challenge with this instance's id and proof (auth.ts) and checks
 * intercept's proof in the EXT_ACK; a connection is used for routes only once both proofs
 * passed, and one whose intercept does not authenticate (a C intercept, no secret there, a
 * wrong secret) is closed with a logged reason. The instance id is the same on every
 * connection of this client: intercept lets any of them update the instance's routes.
 */
import {
  encodeAuth,
  encodeExtHello,
  encodeHeartbeat,
  encodeHello,
  encodeRoute,
  type Endpoint,
} from "./messages.ts";
import { ALL_CAPS, Cap, EXT_VERSION, HEARTBEAT_INTERVAL_MS } from "./negotiation.ts";
import { ServerStreamDecoder } from "./replies.ts";
import {
  clientProof,
  INSTANCE_ID_SIZE,
  NONCE_SIZE,
  randomBytes,
  serverProof,
  timingSafeEqual,
} from "./auth.ts";
import { DEFAULT_TUNNEL_PORT } from "./server.ts";
import { connectTcp, type ReactorConn } from "../io/stream.ts";
import { formatHostPort } from "../wire/addr.ts";

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
   * the read buffer: copy what you keep); `server` indexes `servers`.
   */
  onReply: (bytes: Uint8Array, server: number) => void;
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
  /** The shared secret as an HMAC key (auth.ts): every connection must authenticate. */
  secret?: CryptoKey;
  /** This instance's id in the AUTH message (default: random per client). */
  instanceId?: Uint8Array;
}

/** Client counters (monotonic). */
export interface ClientCounters {
  replies: number;
  routesAdded: number;
  routesDeleted: number;
  routeFailures: number;
  reconnects: number;
  protocolErrors: number;
  /** Connections closed because the intercept did not authenticate. */
  authFailures: number;
}

class Link {
  conn: ReactorConn | undefined;
  decoder = new ServerStreamDecoder();
  caps = 0;
  prefix = 0;
  queue: Uint8Array[] = [];
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
  constructor(readonly server: number) {}
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
    authFailures: 0,
  };
  /** This instance's id (sent in the AUTH message with a secret). */
  readonly instanceId: Uint8Array;
  readonly #opts:
    & Required<Omit<TunnelClientOptions, "onAllDown" | "onReadDone" | "secret" | "instanceId">>
    & TunnelClientOptions;
  readonly #links: Link[][];
  #closed = false;
  /** Inside connect(): a connection that fails there is reported by connect(), not onAllDown. */
  #connecting = true;
  #timer: ReturnType<typeof setInterval>;
  #pending = new Set<Promise<void>>();
  #retryTimers = new Set<ReturnType<typeof setTimeout>>();
  /** A microtask will flush the queued messages (see {@link flush}). */
  #flushQueued = false;

  private constructor(opts: TunnelClientOptions) {
    this.#opts = {
      connections: 2,
      caps: ALL_CAPS & ~Cap.PAYLOAD_PREFIX,
      prefix: 0,
      lonely: false,
      log: (line: string) => console.error(line),
      maxQueuedBytes: 1 << 20,
      heartbeatMs: HEARTBEAT_INTERVAL_MS,
      ...opts,
    };
    if (opts.prefix && opts.caps === undefined) this.#opts.caps = ALL_CAPS;
    if (opts.secret) this.#opts.caps |= Cap.AUTH;
    else this.#opts.caps &= ~Cap.AUTH;
    this.instanceId = opts.instanceId ?? randomBytes(INSTANCE_ID_SIZE);
    const n = Math.max(1, Math.min(11, this.#opts.connections));
    this.#links = opts.servers.map((_, s) => Array.from({ length: n }, () => new Link(s)));
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
    c.#connecting = false;
    if (c.connected === 0 && !c.#opts.lonely) queueMicrotask(() => c.#opts.onAllDown?.());
    return c;
  }

  /** Open connections usable for routes (authenticated when a secret is set). */
  get connected(): number {
    return this.#links.flat().filter((l) => this.#usable(l)).length;
  }

  #usable(l: Link): boolean {
    return l.conn !== undefined && (this.#opts.secret === undefined || l.authed);
  }

  /** Capabilities granted per server (0 for a C intercept or while not yet acknowledged). */
  capsOf(server: number): number {
    const l = this.#links[server].find((l) => l.conn);
    return l ? l.caps : 0;
  }

  /**
   * Registers a route on every connected intercept; false if no intercept took it (or the
   * two endpoints are not both IPv4 or both IPv6).
   */
  addRoute(client: Endpoint, target: Endpoint): boolean {
    const ok = this.#sendRoute("add", client, target);
    if (ok) this.counters.routesAdded++;
    else this.counters.routeFailures++;
    return ok;
  }

  /** Deletes a route where the intercept supports it (extensions); false if none did. */
  delRoute(client: Endpoint, target: Endpoint): boolean {
    const ok = this.#sendRoute("del", client, target);
    if (ok) this.counters.routesDeleted++;
    return ok;
  }

  #sendRoute(kind: "add" | "del", client: Endpoint, target: Endpoint): boolean {
    let any = false;
    const v6 = client.addr.length === 16;
    const len = client.addr.length;
    if ((len !== 4 && len !== 16) || target.addr.length !== len) return false;
    const msg = encodeRoute(kind, client, target);
    const start = spread(client, target);
    for (const links of this.#links) {
      for (let i = 0; i < links.length; i++) {
        const l = links[(start + i) % links.length];
        if (!this.#usable(l)) continue;
        if (v6 && !(l.caps & Cap.IPV6)) continue;
        if (kind === "del" && !(l.caps & Cap.ROUTE_DEL)) continue;
        if (!this.#send(l, msg)) continue;
        any = true;
        break;
      }
    }
    return any;
  }

  #send(l: Link, bytes: Uint8Array): boolean {
    if (!l.conn || l.queued + bytes.length > this.#opts.maxQueuedBytes) return false;
    l.queue.push(bytes);
    l.queued += bytes.length;
    if (!l.writing && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushAll);
    }
    return true;
  }

  /**
   * Sends every queued message now. Messages queued in one stretch of work (the routes of a
   * capture drain) go out together, in one syscall per connection, at the latest in a
   * microtask; tcpcopy calls this before it sends the packets those routes belong to.
   */
  flush(): void {
    for (const links of this.#links) for (const l of links) if (l.queue.length) this.#flush(l);
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
      while (l.queue.length) {
        let out: Uint8Array;
        if (l.queue.length === 1) out = l.queue[0];
        else {
          out = new Uint8Array(l.queue.reduce((n, p) => n + p.length, 0));
          let at = 0;
          for (const p of l.queue) {
            out.set(p, at);
            at += p.length;
          }
        }
        const n = conn.send(out);
        l.queued -= n;
        if (n < out.length) {
          l.queue = [out.subarray(n)];
          l.writing = true;
          conn.whenWritable(() => {
            l.writing = false;
            if (l.conn === conn) this.#flush(l);
          });
          return;
        }
        l.queue = [];
      }
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
      l.queue = [];
      l.queued = 0;
      l.retryMs = 500;
      l.authed = false;
      l.nonce = l.serverNonce = undefined;
      l.lastHeard = l.openedAt = performance.now();
      if (retry) this.counters.reconnects++;
      this.#send(l, encodeHello());
      if (this.#opts.caps) {
        l.decoder.expectAck = true;
        this.#send(l, encodeExtHello(EXT_VERSION, this.#opts.caps, this.#opts.prefix));
      }
      this.#read(l, conn);
    } catch (e) {
      if (!retry) {
        this.#opts.log(
          `tunnel: cannot connect to ${formatHostPort(s.hostname, port)}: ${(e as Error).message}`,
        );
      }
      this.#retry(l);
    }
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
        this.#opts.onReply(bytes, l.server);
      }, (it) => {
        if (it.kind === "challenge") void this.#answer(l, conn, it.nonce);
        else if (it.kind === "ext-ack") {
          if (this.#opts.secret) void this.#checkAck(l, conn, it);
          else {
            l.caps = it.caps;
            l.prefix = it.prefix;
          }
        }
      });
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
  }

  #authFailed(l: Link, reason: string): void {
    this.counters.authFailures++;
    this.#drop(l, reason);
  }

  #drop(l: Link, reason: string): void {
    const conn = l.conn;
    if (!conn) return;
    l.conn = undefined;
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
      else this.#send(l, encodeHeartbeat());
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

/** Connection index seed for a tuple (FNV-1a over addresses and ports). */
function spread(client: Endpoint, target: Endpoint): number {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h = Math.imul(h ^ x, 0x01000193);
  };
  for (const b of client.addr) mix(b);
  for (const b of target.addr) mix(b);
  mix(client.port >> 8);
  mix(client.port & 0xff);
  mix(target.port >> 8);
  mix(target.port & 0xff);
  return h >>> 0;
}
