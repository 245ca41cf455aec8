/**
 * `./build.sh setup [demo|test|tcpcopy|intercept|bench] [--check]`, also run by `./build.sh demo` and
 * `./build.sh test` before they start: installs the system packages that are missing for the
 * purpose (root, apt-get/dnf/yum), or stops with one line that names them and the command that
 * installs them. The list is lib/setup/packages.ts.
 *
 * Exit codes: 0 everything present (or installed), 1 something is still missing, 2 bad usage.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  installCommand,
  type PackageManager,
  type Purpose,
  type Requirement,
  requirementsFor,
} from "../lib/setup/packages.ts";
import { planSetup } from "../lib/setup/plan.ts";
import { detectManager, missing } from "../lib/setup/probe.ts";

const PREFIX = "build.sh";
const INSTALL_TIMEOUT_MS = 15 * 60_000;

/** The purposes behind each `setup` target; `test` depends on whether e2e tests can run. */
function purposesOf(target: string, root: boolean): Purpose[] | undefined {
  switch (target) {
    case "demo":
      return ["demo"];
    case "test":
      return root ? ["unit-tests", "e2e-tests"] : ["unit-tests"];
    case "tcpcopy":
      return ["tcpcopy"];
    case "intercept":
      return ["intercept"];
    case "bench":
      // the benchmarks drive the end-to-end labs: everything the e2e tests need, plus their own
      return ["unit-tests", "e2e-tests", "bench"];
    default:
      return undefined;
  }
}

async function sh(cmd: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(INSTALL_TIMEOUT_MS),
  }).output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  return { ok: out.success, text };
}

function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  return lines.findLast((l) => /^(E:|Error|error)/.test(l)) ?? lines.at(-1) ?? "no output";
}

/** Runs the package manager; returns an error line or undefined. */
async function install(manager: PackageManager, packages: string[]): Promise<string | undefined> {
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const cmd = manager === "apt"
    ? ["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...packages]
    : [manager, "install", "-y", "-q", ...packages];
  try {
    const res = await sh(cmd, env);
    return res.ok ? undefined : `${cmd[0]} failed: ${lastLine(res.text)}`;
  } catch (e) {
    return `${cmd[0]} did not finish: ${(e as Error).message}`;
  }
}

/**
 * Debian/Ubuntu: refresh the package lists once, then ask which of the renamed packages of
 * `lacking` (several names in the list) the archive has.
 */
async function aptLookup(lacking: readonly Requirement[]): Promise<(pkg: string) => boolean> {
  await sh(["apt-get", "update", "-qq"], { DEBIAN_FRONTEND: "noninteractive" }).catch(() => {});
  const known = new Map<string, boolean>();
  const names = new Set(lacking.flatMap((r) => r.apt.length > 1 ? r.apt : []));
  for (const name of names) {
    const res = await sh(["apt-cache", "show", "--no-all-versions", name]).catch(() => undefined);
    known.set(name, res?.ok === true && res.text.includes("Package:"));
  }
  return (pkg) => known.get(pkg) ?? true;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: { check: { type: "boolean" } },
    });
  } catch (e) {
    console.error(`${PREFIX} setup: ${(e as Error).message}`);
    return 2;
  }
  const root = Deno.uid() === 0;
  const target = parsed.positionals[0] ?? "test";
  const purposes = purposesOf(target, root);
  if (!purposes || parsed.positionals.length > 1) {
    console.error(
      `${PREFIX} setup: '${parsed.positionals.join(" ")}': expected one of demo, ` +
        "test, tcpcopy, intercept, bench",
    );
    return 2;
  }
  const checkOnly = parsed.values.check === true;
  const needed = requirementsFor(purposes);
  const lacking = missing(needed);
  const manager = detectManager();
  const aptHas = lacking.length > 0 && manager === "apt" && root && !checkOnly
    ? await aptLookup(lacking)
    : undefined;
  const plan = planSetup({ missing: lacking, purposes, root, manager, checkOnly, aptHas });
  switch (plan.action) {
    case "ok":
      return 0;
    case "stop":
      console.error(`${PREFIX}: ${plan.line}`);
      return 1;
    case "install": {
      console.error(`${PREFIX}: ${plan.line}`);
      const failed = await install(plan.manager, plan.packages);
      const still = missing(needed);
      if (failed || still.length > 0) {
        const why = failed ?? `still missing after the install: ${still.map((r) => r.name)}`;
        console.error(
          `${PREFIX}: could not install ${plan.packages.join(" ")} (${why}); ` +
            `install them by hand (${installCommand(plan.manager, plan.packages)}), then ` +
            "run the command again",
        );
        return 1;
      }
      return 0;
    }
    default: {
      const never: never = plan;
      return never;
    }
  }
}

Deno.exit(await main());
