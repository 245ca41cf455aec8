/**
 * Where a process's resident memory is at its peak (bench/e2e_replication.ts `--mem-trace`):
 * samples /proc/PID/smaps every few hundred ms during a workload and keeps the sample with the
 * most RSS, split by mapping: the executable's own pages (runtime code and read-only data),
 * capture rings (AF_PACKET mappings, `socket:[…]`), other files (shared libraries), and
 * anonymous memory (V8 heap, malloc arenas, thread stacks), plus what the process's last stats
 * line said then (V8 heap reserved, ring size, memory outside the heap).
 *
 * Where do I change X: a new category → {@link smapsBreakdown}; what is read from the stats
 * line → {@link MemSample}.
 *
 * @module
 */

/** RSS of one process by kind of mapping, bytes. */
export interface SmapsBreakdown {
  rss: number;
  /** pages of the process's own executable file */
  exe: number;
  /** AF_PACKET ring mappings */
  ring: number;
  /** other file mappings (shared libraries) */
  lib: number;
  /** anonymous: V8 heap, malloc, stacks */
  anon: number;
  /** of `anon`: malloc's main heap (`[heap]`) and its thread arenas (64 MiB-aligned mappings) */
  malloc: number;
  /** of `malloc`: the main thread's heap (`[heap]`) */
  mallocMain: number;
  /** of `anon`: thread stacks (`[stack]` and 8 MiB mappings) */
  stacks: number;
  /** the largest anonymous mapping's RSS (a malloc arena or a V8 space) */
  anonLargest: number;
  /** anonymous mappings with RSS */
  anonMappings: number;
}

const ARENA_ALIGN = 64n << 20n, STACK_SIZE = 8n << 20n;

/**
 * Sums /proc/PID/smaps text by kind of mapping; `exe` is the executable's path. Pure.
 */
export function smapsBreakdown(text: string, exe: string): SmapsBreakdown {
  const out: SmapsBreakdown = {
    rss: 0,
    exe: 0,
    ring: 0,
    lib: 0,
    anon: 0,
    malloc: 0,
    mallocMain: 0,
    stacks: 0,
    anonLargest: 0,
    anonMappings: 0,
  };
  const maps = mappings(text);
  maps.forEach((m, i) => {
    const bytes = m.rss, name = m.name;
    out.rss += bytes;
    if (name === exe || name === `${exe} (deleted)`) out.exe += bytes;
    else if (name.startsWith("socket:")) out.ring += bytes;
    else if (name.startsWith("/")) out.lib += bytes;
    else {
      out.anon += bytes;
      if (name === "[heap]") out.mallocMain += bytes;
      if (name === "[heap]" || isArena(m, maps[i + 1])) out.malloc += bytes;
      else if (name.startsWith("[stack") || m.end - m.start === STACK_SIZE) out.stacks += bytes;
      if (bytes > 0) out.anonMappings++;
      if (bytes > out.anonLargest) out.anonLargest = bytes;
    }
  });
  return out;
}

/** One mapping of /proc/PID/smaps. */
interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  name: string;
  rss: number;
}

/** The mappings of /proc/PID/smaps text, in address order. */
function mappings(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) {
      const start = BigInt(`0x${head[1]}`), end = BigInt(`0x${head[2]}`);
      out.push({ start, end, perms: head[3], name: head[4], rss: 0 });
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m !== null && out.length > 0) out[out.length - 1].rss = Number(m[1]) * 1024;
  }
  return out;
}

/**
 * A glibc thread arena: a read-write mapping at a HEAP_MAX_SIZE (64 MiB) boundary, either the
 * whole 64 MiB or followed by its reserved (---p) rest up to the next boundary. (V8's heap
 * pages may also start at such a boundary, but are not followed by such a reservation.)
 */
function isArena(m: Mapping, next: Mapping | undefined): boolean {
  if (m.start % ARENA_ALIGN !== 0n || !m.perms.startsWith("rw")) return false;
  if (m.end - m.start === ARENA_ALIGN) return true;
  return next !== undefined && next.start === m.end && next.perms.startsWith("---") &&
    next.end === m.start + ARENA_ALIGN && next.name === "";
}

/** One sample: the breakdown and the stats line's memory figures at that moment. */
export interface MemSample extends SmapsBreakdown {
  /** ms since the trace started */
  atMs: number;
  /** from the last stats line (0 when absent) */
  heapTotal: number;
  heapUsed: number;
  external: number;
  captureBuffer: number;
}

/** The last JSON line of a stats file (null when none). */
async function lastJson(path: string): Promise<Record<string, unknown> | null> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return null;
  }
  const end = text.lastIndexOf("\n{");
  const from = end < 0 ? (text.startsWith("{") ? 0 : -1) : end + 1;
  if (from < 0) return null;
  for (const line of text.slice(from).split("\n")) {
    try {
      return JSON.parse(line);
    } catch { /* a line being written */ }
  }
  return null;
}

/** A number at a dotted path of a stats record (0 when absent). */
function field(rec: Record<string, unknown> | null, path: string): number {
  let v: unknown = rec;
  for (const k of path.split(".")) v = (v as Record<string, unknown> | undefined)?.[k];
  return typeof v === "number" ? v : 0;
}

/** Samples one process until stopped; keeps the samples with the most RSS and the most anonymous memory. */
export class MemTrace {
  #peak: MemSample | null = null;
  #anonPeak: MemSample | null = null;
  #stopped = false;
  readonly #done: Promise<void>;
  readonly #t0 = performance.now();

  /** `stats`: the process's stdout file with JSON stats lines ("" for none). */
  constructor(readonly pid: number, readonly stats: string, readonly everyMs = 250) {
    this.#done = this.#loop();
  }

  async #loop(): Promise<void> {
    let exe = "";
    try {
      exe = await Deno.readLink(`/proc/${this.pid}/exe`);
    } catch { /* gone */ }
    while (!this.#stopped) {
      await this.#sample(exe);
      await new Promise((r) => setTimeout(r, this.everyMs));
    }
  }

  async #sample(exe: string): Promise<void> {
    let text: string;
    try {
      text = await Deno.readTextFile(`/proc/${this.pid}/smaps`);
    } catch {
      return;
    }
    const b = smapsBreakdown(text, exe);
    const rss = this.#peak === null || b.rss > this.#peak.rss;
    const anon = this.#anonPeak === null || b.anon > this.#anonPeak.anon;
    if (!rss && !anon) return;
    const s = this.stats === "" ? null : await lastJson(this.stats);
    const proc = (k: string) => field(s, `process.${k}`) || field(s, k);
    const sample = {
      ...b,
      atMs: Math.round(performance.now() - this.#t0),
      heapTotal: proc("heap_total_bytes"),
      heapUsed: proc("heap_bytes"),
      external: proc("external_bytes"),
      captureBuffer: field(s, "capture_buffer_bytes"),
    };
    if (rss) this.#peak = sample;
    if (anon) this.#anonPeak = sample;
  }

  /** Stops sampling (after one last sample); the peak sample, null when none was read. */
  async stop(): Promise<MemSample | null> {
    this.#stopped = true;
    await this.#done;
    return this.#peak;
  }

  /**
   * The sample with the most anonymous memory (V8 heap, malloc, stacks: what the program's own
   * work holds), after {@link stop}; null when none was read. Unlike the RSS peak it does not
   * move with the capture ring (a ring that grew under a busy CPU is most of the RSS peak).
   */
  get anonPeak(): MemSample | null {
    return this.#anonPeak;
  }
}

/** "rss 142 = exe 20 + ring 12 + lib 8 + anon 100 (largest 30, 41 maps) | heap 40/30 ext 14 cap 12" MiB. */
export function describeSample(s: MemSample | null): string {
  if (s === null) return "–";
  const m = (b: number) => Math.round(b / 2 ** 20);
  return `rss ${m(s.rss)} = exe ${m(s.exe)} + ring ${m(s.ring)} + lib ${m(s.lib)} + anon ${
    m(s.anon)
  } (malloc ${m(s.malloc)} of which main ${m(s.mallocMain)}, stacks ${m(s.stacks)}, largest ${
    m(s.anonLargest)
  }, ${s.anonMappings} maps) | v8 heap ${m(s.heapTotal)} reserved, ${
    m(s.heapUsed)
  } used; external ${m(s.external)}; capture ring ${m(s.captureBuffer)} (at ${s.atMs} ms)`;
}
