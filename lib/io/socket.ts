/**
 * Socket helpers shared by the senders and NFQUEUE: creating a socket with a privilege-aware
 * error, setting integer options, and buffer sizes that may exceed the sysctl limits.
 *
 * @module
 */

import { IoError, PRIVILEGE_HINT } from "./errors.ts";
import { describeErrno, Errno, errno, loadLibc } from "./libc.ts";

/** Socket constants (Linux). */
export const Sock = {
  AF_INET: 2,
  AF_INET6: 10,
  AF_PACKET: 17,
  AF_NETLINK: 16,
  SOCK_RAW: 3,
  SOCK_CLOEXEC: 0o2000000,
  IPPROTO_RAW: 255,
  SOL_SOCKET: 1,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_SNDBUFFORCE: 32,
  SO_RCVBUFFORCE: 33,
  SOL_NETLINK: 270,
  NETLINK_NO_ENOBUFS: 5,
  SOCK_STREAM: 1,
  SOCK_NONBLOCK: 0o4000,
  IPPROTO_TCP: 6,
  SOL_TCP: 6,
  TCP_NODELAY: 1,
  SO_REUSEADDR: 2,
  SO_ERROR: 4,
  MSG_NOSIGNAL: 0x4000,
} as const;

/** socket(2) or an {@link IoError} that says which privilege is missing. */
export function openSocket(domain: number, type: number, protocol: number, what: string): number {
  const fd = loadLibc().socket(domain, type | Sock.SOCK_CLOEXEC, protocol);
  if (fd >= 0) return fd;
  const e = errno();
  if (e === Errno.EPERM || e === Errno.EACCES) {
    throw new IoError("privilege", `cannot open ${what}: ${describeErrno(e)}; ${PRIVILEGE_HINT}`);
  }
  throw new IoError("system", `cannot open ${what}: ${describeErrno(e)}`);
}

/** setsockopt(2) with an int value; returns 0 or the errno. */
export function setIntOption(fd: number, level: number, name: number, value: number): number {
  const v = new Int32Array([value]);
  return loadLibc().setsockopt(fd, level, name, v, 4) === 0 ? 0 : errno();
}

/** getsockopt(2) of an int value (e.g. SO_SNDBUF); -1 when it fails. */
export function getIntOption(fd: number, level: number, name: number): number {
  const v = new Int32Array(1), len = new Uint32Array([4]);
  return loadLibc().getsockopt(fd, level, name, v, len) === 0 ? v[0] : -1;
}

/**
 * Sets a send or receive buffer size: the FORCE variant (root/CAP_NET_ADMIN, ignores
 * net.core.[rw]mem_max) first, the plain one as a fallback. Returns the size now in effect.
 */
export function setBufferSize(fd: number, which: "snd" | "rcv", bytes: number): number {
  const force = which === "snd" ? Sock.SO_SNDBUFFORCE : Sock.SO_RCVBUFFORCE;
  const plain = which === "snd" ? Sock.SO_SNDBUF : Sock.SO_RCVBUF;
  if (setIntOption(fd, Sock.SOL_SOCKET, force, bytes) !== 0) {
    setIntOption(fd, Sock.SOL_SOCKET, plain, bytes);
  }
  return getIntOption(fd, Sock.SOL_SOCKET, plain);
}
