/**
 * The V8 flags both programs run with, in every form: `deno run` (tests, benchmarks, the demo:
 * {@link v8FlagsArg}), the `deno compile` executable and the self-extracting launcher
 * (build.sh runs this file to read them: `deno run lib/process/v8_flags.ts` prints
 * {@link V8_FLAGS} comma-separated).
 *
 * `--max-semi-space-size=16`: young-generation semi-spaces of at most 16 MiB instead of V8's 32
 * (they grow to that under allocation and stay committed in RSS). bench/engine_scale.ts, 4 runs
 * each: 100,000 held sessions 282-288 MiB RSS instead of 321-331, CPU per request within the
 * noise (+10 %); 8 MiB took 271-280 MiB for +27 % CPU, 4 MiB 268-278 for +40 % (README.md,
 * "Memory budget"). No heap limit here: see budget.ts `heapLimitWarning`.
 *
 * Tried for the JIT warm-up (README.md, "JIT warm-up"; bench/e2e_warmup.ts) and left out: `--no-maglev`
 * (worse), `--invocation-count-for-turbofan=1000` (main thread warm sooner, background compile CPU
 * doubled), `--invocation-count-for-maglev=100`, `--max-lazy`, `--no-concurrent-recompilation`,
 * `--always-sparkplug,--no-lazy-feedback-allocation` (no change beyond the noise).
 *
 * @module
 */

/** V8 flags of tcpcopy and intercept (one list; change it here only). */
export const V8_FLAGS: readonly string[] = ["--max-semi-space-size=16"];

/** The `--v8-flags=...` argument of `deno run`/`deno compile` for {@link V8_FLAGS} and `extra`. */
export function v8FlagsArg(extra: readonly string[] = []): string {
  return `--v8-flags=${[...V8_FLAGS, ...extra].join(",")}`;
}

if (import.meta.main) console.log(V8_FLAGS.join(","));
