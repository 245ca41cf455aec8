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
 * Latency: the capture source brackets each drain of its queue with `beginCycle()` and
 * `endCycle()`; at `endCycle()` every connection that got replies closes its open frame and
 * starts one write. A drain at a high rate returns many packets, so frames stay full; at a
 * low rate nothing is held back. The flush deadline (`flushMs`) only applies to replies
 * routed outside a cycle.
 */
import { ReplyBatcher } from "./batcher.ts";
import { Dispatcher, type DispatchOptions } from "./dispatch.ts";
import { ClientMessageDecoder, type Endpoint } from "./messages.ts";
import { Cap, grant, HEARTBEAT_INTERVAL_MS } from "./negotiation.ts";
import { encodeExtAck, encodeExtFrame, FrameKind, MAX_BATCH } from "./replies.ts";
import { routeKeyOf } from "./route_key.ts";
import { formatHostPort, formatIpv4, formatIpv6 } from "../wire/addr.ts";
import { type ReactorConn, ReactorListener } from "../io/stream.ts";
import { sharedReactor } from "../io/reactor.ts";

/** The C original's tunnel port. */
export const DEFAULT_TUNNEL_PORT = 36524;

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
  /** A connection that has not said hello within this time is closed. */
  helloTimeoutMs: number;
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
}

/** Defaults: 0.0.0.0:36524, 128-byte prefix limit, 2 ms, 16 records, 1 MiB per connection. */
export const DEFAULT_SERVER: TunnelServerOptions = {
  port: DEFAULT_TUNNEL_PORT,
  hostname: "0.0.0.0",
  maxPrefix: 128,
  flushMs: 2,
  maxBatch: MAX_BATCH,
  maxQueuedBytes: 1 << 20,
  routeTtlMs: 660_000,
  helloTimeoutMs: 10_000,
  maxConnections: 1024,
  heartbeatMs: HEARTBEAT_INTERVAL_MS,
  log: (line) => console.error(line),
  now: () => performance.now(),
};

/** One accepted tunnel connection. */
export class TunnelConnection {
  readonly batcher: ReplyBatcher;
  readonly decoder = new ClientMessageDecoder();
  readonly remote: string;
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

  /** The peer negotiated CLIENT_DEL: it deletes its routes when its sessions end. */
  get deletesRoutes(): boolean {
    return (this.caps & Cap.ROUTE_DEL) !== 0;
  }

  constructor(readonly conn: ReactorConn, opts: TunnelServerOptions) {
    const a = conn.remoteAddr;
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
  };
  readonly #listener: ReactorListener;
  readonly #conns = new Set<TunnelConnection>();
  /** Flush deadline of replies routed outside a cycle (a reactor timer: 2 ms matters). */
  readonly #flushTimer = sharedReactor().timer(() => this.#onFlushDeadline());
  #inCycle = false;
  readonly #dirty: TunnelConnection[] = [];
  #houseTimer: ReturnType<typeof setInterval>;
  #closing = false;
  #overLimit = 0;
  /** One read buffer for every connection: reads are handled synchronously, one at a time. */
  readonly #readBuf = new Uint8Array(16384);

  private constructor(listener: ReactorListener, opts: TunnelServerOptions) {
    this.opts = opts;
    this.#listener = listener;
    const d: Partial<DispatchOptions> = {
      routeTtlMs: opts.routeTtlMs,
      delayPrefix: opts.maxPrefix,
    };
    this.dispatcher = new Dispatcher<TunnelConnection>(d);
    this.#houseTimer = setInterval(() => this.#housekeeping(), Math.min(1000, opts.heartbeatMs));
    listener.startAccepting(
      (conn) => this.#onConnection(conn),
      (e) => this.opts.log(`tunnel: accept failed: ${e.message}`),
    );
  }

  /** Starts listening; throws an IoError naming the errno (e.g. EADDRINUSE) to the caller. */
  static listen(opts: Partial<TunnelServerOptions> = {}): TunnelServer {
    const o = { ...DEFAULT_SERVER, ...opts };
    const l = ReactorListener.listen(o.hostname, o.port);
    return new TunnelServer(l, o);
  }

  /** The bound port. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** Connections that completed the hello. */
  get peersConnected(): number {
    return this.dispatcher.peers.size;
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
      c.batcher.flush();
      if (!c.writing) this.#write(c);
    }
    dirty.length = 0;
  }

  /**
   * Logs a contested route (see DispatchCounters.routesContested): the first one, then
   * every 1000th, since one cause usually contests many routes.
   */
  #contested(c: TunnelConnection, client: Endpoint): void {
    const n = this.dispatcher.counters.routesContested;
    if (n !== 1 && n % 1000 !== 0) return;
    const addr = client.addr.length === 4 ? formatIpv4(client.addr) : formatIpv6(client.addr);
    this.opts.log(
      `tunnel: peer ${c.remote} registered ${addr}:${client.port} while another tcpcopy ` +
        `still held it (${n} so far): two instances replay onto the same client tuples; ` +
        `give each a different -f (lanes are -f mod 8) or its own -c addresses`,
    );
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
    if (this.#conns.size >= this.opts.maxConnections) {
      this.counters.rejected++;
      conn.close();
      const n = ++this.#overLimit;
      if (n === 1 || n % 1000 === 0) {
        this.opts.log(
          `tunnel: connection refused: ${this.opts.maxConnections} connections open ` +
            `(${n} refused so far)`,
        );
      }
      return;
    }
    try {
      conn.setNoDelay(true);
    } catch { /* closed already */ }
    this.counters.accepted++;
    const c = new TunnelConnection(conn, this.opts);
    this.#conns.add(c);
    conn.startReading(this.#readBuf, (bytes) => {
      if (c.closed) return;
      c.lastHeard = this.opts.now();
      const err = this.#onBytes(c, bytes);
      if (err) {
        this.counters.rejected++;
        this.#close(c, err);
      }
    }, (error) => {
      this.#close(c, error === null ? "peer closed the connection" : `read error: ${error}`);
    });
  }

  /** Handles bytes from a peer; returns a reason to disconnect it, if any. */
  #onBytes(c: TunnelConnection, bytes: Uint8Array): string | undefined {
    const { items, error } = c.decoder.push(bytes);
    const now = this.opts.now();
    for (const m of items) {
      switch (m.kind) {
        case "hello":
          c.helloed = true;
          this.dispatcher.addPeer(c);
          this.opts.log(`tunnel: peer ${c.remote} connected (internal version ${m.version})`);
          break;
        case "ext-hello": {
          if (c.caps !== 0 || c.decoder.extensions) return "second extension hello";
          if (m.extVersion === 0) return "extension hello with version 0";
          const g = grant(m, this.opts.maxPrefix);
          c.caps = g.caps;
          c.prefix = g.prefix;
          c.batcher.addFrame(encodeExtAck(g.extVersion, g.caps, g.prefix));
          c.batcher.reconfigure({ ext: true, prefix: g.prefix });
          c.decoder.extensions = true;
          this.opts.log(
            `tunnel: peer ${c.remote} extensions v${g.extVersion} caps 0x${g.caps.toString(16)}` +
              ` prefix ${g.prefix}`,
          );
          break;
        }
        case "add":
          if (m.client.addr.length === 16 && !(c.caps & Cap.IPV6)) {
            return "IPv6 route not negotiated";
          }
          if (this.dispatcher.addRoute(c, routeKeyOf(m.client, m.target), now)) {
            this.#contested(c, m.client);
          }
          break;
        case "del":
          if (c.caps & Cap.ROUTE_DEL) {
            this.dispatcher.deleteRoute(c, routeKeyOf(m.client, m.target));
          } else this.counters.delIgnored++;
          break;
        case "heartbeat":
          if (!(c.caps & Cap.HEARTBEAT)) return "heartbeat not negotiated";
          c.batcher.addFrame(encodeExtFrame(FrameKind.HEARTBEAT));
          break;
      }
    }
    // delayed replies handed over by a CLIENT_ADD go out now: this read is their cycle
    c.batcher.flush();
    if (c.batcher.hasOutput) this.#write(c);
    return error;
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

  #close(c: TunnelConnection, reason: string): void {
    if (c.closed) return;
    c.closed = true;
    this.#conns.delete(c);
    const routes = this.dispatcher.routes.countOf(c);
    this.dispatcher.removePeer(c);
    this.counters.frames += c.batcher.frames;
    this.counters.records += c.batcher.records;
    this.counters.framesDropped += c.batcher.framesDropped;
    try {
      c.conn.close();
    } catch { /* already closed */ }
    if (!this.#closing) {
      this.opts.log(`tunnel: peer ${c.remote} disconnected: ${reason} (${routes} routes removed)`);
    }
  }

  #housekeeping(): void {
    const now = this.opts.now();
    this.dispatcher.tick(now);
    for (const c of this.#conns) {
      if (!c.helloed && now - c.openedAt > this.opts.helloTimeoutMs) {
        this.counters.rejected++;
        this.#close(c, "no hello");
      } else if (c.caps & Cap.HEARTBEAT && now - c.lastHeard > 3 * this.opts.heartbeatMs) {
        this.#close(c, "heartbeat timeout");
      } else if (c.batcher.hasOutput) this.#write(c);
    }
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
    try {
      this.#listener.close();
    } catch { /* closed */ }
    for (const c of [...this.#conns]) this.#close(c, "server closing");
    await Promise.resolve();
  }
}
