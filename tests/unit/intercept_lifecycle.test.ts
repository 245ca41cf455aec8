// intercept's lifecycle, the pure parts: rule tags and owner liveness (injected /proc facts),
// rule specs (loopback skipped, --queue-bypass only with --fail-open), stale-rule replacement
// and `intercept cleanup` against a fake iptables, the stop sequence, the new flags, log files.
import assert from "node:assert/strict";
import { parseInterceptArgs } from "../../lib/cli/intercept.ts";
import {
  cleanupRules,
  type CommandRunner,
  findConflict,
  judgeOwner,
  NfqueueRules,
  type OwnerFacts,
  parseRuleTag,
  ruleComment,
  ruleSpec,
  ruleTag,
  runCommand,
  taggedRules,
} from "../../lib/intercept/rules.ts";
import { onStopRequest } from "../../lib/intercept/lifecycle.ts";
import { LOG_FILE_MODE, LogFileSink, openLogFile } from "../../lib/stats/log_file.ts";

Deno.test("rule tags: pid and start time parsed; older tags and foreign comments handled", () => {
  assert.deepEqual(parseRuleTag("tcpcopy-intercept-4242-987654-k3x9a"), {
    pid: 4242,
    startTicks: 987654,
  });
  assert.deepEqual(parseRuleTag("tcpcopy-intercept-77-x"), { pid: 77 }, "pre-lifecycle tag");
  assert.deepEqual(parseRuleTag("tcpcopy-intercept-77-123"), { pid: 77 }, "digits-only rand");
  assert.equal(parseRuleTag("tcpcopy-intercept-0-1-a"), undefined, "pid 0");
  assert.equal(parseRuleTag("tcpcopy-intercept-x-1-a"), undefined);
  assert.equal(parseRuleTag("my-tcpcopy-intercept-1-2-a"), undefined);
  assert.equal(parseRuleTag("tcpcopy-intercept-1-2-a b"), undefined);
  const t = ruleTag(31337, 555);
  assert.match(t, /^tcpcopy-intercept-31337-555-[0-9a-z]+$/);
  assert.deepEqual(parseRuleTag(t), { pid: 31337, startTicks: 555 });
  assert.deepEqual(
    parseRuleTag(ruleTag(2 ** 22 + 7, undefined)),
    { pid: 2 ** 22 + 7 },
    "no /proc: PID-RAND",
  );
  assert.deepEqual(parseRuleTag(ruleTag()), {
    pid: Deno.pid,
    startTicks: parseRuleTag(ruleTag())!.startTicks,
  });
  assert.equal(
    ruleComment('-A OUTPUT -m comment --comment "a b" -j ACCEPT'),
    "a b",
    "quoted comments",
  );
  assert.equal(ruleComment("-A OUTPUT -j ACCEPT"), undefined);
});

Deno.test("owner liveness: dead, reused pid, not intercept, this process -> stale; else live", () => {
  const tag = { pid: 500, startTicks: 1000 };
  const running = { alive: true, startTicks: 1000, cmdline: "/usr/bin/intercept --port 80" };
  assert.deepEqual(judgeOwner(tag, running, 1), { kind: "live" });
  const dead = judgeOwner(tag, { alive: false }, 1);
  assert.equal(dead.kind, "stale");
  assert.ok(dead.kind === "stale" && /pid 500 is not running/.test(dead.why));
  const reused = judgeOwner(tag, { ...running, startTicks: 2000 }, 1);
  assert.ok(reused.kind === "stale" && /reused/.test(reused.why), "same pid, other start");
  const other = judgeOwner(tag, { ...running, cmdline: "sleep 100" }, 1);
  assert.ok(other.kind === "stale" && /not intercept/.test(other.why));
  const self = judgeOwner(tag, running, 500);
  assert.ok(self.kind === "stale" && /this new process/.test(self.why));
  // an old tag (no start time): the command line decides
  assert.deepEqual(judgeOwner({ pid: 500 }, running, 1), { kind: "live" });
  assert.equal(judgeOwner({ pid: 500 }, { alive: true, cmdline: "nginx" }, 1).kind, "stale");
  // /proc unreadable for a live pid: be conservative, it is live
  assert.deepEqual(judgeOwner(tag, { alive: true }, 1), { kind: "live" });
});

Deno.test("rule spec: loopback skipped, bypass only with --fail-open; -S lines recognised", () => {
  const tag = "tcpcopy-intercept-9-8-abc";
  const closed = ruleSpec(80, 7, tag);
  assert.deepEqual(closed.slice(0, 3), ["!", "-o", "lo"]);
  assert.ok(!closed.includes("--queue-bypass"));
  assert.deepEqual(ruleSpec(80, 7, tag, true).slice(-1), ["--queue-bypass"]);
  // what iptables -S prints for the rule (iptables 1.8, nf_tables), both variants
  const listing = [
    "-P OUTPUT ACCEPT",
    `-A OUTPUT ! -o lo -p tcp -m tcp --sport 80 -m comment --comment ${tag} -j NFQUEUE --queue-num 7`,
    `-A OUTPUT ! -o lo -p tcp -m tcp --sport 81 -m comment --comment ${tag} -j NFQUEUE --queue-num 7 --queue-bypass`,
  ].join("\n");
  assert.match(findConflict(listing, [80], 1)!, /--sport 80 /);
  assert.match(findConflict(listing, [81], 1)!, /--queue-bypass/);
  assert.match(findConflict(listing, [443], 7)!, /--queue-num 7/);
  assert.equal(findConflict(listing, [443], 8), undefined);
  const tagged = taggedRules(listing);
  assert.equal(tagged.length, 2);
  assert.deepEqual(tagged[0].tag, { pid: 9, startTicks: 8 });
});

/** A fake iptables/ip6tables: one OUTPUT chain per tool, -S/-I/-D on `-A OUTPUT ...` lines. */
function fakeTables(initial: { iptables: string[]; ip6tables?: string[] }) {
  const chains: Record<string, string[] | undefined> = {
    iptables: [...initial.iptables],
    ip6tables: initial.ip6tables && [...initial.ip6tables],
  };
  const calls: string[][] = [];
  const render = (spec: string[]) =>
    ["-A", "OUTPUT", ...spec].join(" ").replace("-p tcp --sport", "-p tcp -m tcp --sport");
  const run: CommandRunner = (cmd) => {
    calls.push(cmd);
    const chain = chains[cmd[0]];
    const ok = (stdout = "") => Promise.resolve({ code: 0, stdout, stderr: "" });
    if (cmd[0] === "nft") return Promise.resolve({ code: 1, stdout: "", stderr: "no nft" });
    if (chain === undefined) return Promise.resolve({ code: 3, stdout: "", stderr: "no v6" });
    const op = cmd[2], spec = cmd.slice(4);
    if (op === "-S") return ok(["-P OUTPUT ACCEPT", ...chain].join("\n") + "\n");
    const line = render(spec);
    if (op === "-I") {
      chain.unshift(line);
      return ok();
    }
    if (op === "-D") {
      const i = chain.indexOf(line);
      if (i < 0) return Promise.resolve({ code: 1, stdout: "", stderr: "Bad rule" });
      chain.splice(i, 1);
      return ok();
    }
    return Promise.resolve({ code: 2, stdout: "", stderr: `unknown ${op}` });
  };
  return { chains, calls, run };
}

const staleLine = (port: number, pid: number, q = 36524) =>
  `-A OUTPUT ! -o lo -p tcp -m tcp --sport ${port} -m comment --comment ` +
  `tcpcopy-intercept-${pid}-100-zz -j NFQUEUE --queue-num ${q}`;

const probeOf = (live: number[]) => (pid: number): OwnerFacts =>
  live.includes(pid)
    ? { alive: true, startTicks: 100, cmdline: "deno run -A intercept.ts --port 80" }
    : { alive: false };

Deno.test("install: a dead owner's rule is replaced (ours first), a live one refuses", async () => {
  const t = fakeTables({
    iptables: [staleLine(80, 111), staleLine(9090, 222, 9)],
    ip6tables: [staleLine(80, 111)],
  });
  const info: string[] = [], warn: string[] = [];
  const r = new NfqueueRules([80], 36524, "tcpcopy-intercept-5-6-me", t.run, false, probeOf([]), 5);
  assert.equal(
    await r.install({ warn: (w) => warn.push(w), info: (i) => info.push(i) }),
    undefined,
  );
  assert.equal(r.staleReplaced, 2, "iptables + ip6tables");
  assert.equal(r.count, 2);
  // ours went in before the stale one was deleted: the port was never unblocked
  const ops = t.calls.filter((c) => c[2] === "-I" || c[2] === "-D").map((c) => `${c[0]} ${c[2]}`);
  assert.deepEqual(ops, ["iptables -I", "ip6tables -I", "iptables -D", "ip6tables -D"]);
  assert.equal(info.length, 2);
  assert.match(info[0], /replaced a stale iptables rule \(owner pid 111 is not running\)/);
  // the stale rule of another port and queue is left alone (it keeps failing closed)
  assert.equal(warn.length, 1);
  assert.match(warn[0], /stale iptables rule left alone .*--sport 9090.*intercept cleanup/);
  assert.equal(t.chains.iptables!.length, 2);
  assert.match(t.chains.iptables![0], /--comment tcpcopy-intercept-5-6-me/);
  assert.match(t.chains.iptables![1], /--sport 9090/);
  assert.deepEqual(t.chains.ip6tables!.length, 1);

  // the same rules with a live owner: refused, nothing installed or deleted
  const live = fakeTables({ iptables: [staleLine(80, 111)] });
  const r2 = new NfqueueRules(
    [80],
    36524,
    "tcpcopy-intercept-5-6-me",
    live.run,
    false,
    probeOf([111]),
    5,
  );
  const err = await r2.install(() => {});
  assert.match(err!, /conflicting rule: .*owned by the running intercept pid 111/);
  assert.equal(live.calls.filter((c) => c[2] === "-I" || c[2] === "-D").length, 0);
  // a live owner on the same queue but another port also refuses
  const q = fakeTables({ iptables: [staleLine(8080, 111)] });
  const r3 = new NfqueueRules([80], 36524, "x", q.run, false, probeOf([111]), 5);
  assert.match((await r3.install(() => {}))!, /--queue-num 36524/);
});

Deno.test("install with --fail-open puts --queue-bypass on every rule", async () => {
  const t = fakeTables({ iptables: [], ip6tables: [] });
  const r = new NfqueueRules([80, 443], 7, "tcpcopy-intercept-5-6-me", t.run, true, probeOf([]), 5);
  assert.equal(await r.install(() => {}), undefined);
  const inserts = t.calls.filter((c) => c[2] === "-I");
  assert.equal(inserts.length, 4);
  for (const c of inserts) {
    assert.equal(c.at(-1), "--queue-bypass");
    assert.deepEqual(c.slice(4, 7), ["!", "-o", "lo"]);
  }
  assert.deepEqual(await r.remove(), []);
  assert.deepEqual(t.chains.iptables, []);
});

Deno.test("removeSync takes away exactly the installed rules, once", async () => {
  const t = fakeTables({ iptables: [], ip6tables: [] });
  const r = new NfqueueRules([80], 7, "tcpcopy-intercept-5-6-me", t.run, false, probeOf([]), 5);
  await r.install(() => {});
  const deleted: string[][] = [];
  assert.deepEqual(r.removeSync((cmd) => (deleted.push(cmd), { code: 0, stderr: "" })), []);
  assert.equal(deleted.length, 2);
  assert.ok(deleted.every((c) => c[2] === "-D" && c.includes("tcpcopy-intercept-5-6-me")));
  assert.deepEqual(r.removeSync(() => ({ code: 0, stderr: "" })), []);
  assert.equal(r.count, 0);
  assert.deepEqual(await r.remove(), [], "nothing left for the async path either");
});

Deno.test("cleanup: stale rules removed in both families, live kept unless --all", async () => {
  const t = fakeTables({
    iptables: [staleLine(80, 111), staleLine(443, 222), "-A OUTPUT -p tcp -j ACCEPT"],
    ip6tables: [staleLine(80, 111)],
  });
  const rep = await cleanupRules({ all: false }, t.run, probeOf([222]), 5);
  assert.equal(rep.removed.length, 2);
  assert.match(rep.removed[0], /^iptables -A OUTPUT .*--sport 80 /);
  assert.match(rep.removed[1], /^ip6tables /);
  assert.equal(rep.kept.length, 1);
  assert.match(rep.kept[0], /--sport 443 .*intercept pid 222 runs/);
  assert.deepEqual(rep.errors, []);
  assert.deepEqual(t.chains.iptables, [staleLine(443, 222), "-A OUTPUT -p tcp -j ACCEPT"]);
  const all = await cleanupRules({ all: true }, t.run, probeOf([222]), 5);
  assert.equal(all.removed.length, 1);
  assert.deepEqual(t.chains.iptables, ["-A OUTPUT -p tcp -j ACCEPT"], "foreign rule untouched");
  const again = await cleanupRules({ all: false }, t.run, probeOf([]), 5);
  assert.deepEqual(again, { removed: [], kept: [], errors: [], notes: [] }, "nothing there");
  const no6 = fakeTables({ iptables: [staleLine(80, 1)] });
  const r6 = await cleanupRules({ all: false }, no6.run, probeOf([]), 5);
  assert.equal(r6.removed.length, 1);
  assert.match(r6.notes[0], /ip6tables unusable/);
  const none = await cleanupRules(
    { all: false },
    () => Promise.resolve({ code: 4, stdout: "", stderr: "Permission denied" }),
  );
  assert.match(none.errors[0], /cannot read the OUTPUT chain with iptables: Permission denied/);
});

Deno.test("stop sequence: drain first, a second signal stops, then nothing", () => {
  assert.deepEqual(onStopRequest("running", 5), { next: "draining", action: "drain" });
  assert.deepEqual(onStopRequest("running", 0), { next: "stopping", action: "stop" });
  assert.deepEqual(onStopRequest("draining", 5), { next: "stopping", action: "stop" });
  assert.deepEqual(onStopRequest("stopping", 5), { next: "stopping", action: "none" });
});

Deno.test("options: --drain-seconds, --fail-open, cleanup", () => {
  const a = parseInterceptArgs(["--port", "80"]);
  assert.ok(a.kind === "run" && a.config.mode.kind === "nfqueue");
  assert.equal(a.config.drainSeconds, 5);
  assert.equal(a.config.mode.failOpen, false, "fail-closed by default");
  const b = parseInterceptArgs(["--port", "80", "--drain-seconds", "0", "--fail-open"]);
  assert.ok(b.kind === "run" && b.config.mode.kind === "nfqueue");
  assert.equal(b.config.drainSeconds, 0);
  assert.equal(b.config.mode.failOpen, true);
  const p = parseInterceptArgs(["-F", "tcp"]);
  assert.ok(p.kind === "run" && p.config.drainSeconds === 0, "pcap mode drops nothing");
  const bad = parseInterceptArgs(["--port", "80", "--drain-seconds", "soon"]);
  assert.ok(bad.kind === "error");
  assert.equal(bad.message, '--drain-seconds "soon": expected an integer 0..3600');
  const fo = parseInterceptArgs(["-F", "tcp", "--fail-open"]);
  assert.ok(fo.kind === "error" && /--fail-open works in NFQUEUE mode/.test(fo.message));
  assert.deepEqual(parseInterceptArgs(["cleanup"]), { kind: "cleanup", all: false });
  assert.deepEqual(parseInterceptArgs(["cleanup", "--all"]), { kind: "cleanup", all: true });
  const c = parseInterceptArgs(["cleanup", "--port", "80"]);
  assert.ok(c.kind === "error" && /^cleanup: .*accepted: --all/.test(c.message));
});

Deno.test("log files: created 0640, a symlink refused, reopened after a rename", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/x.log`;
    const old = Deno.umask(0o022);
    const sink = LogFileSink.open(path);
    Deno.umask(old);
    assert.ok(sink instanceof LogFileSink);
    assert.equal(Deno.statSync(path).mode! & 0o777, LOG_FILE_MODE);
    sink.write("one\n");
    Deno.renameSync(path, `${path}.1`);
    sink.write("two\n");
    assert.equal(sink.reopen(), undefined);
    sink.write("three\n");
    sink.close();
    sink.write("after close\n");
    assert.equal(Deno.readTextFileSync(`${path}.1`), "one\ntwo\n");
    assert.equal(Deno.readTextFileSync(path), "three\n");

    Deno.writeTextFileSync(`${dir}/victim`, "keep\n");
    Deno.symlinkSync(`${dir}/victim`, `${dir}/link.log`);
    const refused = openLogFile(`${dir}/link.log`);
    assert.ok(!(refused instanceof Deno.FsFile));
    assert.equal(refused.kind, "symlink");
    assert.match(refused.message, /link\.log is a symbolic link/);
    Deno.symlinkSync(`${dir}/nowhere`, `${dir}/dangling.log`);
    const dangling = openLogFile(`${dir}/dangling.log`);
    assert.ok(!(dangling instanceof Deno.FsFile) && dangling.kind === "symlink");
    assert.throws(() => Deno.statSync(`${dir}/nowhere`), "no file created through the link");
    assert.equal(Deno.readTextFileSync(`${dir}/victim`), "keep\n");
    const isDir = openLogFile(dir);
    assert.ok(!(isDir instanceof Deno.FsFile) && isDir.kind === "io");

    // a symlink planted at the path while running: the reopen is refused, the old file kept
    const s2 = LogFileSink.open(`${dir}/y.log`);
    assert.ok(s2 instanceof LogFileSink);
    Deno.renameSync(`${dir}/y.log`, `${dir}/y.log.1`);
    Deno.symlinkSync(`${dir}/victim`, `${dir}/y.log`);
    assert.equal(s2.reopen()?.kind, "symlink");
    s2.write("still here\n");
    s2.close();
    assert.equal(Deno.readTextFileSync(`${dir}/y.log.1`), "still here\n");
    assert.equal(Deno.readTextFileSync(`${dir}/victim`), "keep\n");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("exit guard: an uncaught error and an unhandled rejection run the clean-up", async () => {
  const guard = new URL("../../lib/intercept/exit_guard.ts", import.meta.url).href;
  for (
    const [how, want] of [
      ["setTimeout(() => { throw new Error('boom'); }, 1);", /CLEANUP uncaught error: boom/],
      ["Promise.reject(new Error('nope'));", /CLEANUP unhandled rejection: nope/],
      ["Deno.exit(3);", /CLEANUP exit/],
    ] as const
  ) {
    const code = `import { installExitGuard } from "${guard}";
installExitGuard((p, d) => console.log("CLEANUP " + p + (d ? ": " + d : "")));
${how}`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.match(text, want, how);
    assert.equal(text.match(/CLEANUP/g)?.length, 1, "once");
    assert.notEqual(out.code, 0);
  }
});

Deno.test("a missing iptables is named with the package that provides it, in one line", async () => {
  const nowhere = "tcpcopy-no-such-program-x"; // a name no package provides
  const missing = await runCommand([nowhere, "-S"]);
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /^tcpcopy-no-such-program-x is not installed: install /);
  const gone: CommandRunner = (cmd) =>
    Promise.resolve({
      code: 127,
      stdout: "",
      stderr: `${cmd[0]} is not installed: install iptables (Debian/Ubuntu) / iptables (RPM)`,
    });
  const r = new NfqueueRules([80], 36524, "x", gone, false, probeOf([]), 5);
  const error = await r.install(() => {});
  assert.equal(
    error,
    "iptables is not installed: install iptables (Debian/Ubuntu) / iptables (RPM)",
  );
});
