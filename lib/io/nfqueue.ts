/**
 * NFQUEUE through libnetfilter_queue (TCPCOPY_LIBNFQ overrides "libnetfilter_queue.so.1"),
 * without its per-packet callback loop: libnetfilter_queue only sets the queue up and sends
 * verdicts; packets are read with `recvmmsg()` (64 datagrams per call) into one arena and the
 * netlink messages are parsed in JS ({@link parseNfqDatagram}).
 *
 * Verdicts: one `nfq_set_verdict_batch` per run of equal verdicts. A batch verdict applies to
 * every queued id <= the given id, so runs are split wherever the verdict changes (packets whose
 * messages were lost to ENOBUFS are swept up by the next run's verdict).
 *
 * Fail-open is off (NFQA_CFG_F_FAIL_OPEN cleared): when the queue or socket is full the kernel
 * drops the packet, so a DROP queue never leaks packets onto the network (`--queue-bypass` in
 * the rules acts only while no program is bound). Both limits come from nfq_sizing.ts.
 *
 * @module
 */

import { IoError, PRIVILEGE_HINT } from "./errors.ts";
import { describeErrno, Errno, errno, loadLibc, NativeMemory } from "./libc.ts";
import { type LibrarySpec, openLibrary } from "./library.ts";
import { type NfqParseCounts, parseNfqDatagram } from "./nfq_netlink.ts";
import { nfqSizing } from "./nfq_sizing.ts";
import { FdWaiter } from "./readiness.ts";
import { setBufferSize, setIntOption, Sock } from "./socket.ts";
import { librarySpec } from "../setup/packages.ts";

/** libnetfilter_queue functions used here (C prototype above each entry). */
export const NFQ_SYMBOLS = {
  // struct nfq_handle *nfq_open(void);
  nfq_open: { parameters: [], result: "pointer" },
  // int nfq_close(struct nfq_handle *h);
  nfq_close: { parameters: ["pointer"], result: "i32" },
  // int nfq_bind_pf(struct nfq_handle *h, uint16_t pf);
  nfq_bind_pf: { parameters: ["pointer", "u16"], result: "i32" },
  // int nfq_unbind_pf(struct nfq_handle *h, uint16_t pf);
  nfq_unbind_pf: { parameters: ["pointer", "u16"], result: "i32" },
  // struct nfq_q_handle *nfq_create_queue(struct nfq_handle *h, uint16_t num,
  //                                       nfq_callback *cb, void *data);
  nfq_create_queue: { parameters: ["pointer", "u16", "function", "pointer"], result: "pointer" },
  // int nfq_destroy_queue(struct nfq_q_handle *qh);
  nfq_destroy_queue: { parameters: ["pointer"], result: "i32" },
  // int nfq_set_mode(struct nfq_q_handle *qh, uint8_t mode, uint32_t range);
  nfq_set_mode: { parameters: ["pointer", "u8", "u32"], result: "i32" },
  // int nfq_set_queue_maxlen(struct nfq_q_handle *qh, uint32_t queuelen);
  nfq_set_queue_maxlen: { parameters: ["pointer", "u32"], result: "i32" },
  // int nfq_set_queue_flags(struct nfq_q_handle *qh, uint32_t mask, uint32_t flags);
  nfq_set_queue_flags: { parameters: ["pointer", "u32", "u32"], result: "i32" },
  // int nfq_fd(struct nfq_handle *h);
  nfq_fd: { parameters: ["pointer"], result: "i32" },
  // int nfq_set_verdict(struct nfq_q_handle *qh, uint32_t id, uint32_t verdict,
  //                     uint32_t data_len, const unsigned char *buf);
  nfq_set_verdict: { parameters: ["pointer", "u32", "u32", "u32", "pointer"], result: "i32" },
  // int nfq_set_verdict_batch(struct nfq_q_handle *qh, uint32_t id, uint32_t verdict);
  nfq_set_verdict_batch: { parameters: ["pointer", "u32", "u32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

// int nfq_callback(struct nfq_q_handle *qh, struct nfgenmsg *nfmsg, struct nfq_data *nfad,
//                  void *data);
const NFQ_CALLBACK = {
  parameters: ["pointer", "pointer", "pointer", "pointer"],
  result: "i32",
} as const satisfies Deno.UnsafeCallbackDefinition;

type Nfq = Deno.DynamicLibrary<typeof NFQ_SYMBOLS>["symbols"];

let nfq: Nfq | undefined;

/** Where libnetfilter_queue comes from. */
export const NFQ_LIBRARY: LibrarySpec = librarySpec("libnetfilter_queue.so.1");

function loadNfq(): Nfq {
  nfq ??= openLibrary(NFQ_LIBRARY, NFQ_SYMBOLS).symbols;
  return nfq;
}

/** What to do with a queued packet. */
export const Verdict = { DROP: 0, ACCEPT: 1 } as const;
/** NF_DROP (0) or NF_ACCEPT (1). */
export type Verdict = typeof Verdict[keyof typeof Verdict];

/**
 * Decides one queued packet. `payload` starts at the IP header, is cut at the copy range and is
 * only valid during the call; `origLen` is the packet's full length.
 */
export type NfqHandler = (id: number, payload: Uint8Array, origLen: number) => Verdict;

/** Options of {@link NfQueue.open}. */
export interface NfqOptions {
  /** queue number, as in `-j NFQUEUE --queue-num N` */
  queue: number;
  /** bytes of each packet copied to us (128: IPv4 + TCP headers with options) */
  copyRange?: number;
  /** packets the kernel may hold waiting for a verdict (default: {@link nfqSizing}, 52,428
   * for a 128-byte copy range) */
  maxLen?: number;
  /** socket receive buffer, forced past net.core.rmem_max when privileged (default:
   * {@link nfqSizing}, room for `maxLen` messages: 32 MiB, a 64 MiB charge, unless `maxLen` needs
   * more) */
  rcvbuf?: number;
  /** set NETLINK_NO_ENOBUFS: overflows are no longer reported as ENOBUFS (false) */
  noEnobufs?: boolean;
  /** datagrams per recvmmsg() call (64) */
  batch?: number;
}

/** Counters; the last three come from /proc/net/netfilter/nfnetlink_queue (this namespace). */
export interface NfqStats {
  received: number;
  accepted: number;
  dropped: number;
  /** times the socket overflowed (packets lost before we read them) */
  enobufs: number;
  /** verdict calls made (batched or single) */
  batches: number;
  /** netlink messages that were not packets or were malformed */
  skipped: number;
  /** verdict calls that failed */
  verdictErrors: number;
  /** dropped because the queue was at maxLen */
  queueDropped?: number;
  /** dropped because our socket buffer was full */
  userDropped?: number;
  /** waiting for a verdict right now */
  waiting?: number;
}

const NFQNL_COPY_PACKET = 2, NFQA_CFG_F_FAIL_OPEN = 1;
const MSG_DONTWAIT = 0x40, MMSGHDR = 64, IOVEC = 16;
const MAX_PENDING = 4096;

/** A bound NFQUEUE: wait(), then drain(handler) gives every packet a verdict. */
export class NfQueue {
  readonly #stats: NfqStats = {
    received: 0,
    accepted: 0,
    dropped: 0,
    enobufs: 0,
    batches: 0,
    skipped: 0,
    verdictErrors: 0,
  };
  readonly #Q: Nfq;
  readonly #h: Deno.PointerObject;
  readonly #qh: Deno.PointerObject;
  readonly #cb: Deno.UnsafeCallback<typeof NFQ_CALLBACK>;
  readonly #fd: number;
  /** A private unconnected TCP socket for {@link releaseHeldSends} (-1: none). */
  readonly #kickFd: number;
  readonly #kickBuf = new Uint8Array(1);
  readonly #waiter: FdWaiter;
  readonly #mem: NativeMemory;
  readonly #batch: number;
  readonly #slotSize: number;
  readonly #slotsOff: number;
  readonly #hdr0: Deno.PointerObject;
  readonly #ids = new Uint32Array(MAX_PENDING);
  readonly #verdicts = new Uint8Array(MAX_PENDING);
  readonly #counts: NfqParseCounts = { packets: 0, skipped: 0 };
  #pending = 0;
  #handler: NfqHandler = () => Verdict.ACCEPT;
  readonly #onMessage: (id: number, off: number, len: number, orig: number) => void;
  #closed = false;

  private constructor(
    readonly queue: number,
    Q: Nfq,
    h: Deno.PointerObject,
    qh: Deno.PointerObject,
    cb: Deno.UnsafeCallback<typeof NFQ_CALLBACK>,
    opts: NfqOptions,
  ) {
    this.#Q = Q;
    this.#h = h;
    this.#qh = qh;
    this.#cb = cb;
    this.#fd = Q.nfq_fd(h);
    this.#kickFd = loadLibc().socket(
      Sock.AF_INET,
      Sock.SOCK_STREAM | Sock.SOCK_NONBLOCK | Sock.SOCK_CLOEXEC,
      0,
    );
    this.#batch = Math.max(1, Math.min(1024, Math.floor(opts.batch ?? 64)));
    // payload + packet header, timestamps, interface, hw address attributes
    this.#slotSize = ((opts.copyRange ?? 128) + 512 + 15) & ~15;
    const b = this.#batch, iovOff = b * MMSGHDR;
    this.#slotsOff = iovOff + b * IOVEC;
    this.#mem = new NativeMemory(this.#slotsOff + b * this.#slotSize);
    for (let i = 0; i < b; i++) {
      this.#mem.setPointer(i * MMSGHDR + 16, iovOff + i * IOVEC); // msg_iov
      this.#mem.dv.setBigUint64(i * MMSGHDR + 24, 1n, true); // msg_iovlen
      this.#mem.setPointer(iovOff + i * IOVEC, this.#slotsOff + i * this.#slotSize);
      this.#mem.dv.setBigUint64(iovOff + i * IOVEC + 8, BigInt(this.#slotSize), true);
    }
    this.#hdr0 = this.#mem.pointer;
    this.#waiter = new FdWaiter(this.#fd);
    const u8 = this.#mem.u8;
    this.#onMessage = (id, off, len, orig) => {
      const v = this.#handler(id, u8.subarray(off, off + len), orig) === Verdict.DROP
        ? Verdict.DROP
        : Verdict.ACCEPT;
      if (this.#pending === MAX_PENDING) this.#sendVerdicts();
      this.#ids[this.#pending] = id;
      this.#verdicts[this.#pending++] = v;
    };
  }

  /**
   * Binds queue `opts.queue` in copy-packet mode. Throws an IoError: "library" (install
   * libnetfilter-queue1 or set TCPCOPY_LIBNFQ), "privilege" (needs root or CAP_NET_ADMIN),
   * "queue" (the queue is bound by another program, or the kernel lacks NFQUEUE).
   */
  static open(opts: NfqOptions): NfQueue {
    const Q = loadNfq();
    const num = opts.queue;
    if (!Number.isInteger(num) || num < 0 || num > 65535) {
      throw new IoError("queue", `queue number ${num} is not in 0..65535`);
    }
    const h = Q.nfq_open();
    if (h === null) throw failure("cannot open an nfnetlink socket", errno(), num);
    const cb = new Deno.UnsafeCallback(
      {
        parameters: ["pointer", "pointer", "pointer", "pointer"],
        result: "i32",
      } as const,
      () => 0,
    ); // required by nfq_create_queue, never called: we parse ourselves
    let qh: Deno.PointerObject | null = null;
    try {
      Q.nfq_unbind_pf(h, Sock.AF_INET); // both are no-ops on kernels >= 3.8
      Q.nfq_bind_pf(h, Sock.AF_INET);
      qh = Q.nfq_create_queue(h, num, cb.pointer, null);
      if (qh === null) throw failure(`cannot bind NFQUEUE ${num}`, errno(), num);
      const range = Math.max(0, Math.min(65535, Math.floor(opts.copyRange ?? 128)));
      if (Q.nfq_set_mode(qh, NFQNL_COPY_PACKET, range) < 0) {
        throw failure(`cannot set copy mode on NFQUEUE ${num}`, errno(), num);
      }
      const size = nfqSizing(range, opts.maxLen);
      if (Q.nfq_set_queue_maxlen(qh, size.maxLen) < 0) {
        throw failure(`cannot set the length of NFQUEUE ${num}`, errno(), num);
      }
      Q.nfq_set_queue_flags(qh, NFQA_CFG_F_FAIL_OPEN, 0); // kernels < 3.6 lack flags: ignore
      const fd = Q.nfq_fd(h);
      setBufferSize(fd, "rcv", opts.rcvbuf ?? size.rcvbuf);
      if (opts.noEnobufs) setIntOption(fd, Sock.SOL_NETLINK, Sock.NETLINK_NO_ENOBUFS, 1);
      return new NfQueue(num, Q, h, qh, cb, opts);
    } catch (e) {
      if (qh !== null) Q.nfq_destroy_queue(qh);
      Q.nfq_close(h);
      cb.close();
      throw e;
    }
  }

  /** The netlink socket, for callers that poll() it themselves (e.g. through the reactor). */
  get fd(): number {
    return this.#fd;
  }

  /**
   * Resolves `true` when packets may be waiting (or `timeoutMs` elapsed), `false` once
   * {@link stop} was called; stop() ends a pending wait at once.
   */
  wait(timeoutMs = Infinity): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    return this.#waiter.wait(timeoutMs);
  }

  /**
   * Reads every packet available now (up to about `max`), asks `onPacket` for each verdict and
   * sends the verdicts in batches; returns the number of packets handled. ENOBUFS is counted
   * and reading goes on. Throws an IoError only when the socket itself fails.
   */
  drain(onPacket: NfqHandler, max = Infinity): number {
    if (this.#closed) return 0;
    const C = loadLibc();
    const dv = this.#mem.dv;
    const counts = this.#counts;
    counts.packets = counts.skipped = 0;
    this.#handler = onPacket;
    let overflows = 0;
    try {
      while (counts.packets < max) {
        const n = C.recvmmsg(this.#fd, this.#hdr0, this.#batch, MSG_DONTWAIT, null);
        if (n < 0) {
          const e = errno();
          if (e === Errno.ENOBUFS && ++overflows <= 1000) {
            this.#stats.enobufs++;
            continue;
          }
          if (e === Errno.EINTR) continue;
          if (e === Errno.EAGAIN) break;
          throw new IoError("queue", `reading NFQUEUE ${this.queue}: ${describeErrno(e)}`);
        }
        for (let i = 0; i < n; i++) {
          const len = dv.getUint32(i * MMSGHDR + 56, true); // msg_len
          parseNfqDatagram(dv, this.#slotsOff + i * this.#slotSize, len, this.#onMessage, counts);
        }
        this.#sendVerdicts();
        if (n < this.#batch) break;
      }
    } finally {
      this.#sendVerdicts(); // packets decided before a throwing handler still get theirs
      this.#stats.received += counts.packets;
      this.#stats.skipped += counts.skipped;
    }
    return counts.packets;
  }

  /**
   * Lets the packets the last verdicts released go out now. Freeing a queued packet is what
   * allows its socket to send more (TCP small queues and autocorking hold a sender's next
   * segment while its previous one is still queued here, e.g. an HTTP/2 response's DATA frame
   * behind its HEADERS), but the kernel sends it from a softirq that runs only at the next
   * interrupt or socket-lock release on this CPU, typically during our own tunnel write: the
   * segment then arrives just after the drain, and costs a second wake-up here and on
   * tcpcopy's side. One recv() on a private unconnected TCP socket (ENOTCONN) takes and
   * releases a socket lock, which runs the pending softirq at once: a drain right after it
   * finds the segment. About one syscall; nothing happens when no softirq is pending.
   */
  releaseHeldSends(): void {
    if (this.#kickFd < 0 || this.#closed) return;
    loadLibc().recv(this.#kickFd, this.#kickBuf, 1n, MSG_DONTWAIT);
  }

  /** One verdict call per run of equal verdicts among the pending packets. */
  #sendVerdicts(): void {
    const Q = this.#Q, ids = this.#ids, verdicts = this.#verdicts, n = this.#pending;
    this.#pending = 0;
    for (let i = 0; i < n;) {
      const v = verdicts[i];
      let j = i;
      while (j + 1 < n && verdicts[j + 1] === v) j++;
      const rc = j === i
        ? Q.nfq_set_verdict(this.#qh, ids[i], v, 0, null)
        : Q.nfq_set_verdict_batch(this.#qh, ids[j], v);
      this.#stats.batches++;
      if (rc < 0) this.#stats.verdictErrors++;
      if (v === Verdict.DROP) this.#stats.dropped += j - i + 1;
      else this.#stats.accepted += j - i + 1;
      i = j + 1;
    }
  }

  /** Counters, with the kernel's per-queue counters when /proc is readable. */
  stats(): NfqStats {
    return { ...this.#stats, ...kernelQueueStats(this.queue) };
  }

  /** Makes a pending and any later {@link wait} resolve `false`. */
  stop(): void {
    this.#waiter.stop();
  }

  /** Unbinds the queue (the kernel then drops what is still queued) and frees everything. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiter.stop();
    this.#Q.nfq_destroy_queue(this.#qh);
    this.#cb.close(); // only after the queue, which holds its pointer, is gone
    this.#waiter.close();
    this.#Q.nfq_close(this.#h); // closes the socket
    if (this.#kickFd >= 0) loadLibc().close(this.#kickFd);
    this.#mem.free();
  }
}

/**
 * The kernel's counters for `queue` from /proc/net/netfilter/nfnetlink_queue (columns: queue,
 * portid, waiting, copy_mode, copy_range, queue_dropped, user_dropped, id_seq); empty when the
 * file is unreadable or the queue is not listed.
 */
export function kernelQueueStats(
  queue: number,
  text?: string,
): Pick<NfqStats, "queueDropped" | "userDropped" | "waiting"> {
  try {
    text ??= Deno.readTextFileSync("/proc/net/netfilter/nfnetlink_queue");
  } catch {
    return {};
  }
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length >= 7 && f[0] === queue) {
      return { waiting: f[2], queueDropped: f[5], userDropped: f[6] };
    }
  }
  return {};
}

function failure(what: string, e: number, queue: number): IoError {
  if (e === Errno.EPERM || e === Errno.EACCES) {
    return new IoError(
      "privilege",
      `${what}: ${describeErrno(e)}; queue ${queue} may be bound by another program, ` +
        `otherwise this ${PRIVILEGE_HINT}`,
    );
  }
  return new IoError(
    "queue",
    `${what}: ${describeErrno(e)} (is the nfnetlink_queue kernel module available?)`,
  );
}
