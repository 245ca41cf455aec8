/** Product version, shared by tcpcopy and intercept. */
export const VERSION = "0.1.0";

/** Build metadata injected by build.sh (see `dist/.build/`); "dev" when run from source. */
export function buildCommit(): string {
  const info = (globalThis as { __TCPCOPY_BUILD__?: { commit?: string } }).__TCPCOPY_BUILD__;
  return info?.commit ?? "dev";
}

/** One-line version string printed by `--version` of both programs. */
export function versionLine(program: string): string {
  return `${program} ${VERSION} (commit ${buildCommit()}, deno ${Deno.version.deno})`;
}
