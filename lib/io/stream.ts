/**
 * TCP streams on the reactor, shaped like the parts of `Deno.TcpConn` and `Deno.TcpListener`
 * the tunnel uses (`read`, `write`, `close`, `setNoDelay`, `remoteAddr`; `accept`, `addr`).
 *
 * The tunnel's hot path is callback-driven: {@link ReactorConn.startReading} hands every chunk
 * read to a handler straight from the reactor round that saw the socket readable, and
 * {@link ReactorConn.send} writes synchronously, with {@link ReactorConn.whenWritable} to resume
 * after a full send buffer. No promise per read or write: measured with a ping-pong here, ~28 µs
 * CPU per round trip, against ~43 µs through promises (and ~44 µs through Deno.TcpConn).
 *
 * The descriptor is poll()ed together with the capture and NFQUEUE descriptors.
 *
 * @module
 */

import { describeErrno } from "./libc.ts";
import { PollEvents, sharedReactor, type Watch } from "./reactor.ts";
import { FdWaiter } from "./readiness.ts";
import { type SocketAddress, TcpSocket } from "./tcp.ts";
import { parseIp } from "../wire/addr.ts";

/** Raised by writes on a stream closed locally, and by a connect ended early. */
export class StreamClosed extends Error {
  constructor() {
    super("connection closed");
    this.name = "StreamClosed";
  }
}

/** One TCP connection. */
export class ReactorConn {
  readonly remoteAddr: SocketAddress;
  readonly #sock: TcpSocket;
  readonly #writable: FdWaiter;
  #reading: Watch | null = null;
  #closed = false;

  constructor(sock: TcpSocket) {
    this.#sock = sock;
    this.remoteAddr = sock.remoteAddr();
    this.#writable = new FdWaiter(sock.fd, PollEvents.OUT);
  }

  /** The socket's descriptor (for diagnostics). */
  get fd(): number {
    return this.#sock.fd;
  }

  /**
   * Reads from the reactor: on every readable round, reads until the socket is drained and
   * hands each chunk (a view into `buf`, valid during the call) to `onData`; at the end of the
   * stream or on an error calls `onEnd` once, with null or the error's message, and stops.
   * Closing the connection stops it without calling `onEnd`.
   */
  startReading(
    buf: Uint8Array,
    onData: (chunk: Uint8Array) => void,
    onEnd: (error: string | null) => void,
  ): void {
    if (this.#closed) return;
    const sock = this.#sock;
    const watch = sharedReactor().watch(sock.fd, PollEvents.IN, () => {
      let n: number;
      try {
        do {
          if (this.#closed) return;
          n = sock.read(buf);
          if (n > 0) onData(buf.subarray(0, n));
        } while (n === buf.length);
      } catch (e) {
        watch.remove();
        if (!this.#closed) onEnd((e as Error).message);
        return;
      }
      if (n === 0) {
        watch.remove();
        if (!this.#closed) onEnd(null);
      }
    });
    this.#reading = watch;
  }

  /**
   * Writes what the send buffer takes now (one syscall): bytes accepted, 0 when it is full.
   * Throws a TcpError on a reset or a broken pipe, a {@link StreamClosed} once closed.
   */
  send(bytes: Uint8Array): number {
    if (this.#closed) throw new StreamClosed();
    return bytes.length === 0 ? 0 : this.#sock.write(bytes);
  }

  /** Calls `then` once from the reactor when the socket can take more bytes. */
  whenWritable(then: () => void): void {
    if (this.#closed) return;
    this.#writable.wait().then((ok) => {
      if (ok && !this.#closed) then();
    });
  }

  /** Disables (or re-enables) Nagle's algorithm. */
  setNoDelay(on = true): void {
    this.#sock.setNoDelay(on);
  }

  /** Closes the socket; reading stops, a pending whenWritable() never calls back. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reading?.remove();
    void this.#writable.close();
    this.#sock.close();
  }
}

/** A listening socket. */
export class ReactorListener {
  readonly addr: SocketAddress;
  readonly #sock: TcpSocket;
  #accepting: Watch | null = null;
  #closed = false;

  private constructor(sock: TcpSocket) {
    this.#sock = sock;
    this.addr = sock.localAddr();
  }

  /**
   * Listens on an IP literal ("0.0.0.0", "::", "127.0.0.1"); throws IoError (EADDRINUSE...).
   * `backlog`: completed handshakes the kernel queues before accept (capped by somaxconn).
   */
  static listen(hostname: string, port: number, backlog = 128): ReactorListener {
    return new ReactorListener(TcpSocket.listen(hostname, port, backlog));
  }

  /**
   * Bound, not yet listening (connects are refused until {@link listen}): a program can take
   * its port first and open it once it is ready to serve. Throws IoError (EADDRINUSE...).
   */
  static bind(hostname: string, port: number): ReactorListener {
    return new ReactorListener(TcpSocket.bind(hostname, port));
  }

  /** listen(2) on a listener from {@link bind}; throws IoError. */
  listen(backlog = 128): void {
    this.#sock.listen(backlog);
  }

  /**
   * Accepts from the reactor: every pending connection goes to `onConnection`; a failing
   * accept (EMFILE...) goes to `onError` and accepting goes on.
   */
  startAccepting(onConnection: (c: ReactorConn) => void, onError: (e: Error) => void): void {
    if (this.#closed) return;
    this.#accepting = sharedReactor().watch(this.#sock.fd, PollEvents.IN, () => {
      for (let i = 0; i < 64 && !this.#closed; i++) {
        let s: TcpSocket | null;
        try {
          s = this.#sock.accept();
        } catch (e) {
          onError(e as Error);
          return;
        }
        if (s === null) return;
        try {
          onConnection(new ReactorConn(s));
        } catch (e) {
          s.close();
          onError(e as Error);
        }
      }
    });
  }

  /** Stops listening. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#accepting?.remove();
    this.#sock.close();
  }
}

/**
 * Connects to `hostname` (an IP literal, or a DNS name resolved to its first A/AAAA record)
 * and `port`. Rejects with an Error whose message names the errno, e.g.
 * "ECONNREFUSED (Connection refused)", or "timed out" after `timeoutMs`.
 */
export async function connectTcp(
  hostname: string,
  port: number,
  timeoutMs = 5000,
): Promise<ReactorConn> {
  const ip = typeof parseIp(hostname) === "string" ? await resolve(hostname) : hostname;
  const sock = TcpSocket.connect(ip, port);
  const ready = new FdWaiter(sock.fd, PollEvents.OUT);
  try {
    if (!await ready.wait(timeoutMs)) throw new StreamClosed();
    const err = sock.connectError();
    if (err !== 0) throw new Error(describeErrno(err));
    // writable without an error: connected, or the timeout ran out first
    if (!isConnected(sock)) throw new Error(`timed out after ${timeoutMs} ms`);
  } catch (e) {
    await ready.close();
    sock.close();
    throw e;
  }
  await ready.close();
  return new ReactorConn(sock);
}

function isConnected(sock: TcpSocket): boolean {
  try {
    sock.remoteAddr();
    return true;
  } catch {
    return false;
  }
}

/** A host name from /etc/hosts, else from DNS (first A, then AAAA record). */
async function resolve(name: string): Promise<string> {
  try {
    for (const line of (await Deno.readTextFile("/etc/hosts")).split("\n")) {
      const [ip, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
      if (names.includes(name) && typeof parseIp(ip) !== "string") return ip;
    }
  } catch { /* no hosts file */ }
  for (const type of ["A", "AAAA"] as const) {
    try {
      const found = await Deno.resolveDns(name, type);
      if (found.length > 0) return found[0];
    } catch { /* try the other family */ }
  }
  throw new Error(`cannot resolve host name "${name}"`);
}
