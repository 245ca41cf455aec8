/**
 * Command lines of the benchmarks: `node:util` `parseArgs` plus `--help` (prints the file's
 * leading doc comment, its usage) and one clear line with exit code 2 on a bad option, instead
 * of a stack trace.
 *
 * @example
 * ```ts
 * const { values } = benchArgs(import.meta.url, {
 *   args: Deno.args,
 *   options: { rounds: { type: "string", default: "3" } },
 * });
 * ```
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** `parseArgs(config)` for the bench at `moduleUrl`, with `--help` and one-line errors. */
export function benchArgs<T extends ParseArgsConfig>(
  moduleUrl: string,
  config: T,
): ReturnType<typeof parseArgs<T>> {
  const args = config.args ?? Deno.args;
  const name = benchName(moduleUrl);
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usageOf(moduleUrl) || `${name}: no usage written`);
    Deno.exit(0);
  }
  try {
    return parseArgs(config);
  } catch (e) {
    console.error(`${name}: ${(e as Error).message.split("\n")[0]} (--help: the usage)`);
    Deno.exit(2);
  }
}

/**
 * The whole number `text` of option `--flag` of the bench at `moduleUrl` when it lies in
 * `[min, max]`; otherwise one line (which bench, which option, which value, what is expected)
 * and exit code 2.
 */
export function intArg(
  moduleUrl: string,
  flag: string,
  text: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    console.error(`${benchName(moduleUrl)}: --${flag} ${text}: expected a whole number ${range}`);
    Deno.exit(2);
  }
  return n;
}

/** The file name of the bench at `moduleUrl`, for its messages. */
function benchName(moduleUrl: string): string {
  return new URL(moduleUrl).pathname.split("/").pop() ?? "bench";
}

/** The leading `/** ... *\/` comment of the file at `moduleUrl`, without its stars. */
export function usageOf(moduleUrl: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(new URL(moduleUrl));
  } catch {
    return "";
  }
  const m = /^\s*\/\*\*([\s\S]*?)\*\//.exec(text);
  if (m === null) return "";
  return m[1].split("\n").map((l) => l.replace(/^\s*\* ?/, "")).join("\n").trim();
}
