/**
 * Whether a library-path override (TCPCOPY_LIBC, TCPCOPY_LIBPCAP, TCPCOPY_LIBNFQ) may be loaded.
 *
 * In a process with raised privileges (see privilege.ts) the environment may have been set by
 * anyone allowed to execute the file, so an override is only believed when its path is absolute
 * and the file it resolves to, and every directory above it, is owned by root and not writable by
 * group or others (a directory with the sticky bit, such as /tmp, may be: nobody but root can
 * rename or remove root's entries in it). The resolved path is what gets loaded, so symlinks
 * cannot be swapped between the check and dlopen. Without raised privileges the caller's
 * environment is the caller's own business: the override is used as given.
 *
 * {@link judgeOverride} is pure; {@link inspectPath} gathers its file facts.
 *
 * @module
 */

import type { Privilege } from "./privilege.ts";

/** lstat() facts of one path component. */
export interface PathEntry {
  path: string;
  uid: number;
  /** st_mode permission bits (07777) */
  mode: number;
  kind: "file" | "dir" | "symlink" | "other";
}

/** The file facts for an override value: the resolved path and each component from "/" down. */
export type PathFacts =
  | { realPath: string; entries: PathEntry[] }
  | { error: string };

/** What to load, or why the override was refused (one line, names the variable and path). */
export type OverrideVerdict =
  | { kind: "use"; path: string }
  | { kind: "refuse"; message: string };

const S_ISVTX = 0o1000;

/** The first reason `entry` makes the resolved path untrustworthy, or undefined. */
function entryProblem(entry: PathEntry, isLast: boolean): string | undefined {
  if (entry.kind === "symlink") return `${entry.path} changed into a symbolic link`;
  if (isLast && entry.kind !== "file") return `${entry.path} is not a regular file`;
  if (!isLast && entry.kind !== "dir") return `${entry.path} is not a directory`;
  if (entry.uid !== 0) return `${entry.path} is owned by uid ${entry.uid}, not root`;
  const writable = (entry.mode & 0o022) !== 0;
  const sticky = entry.kind === "dir" && (entry.mode & S_ISVTX) !== 0;
  if (writable && !sticky) {
    return `${entry.path} is writable by group or others (mode ${
      (entry.mode & 0o7777).toString(8).padStart(4, "0")
    })`;
  }
  return undefined;
}

/**
 * Decides an override `envVar`=`value` (value non-empty) given the process privilege and, for a
 * raised process, the facts of the path. Returns the path to load or a refusal.
 */
export function judgeOverride(
  envVar: string,
  value: string,
  privilege: Privilege,
  facts: () => PathFacts,
): OverrideVerdict {
  if (!privilege.raised) return { kind: "use", path: value };
  const refuse = (why: string): OverrideVerdict => ({
    kind: "refuse",
    message:
      `${envVar}=${value} refused: this process runs with raised privileges (${privilege.why}) ` +
      `and ${why}; an override must then be an absolute path to a root-owned file in root-owned ` +
      `directories, none writable by group or others (or unset ${envVar})`,
  });
  if (!value.startsWith("/")) return refuse("it is not an absolute path");
  const f = facts();
  if ("error" in f) return refuse(`it cannot be inspected (${f.error})`);
  if (f.entries.length === 0) return refuse("it resolves to no path");
  for (let i = 0; i < f.entries.length; i++) {
    const problem = entryProblem(f.entries[i], i === f.entries.length - 1);
    if (problem !== undefined) return refuse(problem);
  }
  return { kind: "use", path: f.realPath };
}

function kindOf(info: Deno.FileInfo): PathEntry["kind"] {
  if (info.isSymlink) return "symlink";
  if (info.isFile) return "file";
  if (info.isDirectory) return "dir";
  return "other";
}

/** Resolves `path` (realpath) and lstat()s "/" and every component of the result. */
export function inspectPath(path: string): PathFacts {
  try {
    const realPath = Deno.realPathSync(path);
    const parts = realPath.split("/").filter(Boolean);
    const paths = ["/", ...parts.map((_, i) => "/" + parts.slice(0, i + 1).join("/"))];
    const entries = paths.map((p): PathEntry => {
      const info = Deno.lstatSync(p);
      return { path: p, uid: info.uid ?? -1, mode: info.mode ?? 0o7777, kind: kindOf(info) };
    });
    return { realPath, entries };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}
