/**
 * intercept: capture the target's replies, drop them, and stream their headers to tcpcopy.
 * Entry point; the program lives in lib/intercept/, the tunnel protocol in lib/tunnel/.
 */
import { versionLine } from "./lib/version.ts";
import { HELP, parseInterceptArgs } from "./lib/cli/intercept.ts";
import { runIntercept } from "./lib/intercept/run.ts";
import { runDoctor } from "./lib/doctor/doctor.ts";
import { cleanupRules } from "./lib/intercept/rules.ts";
import { checkTunnelSecurity } from "./lib/doctor/checks.ts";
import { readSecretFile } from "./lib/tunnel/secret_file.ts";

/** Runs the program with its command-line arguments (build.sh entry files call this). */
export async function main(args: string[]): Promise<void> {
  const parsed = parseInterceptArgs(args);
  switch (parsed.kind) {
    case "help":
      console.log(HELP);
      Deno.exit(0);
      break;
    case "version":
      console.log(versionLine("intercept"));
      Deno.exit(0);
      break;
    case "error":
      console.error(`intercept: ${parsed.message}`);
      Deno.exit(2);
      break;
    case "doctor": {
      const r = parsed.request;
      const secret = r.secretFile === undefined ? undefined : readSecretFile(r.secretFile);
      const security = checkTunnelSecurity({
        allow: r.allow.length,
        secretFile: r.secretFile,
        secretError: secret && !secret.ok ? secret.error : undefined,
      });
      if (secret?.ok) secret.secret.fill(0);
      const code = await runDoctor(
        "intercept",
        { devices: r.devices, ports: r.ports, intercepts: [] },
        { json: r.json, assistant: r.assistant, extra: [security] },
      );
      Deno.exit(code);
      break;
    }
    case "cleanup": {
      // systemd ExecStopPost=: removes what a crashed/killed intercept left; exit 0 when done,
      // also when there was nothing to remove
      const rep = await cleanupRules({ all: parsed.all });
      for (const r of rep.removed) console.log(`removed: ${r}`);
      for (const r of rep.kept) console.log(`kept (owner running; --all removes it): ${r}`);
      for (const n of rep.notes) console.log(`note: ${n}`);
      if (rep.removed.length === 0 && rep.errors.length === 0) {
        console.log("no stale intercept rules found");
      }
      for (const e of rep.errors) console.error(`intercept: cleanup: ${e}`);
      Deno.exit(rep.errors.length ? 1 : 0);
      break;
    }
    case "run":
      Deno.exit(await runIntercept(parsed.config));
  }
}

if (import.meta.main) main(Deno.args);
