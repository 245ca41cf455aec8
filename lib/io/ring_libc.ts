/**
 * The libc functions only the capture ring needs (mapping the kernel ring into the process),
 * loaded from the same library as {@link loadLibc} (TCPCOPY_LIBC overrides "libc.so.6").
 * Kept apart from `LIBC_SYMBOLS` so the ring stays self-contained; both tables describe libc.
 *
 * @module
 */

import { openLibrary } from "./library.ts";

/** mmap/munmap (C prototype above each entry). */
export const RING_LIBC_SYMBOLS = {
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  // int munmap(void *addr, size_t length);
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded ring symbols. */
export type RingLibc = Deno.DynamicLibrary<typeof RING_LIBC_SYMBOLS>["symbols"];

/** mmap flags and the failure value. */
export const Mmap = {
  PROT_READ: 1,
  PROT_WRITE: 2,
  MAP_SHARED: 1,
  /** (void *)-1 */
  MAP_FAILED: 0xffff_ffff_ffff_ffffn,
} as const;

let ringLibc: RingLibc | undefined;

/** Loads the symbols once. */
export function loadRingLibc(): RingLibc {
  ringLibc ??= openLibrary({
    soname: "libc.so.6",
    envVar: "TCPCOPY_LIBC",
    packages: "libc6 (Debian) / glibc (RPM)",
  }, RING_LIBC_SYMBOLS).symbols;
  return ringLibc;
}
