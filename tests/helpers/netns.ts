/**
 * Network namespaces for end-to-end tests.
 *
 * Every test builds its own namespaces with names unique to the run (prefix, PID and a random
 * suffix), sends traffic only inside them, and tears everything down in `finally`: spawned
 * children are stopped by PID, namespaces are deleted. Typical use:
 *
 * ```ts
 * Deno.test({ name: "peer sees packets", ignore: !isRoot(), fn: () =>
 *   withNetns(async (env) => {
 *     const a = await env.netns("a"), b = await env.netns("b");
 *     const { ifA, ifB } = await vethPair(a, b, "10.9.0.1", "10.9.0.2");
 *     const server = b.spawn(["nc", "-l", "-p", "8080"]);   // killed by env on exit
 *     await a.exec(["ping", "-c1", "-W1", "10.9.0.2"]);
 *   }) });
 * ```
 *
 * @module
 */

import { packageAdvice, requirement } from "../../lib/setup/packages.ts";
import { findProgram } from "../../lib/setup/probe.ts";

const issued = new Set<string>();

/**
 * A short name unique to this run: up to 4 characters of `prefix`, the PID and a random suffix
 * in base 36. At most 12 characters, so it also fits interface names (15 max).
 */
export function uniqueName(prefix: string): string {
  const head = prefix.replace(/[^a-zA-Z0-9]/g, "").slice(0, 4) || "t";
  const pid = (Deno.pid % 36 ** 4).toString(36);
  for (;;) {
    const rand = Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, "0");
    const name = `${head}${pid}${rand}`.slice(0, 12);
    if (!issued.has(name)) {
      issued.add(name);
      return name;
    }
  }
}

/** True when running as root (end-to-end tests are skipped otherwise). */
export function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

/** The command line that runs a TypeScript file with this repository's deno and all permissions. */
export function denoCmd(script: string | URL, args: string[] = []): string[] {
  const path = script instanceof URL ? script.pathname : script;
  return [Deno.execPath(), "run", "-A", "--quiet", "--no-lock", path, ...args];
}

/** The command line that evaluates a short TypeScript snippet with this repository's deno. */
export function denoEval(code: string): string[] {
  return [Deno.execPath(), "eval", "--quiet", code];
}

/** Result of {@link Netns.exec}. */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link Netns.exec}. */
export interface ExecOptions {
  /** Throw (with stderr) on a non-zero exit code. Default true. */
  check?: boolean;
  /** Text written to the command's stdin. */
  stdin?: string;
  /** Kill the command after this many milliseconds. Default 30 000. */
  timeoutMs?: number;
}

/** Options of {@link Netns.spawn}. */
export interface SpawnOptions {
  stdout?: "piped" | "inherit" | "null";
  stderr?: "piped" | "inherit" | "null";
  stdin?: "piped" | "inherit" | "null";
  env?: Record<string, string>;
}

/**
 * The external programs `cmd` runs: the first word, and the program behind the wrappers
 * `ip netns exec NS` and `taskset -c CPUS`. Paths (this Deno, a built binary) are not programs.
 */
export function programsOf(cmd: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < cmd.length;) {
    const name = cmd[i];
    if (name === undefined || name.includes("/")) break;
    out.push(name);
    if (name === "ip" && cmd[i + 1] === "netns" && cmd[i + 2] === "exec") i += 4;
    else if (name === "taskset") i += cmd[i + 1]?.startsWith("-") ? 3 : 2;
    else break;
  }
  return out;
}

const present = new Set<string>();

/**
 * Throws one clear line when `cmd` runs a program that lib/setup/packages.ts does not list (add
 * it there: build.sh and CI install from that list) or that is not installed.
 */
export function requirePrograms(cmd: readonly string[]): void {
  for (const name of programsOf(cmd)) {
    if (present.has(name)) continue;
    if (requirement(name)?.kind !== "program") {
      throw new Error(
        `${name}: a test runs it but lib/setup/packages.ts does not list it: add the ` +
          "package that provides it there (build.sh and CI install from that list)",
      );
    }
    if (findProgram(name) === undefined) {
      throw new Error(
        `${name} is not installed: install ${packageAdvice(name)}, or run ` +
          "sudo ./build.sh test, which installs what the tests need",
      );
    }
    present.add(name);
  }
}

/** Runs a command to completion (bounded in time), capturing its output. */
export async function run(cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  requirePrograms(cmd);
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, opts.timeoutMs ?? 30_000);
  try {
    if (opts.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(opts.stdin));
      await w.close();
    }
    const out = await child.output();
    const res = {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
    if (res.code !== 0 && opts.check !== false) {
      throw new Error(`${cmd.join(" ")}: exit ${res.code}: ${res.stderr.trim()}`);
    }
    return res;
  } finally {
    clearTimeout(timer);
  }
}

/** Stops a child by its PID: SIGTERM, then SIGKILL if it is still alive after `graceMs`. */
export async function stopChild(child: Deno.ChildProcess, graceMs = 1000): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    return; // already exited
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exited = child.status.then(() => true, () => true);
  const late = new Promise<boolean>((r) => timer = setTimeout(() => r(false), graceMs));
  const done = await Promise.race([exited, late]);
  clearTimeout(timer);
  if (!done) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone meanwhile */ }
    await exited;
  }
}

/** Options of {@link Netns.create}. */
export interface NetnsOptions {
  /** Keep IPv6 enabled (default: disabled, so links carry no IPv6 chatter). */
  ipv6?: boolean;
}

/** A network namespace owned by one test. */
export class Netns {
  readonly #children = new Set<Deno.ChildProcess>();
  #destroyed = false;

  private constructor(readonly name: string) {}

  /**
   * Creates a namespace named `uniqueName(prefix)` with `lo` up and IPv6 disabled (quiet
   * links), unless `opts.ipv6`: then IPv6 stays on, without router solicitations or duplicate
   * address detection (addresses are usable at once, links stay quiet).
   */
  static async create(prefix: string, opts: NetnsOptions = {}): Promise<Netns> {
    const ns = new Netns(uniqueName(prefix));
    await run(["ip", "netns", "add", ns.name]);
    try {
      await ns.exec(["ip", "link", "set", "lo", "up"]);
      const sysctls = opts.ipv6
        ? [
          "net.ipv6.conf.all.accept_dad=0",
          "net.ipv6.conf.default.accept_dad=0",
          "net.ipv6.conf.all.router_solicitations=0",
          "net.ipv6.conf.default.router_solicitations=0",
          "net.ipv6.conf.all.disable_ipv6=0",
          "net.ipv6.conf.default.disable_ipv6=0",
        ]
        : ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"];
      for (const kv of sysctls) await ns.exec(["sysctl", "-qw", kv], { check: false });
    } catch (e) {
      await ns.destroy();
      throw e;
    }
    return ns;
  }

  /** The argv prefix that runs a command inside this namespace. */
  wrap(cmd: string[]): string[] {
    return ["ip", "netns", "exec", this.name, ...cmd];
  }

  /** Runs `cmd` inside the namespace to completion; throws with stderr on failure unless `check: false`. */
  exec(cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return run(this.wrap(cmd), opts);
  }

  /**
   * Starts `cmd` inside the namespace (`ip netns exec` execs it, so the child's PID is the
   * command's). The child is stopped by PID in {@link destroy} unless already stopped.
   */
  spawn(cmd: string[], opts: SpawnOptions = {}): Deno.ChildProcess {
    const wrapped = this.wrap(cmd);
    requirePrograms(wrapped);
    const child = new Deno.Command(wrapped[0], {
      args: wrapped.slice(1),
      stdin: opts.stdin ?? "null",
      stdout: opts.stdout ?? "null",
      stderr: opts.stderr ?? "inherit",
      env: opts.env,
    }).spawn();
    this.#children.add(child);
    child.status.finally(() => this.#children.delete(child));
    return child;
  }

  /** Stops every child spawned here (by PID) and deletes the namespace. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    await Promise.all([...this.#children].map((c) => stopChild(c)));
    await run(["ip", "netns", "del", this.name], { check: false });
  }
}

/**
 * Joins two namespaces with a veth pair (unique interface names), assigns `ipA`/`ipB` with the
 * given prefix length and brings both ends up.
 */
export async function vethPair(
  a: Netns,
  b: Netns,
  ipA: string,
  ipB: string,
  prefixLen = 24,
): Promise<{ ifA: string; ifB: string }> {
  const ifA = uniqueName("va"), ifB = uniqueName("vb");
  await run([
    "ip",
    "link",
    "add",
    ifA,
    "netns",
    a.name,
    "type",
    "veth",
    "peer",
    "name",
    ifB,
    "netns",
    b.name,
  ]);
  await a.exec(["ip", "addr", "add", `${ipA}/${prefixLen}`, "dev", ifA]);
  await b.exec(["ip", "addr", "add", `${ipB}/${prefixLen}`, "dev", ifB]);
  await a.exec(["ip", "link", "set", ifA, "up"]);
  await b.exec(["ip", "link", "set", ifB, "up"]);
  return { ifA, ifB };
}

/** A stack of clean-up actions run in reverse order; errors are collected, not thrown early. */
export class Cleanup {
  readonly #actions: (() => unknown)[] = [];

  /** Registers an action to run at clean-up time (last registered runs first). */
  defer(action: () => unknown): void {
    this.#actions.push(action);
  }

  /** Creates a namespace that is destroyed at clean-up time. */
  async netns(prefix: string, opts: NetnsOptions = {}): Promise<Netns> {
    const ns = await Netns.create(prefix, opts);
    this.defer(() => ns.destroy());
    return ns;
  }

  /** Registers a child process to be stopped by PID at clean-up time; returns it. */
  child(child: Deno.ChildProcess): Deno.ChildProcess {
    this.defer(() => stopChild(child));
    return child;
  }

  /** Runs every action (reverse order); throws the first error after all have run. */
  async run(): Promise<void> {
    let first: unknown;
    while (this.#actions.length > 0) {
      const action = this.#actions.pop()!;
      try {
        await action();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  }
}

/** Runs `fn` with a fresh {@link Cleanup}, which is always run afterwards, even on failure. */
export async function withNetns<T>(fn: (env: Cleanup) => Promise<T>): Promise<T> {
  const env = new Cleanup();
  try {
    return await fn(env);
  } finally {
    await env.run();
  }
}

/** Waits until `cond()` is true, polling every `stepMs`; false after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  stepMs = 20,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return await cond();
}

/**
 * Reads a byte stream (a child's stdout, stdin) line by line: each call resolves with the next
 * line without its newline, or, once the stream has ended, with what is left (possibly "").
 */
export function lineReader(stream: ReadableStream<Uint8Array>): () => Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return async () => {
    for (;;) {
      const nl = buffered.indexOf("\n");
      if (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) return buffered;
      buffered += value;
    }
  };
}
