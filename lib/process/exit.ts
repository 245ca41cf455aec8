/**
 * Exit codes of both programs, and the one-line text of an error (a fatal path prints one line,
 * never a stack trace).
 */

/** Done: stopped by SIGINT/SIGTERM, or an offline replay finished. */
export const EXIT_OK = 0;
/** A runtime problem: no privilege, a missing device, intercept unreachable, a failed capture. */
export const EXIT_RUNTIME = 1;
/** A bad command line or a refused value (a symlinked log file, a bad secret file). */
export const EXIT_USAGE = 2;

/** tcpcopy `--compare-fail-above`: more answers differed than allowed (a regression gate). */
export const EXIT_MISMATCH = 3;

/** An exit code of the programs. */
export type ExitCode =
  | typeof EXIT_OK
  | typeof EXIT_RUNTIME
  | typeof EXIT_USAGE
  | typeof EXIT_MISMATCH;

/** The message of an error (or the thrown value as text), without its stack. */
export function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** `text` on one line (line breaks become spaces), as the log writes it. */
export function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ");
}
