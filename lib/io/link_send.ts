/**
 * Link-layer sending: an AF_PACKET socket on one device, with the Ethernet header built in
 * front of each IP packet (destination = the given next-hop MAC, source = the device's own
 * MAC). This bypasses the sending host's routing, iptables/nftables and conntrack; the next hop
 * must route the packets on. Batched with sendmmsg like the raw IP senders.
 *
 * @module
 */

import { type BatchOptions, BatchSender, type PacketSender } from "./batch_sender.ts";
import { IoError } from "./errors.ts";
import { cstr, describeErrno, Errno, errno, loadLibc } from "./libc.ts";
import { openSocket, setBufferSize, Sock } from "./socket.ts";
import { formatMac, parseMac } from "../wire/addr.ts";

/** Options of {@link LinkSender.open}. */
export interface LinkSendOptions extends BatchOptions {
  /** network device to send on, e.g. "eth0" */
  device: string;
  /** destination MAC of every frame: "aa:bb:cc:dd:ee:ff" or 6 bytes */
  nextHopMac: string | Uint8Array;
  /** source MAC (default: the device's own address) */
  srcMac?: string | Uint8Array;
  /** socket send buffer in bytes (4 MiB) */
  sndbuf?: number;
}

const ETH_HLEN = 14, SOCKADDR_LL = 20;
const ETH_P_IP = 0x0800, ETH_P_IPV6 = 0x86dd;
const SIOCGIFHWADDR = 0x8927n;

function macBytes(mac: string | Uint8Array, what: string): Uint8Array {
  const bytes = typeof mac === "string" ? parseMac(mac) : mac.length === 6 ? mac : null;
  if (bytes === null) {
    throw new IoError(
      "device",
      `${what} "${String(mac)}" is not a MAC address (aa:bb:cc:dd:ee:ff)`,
    );
  }
  return bytes;
}

/** Sends IPv4/IPv6 packets as Ethernet frames on one device to a fixed next hop. */
export class LinkSender extends BatchSender implements PacketSender {
  /** the source MAC written into every frame */
  readonly srcMac: string;

  private constructor(
    fd: number,
    readonly device: string,
    readonly ifindex: number,
    dst: Uint8Array,
    src: Uint8Array,
    opts: BatchOptions,
  ) {
    super(fd, ETH_HLEN, SOCKADDR_LL, false, opts);
    this.srcMac = formatMac(src);
    const { u8, dv } = this.mem;
    for (let i = 0; i < this.batch; i++) {
      // struct sockaddr_ll per packet: family, protocol (BE, set per packet: the kernel takes
      // it as the frame's protocol), ifindex, hatype, pkttype, halen, addr
      const n = this.namesOff + i * SOCKADDR_LL;
      dv.setUint16(n, Sock.AF_PACKET, true);
      dv.setUint16(n + 2, ETH_P_IP, false);
      dv.setInt32(n + 4, ifindex, true);
      u8[n + 11] = 6;
      u8.set(dst, n + 12);
      // the constant part of every Ethernet header
      const f = this.slotsOff + i * this.slotSize;
      u8.set(dst, f);
      u8.set(src, f + 6);
    }
  }

  /**
   * Opens an AF_PACKET socket on `device`. Throws an IoError: "device" (unknown device, bad
   * MAC), "privilege" (needs root or CAP_NET_RAW).
   */
  static open(opts: LinkSendOptions): LinkSender {
    const C = loadLibc();
    const dst = macBytes(opts.nextHopMac, "next-hop MAC");
    const ifindex = C.if_nametoindex(cstr(opts.device));
    if (ifindex === 0) {
      throw new IoError("device", `no such network device "${opts.device}"`);
    }
    // protocol 0: a send-only packet socket (receives nothing)
    const fd = openSocket(Sock.AF_PACKET, Sock.SOCK_RAW, 0, `a packet socket on "${opts.device}"`);
    try {
      let src: Uint8Array;
      if (opts.srcMac !== undefined) {
        src = macBytes(opts.srcMac, "source MAC");
      } else {
        const ifr = new Uint8Array(40); // struct ifreq: name[16], then struct sockaddr
        ifr.set(cstr(opts.device).subarray(0, 15));
        if (C.ioctl(fd, SIOCGIFHWADDR, ifr) !== 0) {
          throw new IoError(
            "device",
            `cannot read the MAC address of "${opts.device}": ${describeErrno(errno())}`,
          );
        }
        src = ifr.slice(18, 24);
      }
      setBufferSize(fd, "snd", opts.sndbuf ?? 4 << 20);
      return new LinkSender(fd, opts.device, ifindex, dst, src, opts);
    } catch (e) {
      C.close(fd);
      throw e;
    }
  }

  protected prepare(i: number, off: number, len: number): number {
    const u8 = this.mem.u8;
    if (len < 20) return Errno.EINVAL;
    const version = u8[off] >> 4;
    const type = version === 4 ? ETH_P_IP : version === 6 ? ETH_P_IPV6 : 0;
    if (type === 0) return Errno.EINVAL;
    u8[off - 2] = type >> 8; // EtherType
    u8[off - 1] = type & 0xff;
    const name = this.namesOff + i * SOCKADDR_LL + 2; // sll_protocol
    u8[name] = type >> 8;
    u8[name + 1] = type & 0xff;
    return 0;
  }

  protected closeSocket(): void {
    loadLibc().close(this.fd);
  }
}
