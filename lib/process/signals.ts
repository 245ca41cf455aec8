/**
 * Signal handling of both programs: SIGINT and SIGTERM ask to stop (what a stop is belongs to
 * the program: tcpcopy resets its sessions, intercept drains and a second signal ends the
 * drain), SIGHUP reopens the log (log.ts). Every listener added here goes in one `remove()`.
 */

/** The signals both programs handle. */
export type ProcessSignal = "SIGINT" | "SIGTERM" | "SIGHUP";

/** Listeners of a running program; `remove()` takes them all away (idempotent). */
export interface SignalHandlers {
  remove(): void;
}

/**
 * Adds `onStop(signal)` for SIGINT and SIGTERM and `onHup` for SIGHUP.
 */
export function handleSignals(
  onStop: (signal: "SIGINT" | "SIGTERM") => void,
  onHup: () => void,
): SignalHandlers {
  const added: [ProcessSignal, () => void][] = [];
  for (const sig of ["SIGINT", "SIGTERM"] as const) added.push([sig, () => onStop(sig)]);
  added.push(["SIGHUP", onHup]);
  for (const [sig, h] of added) Deno.addSignalListener(sig, h);
  return {
    remove() {
      for (const [sig, h] of added.splice(0)) Deno.removeSignalListener(sig, h);
    },
  };
}

/** Adds one listener; returns the function that removes it. */
export function onSignal(sig: ProcessSignal, handler: () => void): () => void {
  Deno.addSignalListener(sig, handler);
  return () => Deno.removeSignalListener(sig, handler);
}
