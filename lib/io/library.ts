/**
 * Loading a system library through `Deno.dlopen` with an environment override for its path and
 * an error that names the package to install. With raised privileges (setcap, setuid) an
 * override is only used when it passes library_override.ts; otherwise loading fails with a line
 * that names the variable, the path and the reason.
 *
 * @module
 */

import { IoError, isDenoPermissionError } from "./errors.ts";
import { inspectPath, judgeOverride } from "./library_override.ts";
import { judgePrivilege, readPrivilegeFacts } from "./privilege.ts";

/** How to find and describe one system library. */
export interface LibrarySpec {
  /** soname tried when the override is unset, e.g. "libpcap.so.0.8". */
  soname: string;
  /** environment variable holding an alternative path, e.g. "TCPCOPY_LIBPCAP". */
  envVar: string;
  /** what to install, e.g. "libpcap0.8 (Debian/Ubuntu) or libpcap (RPM)". */
  packages: string;
}

/**
 * The path to load: the env override when set (and readable) and allowed, else the soname.
 * Throws {@link IoError} kind `library` when a raised process refuses the override.
 */
export function libraryPath(spec: LibrarySpec): string {
  let override: string | undefined;
  try {
    override = Deno.env.get(spec.envVar);
  } catch {
    // no --allow-env: the override cannot be read, use the default soname
  }
  if (!override) return spec.soname;
  const verdict = judgeOverride(
    spec.envVar,
    override,
    judgePrivilege(readPrivilegeFacts()),
    () => inspectPath(override),
  );
  if (verdict.kind === "refuse") throw new IoError("library", verdict.message);
  return verdict.path;
}

/** Opens `spec` with `symbols`; throws {@link IoError} with install / permission advice. */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  spec: LibrarySpec,
  symbols: S,
): Deno.DynamicLibrary<S> {
  const path = libraryPath(spec);
  try {
    return Deno.dlopen(path, symbols);
  } catch (e) {
    if (isDenoPermissionError(e)) {
      throw new IoError(
        "ffi-permission",
        `cannot load ${path}: Deno needs --allow-ffi (run with -A or --allow-ffi)`,
        { cause: e },
      );
    }
    const detail = e instanceof Error ? e.message : String(e);
    throw new IoError(
      "library",
      `cannot load ${path} (${detail}): install ${spec.packages} or set ${spec.envVar} to the library's path`,
      { cause: e },
    );
  }
}
