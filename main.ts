/**
 * tcpcopy: replicate live TCP traffic from an online host to a target server.
 * Entry point: the command line lives in lib/cli/, the live wiring in lib/tcpcopy/.
 */
import { versionLine } from "./lib/version.ts";
import { parseTcpcopyArgs } from "./lib/cli/parse.ts";
import { renderHelp } from "./lib/cli/help.ts";
import { runTcpcopy } from "./lib/tcpcopy/run.ts";
import { parseDoctorArgs } from "./lib/cli/doctor_args.ts";
import { runDoctor } from "./lib/doctor/doctor.ts";
import { readSecretFile } from "./lib/tunnel/secret_file.ts";
import { importSecret } from "./lib/tunnel/auth.ts";
import { localAddresses, selfTargetError, selfTargets } from "./lib/tcpcopy/self_target.ts";

/**
 * Runs the program with its command-line arguments (build.sh entry files call this).
 * Exit codes: 0 done, 1 runtime problem, 2 bad command line.
 */
export async function main(args: string[]): Promise<void> {
  const cli = parseTcpcopyArgs(args);
  switch (cli.kind) {
    case "help":
      console.log(renderHelp());
      Deno.exit(0);
      break;
    case "version":
      console.log(versionLine("tcpcopy"));
      Deno.exit(0);
      break;
    case "doctor": {
      const req = parseDoctorArgs(cli.args);
      if ("error" in req) {
        console.error(req.error);
        Deno.exit(2);
      }
      const { json, secretFile, ...targets } = req;
      let secret: CryptoKey | undefined;
      if (secretFile !== undefined) {
        const r = readSecretFile(secretFile);
        if (!r.ok) {
          console.error(`tcpcopy doctor: ${r.error}`);
          Deno.exit(2);
        }
        secret = await importSecret(r.secret);
      }
      Deno.exit(await runDoctor("tcpcopy", { ...targets, secret }, { json }));
      break;
    }
    case "error":
      console.error(cli.message);
      Deno.exit(cli.exitCode);
      break;
    case "run": {
      // A target that is this host: replay would hit production (unless explicitly allowed).
      const self = selfTargets(cli.config.transfers.map((t) => t.targetIp), localAddresses());
      const refusal = selfTargetError(self);
      if (refusal !== null && !cli.config.allowSelfTarget) {
        console.error(refusal);
        Deno.exit(2);
      }
      Deno.exit(await runTcpcopy(cli.config, self));
    }
  }
}

if (import.meta.main) main(Deno.args);
