/**
 * Errors raised by the packet I/O edge. Every message says what to do about it; `kind` lets a
 * program map the error to an exit code or a stats counter without parsing text.
 *
 * @module
 */

/** What went wrong, coarsely. */
export type IoErrorKind =
  | "library" // a shared library is missing, lacks a symbol, or its override was refused
  | "ffi-permission" // Deno was started without --allow-ffi (or --allow-read/--allow-env)
  | "privilege" // the kernel refused: needs root or a capability
  | "device" // no such network device / device down
  | "filter" // the BPF filter expression does not compile
  | "file" // savefile missing, unreadable or corrupt
  | "queue" // NFQUEUE bind/config failure
  | "system"; // any other failing system call

/** An I/O-edge failure with a message a user can act on. */
export class IoError extends Error {
  constructor(readonly kind: IoErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "IoError";
  }
}

/** True when `e` is Deno's "permission not granted" error (named NotCapable or PermissionDenied). */
export function isDenoPermissionError(e: unknown): boolean {
  return e instanceof Error &&
    (e.name === "NotCapable" || e.name === "PermissionDenied" ||
      /Requires \S+ access|--allow-/.test(e.message));
}

/**
 * The hint appended to errors caused by missing raw-socket privileges. It never suggests setcap
 * on the Deno runtime: that would give the capabilities to every script run with it.
 */
export const PRIVILEGE_HINT =
  "needs root or CAP_NET_RAW + CAP_NET_ADMIN (setcap on the built executable or systemd AmbientCapabilities=, never on the deno runtime; see README)";
