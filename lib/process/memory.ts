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
 * @module
 */

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
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
  } catch {
    return { user: 0, system: 0 };
  }
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
