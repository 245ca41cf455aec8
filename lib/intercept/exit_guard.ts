/**
 * One global handler for the exit paths a process can catch: an uncaught error, an unhandled
 * promise rejection, and `unload` (Deno.exit, end of the event loop). It runs a synchronous
 * clean-up once (intercept removes its NFQUEUE rules there, so a bug never leaves the port
 * blocked); Deno's default handling (error printed, exit 1) then goes on. SIGKILL and the OOM
 * killer cannot be caught: the next start replaces the stale rules (rules.ts).
 */

/** Why the guard ran. */
export type ExitPath = "uncaught error" | "unhandled rejection" | "exit";

/**
 * Installs the guard; `cleanup` runs at most once, with the path and a description. Returns a
 * function that uninstalls it (after a normal clean-up).
 */
export function installExitGuard(cleanup: (path: ExitPath, detail: string) => void): () => void {
  let done = false;
  const once = (path: ExitPath, detail: string) => {
    if (done) return;
    done = true;
    try {
      cleanup(path, detail);
    } catch { /* nothing more can be done on the way out */ }
  };
  const onError = (e: Event) => {
    const ev = e as ErrorEvent;
    once("uncaught error", ev.error instanceof Error ? ev.error.message : String(ev.message));
  };
  const onRejection = (e: Event) => {
    const r = (e as PromiseRejectionEvent).reason;
    once("unhandled rejection", r instanceof Error ? r.message : String(r));
  };
  const onUnload = () => once("exit", "");
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("unload", onUnload);
  return () => {
    done = true;
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("unload", onUnload);
  };
}
