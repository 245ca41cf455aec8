/**
 * libc through FFI: the symbol table, errno, and malloc'd memory wrapped once for JS.
 *
 * Only x86_64/aarch64 Linux with glibc is supported (little-endian, LP64 struct layouts).
 * The path can be overridden with TCPCOPY_LIBC.
 *
 * errno is only meaningful right after a *sync* call: a `nonblocking` call runs on another
 * thread, whose errno the JS thread cannot see.
 *
 * @module
 */

import { type LibrarySpec, openLibrary } from "./library.ts";
import { librarySpec } from "../setup/packages.ts";

/** The libc functions used by lib/io (C prototype above each entry). */
export const LIBC_SYMBOLS = {
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // char *strerror(int errnum);
  strerror: { parameters: ["i32"], result: "pointer" },
  // void *malloc(size_t size);
  malloc: { parameters: ["usize"], result: "pointer" },
  // void *calloc(size_t nmemb, size_t size);
  calloc: { parameters: ["usize", "usize"], result: "pointer" },
  // void free(void *ptr);
  free: { parameters: ["pointer"], result: "void" },
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen);
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  // int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen);
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  // int bind(int fd, const struct sockaddr *addr, socklen_t len);
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int ioctl(int fd, unsigned long request, void *arg);
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  // unsigned int if_nametoindex(const char *ifname);
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout);   (sync: errno readable)
  poll: { parameters: ["pointer", "u64", "i32"], result: "i32" },
  // the same poll(), run on a worker thread so the JS thread can await it
  poll_async: {
    name: "poll",
    parameters: ["pointer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // int eventfd(unsigned int initval, int flags);
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int sendmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags);
  sendmmsg: { parameters: ["i32", "pointer", "u32", "i32"], result: "i32" },
  // int recvmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags, struct timespec *t);
  recvmmsg: { parameters: ["i32", "pointer", "u32", "i32", "pointer"], result: "i32" },
  // FILE *fmemopen(void *buf, size_t size, const char *mode);
  fmemopen: { parameters: ["pointer", "usize", "buffer"], result: "pointer" },
  // int setvbuf(FILE *stream, char *buf, int mode, size_t size);
  setvbuf: { parameters: ["pointer", "pointer", "i32", "usize"], result: "i32" },
  // int fflush(FILE *stream);
  fflush: { parameters: ["pointer"], result: "i32" },
  // long ftell(FILE *stream);
  ftell: { parameters: ["pointer"], result: "i64" },
  // int fseek(FILE *stream, long offset, int whence);
  fseek: { parameters: ["pointer", "i64", "i32"], result: "i32" },
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  // int munmap(void *addr, size_t length);
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  // int madvise(void *addr, size_t length, int advice);
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  // int malloc_trim(size_t pad); (glibc)
  malloc_trim: { parameters: ["usize"], result: "i32" },
  // void *dlopen(const char *filename, int flags);
  dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
  // void *dlsym(void *handle, const char *symbol);
  dlsym: { parameters: ["pointer", "buffer"], result: "pointer" },
  // int connect(int fd, const struct sockaddr *addr, socklen_t len);
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int listen(int fd, int backlog);
  listen: { parameters: ["i32", "i32"], result: "i32" },
  // int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  // int getsockname(int fd, struct sockaddr *addr, socklen_t *len);
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // int getpeername(int fd, struct sockaddr *addr, socklen_t *len);
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // ssize_t recv(int fd, void *buf, size_t len, int flags);
  // Result declared i32: callers pass len < 2^31, so the low 32 bits (eax / w0) hold the whole
  // value, -1 included, and no BigInt is allocated per call as an isize result would be.
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  // ssize_t send(int fd, const void *buf, size_t len, int flags);   (i32 result: as recv)
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  // int sched_setscheduler(pid_t pid, int policy, const struct sched_param *param);
  sched_setscheduler: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // int sched_getscheduler(pid_t pid);
  sched_getscheduler: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded libc. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let libc: Libc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/** Where libc comes from. */
export const LIBC_LIBRARY: LibrarySpec = librarySpec("libc.so.6");

/** Loads libc once (TCPCOPY_LIBC overrides "libc.so.6"). */
export function loadLibc(): Libc {
  libc ??= openLibrary(LIBC_LIBRARY, LIBC_SYMBOLS).symbols;
  return libc;
}

/** errno of the JS thread; read it right after the failing sync call. */
export function errno(): number {
  if (errnoView === undefined) {
    errnoView = new Deno.UnsafePointerView(loadLibc().__errno_location()!);
  }
  return errnoView.getInt32(0);
}

/** mmap protection and flags, and its failure value. */
export const Mmap = {
  PROT_READ: 1,
  PROT_WRITE: 2,
  MAP_SHARED: 1,
  /** (void *)-1 */
  MAP_FAILED: 0xffff_ffff_ffff_ffffn,
} as const;

/** Linux errno numbers used by lib/io. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  EMFILE: 24,
  ENOSPC: 28,
  EPIPE: 32,
  EMSGSIZE: 90,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTDOWN: 112,
  EHOSTUNREACH: 113,
  EALREADY: 114,
  EINPROGRESS: 115,
} as const;

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Errno).map(([name, n]) => [n, name]),
);

/** The symbolic name of an errno ("ENOBUFS"), or "E<n>" when not in {@link Errno}. */
export function errnoName(n: number): string {
  return ERRNO_NAMES[n] ?? `E${n}`;
}

/** "ENOBUFS (No buffer space available)": name plus libc's description. */
export function describeErrno(n: number): string {
  let text = "";
  try {
    const p = loadLibc().strerror(n);
    if (p !== null) text = Deno.UnsafePointerView.getCString(p);
  } catch {
    // libc unavailable: the name alone
  }
  return text ? `${errnoName(n)} (${text})` : errnoName(n);
}

const encoder = new TextEncoder();

/** A NUL-terminated copy of `s` for `buffer` parameters taking `const char *`. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(encoder.encode(s).length + 1);
  encoder.encodeInto(s, b);
  return b;
}

/** The string in `buf` up to its first NUL (for errbuf-style out parameters). */
export function fromCstr(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(end < 0 ? buf : buf.subarray(0, end));
}

/**
 * A malloc'd block wrapped once as a JS ArrayBuffer: native code and JS share it without
 * copies. `address` is the numeric base for writing pointers into the block. Free it exactly
 * once with {@link NativeMemory.free}; the views must not be used afterwards.
 */
export class NativeMemory {
  readonly u8: Uint8Array<ArrayBuffer>;
  readonly dv: DataView<ArrayBuffer>;
  readonly address: bigint;
  #ptr: Deno.PointerObject | null;

  /** Allocates `size` zeroed bytes; throws when out of memory. */
  constructor(readonly size: number) {
    const ptr = loadLibc().calloc(BigInt(size), 1n);
    if (ptr === null) throw new Error(`calloc(${size}) failed: out of memory`);
    this.#ptr = ptr;
    this.address = BigInt(Deno.UnsafePointer.value(ptr));
    const buffer = Deno.UnsafePointerView.getArrayBuffer(ptr, size);
    this.u8 = new Uint8Array(buffer);
    this.dv = new DataView(buffer);
  }

  /** The block's base pointer. */
  get pointer(): Deno.PointerObject {
    if (this.#ptr === null) throw new Error("native memory used after free");
    return this.#ptr;
  }

  /** A pointer object to `address + offset` (create once, reuse: each costs ~70 ns). */
  at(offset: number): Deno.PointerObject {
    return Deno.UnsafePointer.create(this.address + BigInt(offset))!;
  }

  /** Writes the address of `address + offset` as a 64-bit pointer at `where`. */
  setPointer(where: number, offset: number): void {
    this.dv.setBigUint64(where, this.address + BigInt(offset), true);
  }

  /** Releases the block (idempotent). */
  free(): void {
    if (this.#ptr !== null) {
      loadLibc().free(this.#ptr);
      this.#ptr = null;
    }
  }
}
