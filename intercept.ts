/**
 * intercept: capture the target's replies, drop them, and stream their headers to tcpcopy.
 * Entry point; the command line lives in lib/cli/intercept.ts, the program in lib/intercept/,
 * the process skeleton (log, signals, stats timer, exit codes) in lib/process/, the tunnel
 * protocol in lib/tunnel/.
 */
import { versionLine } from "./lib/version.ts";
import { type DoctorRequest, HELP, parseInterceptArgs } from "./lib/cli/intercept.ts";
import { runIntercept } from "./lib/intercept/run.ts";
import { runDoctor } from "./lib/doctor/doctor.ts";
import { cleanupRules } from "./lib/intercept/rules.ts";
import { checkTunnelSecurity } from "./lib/doctor/checks.ts";
import { readSecretFile } from "./lib/tunnel/secret_file.ts";
import { EXIT_OK, EXIT_RUNTIME, EXIT_USAGE } from "./lib/process/exit.ts";
import { exitWith } from "./lib/process/main.ts";

/** Runs the program with its command-line arguments (build.sh entry files call this). */
export function main(args: string[]): Promise<never> {
  return exitWith("intercept", () => intercept(args));
}

/** The program; resolves to the exit code. */
async function intercept(args: string[]): Promise<number> {
  const parsed = parseInterceptArgs(args);
  switch (parsed.kind) {
    case "help":
      console.log(HELP);
      return EXIT_OK;
    case "version":
      console.log(versionLine("intercept"));
      return EXIT_OK;
    case "error":
      console.error(`intercept: ${parsed.message}`);
      return EXIT_USAGE;
    case "doctor":
      return await doctor(parsed.request);
    case "cleanup":
      return await cleanup(parsed.all);
    case "run":
      return await runIntercept(parsed.config);
    default: {
      const never: never = parsed;
      throw new Error(`unknown command line result ${JSON.stringify(never)}`);
    }
  }
}

/** `intercept doctor ...`: the host checks plus the tunnel's protection. */
async function doctor(r: DoctorRequest): Promise<number> {
  const secret = r.secretFile === undefined ? undefined : readSecretFile(r.secretFile);
  const security = checkTunnelSecurity({
    allow: r.allow.length,
    secretFile: r.secretFile,
    secretError: secret && !secret.ok ? secret.error : undefined,
  });
  if (secret?.ok) secret.secret.fill(0);
  return await runDoctor(
    "intercept",
    { devices: r.devices, ports: r.ports, intercepts: [] },
    { json: r.json, assistant: r.assistant, extra: [security] },
  );
}

/**
 * `intercept cleanup [--all]` (systemd ExecStopPost=): removes what a crashed/killed intercept
 * left; exit 0 when done, also when there was nothing to remove.
 */
async function cleanup(all: boolean): Promise<number> {
  const rep = await cleanupRules({ all });
  for (const r of rep.removed) console.log(`removed: ${r}`);
  for (const r of rep.kept) console.log(`kept (owner running; --all removes it): ${r}`);
  for (const n of rep.notes) console.log(`note: ${n}`);
  if (rep.removed.length === 0 && rep.errors.length === 0) {
    console.log("no stale intercept rules found");
  }
  for (const e of rep.errors) console.error(`intercept: cleanup: ${e}`);
  return rep.errors.length ? EXIT_RUNTIME : EXIT_OK;
}

if (import.meta.main) main(Deno.args);
