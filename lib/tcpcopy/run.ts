/** The live tcpcopy process: capture -> engine -> send, with the intercept tunnel. */
import type { TcpcopyConfig } from "../cli/config.ts";

/** Runs tcpcopy until SIGINT/SIGTERM; resolves to the process exit code. */
export function runTcpcopy(_config: TcpcopyConfig): Promise<number> {
  console.error("tcpcopy: live replication is not wired in this build yet");
  return Promise.resolve(1);
}
