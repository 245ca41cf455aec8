/**
 * libpcap through FFI: the symbol table, loading (TCPCOPY_LIBPCAP overrides
 * "libpcap.so.0.8") and the address of the C `pcap_dump` used as a `pcap_dispatch` handler.
 *
 * @module
 */

import { cstr, loadLibc } from "./libc.ts";
import { libraryPath, type LibrarySpec, openLibrary } from "./library.ts";
import { librarySpec } from "../setup/packages.ts";

/** libpcap functions used by lib/io (C prototype above each entry). */
export const PCAP_SYMBOLS = {
  // pcap_t *pcap_create(const char *source, char *errbuf);
  pcap_create: { parameters: ["buffer", "buffer"], result: "pointer" },
  // int pcap_set_snaplen(pcap_t *p, int snaplen);
  pcap_set_snaplen: { parameters: ["pointer", "i32"], result: "i32" },
  // int pcap_set_promisc(pcap_t *p, int promisc);
  pcap_set_promisc: { parameters: ["pointer", "i32"], result: "i32" },
  // int pcap_set_timeout(pcap_t *p, int to_ms);
  pcap_set_timeout: { parameters: ["pointer", "i32"], result: "i32" },
  // int pcap_set_immediate_mode(pcap_t *p, int immediate_mode);  (libpcap 1.5+)
  pcap_set_immediate_mode: { parameters: ["pointer", "i32"], result: "i32" },
  // int pcap_set_buffer_size(pcap_t *p, int buffer_size);
  pcap_set_buffer_size: { parameters: ["pointer", "i32"], result: "i32" },
  // int pcap_activate(pcap_t *p);
  pcap_activate: { parameters: ["pointer"], result: "i32" },
  // char *pcap_geterr(pcap_t *p);
  pcap_geterr: { parameters: ["pointer"], result: "pointer" },
  // const char *pcap_statustostr(int error);
  pcap_statustostr: { parameters: ["i32"], result: "pointer" },
  // int pcap_compile(pcap_t *p, struct bpf_program *fp, const char *str, int optimize,
  //                  bpf_u_int32 netmask);
  pcap_compile: { parameters: ["pointer", "buffer", "buffer", "i32", "u32"], result: "i32" },
  // int pcap_setfilter(pcap_t *p, struct bpf_program *fp);
  pcap_setfilter: { parameters: ["pointer", "buffer"], result: "i32" },
  // void pcap_freecode(struct bpf_program *fp);
  pcap_freecode: { parameters: ["buffer"], result: "void" },
  // int pcap_setdirection(pcap_t *p, pcap_direction_t d);
  pcap_setdirection: { parameters: ["pointer", "i32"], result: "i32" },
  // int pcap_setnonblock(pcap_t *p, int nonblock, char *errbuf);
  pcap_setnonblock: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  // int pcap_get_selectable_fd(pcap_t *p);
  pcap_get_selectable_fd: { parameters: ["pointer"], result: "i32" },
  // int pcap_dispatch(pcap_t *p, int cnt, pcap_handler callback, u_char *user);
  pcap_dispatch: { parameters: ["pointer", "i32", "pointer", "pointer"], result: "i32" },
  // int pcap_next_ex(pcap_t *p, struct pcap_pkthdr **pkt_header, const u_char **pkt_data);
  pcap_next_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // int pcap_datalink(pcap_t *p);
  pcap_datalink: { parameters: ["pointer"], result: "i32" },
  // int pcap_snapshot(pcap_t *p);
  pcap_snapshot: { parameters: ["pointer"], result: "i32" },
  // int pcap_stats(pcap_t *p, struct pcap_stat *ps);
  pcap_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  // void pcap_breakloop(pcap_t *p);
  pcap_breakloop: { parameters: ["pointer"], result: "void" },
  // void pcap_close(pcap_t *p);
  pcap_close: { parameters: ["pointer"], result: "void" },
  // pcap_t *pcap_open_offline_with_tstamp_precision(const char *fname, u_int precision,
  //                                                  char *errbuf);
  pcap_open_offline_with_tstamp_precision: {
    parameters: ["buffer", "u32", "buffer"],
    result: "pointer",
  },
  // pcap_t *pcap_open_dead(int linktype, int snaplen);
  pcap_open_dead: { parameters: ["i32", "i32"], result: "pointer" },
  // pcap_dumper_t *pcap_dump_open(pcap_t *p, const char *fname);
  pcap_dump_open: { parameters: ["pointer", "buffer"], result: "pointer" },
  // pcap_dumper_t *pcap_dump_fopen(pcap_t *p, FILE *fp);
  pcap_dump_fopen: { parameters: ["pointer", "pointer"], result: "pointer" },
  // void pcap_dump(u_char *user, const struct pcap_pkthdr *h, const u_char *sp);
  pcap_dump: { parameters: ["pointer", "buffer", "buffer"], result: "void" },
  // int pcap_dump_flush(pcap_dumper_t *p);
  pcap_dump_flush: { parameters: ["pointer"], result: "i32" },
  // void pcap_dump_close(pcap_dumper_t *p);
  pcap_dump_close: { parameters: ["pointer"], result: "void" },
  // const char *pcap_lib_version(void);
  pcap_lib_version: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded libpcap. */
export type Pcap = Deno.DynamicLibrary<typeof PCAP_SYMBOLS>["symbols"];

/** Where libpcap comes from. */
export const PCAP_LIBRARY: LibrarySpec = librarySpec("libpcap.so.0.8");

/** libpcap status codes (pcap/pcap.h). */
export const PcapStatus = {
  ERROR: -1,
  BREAK: -2,
  NOT_ACTIVATED: -3,
  ACTIVATED: -4,
  NO_SUCH_DEVICE: -5,
  RFMON_NOTSUP: -6,
  NOT_RFMON: -7,
  PERM_DENIED: -8,
  IFACE_NOT_UP: -9,
  CANTSET_TSTAMP_TYPE: -10,
  PROMISC_PERM_DENIED: -11,
  TSTAMP_PRECISION_NOTSUP: -12,
} as const;

/** pcap_direction_t (pcap/pcap.h). */
export const PcapDirection = { INOUT: 0, IN: 1, OUT: 2 } as const;

/** PCAP_ERRBUF_SIZE */
export const ERRBUF_SIZE = 256;

let pcap: Pcap | undefined;
let dumpAddress: Deno.PointerObject | undefined;

/** Loads libpcap once; throws an IoError naming the package / env var when missing. */
export function loadPcap(): Pcap {
  pcap ??= openLibrary(PCAP_LIBRARY, PCAP_SYMBOLS).symbols;
  return pcap;
}

/** The address of libpcap's own `pcap_dump`, to pass as a `pcap_dispatch` handler. */
export function pcapDumpAddress(): Deno.PointerObject {
  if (dumpAddress === undefined) {
    loadPcap();
    const C = loadLibc();
    const RTLD_NOW = 2;
    const handle = C.dlopen(cstr(libraryPath(PCAP_LIBRARY)), RTLD_NOW);
    const sym = handle === null ? null : C.dlsym(handle, cstr("pcap_dump"));
    if (sym === null) throw new Error("libpcap loaded but dlsym(pcap_dump) failed");
    dumpAddress = sym;
  }
  return dumpAddress;
}

/** libpcap's error text for `p` (pcap_geterr). */
export function pcapError(p: Deno.PointerObject): string {
  const s = loadPcap().pcap_geterr(p);
  return s === null ? "unknown libpcap error" : Deno.UnsafePointerView.getCString(s);
}

/** libpcap's text for a status code (pcap_statustostr). */
export function pcapStatusText(status: number): string {
  const s = loadPcap().pcap_statustostr(status);
  return s === null ? `libpcap status ${status}` : Deno.UnsafePointerView.getCString(s);
}
