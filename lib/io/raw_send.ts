/**
 * Raw IP senders: a raw socket with the IP header included (`IPPROTO_RAW`), batched with
 * sendmmsg (see {@link BatchSender}). The kernel routes each packet by its destination address,
 * runs the OUTPUT hooks and ARP, fills in the IPv4 header checksum and total length (and the ID
 * when it is 0); the caller must supply a correct TCP/UDP checksum.
 *
 * Per-packet failures (EMSGSIZE, EPERM from a firewall, EINVAL, ENETUNREACH, EHOSTUNREACH...)
 * are counted in `stats.errors` by errno name and the packet is skipped; never fatal.
 *
 * @module
 */

import { type BatchOptions, BatchSender, type PacketSender } from "./batch_sender.ts";
import { Errno, loadLibc } from "./libc.ts";
import { openSocket, setBufferSize, Sock } from "./socket.ts";

/** Options of the raw senders. */
export interface RawSendOptions extends BatchOptions {
  /** socket send buffer in bytes, forced past net.core.wmem_max when privileged (4 MiB) */
  sndbuf?: number;
}

const SOCKADDR_IN = 16, SOCKADDR_IN6 = 28;

/** Sends complete IPv4 packets (header first) to the address in each packet's header. */
export class RawIpSender extends BatchSender implements PacketSender {
  private constructor(fd: number, opts: RawSendOptions) {
    super(fd, 0, SOCKADDR_IN, false, opts);
    for (let i = 0; i < this.batch; i++) {
      this.mem.dv.setUint16(this.namesOff + i * SOCKADDR_IN, Sock.AF_INET, true);
    }
  }

  /** Opens the raw socket; throws an IoError (needs root or CAP_NET_RAW) when not allowed. */
  static open(opts: RawSendOptions = {}): RawIpSender {
    const fd = openSocket(Sock.AF_INET, Sock.SOCK_RAW, Sock.IPPROTO_RAW, "a raw IPv4 socket");
    setBufferSize(fd, "snd", opts.sndbuf ?? 4 << 20);
    return new RawIpSender(fd, opts);
  }

  protected prepare(i: number, off: number, len: number): number {
    const u8 = this.mem.u8;
    if (len < 20 || (u8[off] >> 4) !== 4) return Errno.EINVAL;
    const name = this.namesOff + i * SOCKADDR_IN;
    u8[name + 4] = u8[off + 16]; // sin_addr = the packet's destination
    u8[name + 5] = u8[off + 17];
    u8[name + 6] = u8[off + 18];
    u8[name + 7] = u8[off + 19];
    return 0;
  }

  protected closeSocket(): void {
    loadLibc().close(this.fd);
  }
}

/**
 * Sends complete IPv6 packets (header first). Same interface as {@link RawIpSender}; the socket
 * is `AF_INET6/SOCK_RAW/IPPROTO_RAW`, which implies IPV6_HDRINCL on Linux >= 4.5. Unlike IPv4,
 * the kernel fills in nothing: the payload length and the TCP checksum must be right (lib/wire
 * builds both). The destination name carries no scope id, so link-local targets are not
 * reachable this way (use global or ULA addresses). Packets larger than the route's MTU are
 * refused with EMSGSIZE (no fragmentation).
 */
export class RawIp6Sender extends BatchSender implements PacketSender {
  private constructor(fd: number, opts: RawSendOptions) {
    super(fd, 0, SOCKADDR_IN6, false, opts);
    for (let i = 0; i < this.batch; i++) {
      this.mem.dv.setUint16(this.namesOff + i * SOCKADDR_IN6, Sock.AF_INET6, true);
    }
  }

  /** Opens the raw IPv6 socket; throws an IoError when not allowed. */
  static open(opts: RawSendOptions = {}): RawIp6Sender {
    const fd = openSocket(Sock.AF_INET6, Sock.SOCK_RAW, Sock.IPPROTO_RAW, "a raw IPv6 socket");
    setBufferSize(fd, "snd", opts.sndbuf ?? 4 << 20);
    return new RawIp6Sender(fd, opts);
  }

  protected prepare(i: number, off: number, len: number): number {
    const u8 = this.mem.u8;
    if (len < 40 || (u8[off] >> 4) !== 6) return Errno.EINVAL;
    const name = this.namesOff + i * SOCKADDR_IN6;
    u8.copyWithin(name + 8, off + 24, off + 40); // sin6_addr = the packet's destination
    return 0;
  }

  protected closeSocket(): void {
    loadLibc().close(this.fd);
  }
}
