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

/** Runs the doctor for `role`; returns the exit code. */
export async function runDoctor(
  role: Role,
  targets: DoctorTargets,
  opts: { json?: boolean; assistant?: boolean; extra?: Verdict[] } = {},
): Promise<number> {
  const verdicts = runChecks(role, await gatherFacts(role, targets), opts.assistant);
  verdicts.push(...(opts.extra ?? []));
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
