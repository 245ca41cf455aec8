/**
 * tcpcopy: replicate live TCP traffic from an online host to a target server.
 * Entry point; the command line lives in lib/cli/, the engine in lib/engine/.
 */
import { versionLine } from "./lib/version.ts";

/** Runs the program with its command-line arguments (build.sh entry files call this). */
export function main(args: string[]): void {
  if (args.includes("-v") || args.includes("--version")) {
    console.log(versionLine("tcpcopy"));
    Deno.exit(0);
  }
  console.log("usage: tcpcopy -x [onlineIP:]onlinePort-targetIP:targetPort -s intercept[:port]");
  Deno.exit(args.includes("-h") || args.includes("--help") ? 0 : 2);
}

if (import.meta.main) main(Deno.args);
