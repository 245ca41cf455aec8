import v8 from "node:v8";

/** Product version, shared by tcpcopy and intercept. */
export const VERSION = "0.1.0";

/** Build metadata injected by build.sh (see `dist/.build/`); "dev" when run from source. */
export function buildCommit(): string {
  const info = (globalThis as { __TCPCOPY_BUILD__?: { commit?: string } }).__TCPCOPY_BUILD__;
  return info?.commit ?? "dev";
}

/**
 * V8's heap limit of this process in MiB (`heap_size_limit`: old space + 3 semi-spaces). It shows
 * the V8 flags the process really started with (lib/process/v8_flags.ts: a smaller young
 * generation lowers it), whichever way it was started (deno run, compiled, launcher).
 */
export function heapLimitMiB(): number {
  return Math.round(v8.getHeapStatistics().heap_size_limit / 1048576);
}

/** One-line version string printed by `--version` of both programs (and logged at start). */
export function versionLine(program: string): string {
  return `${program} ${VERSION} (commit ${buildCommit()}, deno ${Deno.version.deno}, ` +
    `V8 heap limit ${heapLimitMiB()} MiB)`;
}
