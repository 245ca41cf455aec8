/**
 * Nonblocking TCP sockets owned through libc, for the synchronous poll() reactor.
 *
 * A {@link TcpSocket} is a bare file descriptor: no Deno resource, no promise. The reactor
 * poll()s it together with the capture ring and NFQUEUE fds and then calls the sync methods
 * here, which never block: "nothing now" is a return value (-1, 0 or null), a real failure
 * is a {@link TcpError} (an {@link IoError} that carries the errno).
 *
 * Hot path: {@link TcpSocket.read} and {@link TcpSocket.write} are one sync FFI call each on
 * the caller's buffer (no copy, no allocation), errno read right after the call.
 *
 * Addresses are IP literals in canonical text ({@link SocketAddress}); sockaddr_in (16 bytes)
 * and sockaddr_in6 (28 bytes, flow info and scope id 0) are built and read here.
 *
 * @module
 */

import { formatHostPort, formatIpv4, formatIpv6, parseIp } from "../wire/addr.ts";
import { IoError } from "./errors.ts";
import { describeErrno, Errno, errno, errnoName, loadLibc } from "./libc.ts";
import { setIntOption, Sock } from "./socket.ts";

/** An IP literal and port (hostname is canonical text: "10.0.0.1", "2001:db8::1"). */
export interface SocketAddress {
  hostname: string;
  port: number;
}

/** A failing socket call: an {@link IoError} of kind "system" plus the errno behind it. */
export class TcpError extends IoError {
  /** The errno (e.g. {@link Errno.ECONNRESET}); 0 when no system call failed. */
  readonly errno: number;
  constructor(errnum: number, message: string) {
    super("system", message);
    this.errno = errnum;
  }
  /** The errno's symbolic name ("ECONNRESET"). */
  get code(): string {
    return errnoName(this.errno);
  }
}

/** The largest byte count passed to one recv()/send() (their results are read as i32). */
const MAX_IO = 0x7fff_ffff;

/**
 * Byte counts as bigint for the size_t parameters: a bigint keeps the FFI call on the fast
 * path (a number costs ~250 ns), and the lengths up to 64 KiB are made once, so steady-state
 * reads and writes allocate nothing.
 */
const SMALL_SIZES: bigint[] = [];
const SMALL_SIZE_LIMIT = 65536;

function sizeArg(len: number): bigint {
  if (len > SMALL_SIZE_LIMIT) return BigInt(len);
  return SMALL_SIZES[len] ??= BigInt(len);
}

/** sizeof(struct sockaddr_in), sizeof(struct sockaddr_in6). */
const SOCKADDR_IN_LEN = 16;
const SOCKADDR_IN6_LEN = 28;

/**
 * The sockaddr for `hostname`:`port` (network order port, little-endian family). Throws a
 * {@link TcpError} (errno 0) when the address or port is not valid.
 */
export function encodeSockaddr(hostname: string, port: number): Uint8Array<ArrayBuffer> {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TcpError(0, `bad port ${port}: expected an integer 0..65535`);
  }
  const ip = parseIp(hostname);
  if (typeof ip === "string") {
    throw new TcpError(0, `bad address "${hostname}": expected an IPv4 or IPv6 literal`);
  }
  const sa = new Uint8Array(ip.family === 4 ? SOCKADDR_IN_LEN : SOCKADDR_IN6_LEN);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, ip.family === 4 ? Sock.AF_INET : Sock.AF_INET6, true);
  dv.setUint16(2, port, false);
  sa.set(ip.bytes, ip.family === 4 ? 4 : 8);
  return sa;
}

/** The address in a sockaddr_in / sockaddr_in6, or null for another family or short length. */
export function decodeSockaddr(sa: Uint8Array, len: number): SocketAddress | null {
  if (len < 2 || sa.length < len) return null;
  const family = sa[0] | (sa[1] << 8);
  const port = (sa[2] << 8) | sa[3];
  if (family === Sock.AF_INET && len >= SOCKADDR_IN_LEN) {
    return { hostname: formatIpv4(sa, 4), port };
  }
  if (family === Sock.AF_INET6 && len >= SOCKADDR_IN6_LEN) {
    return { hostname: formatIpv6(sa, 8), port };
  }
  return null;
}

/** Scratch for getsockname/getpeername/getsockopt results (sockaddr_storage is 128 bytes). */
const scratch = new Uint8Array(128);
const scratchLen = new Uint32Array(1);
const scratchInt = new Int32Array(1);

/** A new nonblocking, close-on-exec stream socket of `family`, or a thrown TcpError. */
function openStream(family: number, what: string): number {
  const fd = loadLibc().socket(
    family,
    Sock.SOCK_STREAM | Sock.SOCK_NONBLOCK | Sock.SOCK_CLOEXEC,
    0,
  );
  if (fd < 0) {
    const e = errno();
    throw new TcpError(e, `${what}: socket(): ${describeErrno(e)}`);
  }
  return fd;
}

/** Closes `fd` and throws a TcpError for the errno `e` of the call that failed. */
function failAndClose(fd: number, e: number, message: string): never {
  loadLibc().close(fd);
  throw new TcpError(e, `${message}: ${describeErrno(e)}`);
}

/** A nonblocking TCP socket owned through libc: no Deno resource, just an fd to poll(). */
export class TcpSocket {
  readonly fd: number;
  #open = true;
  #remote: SocketAddress | undefined;

  private constructor(fd: number) {
    this.fd = fd;
  }

  /**
   * Bound + listening (SO_REUSEADDR, backlog 128). hostname is an IPv4 or IPv6 literal
   * ("0.0.0.0", "::", "127.0.0.1"); port 0 = any free port. Throws IoError whose message
   * names the address and the errno ("EADDRINUSE (Address already in use)").
   */
  static listen(hostname: string, port: number, backlog = 128): TcpSocket {
    const s = TcpSocket.bind(hostname, port);
    s.listen(backlog);
    return s;
  }

  /**
   * Bound (SO_REUSEADDR) but not listening: the address is taken (a busy port fails here,
   * EADDRINUSE) while connects to it are still refused until {@link listen}. Same errors as
   * the static `listen`.
   */
  static bind(hostname: string, port: number): TcpSocket {
    const what = `cannot listen on ${formatHostPort(hostname, port)}`;
    const sa = encodeSockaddr(hostname, port);
    const fd = openStream(sa.length === SOCKADDR_IN_LEN ? Sock.AF_INET : Sock.AF_INET6, what);
    const e = setIntOption(fd, Sock.SOL_SOCKET, Sock.SO_REUSEADDR, 1);
    if (e !== 0) failAndClose(fd, e, `${what}: SO_REUSEADDR`);
    if (loadLibc().bind(fd, sa, sa.length) !== 0) failAndClose(fd, errno(), what);
    return new TcpSocket(fd);
  }

  /** listen(2) on a socket from {@link bind}; throws IoError (the socket is closed then). */
  listen(backlog = 128): void {
    this.#check("listen");
    if (loadLibc().listen(this.fd, Math.trunc(backlog) | 0) !== 0) {
      const e = errno();
      const what = `cannot listen on port ${this.localAddr().port}`;
      this.close();
      throw new TcpError(e, `${what}: ${describeErrno(e)}`);
    }
  }

  /**
   * Starts a nonblocking connect to an IP literal; the socket becomes writable when the
   * connect finished; then call connectError(). Throws IoError on immediate failure.
   */
  static connect(hostname: string, port: number): TcpSocket {
    const what = `cannot connect to ${formatHostPort(hostname, port)}`;
    const sa = encodeSockaddr(hostname, port);
    const fd = openStream(sa.length === SOCKADDR_IN_LEN ? Sock.AF_INET : Sock.AF_INET6, what);
    if (loadLibc().connect(fd, sa, sa.length) !== 0) {
      const e = errno();
      if (e !== Errno.EINPROGRESS) failAndClose(fd, e, what);
    }
    return new TcpSocket(fd);
  }

  /**
   * 0 once connected, else the errno from SO_ERROR (ECONNREFUSED...). Call it when poll()
   * reports the connecting socket writable (or POLLERR/POLLHUP); SO_ERROR is cleared by
   * reading it, so ask once.
   */
  connectError(): number {
    this.#check("getsockopt(SO_ERROR)");
    scratchInt[0] = 0;
    scratchLen[0] = 4;
    const r = loadLibc().getsockopt(
      this.fd,
      Sock.SOL_SOCKET,
      Sock.SO_ERROR,
      scratchInt,
      scratchLen,
    );
    return r === 0 ? scratchInt[0] : errno();
  }

  /**
   * One accepted connection (nonblocking, CLOEXEC) or null when none is pending (EAGAIN).
   * Other errors (EMFILE...) throw IoError. A connection reset or aborted before it was
   * accepted (ECONNABORTED) or an interrupted call (EINTR) also gives null.
   */
  accept(): TcpSocket | null {
    this.#check("accept");
    const fd = loadLibc().accept4(
      this.fd,
      null,
      null,
      Sock.SOCK_NONBLOCK | Sock.SOCK_CLOEXEC,
    );
    if (fd >= 0) return new TcpSocket(fd);
    const e = errno();
    if (e === Errno.EAGAIN || e === Errno.ECONNABORTED || e === Errno.EINTR) return null;
    throw new TcpError(e, `accept on fd ${this.fd}: ${describeErrno(e)}`);
  }

  /**
   * Reads into buf: bytes read (>0), 0 at end of stream, -1 when nothing is available
   * (EAGAIN, EINTR, or an empty buf). Throws IoError on ECONNRESET and other errors.
   */
  read(buf: Uint8Array): number {
    if (!this.#open) this.#check("recv");
    const len = buf.length < MAX_IO ? buf.length : MAX_IO;
    if (len === 0) return -1;
    const n = loadLibc().recv(this.fd, buf, sizeArg(len), 0);
    if (n >= 0) return n;
    const e = errno();
    if (e === Errno.EAGAIN || e === Errno.EINTR) return -1;
    throw new TcpError(e, `recv on fd ${this.fd}: ${describeErrno(e)}`);
  }

  /**
   * Writes (MSG_NOSIGNAL): bytes accepted, possibly fewer than given, 0 when the send
   * buffer is full (EAGAIN, EINTR). Throws IoError on EPIPE/ECONNRESET/others.
   */
  write(bytes: Uint8Array): number {
    if (!this.#open) this.#check("send");
    const len = bytes.length < MAX_IO ? bytes.length : MAX_IO;
    if (len === 0) return 0;
    const n = loadLibc().send(this.fd, bytes, sizeArg(len), Sock.MSG_NOSIGNAL);
    if (n >= 0) return n;
    const e = errno();
    if (e === Errno.EAGAIN || e === Errno.EINTR) return 0;
    throw new TcpError(e, `send on fd ${this.fd}: ${describeErrno(e)}`);
  }

  /** Sets TCP_NODELAY (Nagle off when `on`). */
  setNoDelay(on: boolean): void {
    this.#check("setsockopt(TCP_NODELAY)");
    const e = setIntOption(this.fd, Sock.IPPROTO_TCP, Sock.TCP_NODELAY, on ? 1 : 0);
    if (e !== 0) {
      throw new TcpError(e, `setsockopt(TCP_NODELAY) on fd ${this.fd}: ${describeErrno(e)}`);
    }
  }

  /** The local address (getsockname). */
  localAddr(): SocketAddress {
    return this.#address("getsockname");
  }

  /** The peer's address (getpeername, cached after the first call). */
  remoteAddr(): SocketAddress {
    return this.#remote ??= this.#address("getpeername");
  }

  /** True until {@link TcpSocket.close}. */
  get isOpen(): boolean {
    return this.#open;
  }

  /** Closes the fd. Idempotent; later reads and writes throw (EBADF) instead of touching
   *  whatever the fd number has been reused for. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    loadLibc().close(this.fd);
  }

  #address(call: "getsockname" | "getpeername"): SocketAddress {
    this.#check(call);
    scratchLen[0] = scratch.length;
    if (loadLibc()[call](this.fd, scratch, scratchLen) !== 0) {
      const e = errno();
      throw new TcpError(e, `${call} on fd ${this.fd}: ${describeErrno(e)}`);
    }
    const addr = decodeSockaddr(scratch, Math.min(scratchLen[0], scratch.length));
    if (addr === null) {
      throw new TcpError(0, `${call} on fd ${this.fd}: not an IPv4/IPv6 address`);
    }
    return addr;
  }

  #check(call: string): void {
    if (!this.#open) {
      throw new TcpError(Errno.EBADF, `${call} on closed socket (fd ${this.fd} was closed)`);
    }
  }
}
