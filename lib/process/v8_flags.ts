/**
 * The V8 flags each program runs with (one list per program, all in this file), in every form:
 * `deno run` (tests, benchmarks, the demo: {@link v8FlagsArg}), the `deno compile` executable and
 * the self-extracting launcher (build.sh runs this file to read them: `deno run
 * lib/process/v8_flags.ts tcpcopy|intercept` prints that program's {@link V8_FLAGS} comma-separated).
 *
 * Formerly `--max-semi-space-size=16` for both: semi-spaces of at most 16 MiB instead of V8's 32
 * (they grow to that under allocation and stay committed in RSS). bench/engine_scale.ts, 4 runs
 * each: 100,000 held sessions 282-288 MiB RSS instead of 321-331, CPU per request within the
 * noise (+10 %); 8 MiB took 271-280 MiB for +27 % CPU, 4 MiB 268-278 for +40 % (README.md,
 * "Memory budget"). No heap limit here: see budget.ts `heapLimitWarning`.
 *
 * Tried for the JIT warm-up (README.md, "JIT warm-up"; bench/e2e_warmup.ts) and left out: `--no-maglev`
 * (worse), `--invocation-count-for-turbofan=1000` (main thread warm sooner, background compile CPU
 * doubled), `--invocation-count-for-maglev=100`, `--max-lazy`, `--no-concurrent-recompilation`,
 * `--always-sparkplug,--no-lazy-feedback-allocation` (no change beyond the noise). Second round,
 * both programs, e2e_warmup's mean-based ratio over 2-3 runs each (load 5-9):
 * `--maglev-as-top-tier` (no TurboFan) cuts tcpcopy's first 10,000 from 113-134 to 100-101 µs and
 * its excess from 570-710 to ~200 ms, but the warm figure rises from 54-66 to 81 µs (40,000-60,000
 * requests; intercept 57-65 to 73): steady CPU +30-50 %; `--invocation-count-for-turbofan=1000`
 * or 1500 (with or without `--max-inlined-bytecode-size-cumulative=460`): 2.5× the TurboFan
 * compiles and deopts in the first 10,000 (246 vs 101, 145 vs 57: compiled before the feedback
 * is complete), excess 660-920 ms; `=6000`, `--max-inlined-bytecode-size-cumulative=460`,
 * `--no-turbo-inlining` (warm +15-30 %): within the noise or worse.
 *
 * @module
 */

/** The programs with their own V8 flag list. */
export type V8Program = "tcpcopy" | "intercept";

/**
 * V8 flags of each program (change them here only): both run with 2 MiB semi-spaces now
 * (README.md, "Memory budget"). bench/e2e_replication.ts (short1k, ka20k, abshort, h2; 2 rounds
 * each of 16/8/4/2, load 9-16): intercept's peak RSS 87-101 MiB with 16, 74-75 with 8, 69-75
 * with 4, 62-64 with 2; tcpcopy's 158-222 with 16, 134-157 with 2; CPU per request within the
 * noise. bench/engine_scale.ts (3 runs each, load 5-13): 100,000 sessions 248-256 MiB with 16,
 * 219-221 with 2, CPU per request 11.4-12.7 and 10.0-15.8 µs.
 *
 * tcpcopy also grows its old generation by 10 % per collection (`--heap-growing-percent=10`)
 * instead of V8's dynamic factor (up to 4× when collections look cheap): bursts of short
 * connections leave garbage that V8 otherwise lets pile up to twice the live heap before the next
 * mark-compact. bench/e2e_replication.ts --only short1k,ka20k,abshort,held10k --private-deno
 * --mem-trace, 4 runs each interleaved (load 3-8): anonymous memory at held10k 60-64 MiB instead
 * of 88-112 (V8 heap reserved 35-38 instead of 50-59), at abshort 51-57 instead of 57-88; in the
 * one pair where the capture ring did not grow, peak RSS held10k 103 instead of 132 MiB (VmHWM),
 * abshort 96 instead of 114; `--trace-gc` over that run 14 mark-compacts (1.19 s) instead of 8
 * (0.85 s), ~5 µs per request, CPU per request within the noise; bench/engine_scale.ts at 30,000
 * held sessions 9.30/9.45 µs per request against 9.67/9.16.
 *
 * tcpcopy runs with `--memory-saver-mode` (every mark-compact a memory-reducing one: fragmented
 * pages compacted, emptied ones released at once instead of pooled for 8 s). The mixed workload's
 * peak after the bursts was V8 pages holding room freed by the last mark-compact (24–25 MiB of
 * pages for 15–21 MiB in use, up to 10 MB pooled). bench/e2e_replication.ts --only
 * short1k,ka20k,abshort,held10k --impl ours --private-deno --mem-trace, 8 pairs alternated with
 * main (load 1.7–10.5): anonymous memory at abshort's peak 38–41 MiB (median 39.5) instead of
 * 42–48 (44), at held10k 39–43 (42) instead of 43–46 (44); the peak without capture-ring growth
 * 78–82 MiB (median 79.5) instead of 81–86 (82); `--trace-gc` over a run: committed heap after a
 * mark-compact 16–21 MB instead of 19–28, 9 mark-compacts either way, ~170 ms of pauses and
 * incremental steps against ~200; CPU per request within the noise (abshort 97–117 µs against
 * 88–144, held10k 87–117 against 91–117); ~11,000 more minor faults per run (the compacted
 * pages), tcpcopy's kernel time per request within the noise (abshort 50–61 µs against 47–66).
 * bench/engine_scale.ts --levels 10000,30000, 6 pairs (load 3.7–5.7): CPU per request 6.3–7.9 µs
 * (median 7.2) against 6.8–9.3 (8.2) at 10,000 sessions, 6.6–11.5 (9.6) against 7.1–11.6 (9.6)
 * at 30,000. It was tried in the third round (4 runs at load 6–10, before the session slabs) and
 * left out then for a CPU difference within that run's noise (held10k 116–129 µs against
 * 99–122). On top of it, `--max-semi-space-size=1` (no lower peak; CPU per request short1k
 * 204–240 µs, abshort 129–134) and `--heap-growing-percent=3` (no lower peak): not kept.
 *
 * Also tried for tcpcopy and left out: `--no-memory-pool` (V8 unmaps the pages it frees instead
 * of pooling them for 8 s). bench/engine_scale.ts --levels 100000 -- -m 65536 --max-sessions
 * 2000000 --max-flows 4000000, alternated (load 3.6–9.7): RSS with the sessions held 167–202 MiB
 * (median 183, 12 runs) without it, 171–201 (median 178, 10 runs) with it; the last two pairs
 * 175 / 167 without, 178 / 183 with; CPU per request within the noise. bench/e2e_replication.ts
 * --only abshort,held10k and --only held20k --private-deno --mem-trace, 3 pairs each (load 4–15):
 * anonymous memory at the peaks within the noise (held20k 87–92 MiB against 90–93). Freed pages
 * are unmapped by a background task either way, so what a measure finds depends on its timing.
 * `--no-large-page-pool`: 171 and 179 MiB (2 runs); `--minor-ms`: 190 and 226; `--max-semi-space-size=1`:
 * 202 and 205 (same command, same session).
 */
export const V8_FLAGS: Readonly<Record<V8Program, readonly string[]>> = {
  tcpcopy: ["--max-semi-space-size=2", "--heap-growing-percent=10", "--memory-saver-mode"],
  intercept: ["--max-semi-space-size=2", "--heap-growing-percent=10"],
};

/** The `--v8-flags=...` argument of `deno run`/`deno compile` for `program`'s flags and `extra`. */
export function v8FlagsArg(program: V8Program, extra: readonly string[] = []): string {
  return `--v8-flags=${[...V8_FLAGS[program], ...extra].join(",")}`;
}

/** `name` when it is one of the programs, else undefined. */
export function v8Program(name: string | undefined): V8Program | undefined {
  return name === "tcpcopy" || name === "intercept" ? name : undefined;
}

if (import.meta.main) {
  const program = v8Program(Deno.args[0]);
  if (program === undefined) {
    console.error(
      `v8_flags.ts: program ${JSON.stringify(Deno.args[0] ?? "")}: expected tcpcopy or intercept`,
    );
    Deno.exit(2);
  }
  console.log(V8_FLAGS[program].join(","));
}
