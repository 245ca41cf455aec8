/**
 * Which listed requirements this host lacks: programs looked up on PATH (and the sbin folders,
 * which a non-root PATH often leaves out, and the versioned folders of {@link offPathDirs}), libraries loaded the way the programs load them.
 *
 * @module
 */
import { openLibrary } from "../io/library.ts";
import { librarySpec, type PackageManager, type Requirement } from "./packages.ts";

const SBIN = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

function isExecutableFile(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Folders of versioned server programs that distributions keep off PATH, newest version first:
 * Debian's PostgreSQL (`initdb`, `postgres` in /usr/lib/postgresql/N/bin).
 */
export function offPathDirs(): string[] {
  const root = "/usr/lib/postgresql";
  try {
    return [...Deno.readDirSync(root)].map((e) => Number(e.name))
      .filter((n) => Number.isInteger(n)).sort((a, b) => b - a)
      .map((v) => `${root}/${v}/bin`);
  } catch {
    return []; // not installed
  }
}

/** The path of program `name` on PATH, in the sbin folders or {@link offPathDirs}, or undefined. */
export function findProgram(name: string, path = Deno.env.get("PATH") ?? ""): string | undefined {
  if (name.includes("/")) return isExecutableFile(name) ? name : undefined;
  const dirs = [...path.split(":").filter(Boolean), ...SBIN, ...offPathDirs()];
  for (const dir of dirs) {
    const candidate = `${dir}/${name}`;
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Why library `soname` does not load ("" when it does), honouring its override variable. */
export function libraryError(soname: string): string {
  try {
    openLibrary(librarySpec(soname), {}).close();
    return "";
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** True when `r` is present on this host. */
export function isPresent(r: Requirement): boolean {
  return r.kind === "program" ? findProgram(r.name) !== undefined : libraryError(r.name) === "";
}

/** The requirements of `list` that this host lacks. */
export function missing(list: readonly Requirement[]): Requirement[] {
  return list.filter((r) => !isPresent(r));
}

/** The host's package manager, if build.sh knows how to drive it. */
export function detectManager(): PackageManager | undefined {
  if (findProgram("apt-get")) return "apt";
  if (findProgram("dnf")) return "dnf";
  if (findProgram("yum")) return "yum";
  return undefined;
}
