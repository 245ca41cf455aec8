/**
 * Loading a system library through `Deno.dlopen` with an environment override for its path and
 * an error that names the package to install.
 *
 * @module
 */

import { IoError, isDenoPermissionError } from "./errors.ts";

/** How to find and describe one system library. */
export interface LibrarySpec {
  /** soname tried when the override is unset, e.g. "libpcap.so.0.8". */
  soname: string;
  /** environment variable holding an alternative path, e.g. "TCPCOPY_LIBPCAP". */
  envVar: string;
  /** what to install, e.g. "libpcap0.8 (Debian/Ubuntu) or libpcap (RPM)". */
  packages: string;
}

/** The path to load: the env override when set (and readable), else the soname. */
export function libraryPath(spec: LibrarySpec): string {
  try {
    const override = Deno.env.get(spec.envVar);
    if (override) return override;
  } catch {
    // no --allow-env: the override cannot be read, use the default soname
  }
  return spec.soname;
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
