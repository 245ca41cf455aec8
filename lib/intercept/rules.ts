/**
 * The NFQUEUE rules intercept installs on the OUTPUT chain (iptables, and ip6tables when it
 * works), each tagged with a comment unique to this process so that exactly those rules are
 * removed on exit. No `--queue-bypass`: while nobody reads the queue, replies are dropped,
 * never leaked to the network (no fail-open).
 */

/** Runs a command; injectable for tests. */
export type CommandRunner = (
  cmd: string[],
) => Promise<{ code: number; stdout: string; stderr: string }>;

/** Runs a real command (no shell). */
export const runCommand: CommandRunner = async (cmd) => {
  try {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch (e) {
    return { code: 127, stdout: "", stderr: (e as Error).message };
  }
};

/** Comment prefix of every rule intercept installs. */
export const RULE_TAG_PREFIX = "tcpcopy-intercept";

/** A tag unique to this process. */
export function ruleTag(): string {
  const rand = Math.floor(Math.random() * 36 ** 6).toString(36);
  return `${RULE_TAG_PREFIX}-${Deno.pid}-${rand}`;
}

/** The rule spec (after -I/-D OUTPUT) for one source port. */
export function ruleSpec(port: number, queueNum: number, tag: string): string[] {
  return [
    "-p",
    "tcp",
    "--sport",
    String(port),
    "-m",
    "comment",
    "--comment",
    tag,
    "-j",
    "NFQUEUE",
    "--queue-num",
    String(queueNum),
  ];
}

/**
 * The first line of an `iptables -S OUTPUT` listing that conflicts with taking `ports` into
 * queue `queueNum`: any rule on one of those source ports, or any rule feeding that queue.
 */
export function findConflict(
  listing: string,
  ports: number[],
  queueNum: number,
): string | undefined {
  for (const line of listing.split("\n")) {
    if (!line.startsWith("-A ")) continue;
    const words = line.split(/\s+/);
    for (let i = 0; i < words.length - 1; i++) {
      const w = words[i], next = words[i + 1];
      if ((w === "--sport" || w === "--source-port") && portMatches(next, ports)) return line;
      if (
        (w === "--sports" || w === "--source-ports") &&
        next.split(",").some((p) => portMatches(p, ports))
      ) {
        return line;
      }
      if ((w === "--queue-num" || w === "--queue-balance") && queueMatches(next, queueNum)) {
        return line;
      }
    }
  }
  return undefined;
}

/**
 * The first rule of an `nft list ruleset` listing, in a chain hooked on output, that matches a
 * TCP source port in `ports` or feeds queue `queueNum` (native nft rules that `iptables -S`
 * does not show).
 */
export function findNftConflict(
  ruleset: string,
  ports: number[],
  queueNum: number,
): string | undefined {
  let inOutput = false;
  for (const raw of ruleset.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("chain ")) inOutput = false;
    else if (/^type \S+ hook output\b/.test(line)) inOutput = true;
    else if (inOutput) {
      const sport = line.match(/\b(?:tcp|th) sport (\{[^}]*\}|\S+)/);
      if (sport) {
        const specs = sport[1].replace(/[{}]/g, "").split(",").map((x) => x.trim()).filter(Boolean);
        if (specs.some((x) => portMatches(x.replace("-", ":"), ports))) return line;
      }
      const q = line.match(/\bqueue\b.*?\b(?:num|to) (\d+)(?:-(\d+))?/);
      if (q && queueNum >= Number(q[1]) && queueNum <= Number(q[2] ?? q[1])) return line;
    }
  }
  return undefined;
}

function portMatches(spec: string, ports: number[]): boolean {
  const [lo, hi] = spec.replace(/^!/, "").split(":").map(Number);
  return ports.some((p) => p >= lo && p <= (hi ?? lo));
}

function queueMatches(spec: string, q: number): boolean {
  const [lo, hi] = spec.split(":").map(Number);
  return q >= lo && q <= (hi ?? lo);
}

/** Installed rules of one process; `remove()` takes away exactly those. */
export class NfqueueRules {
  #installed: { tool: string; spec: string[] }[] = [];

  constructor(
    readonly ports: number[],
    readonly queueNum: number,
    readonly tag: string = ruleTag(),
    readonly run: CommandRunner = runCommand,
  ) {}

  /** Families that got rules ("iptables", "ip6tables"). */
  get tools(): string[] {
    return [...new Set(this.#installed.map((r) => r.tool))];
  }

  /**
   * Installs the rules. Returns an error line (nothing left installed) or undefined.
   * `warn` hears about a missing IPv6 family, which is not fatal.
   */
  async install(warn: (line: string) => void): Promise<string | undefined> {
    const usable: string[] = [];
    for (const tool of ["iptables", "ip6tables"]) {
      const ls = await this.run([tool, "-w", "-S", "OUTPUT"]);
      if (ls.code !== 0) {
        const why = ls.stderr.trim().split("\n")[0];
        if (tool === "iptables") {
          return `cannot read the OUTPUT chain with iptables: ${why} (root needed; install iptables)`;
        }
        warn(`ip6tables unusable (${why}): IPv6 replies are not intercepted`);
        continue;
      }
      const conflict = findConflict(ls.stdout, this.ports, this.queueNum);
      if (conflict) {
        const stale = conflict.includes(RULE_TAG_PREFIX)
          ? ` (left by an intercept that did not exit cleanly; remove it with: ${tool} ${
            conflict.replace(/^-A /, "-D ")
          })`
          : "";
        return `${tool} OUTPUT already has a conflicting rule: ${conflict}${stale}; ` +
          `remove it, or pick other --port/--queue-num values`;
      }
      usable.push(tool);
    }
    const nft = await this.run(["nft", "list", "ruleset"]);
    if (nft.code === 0) {
      const conflict = findNftConflict(nft.stdout, this.ports, this.queueNum);
      if (conflict) {
        return `nft ruleset already has a conflicting output rule: ${conflict}; ` +
          `remove it, or pick other --port/--queue-num values`;
      }
    }
    for (const tool of usable) {
      for (const port of this.ports) {
        const spec = ruleSpec(port, this.queueNum, this.tag);
        const r = await this.run([tool, "-w", "-I", "OUTPUT", ...spec]);
        if (r.code !== 0) {
          await this.remove();
          return `${tool} -I OUTPUT ${spec.join(" ")} failed: ${r.stderr.trim().split("\n")[0]}`;
        }
        this.#installed.push({ tool, spec });
      }
    }
    return undefined;
  }

  /** Removes the installed rules (idempotent); returns lines describing failures. */
  async remove(): Promise<string[]> {
    const errors: string[] = [];
    const rules = this.#installed.reverse();
    this.#installed = [];
    for (const { tool, spec } of rules) {
      const r = await this.run([tool, "-w", "-D", "OUTPUT", ...spec]);
      if (r.code !== 0) errors.push(`${tool} -D OUTPUT ${spec.join(" ")}: ${r.stderr.trim()}`);
    }
    return errors;
  }
}
