/**
 * The outermost step of both programs (main.ts, intercept.ts): run the program, exit with its
 * code. An error nothing below caught ends the process with one line and exit code 1, never a
 * stack trace; Deno.exit still fires `unload`, so intercept's exit guard removes its rules.
 */
import { describe, EXIT_RUNTIME, oneLine } from "./exit.ts";
import { schedulePageOut, trimEverySOf } from "./memory.ts";

/** Runs `body` and exits with the code it resolves to (1 with one line when it throws). */
export async function exitWith(program: string, body: () => Promise<number>): Promise<never> {
  let code: number;
  schedulePageOut(trimEverySOf(program)); // start-up code out of RSS, malloc trimmed (memory.ts)
  try {
    code = await body();
  } catch (e) {
    console.error(`${program}: ${oneLine(describe(e))}`);
    code = EXIT_RUNTIME;
  }
  Deno.exit(code);
}
