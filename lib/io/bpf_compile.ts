/**
 * A capture filter compiled once by libpcap into classic BPF instructions kept in JS memory
 * ({@link compileFilter}), and attached to any number of sockets from there ({@link
 * attachProgram}). libpcap is loaded only for the compile and unloaded right after: the AF_PACKET
 * ring (lib/io/ring.ts) needs nothing else of it, and libpcap with what it pulls in (libdbus,
 * libsystemd, libgcrypt, libgpg-error, libzstd, liblzma, liblz4, libcap) kept ~1.2 MiB of
 * tcpcopy's RSS mapped for the whole run (bench/e2e_replication.ts --mem-trace, smaps of
 * tcpcopy at the mixed workload's peak: 1,236 KiB in those ten libraries). dlopen counts
 * references, so a libpcap that another part of the process holds (the libpcap capture, a
 * `--pcap-out` writer, offline replay: lib/io/pcap_lib.ts `loadPcap`) stays loaded.
 *
 * @module
 */

import { IoError } from "./errors.ts";
import { cstr, describeErrno, errno, loadLibc } from "./libc.ts";
import { openLibrary } from "./library.ts";
import { PCAP_LIBRARY, PCAP_SYMBOLS } from "./pcap_lib.ts";
import { Packet } from "./ring_layout.ts";
import { Sock } from "./socket.ts";

/** The libpcap functions the compile needs: `PCAP_SYMBOLS`' own entries (C prototypes there). */
const COMPILE_SYMBOLS = {
  pcap_open_dead: PCAP_SYMBOLS.pcap_open_dead,
  pcap_compile: PCAP_SYMBOLS.pcap_compile,
  pcap_freecode: PCAP_SYMBOLS.pcap_freecode,
  pcap_geterr: PCAP_SYMBOLS.pcap_geterr,
  pcap_close: PCAP_SYMBOLS.pcap_close,
} as const satisfies Deno.ForeignLibraryInterface;

/** PCAP_NETMASK_UNKNOWN: no netmask (only "broadcast" filters need one). */
const PCAP_NETMASK_UNKNOWN = 0xffffffff;
/** sizeof(struct sock_filter) = sizeof(struct bpf_insn): {u16 code; u8 jt; u8 jf; u32 k}. */
export const BPF_INSN_SIZE = 8;

/**
 * Compiles `filter` for `linkType` and `snaplen` (an empty filter still yields a program that
 * enforces the snaplen) and returns its instructions (`struct sock_filter` array, 8 bytes
 * each), copied out of libpcap, which is unloaded again before returning. Throws an {@link
 * IoError}: "filter" (libpcap's message and the expression), "library" (libpcap missing),
 * "ffi-permission".
 */
export function compileFilter(linkType: number, snaplen: number, filter: string): Uint8Array {
  const lib = openLibrary(PCAP_LIBRARY, COMPILE_SYMBOLS);
  try {
    const P = lib.symbols;
    const dead = P.pcap_open_dead(linkType, snaplen);
    if (dead === null) throw new IoError("system", "pcap_open_dead failed (out of memory?)");
    try {
      const prog = new Uint8Array(16); // struct bpf_program {u_int bf_len; struct bpf_insn *bf_insns}
      if (P.pcap_compile(dead, prog, cstr(filter), 1, PCAP_NETMASK_UNKNOWN) < 0) {
        const why = P.pcap_geterr(dead);
        const text = why === null ? "?" : new Deno.UnsafePointerView(why).getCString();
        throw new IoError("filter", `bad capture filter "${filter}": ${text}`);
      }
      try {
        const dv = new DataView(prog.buffer);
        const count = dv.getUint32(0, true);
        const insns = Deno.UnsafePointer.create(dv.getBigUint64(8, true));
        if (insns === null || count === 0) {
          throw new IoError("filter", `capture filter "${filter}" compiled to no instruction`);
        }
        const view = new Deno.UnsafePointerView(insns);
        return new Uint8Array(view.getArrayBuffer(count * BPF_INSN_SIZE)).slice();
      } finally {
        P.pcap_freecode(prog);
      }
    } finally {
      P.pcap_close(dead);
    }
  } finally {
    lib.close();
  }
}

/**
 * Attaches `program` ({@link compileFilter}'s instructions) to socket `fd` with
 * SO_ATTACH_FILTER (the kernel copies it). Returns 0, or the errno of the refusal.
 */
export function attachProgram(fd: number, program: Uint8Array): number {
  const fprog = new DataView(new ArrayBuffer(16)); // struct sock_fprog {u16 len; ptr filter}
  fprog.setUint16(0, program.length / BPF_INSN_SIZE, true);
  fprog.setBigUint64(8, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(program))), true);
  const rc = loadLibc().setsockopt(
    fd,
    Sock.SOL_SOCKET,
    Packet.SO_ATTACH_FILTER,
    new Uint8Array(fprog.buffer),
    16,
  );
  return rc === 0 ? 0 : errno();
}

/** {@link attachProgram}, throwing an IoError "filter" naming `filter` when the kernel refuses. */
export function mustAttach(fd: number, program: Uint8Array, filter: string): void {
  const e = attachProgram(fd, program);
  if (e !== 0) throw new IoError("filter", `cannot set filter "${filter}": ${describeErrno(e)}`);
}
