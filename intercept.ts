/**
 * intercept: capture the target's replies, drop them, and stream their headers to tcpcopy.
 * Entry point; the tunnel protocol lives in lib/tunnel/.
 */
import { versionLine } from "./lib/version.ts";

/** Runs the program with its command-line arguments (build.sh entry files call this). */
export function main(args: string[]): void {
  if (args.includes("-v") || args.includes("--version")) {
    console.log(versionLine("intercept"));
    Deno.exit(0);
  }
  console.log("usage: intercept --port PORT | -i DEV -F FILTER");
  Deno.exit(args.includes("-h") || args.includes("--help") ? 0 : 2);
}

if (import.meta.main) main(Deno.args);
