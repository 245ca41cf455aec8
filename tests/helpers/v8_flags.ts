/**
 * Evidence that a program runs with the V8 flags of lib/process/v8_flags.ts: its `--version` line
 * ends with V8's heap limit, which the young-generation flag changes; this Deno started with and
 * without those flags on the same host says which limit to expect.
 *
 * @module
 */

/** The heap limit (MiB) in a `--version` line, or undefined when it has none. */
export function heapLimitOf(versionLine: string): number | undefined {
  const m = /V8 heap limit (\d+) MiB\)/.exec(versionLine);
  return m ? Number(m[1]) : undefined;
}

/** The heap limit (MiB) this Deno reports when started with `flags` (e.g. `V8_FLAGS.intercept`). */
export async function heapLimitWith(flags: readonly string[]): Promise<number> {
  const code =
    'import v8 from "node:v8"; console.log(Math.round(v8.getHeapStatistics().heap_size_limit / 1048576))';
  const args = [
    "eval",
    "--quiet",
    ...(flags.length ? [`--v8-flags=${flags.join(",")}`] : []),
    code,
  ];
  const out = await new Deno.Command(Deno.execPath(), { args, stderr: "inherit" }).output();
  if (!out.success) throw new Error(`deno eval (heap limit) exited ${out.code}`);
  return Number(new TextDecoder().decode(out.stdout).trim());
}
