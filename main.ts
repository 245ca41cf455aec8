/**
 * tcpcopy: replicate live TCP traffic from an online host to a target server.
 * Entry point: the command line lives in lib/cli/, the live wiring in lib/tcpcopy/, the process
 * skeleton (log, signals, stats timer, exit codes) in lib/process/.
 */
import { versionLine } from "./lib/version.ts";
import { parseTcpcopyArgs, renderHelp } from "./lib/cli/tcpcopy.ts";
import { runTcpcopy } from "./lib/tcpcopy/run.ts";
import { parseDoctorArgs } from "./lib/cli/doctor_args.ts";
import { runDoctor } from "./lib/doctor/doctor.ts";
import { localAddresses, selfTargetError, selfTargets } from "./lib/tcpcopy/self_target.ts";
import type { TcpcopyConfig } from "./lib/cli/config.ts";
import { EXIT_OK, EXIT_USAGE } from "./lib/process/exit.ts";
import { exitWith } from "./lib/process/main.ts";
import { loadSecret } from "./lib/process/secret.ts";

/**
 * Runs the program with its command-line arguments (build.sh entry files call this).
 * Exit codes: 0 done, 1 runtime problem, 2 bad command line.
 */
export function main(args: string[]): Promise<never> {
  return exitWith("tcpcopy", () => tcpcopy(args));
}

/** The program; resolves to the exit code. */
async function tcpcopy(args: string[]): Promise<number> {
  const cli = parseTcpcopyArgs(args);
  switch (cli.kind) {
    case "help":
      console.log(renderHelp());
      return EXIT_OK;
    case "version":
      console.log(versionLine("tcpcopy"));
      return EXIT_OK;
    case "doctor":
      return await doctor(cli.args);
    case "error":
      console.error(cli.message);
      return cli.exitCode;
    case "run":
      return await run(cli.config);
    default: {
      const never: never = cli;
      throw new Error(`unknown command line result ${JSON.stringify(never)}`);
    }
  }
}

/** `tcpcopy doctor ...`. */
async function doctor(args: string[]): Promise<number> {
  const req = parseDoctorArgs(args);
  if ("error" in req) {
    console.error(req.error);
    return EXIT_USAGE;
  }
  const { json, secretFile, modules, authFile, trustLogins, ...targets } = req;
  const secret = await loadSecret("tcpcopy doctor", secretFile);
  if (typeof secret === "number") return secret;
  return await runDoctor("tcpcopy", { ...targets, secret: secret.key }, {
    json,
    modules: { modules, trustLogins, ...(authFile !== undefined ? { authFile } : {}) },
  });
}

/** A run: refused when a target is this host (replay would hit production) unless allowed. */
async function run(config: TcpcopyConfig): Promise<number> {
  const self = selfTargets(config.transfers.map((t) => t.targetIp), localAddresses());
  const refusal = selfTargetError(self);
  if (refusal !== null && !config.allowSelfTarget) {
    console.error(refusal);
    return EXIT_USAGE;
  }
  return await runTcpcopy(config, self);
}

if (import.meta.main) main(Deno.args);
