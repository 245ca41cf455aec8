/**
 * Running this checkout's programs (main.ts = tcpcopy, intercept.ts) as child processes from the
 * unit tests of their command lines.
 *
 * @module
 */

import { v8FlagsArg } from "../../lib/process/v8_flags.ts";

/** Entry points of the two programs. */
export const PROGRAMS = {
  tcpcopy: new URL("../../main.ts", import.meta.url).pathname,
  intercept: new URL("../../intercept.ts", import.meta.url).pathname,
} as const;

/** How a program run ended. */
export interface ProgramRun {
  code: number;
  out: string;
  err: string;
}

/** Runs `deno run -A --v8-flags=<the program's flags> <program> ...args` to its end and returns its exit code and output. */
export async function runProgram(
  program: keyof typeof PROGRAMS,
  args: string[],
): Promise<ProgramRun> {
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", v8FlagsArg(program), PROGRAMS[program], ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: p.code, out: dec.decode(p.stdout), err: dec.decode(p.stderr) };
}
