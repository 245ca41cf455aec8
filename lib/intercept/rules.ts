/**
 * The NFQUEUE rules intercept installs on the OUTPUT chain (iptables, and ip6tables when it
 * works), each tagged with a comment naming the owning process (`tcpcopy-intercept-PID-START-
 * RAND`: pid, start time in clock ticks since boot, a random suffix), so that exactly those
 * rules are removed on exit, and a rule left by a process that is gone (crash, SIGKILL, OOM)
 * is recognised as stale and replaced by the next start.
 *
 * Every rule skips loopback (`! -o lo`): the target's own health checks on 127.0.0.1 or on
 * its own addresses are never queued. Fail-closed by default: while nobody reads the queue,
 * replies are dropped, never leaked. `--fail-open` adds `--queue-bypass`: the kernel then lets
 * replies through when no intercept is bound to the queue (an explicit, visible choice).
 */
import { packageAdvice } from "../setup/packages.ts";

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
    const why = e instanceof Deno.errors.NotFound
      ? `${cmd[0]} is not installed: install ${packageAdvice(cmd[0])}`
      : (e as Error).message;
    return { code: NOT_RUN, stdout: "", stderr: why };
  }
};

/** Exit code of a command that could not be started (as a shell reports it). */
const NOT_RUN = 127;

/** Why `tool -S OUTPUT` failed, with what to do: install it, or run as root. */
function unusable(tool: string, ls: { code: number; stderr: string }): string {
  const why = ls.stderr.trim().split("\n")[0];
  return ls.code === NOT_RUN
    ? why
    : `cannot read the OUTPUT chain with ${tool}: ${why} (root needed)`;
}

/** Runs a command synchronously (exit paths where no promise will settle any more). */
export type SyncCommandRunner = (cmd: string[]) => { code: number; stderr: string };

/** Runs a real command synchronously (no shell). */
export const runCommandSync: SyncCommandRunner = (cmd) => {
  try {
    const out = new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "piped" })
      .outputSync();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  } catch (e) {
    return { code: 127, stderr: (e as Error).message };
  }
};

/** Comment prefix of every rule intercept installs. */
export const RULE_TAG_PREFIX = "tcpcopy-intercept";

/** The owner a rule's tag names. */
export interface RuleTag {
  pid: number;
  /** Start time of the owner (clock ticks since boot); absent in tags of older versions. */
  startTicks?: number;
}

const TAG_RE = new RegExp(`^${RULE_TAG_PREFIX}-(\\d+)(?:-(\\d+))?-[0-9a-z]+$`);

/** Parses a rule tag (`tcpcopy-intercept-PID-START-RAND`, or the older `...-PID-RAND`). */
export function parseRuleTag(text: string): RuleTag | undefined {
  const m = TAG_RE.exec(text);
  if (!m) return undefined;
  const pid = Number(m[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return m[2] === undefined ? { pid } : { pid, startTicks: Number(m[2]) };
}

/**
 * A tag for the process `pid` started at `startTicks`; without a start time (no /proc) the
 * older `PID-RAND` form, judged by the command line alone (never by a made-up start time).
 */
export function ruleTag(pid = Deno.pid, startTicks = processStartTicks(pid)): string {
  const rand = Math.floor(Math.random() * 36 ** 6).toString(36);
  return startTicks === undefined
    ? `${RULE_TAG_PREFIX}-${pid}-${rand}`
    : `${RULE_TAG_PREFIX}-${pid}-${startTicks}-${rand}`;
}

/** The comment of an `iptables -S` line (our tags have no spaces; quotes are stripped). */
export function ruleComment(line: string): string | undefined {
  const m = /(?:^|\s)--comment\s+("[^"]*"|\S+)/.exec(line);
  return m ? m[1].replace(/^"|"$/g, "") : undefined;
}

/** What /proc says about a rule's owner pid (gathered by {@link readOwnerFacts}). */
export interface OwnerFacts {
  /** /proc/PID exists. */
  alive: boolean;
  /** Field 22 of /proc/PID/stat. */
  startTicks?: number;
  /** /proc/PID/cmdline, NULs as spaces. */
  cmdline?: string;
}

/** Whether a tagged rule still has its owner. */
export type OwnerState = { kind: "live" } | { kind: "stale"; why: string };

/**
 * Pure: is the owner of a rule tagged `tag` still running, given the facts about its pid?
 * Stale when the pid is gone, is this very process (which has installed nothing yet), was
 * reused by a process started at another time, or no longer runs intercept.
 */
export function judgeOwner(tag: RuleTag, facts: OwnerFacts, selfPid: number): OwnerState {
  if (tag.pid === selfPid) {
    return { kind: "stale", why: `pid ${tag.pid} is this new process (the owner is gone)` };
  }
  if (!facts.alive) return { kind: "stale", why: `owner pid ${tag.pid} is not running` };
  if (
    tag.startTicks !== undefined && facts.startTicks !== undefined &&
    tag.startTicks !== facts.startTicks
  ) {
    return {
      kind: "stale",
      why: `pid ${tag.pid} was reused (started at tick ${facts.startTicks}, ` +
        `the owner at ${tag.startTicks})`,
    };
  }
  if (facts.cmdline !== undefined && !/intercept/.test(facts.cmdline)) {
    return {
      kind: "stale",
      why: `pid ${tag.pid} now runs ${JSON.stringify(facts.cmdline.slice(0, 60))}, not intercept`,
    };
  }
  return { kind: "live" };
}

/** Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22), if readable. */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const v = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Reads the {@link OwnerFacts} of `pid` from /proc. */
export function readOwnerFacts(pid: number): OwnerFacts {
  let alive = true;
  try {
    Deno.statSync(`/proc/${pid}`);
  } catch {
    alive = false;
  }
  if (!alive) return { alive };
  let cmdline: string | undefined;
  try {
    cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim();
  } catch { /* raced with its exit */ }
  return { alive, startTicks: processStartTicks(pid), cmdline };
}

/** A rule of an `iptables -S OUTPUT` listing that carries intercept's tag. */
export interface TaggedRule {
  /** The listing line, `-A OUTPUT ...`. */
  line: string;
  tag: RuleTag;
}

/** The rules of a listing that carry intercept's tag. */
export function taggedRules(listing: string): TaggedRule[] {
  const out: TaggedRule[] = [];
  for (const line of listing.split("\n")) {
    if (!line.startsWith("-A ")) continue;
    const c = ruleComment(line);
    const tag = c === undefined ? undefined : parseRuleTag(c);
    if (tag) out.push({ line: line.trim(), tag });
  }
  return out;
}

/** The delete command (after the tool name) for a listing line `-A CHAIN ...`. */
export function deleteArgs(line: string): string[] {
  return ["-w", ...line.trim().replace(/^-A /, "-D ").split(/\s+/)];
}

/** The rule spec (after -I/-D OUTPUT) for one source port; loopback is never queued. */
export function ruleSpec(
  port: number,
  queueNum: number,
  tag: string,
  failOpen = false,
): string[] {
  return [
    "!",
    "-o",
    "lo",
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
    ...(failOpen ? ["--queue-bypass"] : []),
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
 * does not show). The OUTPUT chains of `table ip filter` / `table ip6 filter` are skipped:
 * they are what iptables-nft and ip6tables-nft manage, already judged from `iptables -S` (where
 * intercept's own tagged rules are told apart; nft does not print their comment).
 */
export function findNftConflict(
  ruleset: string,
  ports: number[],
  queueNum: number,
): string | undefined {
  let inOutput = false, iptablesTable = false, iptablesChain = false;
  for (const raw of ruleset.split("\n")) {
    const line = raw.trim();
    const table = /^table (\S+) (\S+) \{/.exec(line);
    if (table) iptablesTable = (table[1] === "ip" || table[1] === "ip6") && table[2] === "filter";
    if (line.startsWith("chain ")) {
      inOutput = false;
      iptablesChain = iptablesTable && /^chain OUTPUT \{/.test(line);
    } else if (/^type \S+ hook output\b/.test(line)) inOutput = !iptablesChain;
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

/** Where install() reports what it did besides failing (stale rules, missing IPv6). */
export interface RuleNotes {
  warn(line: string): void;
  info(line: string): void;
}

/** Facts about rule owners; injectable for tests. */
export type OwnerProbe = (pid: number) => OwnerFacts;

/**
 * Splits a listing's tagged rules into live ones and stale ones (owner gone), with the reason
 * for each stale one.
 */
export function classifyTagged(
  listing: string,
  probe: OwnerProbe,
  selfPid: number,
): { live: TaggedRule[]; stale: (TaggedRule & { why: string })[] } {
  const live: TaggedRule[] = [], stale: (TaggedRule & { why: string })[] = [];
  for (const r of taggedRules(listing)) {
    const st = judgeOwner(r.tag, probe(r.tag.pid), selfPid);
    if (st.kind === "live") live.push(r);
    else stale.push({ ...r, why: st.why });
  }
  return { live, stale };
}

/** Installed rules of one process; `remove()` takes away exactly those. */
export class NfqueueRules {
  #installed: { tool: string; spec: string[] }[] = [];
  /** Stale rules of dead intercepts this start replaced. */
  staleReplaced = 0;

  constructor(
    readonly ports: number[],
    readonly queueNum: number,
    readonly tag: string = ruleTag(),
    readonly run: CommandRunner = runCommand,
    readonly failOpen = false,
    readonly probe: OwnerProbe = readOwnerFacts,
    readonly selfPid: number = Deno.pid,
  ) {}

  /** Families that got rules ("iptables", "ip6tables"). */
  get tools(): string[] {
    return [...new Set(this.#installed.map((r) => r.tool))];
  }

  /** Rules installed now. */
  get count(): number {
    return this.#installed.length;
  }

  /**
   * Installs the rules. Returns an error line (nothing left installed) or undefined.
   * A conflicting rule left by an intercept that is gone (see {@link judgeOwner}) does not
   * block the start: the new rules go in first (the port is never unblocked), then the stale
   * one is deleted, and `notes.info` says so. A rule of a live intercept still refuses.
   * `notes.warn` hears about a missing IPv6 family and stale rules on other ports (left alone:
   * they keep failing closed until `intercept cleanup` or their own intercept's restart).
   */
  async install(notes: RuleNotes | ((line: string) => void)): Promise<string | undefined> {
    const n: RuleNotes = typeof notes === "function" ? { warn: notes, info: notes } : notes;
    const usable: string[] = [];
    const replace: { tool: string; line: string; why: string }[] = [];
    for (const tool of ["iptables", "ip6tables"]) {
      const ls = await this.run([tool, "-w", "-S", "OUTPUT"]);
      if (ls.code !== 0) {
        if (tool === "iptables") return unusable(tool, ls);
        n.warn(`ip6tables unusable (${unusable(tool, ls)}): IPv6 replies are not intercepted`);
        continue;
      }
      const { stale } = classifyTagged(ls.stdout, this.probe, this.selfPid);
      const staleLines = new Set(stale.map((r) => r.line));
      const current = ls.stdout.split("\n").filter((l) => !staleLines.has(l.trim())).join("\n");
      const conflict = findConflict(current, this.ports, this.queueNum);
      if (conflict) {
        const owner = parseRuleTag(ruleComment(conflict) ?? "");
        const live = owner ? ` (owned by the running intercept pid ${owner.pid})` : "";
        return `${tool} OUTPUT already has a conflicting rule: ${conflict}${live}; ` +
          `remove it, or pick other --port/--queue-num values`;
      }
      for (const r of stale) {
        if (findConflict(r.line, this.ports, this.queueNum) !== undefined) {
          replace.push({ tool, line: r.line, why: r.why });
        } else {
          n.warn(
            `stale ${tool} rule left alone (not on our ports or queue; ${r.why}): ${r.line}; ` +
              `"intercept cleanup" removes it`,
          );
        }
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
        const spec = ruleSpec(port, this.queueNum, this.tag, this.failOpen);
        const r = await this.run([tool, "-w", "-I", "OUTPUT", ...spec]);
        if (r.code !== 0) {
          await this.remove();
          return `${tool} -I OUTPUT ${spec.join(" ")} failed: ${r.stderr.trim().split("\n")[0]}`;
        }
        this.#installed.push({ tool, spec });
      }
    }
    for (const { tool, line, why } of replace) {
      const r = await this.run([tool, ...deleteArgs(line)]);
      if (r.code === 0) {
        this.staleReplaced++;
        n.info(`replaced a stale ${tool} rule (${why}): ${line}`);
      } else {
        n.warn(`could not delete the stale ${tool} rule ${line}: ${r.stderr.trim()}`);
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

  /**
   * Removes the installed rules synchronously (idempotent): for exit paths where no promise
   * settles any more (uncaught errors, `unload`). Returns lines describing failures.
   */
  removeSync(run: SyncCommandRunner = runCommandSync): string[] {
    const errors: string[] = [];
    const rules = this.#installed.reverse();
    this.#installed = [];
    for (const { tool, spec } of rules) {
      const r = run([tool, "-w", "-D", "OUTPUT", ...spec]);
      if (r.code !== 0) errors.push(`${tool} -D OUTPUT ${spec.join(" ")}: ${r.stderr.trim()}`);
    }
    return errors;
  }
}

/** What `intercept cleanup` did. */
export interface CleanupReport {
  removed: string[];
  /** Rules of a running intercept, left in place (without `all`). */
  kept: string[];
  /** Failures (a tool unusable, a delete refused). */
  errors: string[];
  notes: string[];
}

/**
 * `intercept cleanup`: removes intercept's tagged rules from the OUTPUT chains of iptables and
 * ip6tables. Rules whose owner still runs are kept (another instance's) unless `all`.
 */
export async function cleanupRules(
  opts: { all: boolean },
  run: CommandRunner = runCommand,
  probe: OwnerProbe = readOwnerFacts,
  selfPid = Deno.pid,
): Promise<CleanupReport> {
  const rep: CleanupReport = { removed: [], kept: [], errors: [], notes: [] };
  for (const tool of ["iptables", "ip6tables"]) {
    const ls = await run([tool, "-w", "-S", "OUTPUT"]);
    if (ls.code !== 0) {
      if (tool === "iptables") rep.errors.push(unusable(tool, ls));
      else rep.notes.push(`ip6tables unusable (${unusable(tool, ls)}): nothing to remove there`);
      continue;
    }
    const { live, stale } = classifyTagged(ls.stdout, probe, selfPid);
    const doomed = opts.all ? [...stale, ...live] : stale;
    if (!opts.all) {
      for (const r of live) rep.kept.push(`${tool} ${r.line} (intercept pid ${r.tag.pid} runs)`);
    }
    for (const r of doomed) {
      const d = await run([tool, ...deleteArgs(r.line)]);
      if (d.code === 0) rep.removed.push(`${tool} ${r.line}`);
      else rep.errors.push(`${tool} ${deleteArgs(r.line).join(" ")}: ${d.stderr.trim()}`);
    }
  }
  return rep;
}
