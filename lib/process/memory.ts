/**
 * Where this process's memory and CPU go, for both programs' stats lines and `--metrics`:
 * RSS split by the kernel into anonymous pages (V8 heap, malloc, stacks) and file-backed pages
 * (the runtime's code, shared libraries, and AF_PACKET capture rings: the kernel maps a whole
 * ring into RSS when it is mapped, so a ring counts as file pages from the start), plus the V8
 * heap (used and reserved) and the memory JS objects hold outside it (ArrayBuffers, including
 * the capture rings' views). Read from /proc/self/status and /proc/self/stat once per stats
 * line (Linux; zeros elsewhere).
 *
 * Where do I change what the stats line says about memory? Here, then lib/stats/record.ts and
 * lib/stats/prometheus.ts (tcpcopy) or lib/intercept/stats.ts (intercept).
 *
 * After start-up, {@link schedulePageOut} returns the runtime's start-up code pages to the
 * kernel (see {@link pageOutStartupCode}).
 *
 * @module
 */
import { loadLibc } from "../io/libc.ts";

/** Memory and CPU of the process. */
export interface ProcessUsage {
  rssBytes: number;
  /** RSS in anonymous pages: the V8 heap, malloc, stacks. */
  rssAnonBytes: number;
  /** RSS in file-backed pages: code, libraries, capture rings. */
  rssFileBytes: number;
  /** V8 heap in use (JS objects: sessions, records, tables). */
  heapBytes: number;
  /** V8 heap reserved (in use + free space in its pages + the young generation). */
  heapTotalBytes: number;
  /** Memory outside the JS heap held by JS objects (ArrayBuffers: rings, queues, buffers). */
  externalBytes: number;
  cpuUserS: number;
  cpuSystemS: number;
}

/** User and system CPU seconds of this process (Linux /proc; zeros elsewhere). */
export function cpuSeconds(): { user: number; system: number } {
  try {
    const t = statTimes(Deno.readTextFileSync("/proc/self/stat"));
    return { user: t.user, system: t.sys };
  } catch {
    return { user: 0, system: 0 };
  }
}

/**
 * utime and stime (seconds, 100 ticks a second) of a /proc/PID/stat or /proc/PID/task/TID/stat
 * line, read after the command name (which may hold spaces and parentheses); NaN when
 * malformed. Pure: the parser for {@link cpuSeconds} and for tools reading another process.
 */
export function statTimes(stat: string): { user: number; sys: number } {
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
}

/**
 * `RssAnon` and `RssFile` (+ `RssShmem`) of /proc/PID/status text, bytes; zeros when absent.
 * Pure: the parser for {@link processUsage} and for tools reading another process.
 */
export function rssSplit(status: string): { anon: number; file: number } {
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
    return m === null ? 0 : Number(m[1]) * 1024;
  };
  return { anon: kb("RssAnon"), file: kb("RssFile") + kb("RssShmem") };
}

/** The process's memory and CPU now. */
export function processUsage(): ProcessUsage {
  const mem = Deno.memoryUsage(), cpu = cpuSeconds();
  let split = { anon: 0, file: 0 };
  try {
    split = rssSplit(Deno.readTextFileSync("/proc/self/status"));
  } catch { /* not Linux */ }
  return {
    rssBytes: mem.rss,
    rssAnonBytes: split.anon,
    rssFileBytes: split.file,
    heapBytes: mem.heapUsed,
    heapTotalBytes: mem.heapTotal,
    externalBytes: mem.external,
    cpuUserS: cpu.user,
    cpuSystemS: cpu.system,
  };
}

/** madvise(MADV_PAGEOUT): reclaim these pages now (Linux 5.4; older kernels say EINVAL). */
const MADV_PAGEOUT = 21;
/** Seconds after start when the runtime's start-up code is paged out. */
export const PAGE_OUT_AFTER_S = 3;

/**
 * Address ranges of `path`'s read-only mappings (code `r-xp` and read-only data `r--p`) in
 * /proc/self/maps text: what the runtime maps of its own executable.
 */
export function codeRanges(maps: string, path: string): { start: bigint; length: bigint }[] {
  const out: { start: bigint; length: bigint }[] = [];
  for (const line of maps.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) r-[x-]p \S+ \S+ \S+\s+(.*)$/.exec(line);
    if (m === null || m[3] !== path) continue;
    const start = BigInt(`0x${m[1]}`), end = BigInt(`0x${m[2]}`);
    out.push({ start, length: end - start });
  }
  return out;
}

/**
 * Hands back memory that start-up used and running does not: the runtime's code and read-only
 * data pages touched once (module loading, the snapshot, argument parsing: ~20 MiB of the
 * ~40 MiB of the executable in RSS after start) are paged out with MADV_PAGEOUT, and malloc's
 * free pages are returned (malloc_trim). Pages still in use fault back in from the file at
 * their next use (the working set is back within seconds); the kernel skips pages another
 * process maps too (a shared `deno` binary), and would reclaim these clean pages itself under
 * memory pressure: this only does it before RSS is counted. Best effort: failures are ignored.
 * Returns the bytes advised.
 */
export function pageOutStartupCode(): number {
  try {
    trimMalloc();
    const C = loadLibc();
    let bytes = 0;
    for (const r of codeRanges(Deno.readTextFileSync("/proc/self/maps"), Deno.execPath())) {
      const p = Deno.UnsafePointer.create(r.start);
      if (p !== null && C.madvise(p, r.length, MADV_PAGEOUT) === 0) bytes += Number(r.length);
    }
    return bytes;
  } catch {
    return 0;
  }
}

/** Seconds between two malloc_trim calls after the page-out (intercept, other programs). */
export const TRIM_EVERY_S = 10;
/**
 * tcpcopy's: every second. Its bursts (the JIT's compile zones, per-connection buffers) free
 * malloc memory faster than a 10 s trim returned it: bench/e2e_replication.ts --only
 * short1k,ka20k,abshort,held10k --private-deno --mem-trace, two runs each interleaved (load
 * 5.5–8.4): 43–45 trims freed 55–68 MiB over a run instead of 6 freeing 16–20, 33–35 ms of CPU in
 * all (the longest 7–11 ms, against 8–24 ms for the rarer trims, which had more to free at once),
 * anonymous memory at the rows' peaks 38–39 / 41–45 / 49–56 / 61 MiB instead of 40–42 / 42–43 /
 * 56–61 / 61–62, CPU per request within the noise, 0 drops and 0 loss in all four.
 */
export const TCPCOPY_TRIM_EVERY_S = 1;

/** What {@link schedulePageOut} runs: the code page-out and the malloc trim (tests count them). */
export interface MemoryChores {
  pageOut: () => unknown;
  trim: () => void;
}

const CHORES: MemoryChores = { pageOut: pageOutStartupCode, trim: trimMalloc };

/**
 * Runs {@link pageOutStartupCode} at once
 * (module loading is over when the program's body starts: its code is paged out before the
 * program maps its buffers, so the start-up peak is not code + buffers) and again
 * {@link PAGE_OUT_AFTER_S} s from now (what setting up and the first traffic touched once), and
 * returns malloc's free pages every `trimEveryS` s from now on (the runtime's threads, e.g. the
 * optimizing compiler's, free memory that glibc keeps in its arenas otherwise). The trims start
 * at once, not after the second page-out: the JIT's first compiles (a program started into its
 * traffic) freed 8–11 MiB that stayed in malloc's arenas until then, the start's peak (README.md,
 * "Where the memory goes"). Unref'd timers; returns a function that stops them.
 */
export function schedulePageOut(
  trimEveryS = TRIM_EVERY_S,
  chores: MemoryChores = CHORES,
): () => void {
  if (Deno.build.os !== "linux") return () => {};
  chores.pageOut();
  const trims = setInterval(chores.trim, trimEveryS * 1000);
  const again = setTimeout(chores.pageOut, PAGE_OUT_AFTER_S * 1000);
  Deno.unrefTimer(trims);
  Deno.unrefTimer(again);
  return () => {
    clearInterval(trims);
    clearTimeout(again);
  };
}

/** The malloc_trim period of `program` (seconds): {@link TCPCOPY_TRIM_EVERY_S} or {@link TRIM_EVERY_S}. */
export function trimEverySOf(program: string): number {
  return program === "tcpcopy" ? TCPCOPY_TRIM_EVERY_S : TRIM_EVERY_S;
}

/** malloc_trim(0): free pages of every malloc arena back to the kernel; best effort. */
export function trimMalloc(): void {
  try {
    loadLibc().malloc_trim(0n);
  } catch { /* not glibc */ }
}
