import assert from "node:assert/strict";
import { fatal, openProcessLog, reopenLog } from "../../lib/process/log.ts";
import { startStatsTimer } from "../../lib/process/stats_timer.ts";
import { EXIT_RUNTIME, EXIT_USAGE } from "../../lib/process/exit.ts";
import { HELP } from "../../lib/cli/intercept.ts";
import { INTERCEPT_FLAGS } from "../../lib/cli/intercept_flags.ts";

Deno.test("process log: -l refuses a symlink (exit 2), an unopenable path is a runtime problem (1)", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/real.log`, "");
    Deno.symlinkSync(`${dir}/real.log`, `${dir}/link.log`);
    assert.equal(openProcessLog("tcpcopy", `${dir}/link.log`), EXIT_USAGE);
    assert.equal(openProcessLog("intercept", `${dir}/missing/x.log`), EXIT_RUNTIME);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("process log: a file log gets one line per fatal error; SIGHUP reopens a rotated file", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const p = openProcessLog("intercept", `${dir}/a.log`);
    assert.ok(typeof p !== "number" && p.toFile);
    assert.equal(Deno.statSync(`${dir}/a.log`).mode! & 0o777, 0o640);
    assert.equal(fatal(p, "boom\nat somewhere", EXIT_USAGE), EXIT_USAGE);
    Deno.renameSync(`${dir}/a.log`, `${dir}/a.log.1`);
    reopenLog(p, "logging to stderr");
    p.log.info("after");
    p.sink.close();
    const old = Deno.readTextFileSync(`${dir}/a.log.1`).trim().split("\n");
    assert.equal(old.length, 1, "the fatal line stays one line");
    assert.match(old[0], /\[error\] boom at somewhere$/);
    const now = Deno.readTextFileSync(`${dir}/a.log`);
    assert.match(now, /SIGHUP: log file reopened\n.*\[info\] after\n$/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("stats timer: interval 0 prints nothing; stop() ends it", async () => {
  let n = 0;
  const off = startStatsTimer(Date.now(), 0, () => n++);
  const on = startStatsTimer(Date.now() - 999, 0.001, () => n++);
  await new Promise((r) => setTimeout(r, 30));
  on.stop();
  off.stop();
  const seen = n;
  assert.ok(seen >= 1, "an interval prints");
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(n, seen, "nothing after stop()");
});

Deno.test("intercept --help lists every flag of its table", () => {
  for (const f of INTERCEPT_FLAGS) {
    assert.ok(HELP.includes(`--${f.long}`), f.long);
    if (f.short) assert.ok(HELP.includes(`-${f.short}, --${f.long}`), f.long);
  }
});

Deno.test("exitWith: an error nothing caught is one line and exit 1, no stack trace", async () => {
  const lib = new URL("../../lib/process/main.ts", import.meta.url).href;
  const code = `import { exitWith } from "${lib}";
exitWith("tcpcopy", () => { throw new Error("injected\\nbug"); });`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1);
  assert.equal(err, "tcpcopy: injected bug\n");
});
