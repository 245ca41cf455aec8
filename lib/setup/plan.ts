/**
 * What to do about missing requirements, as a pure decision: nothing, install these packages
 * (root, a known package manager), or stop with one line that lists the exact packages and the
 * command that installs them. `tools/setup.ts` carries the decision out.
 *
 * @module
 */
import {
  describe,
  installCommand,
  type PackageManager,
  packagesFor,
  type Purpose,
  type Requirement,
} from "./packages.ts";

/** The facts the decision needs. */
export interface SetupFacts {
  /** Requirements this host lacks. */
  missing: readonly Requirement[];
  /** What they were needed for (for the message). */
  purposes: readonly Purpose[];
  /** Running as root (may install). */
  root: boolean;
  /** The host's package manager, if a known one. */
  manager?: PackageManager;
  /** Only report, never install. */
  checkOnly: boolean;
  /** Debian/Ubuntu: whether the archive has a package (picks among renamed ones). */
  aptHas?: (pkg: string) => boolean;
}

/** The decision. */
export type SetupPlan =
  | { action: "ok" }
  | { action: "install"; manager: PackageManager; packages: string[]; line: string }
  | { action: "stop"; line: string };

const PURPOSE_TEXT: Record<Purpose, string> = {
  "tcpcopy": "tcpcopy",
  "intercept": "intercept (NFQUEUE mode)",
  "intercept-pcap": "intercept (pcap mode)",
  "unit-tests": "the unit tests",
  "e2e-tests": "the end-to-end tests",
  "demo": "the demo",
  "bench": "the benchmarks",
};

/** "the demo" / "the unit tests and the end-to-end tests". */
export function purposeText(purposes: readonly Purpose[]): string {
  return purposes.map((p) => PURPOSE_TEXT[p]).join(" and ");
}

function byName(missing: readonly Requirement[]): string {
  return missing.map((r) => `${r.name} (${r.apt.join(" or ")} / RPM ${r.rpm})`).join(", ");
}

/** Decides what to do about `facts.missing`. */
export function planSetup(facts: SetupFacts): SetupPlan {
  const { missing, manager } = facts;
  if (missing.length === 0) return { action: "ok" };
  const what = `missing for ${purposeText(facts.purposes)}: ${describe(missing)}`;
  if (manager === undefined) {
    return {
      action: "stop",
      line: `${what}; no apt-get, dnf or yum here: install the packages that provide ` +
        `${byName(missing)} with this system's package manager`,
    };
  }
  const packages = packagesFor(missing, manager, facts.aptHas);
  const command = installCommand(manager, packages);
  if (facts.checkOnly || !facts.root) {
    const how = facts.root ? "" : " (as root, ./build.sh installs them itself)";
    return { action: "stop", line: `${what}; install them with: ${command}${how}` };
  }
  return {
    action: "install",
    manager,
    packages,
    line: `installing ${packages.join(" ")} (${what})`,
  };
}
