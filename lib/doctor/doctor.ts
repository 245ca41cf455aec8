/**
 * The `doctor` subcommand shared by tcpcopy and intercept: gather facts, judge them, print a
 * pass/fail line per check with the exact fix (or JSON with `--json`). Exit code 0 when no
 * check failed, 1 otherwise.
 *
 * @module
 */
import { formatReport, type Role, runChecks, type Verdict } from "./checks.ts";
import { type DoctorTargets, gatherFacts } from "./facts.ts";
import { probeSendPath } from "./probe.ts";
import { checkModules, type ModuleNeed } from "./module_checks.ts";
import { gatherModuleFacts } from "./module_facts.ts";

/** Runs the doctor for `role`; returns the exit code. */
export async function runDoctor(
  role: Role,
  targets: DoctorTargets,
  opts: {
    json?: boolean;
    assistant?: boolean;
    extra?: Verdict[];
    /** tcpcopy: the protocol modules of the run and its --auth-file (module_checks.ts). */
    modules?: { modules: ModuleNeed[]; authFile?: string; trustLogins?: boolean };
  } = {},
): Promise<number> {
  const facts = await gatherFacts(role, targets);
  const verdicts = runChecks(role, facts, opts.assistant);
  verdicts.push(...(opts.extra ?? []));
  if (role === "tcpcopy" && opts.modules !== undefined) {
    const reachable = targets.intercepts.filter((i) =>
      facts.intercepts[`${i.host}:${i.port}`] === ""
    );
    verdicts.push(...checkModules(
      await gatherModuleFacts({ ...opts.modules, secret: targets.secret, intercepts: reachable }),
    ));
  }
  // The send-path probe needs the privileges and a reachable intercept: skip it otherwise.
  const blocked = verdicts.some((v) =>
    v.status === "fail" && (v.id === "privileges" || v.id.startsWith("intercept:"))
  );
  if (role === "tcpcopy" && !blocked && targets.intercepts.length > 0) {
    for (const target of targets.probeTargets ?? []) {
      verdicts.push(
        await probeSendPath({ target, intercepts: targets.intercepts, secret: targets.secret }),
      );
    }
  }
  if (opts.json) {
    console.log(JSON.stringify({ type: "doctor", program: role, checks: verdicts }));
  } else {
    console.log(formatReport(verdicts));
  }
  return verdicts.some((v) => v.status === "fail") ? 1 : 0;
}
