/**
 * Counts V8's optimizing compiles and deoptimizations in the output of a process started with
 * `--v8-flags=--trace-opt,--trace-deopt` (bench/e2e_warmup.ts `--jit`): a deterministic proxy for
 * the JIT's warm-up work, free of the CPU noise of a shared machine. Lines of several threads can
 * interleave in the file; a line this does not recognise is ignored.
 *
 *   deno run -A bench/jit_trace.ts FILE...   (the counts of saved outputs)
 *
 * @module
 */

/** Compiles and deoptimizations seen so far (or in one interval: see {@link jitDelta}). */
export interface JitCounts {
  /** Completed Maglev compiles. */
  maglev: number;
  /** Completed TurboFan compiles (OSR included). */
  turbofan: number;
  /** Their summed compile time as V8 reports it (ms; wall time of the compiling threads). */
  maglevMs: number;
  turbofanMs: number;
  /** Bailouts (eager, lazy, soft deopts) and code marked for deopt by a changed dependency. */
  deopts: number;
  /**
   * Completed compiles per "name#sfi/tier" (one function compiled again and again: a loop; the
   * last hex digits of its SharedFunctionInfo's address tell apart functions of one name, such as
   * getters of several classes).
   */
  perFunction: Map<string, number>;
  /** Bailouts per "name#sfi: reason". */
  deoptReasons: Map<string, number>;
}

/** Empty counts. */
export function emptyJitCounts(): JitCounts {
  return {
    maglev: 0,
    turbofan: 0,
    maglevMs: 0,
    turbofanMs: 0,
    deopts: 0,
    perFunction: new Map(),
    deoptReasons: new Map(),
  };
}

const COMPLETED =
  /\[completed (?:compiling|optimizing) \S+ <JSFunction (.*?) \(sfi = 0x[0-9a-f]*?([0-9a-f]{1,4})\)> \(target (MAGLEV|TURBOFAN_JS)\)(?: OSR)? - took ([\d.]+), ([\d.]+), ([\d.]+) ms/;
const BAILOUT =
  /\[bailout \(kind: ([\w-]+), reason: (.*?)\): begin\. deoptimizing \S+ <JSFunction (.*?) \(sfi = 0x[0-9a-f]*?([0-9a-f]{1,4})\)/;
const DEPENDENT = /marking dependent code .* for deoptimization/;

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

/** Adds what one line of `--trace-opt`/`--trace-deopt` output says to `c`. */
export function countJitLine(c: JitCounts, line: string): void {
  const done = COMPLETED.exec(line);
  if (done !== null) {
    const ms = Number(done[4]) + Number(done[5]) + Number(done[6]);
    if (done[3] === "MAGLEV") {
      c.maglev++;
      c.maglevMs += ms;
    } else {
      c.turbofan++;
      c.turbofanMs += ms;
    }
    bump(c.perFunction, `${done[1]}#${done[2]}/${done[3] === "MAGLEV" ? "maglev" : "turbofan"}`);
    return;
  }
  const out = BAILOUT.exec(line);
  if (out !== null) {
    c.deopts++;
    bump(c.deoptReasons, `${out[3]}#${out[4]}: ${out[2]}`);
    return;
  }
  if (DEPENDENT.test(line)) c.deopts++;
}

/** The counts of `now` minus those of `before` (the totals only; the maps stay `now`'s). */
export function jitDelta(now: JitCounts, before: JitCounts): JitCounts {
  return {
    maglev: now.maglev - before.maglev,
    turbofan: now.turbofan - before.turbofan,
    maglevMs: now.maglevMs - before.maglevMs,
    turbofanMs: now.turbofanMs - before.turbofanMs,
    deopts: now.deopts - before.deopts,
    perFunction: now.perFunction,
    deoptReasons: now.deoptReasons,
  };
}

/** A copy of the totals of `c` (the maps shared). */
export function jitSnapshot(c: JitCounts): JitCounts {
  return { ...c };
}

/**
 * Follows a growing file: each call hands `onChunk` the bytes appended since the last call
 * (read into one reused buffer, at most 1,000 MiB a call; a missing file reads as nothing).
 */
export function appendedReader(
  path: string,
  onChunk: (bytes: Uint8Array) => void,
): () => void {
  const buf = new Uint8Array(1 << 20);
  let offset = 0;
  return () => {
    let f: Deno.FsFile;
    try {
      f = Deno.openSync(path);
    } catch {
      return;
    }
    try {
      f.seekSync(offset, Deno.SeekMode.Start);
      for (let i = 0; i < 1000; i++) {
        const n = f.readSync(buf);
        if (n === null || n === 0) break;
        offset += n;
        onChunk(buf.subarray(0, n));
      }
    } finally {
      f.close();
    }
  };
}

/**
 * Follows a growing output file: each call reads what was appended since the last one and
 * returns the counts so far (a partial last line waits for its end).
 */
export function jitFollower(path: string): () => JitCounts {
  const counts = emptyJitCounts();
  const dec = new TextDecoder();
  let rest = "";
  const read = appendedReader(path, (bytes) => {
    const lines = (rest + dec.decode(bytes, { stream: true })).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) countJitLine(counts, line);
  });
  return () => {
    read();
    return jitSnapshot(counts);
  };
}

/** The compiles that completed between two `mark K` lines of a traced bench (`--mark N`). */
export interface MarkInterval {
  /** The last mark before them (0: before the first). */
  mark: number;
  maglev: number;
  turbofan: number;
  /** Their compile times as V8 reports them (ms). */
  turbofanMs: number;
  /** Names of the functions TurboFan compiled, in order ("#sfi" as in {@link JitCounts}). */
  turbofanNames: string[];
}

const MARK = /^mark (\d+)$/;

/**
 * The completed compiles of a `--trace-opt` output cut by the `mark K` lines a bench printed
 * into the same stream (bench/answer_path_cost.ts `--mark N`, under `stdbuf -o0`): one entry
 * per interval that has any, in order. Shows after how many requests each function reached
 * TurboFan, deterministically (CPU time is noisy on a shared machine, request counts are not).
 */
export function marksOf(lines: Iterable<string>): MarkInterval[] {
  const out: MarkInterval[] = [];
  let cur: MarkInterval = { mark: 0, maglev: 0, turbofan: 0, turbofanMs: 0, turbofanNames: [] };
  const flush = () => {
    if (cur.maglev + cur.turbofan > 0) out.push(cur);
  };
  for (const line of lines) {
    const m = MARK.exec(line);
    if (m !== null) {
      flush();
      cur = { mark: Number(m[1]), maglev: 0, turbofan: 0, turbofanMs: 0, turbofanNames: [] };
      continue;
    }
    const c = emptyJitCounts();
    countJitLine(c, line);
    cur.maglev += c.maglev;
    if (c.turbofan > 0) {
      cur.turbofan += c.turbofan;
      cur.turbofanMs += c.turbofanMs;
      cur.turbofanNames.push([...c.perFunction.keys()][0].replace(/\/turbofan$/, ""));
    }
  }
  flush();
  return out;
}

/** The `n` entries of `m` with the highest counts of at least `min`, "key ×count". */
export function topEntries(m: Map<string, number>, n: number, min = 1): string[] {
  return [...m].filter(([, v]) => v >= min).sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, v]) => `${k} ×${v}`);
}

if (import.meta.main) {
  // deno run -A bench/jit_trace.ts FILE...: the counts of each saved output (e.g. the files
  // bench/e2e_replication.ts --keep or $E2E_WARMUP_KEEP copies from a traced run).
  // deno run -A bench/jit_trace.ts --marks FILE...: the compiles between the `mark K` lines of
  // a traced bench (bench/answer_path_cost.ts --mark N).
  const byMarks = Deno.args[0] === "--marks";
  const paths = byMarks ? Deno.args.slice(1) : Deno.args;
  if (paths.length === 0) {
    console.error(
      "jit_trace.ts: expected [--marks] and one or more files of --trace-opt,--trace-deopt output",
    );
    Deno.exit(2);
  }
  for (const path of byMarks ? paths : []) {
    console.log(`${path}:`);
    for (const i of marksOf(Deno.readTextFileSync(path).split("\n"))) {
      console.log(
        `  after ${i.mark}: ${i.maglev} Maglev, ${i.turbofan} TurboFan (${
          i.turbofanMs.toFixed(1)
        } ms)${i.turbofan > 0 ? ": " + i.turbofanNames.join(", ") : ""}`,
      );
    }
  }
  for (const path of byMarks ? [] : paths) {
    const c = jitFollower(path)();
    console.log(
      `${path}: ${c.maglev} Maglev (${c.maglevMs.toFixed(0)} ms), ${c.turbofan} TurboFan (${
        c.turbofanMs.toFixed(0)
      } ms), ${c.deopts} deopts\n  compiled 3 times or more: ${
        topEntries(c.perFunction, 15, 3).join(", ") || "none"
      }\n  most frequent deopts: ${topEntries(c.deoptReasons, 10).join(", ") || "none"}`,
    );
  }
}
