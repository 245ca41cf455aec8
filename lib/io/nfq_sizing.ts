/**
 * How long the NFQUEUE may get and how much kernel memory its netlink socket may hold: the pure
 * decision behind {@link NfQueue.open}'s defaults.
 *
 * Both limits drop packets when reached (`queue_dropped` at the queue length, `user_dropped` at the
 * socket's receive buffer), and intercept clears NFQA_CFG_F_FAIL_OPEN, so a dropped reply never
 * reaches a real client (the target retransmits it; tcpcopy's client does too): fail-closed.
 * The queue must therefore hold the largest burst of replies a reader stalled by a busy CPU can
 * meet (issue 14's 20,000 held connections answer their second request together: the former
 * 8,192 dropped 29,014 of them), and the socket must be able to hold that many messages, or the
 * longer queue only moves the drops to `user_dropped`.
 *
 * Memory: a queued packet costs its netlink message in our socket (charged at the skb's truesize,
 * {@link nfqMessageBytes}) while it waits to be read, and the original packet until its verdict
 * (charged to the target's socket, whose send buffer bounds it). The socket's charge is capped by
 * {@link NFQ_RCVBUF_CHARGE} (64 MiB, as before): the default queue length is what that charge holds
 * of MTU-sized messages, so nothing but memory that a burst actually uses is ever taken.
 *
 * @module
 */

/** The most our netlink socket may hold by default, bytes of skb truesize (64 MiB). */
export const NFQ_RCVBUF_CHARGE = 64 << 20;
/** Upper bound of the socket's charge whatever `--queue-maxlen` asks for (256 MiB). */
export const NFQ_RCVBUF_CHARGE_MAX = 256 << 20;
/** Bounds of the default queue length. */
export const NFQ_MAXLEN_MIN = 1024, NFQ_MAXLEN_MAX = 65536;
/** The copied part of a packet assumed when sizing the default: an Ethernet MTU. */
const SIZING_PACKET = 1500;

/** The NFQUEUE settings {@link nfqSizing} decides. */
export interface NfqSizing {
  /** packets the kernel may hold waiting for a verdict */
  maxLen: number;
  /** the SO_RCVBUF(FORCE) value: the kernel doubles it into the socket's charge limit */
  rcvbuf: number;
}

/**
 * An upper estimate of the charge of one queued packet's netlink message with `copied` bytes of
 * packet in it: nlmsghdr, nfgenmsg and the attributes (~128 bytes) plus the data, aligned, plus
 * skb_shared_info (320), rounded up to kmalloc's power-of-two size, plus the sk_buff (256).
 */
export function nfqMessageBytes(copied: number): number {
  const data = ((128 + Math.max(0, copied) + 63) & ~63) + 320;
  return 2 ** Math.ceil(Math.log2(data)) + 256;
}

/**
 * The queue length and receive buffer for a queue copying `copyRange` bytes of each packet:
 * `maxLen` (when given, e.g. `--queue-maxlen`) or as many MTU-sized messages as
 * {@link NFQ_RCVBUF_CHARGE} holds (between {@link NFQ_MAXLEN_MIN} and {@link NFQ_MAXLEN_MAX});
 * the receive buffer holds `maxLen` such messages, at least the default charge and never more
 * than {@link NFQ_RCVBUF_CHARGE_MAX}.
 */
export function nfqSizing(copyRange: number, maxLen?: number): NfqSizing {
  const per = nfqMessageBytes(Math.min(copyRange, SIZING_PACKET));
  const len = maxLen ??
    Math.max(NFQ_MAXLEN_MIN, Math.min(NFQ_MAXLEN_MAX, Math.floor(NFQ_RCVBUF_CHARGE / per)));
  const charge = Math.min(NFQ_RCVBUF_CHARGE_MAX, Math.max(NFQ_RCVBUF_CHARGE, len * per));
  return { maxLen: len, rcvbuf: charge / 2 };
}
