/** The budget and egress flags (issue 12, item 6/7) on the command line. */
import assert from "node:assert/strict";
import { parseTcpcopyArgs } from "../../lib/cli/tcpcopy.ts";
import { engineConfigOf } from "../../lib/tcpcopy/convert.ts";

const BASE = ["-x", "80-10.0.0.2:8080", "-s", "10.0.0.2"];

Deno.test("budget flags: values reach the engine; defaults come from -m", () => {
  const cli = parseTcpcopyArgs([
    ...BASE,
    "-m",
    "1024",
    "--max-sessions",
    "500",
    "--max-flows",
    "2000",
    "--max-pps",
    "20000",
    "--max-mbps",
    "150.5",
    "--allow-self-target",
  ]);
  assert.equal(cli.kind, "run");
  if (cli.kind !== "run") return;
  assert.equal(cli.config.allowSelfTarget, true);
  const e = engineConfigOf(cli.config);
  assert.equal(e.maxSessions, 500);
  assert.equal(e.maxFlows, 2000);
  assert.equal(e.maxPps, 20000);
  assert.equal(e.maxMbps, 150.5);
  const d = parseTcpcopyArgs(BASE);
  if (d.kind !== "run") throw new Error("unreachable");
  assert.equal(d.config.allowSelfTarget, false);
  const de = engineConfigOf(d.config);
  assert.equal(de.maxSessions, 97_867, "documented default for -m 2048");
  assert.equal(de.maxFlows, 163_111, "documented default for -m 2048");
  assert.equal(de.maxPps, 0);
  assert.equal(de.maxMbps, 0);
});

Deno.test("budget flags: bad values are one line naming the flag, exit 2", () => {
  for (
    const [args, flag] of [
      [["--max-sessions", "0"], "--max-sessions"],
      [["--max-sessions", "many"], "--max-sessions"],
      [["--max-flows", "-5"], "--max-flows"],
      [["--max-pps", "1.5"], "--max-pps"],
      [["--max-mbps", "fast"], "--max-mbps"],
    ] as const
  ) {
    const r = parseTcpcopyArgs([...BASE, ...args]);
    assert.equal(r.kind, "error", args.join(" "));
    if (r.kind !== "error") continue;
    assert.equal(r.exitCode, 2);
    assert.ok(r.message.includes(flag), r.message);
    assert.equal(r.message.split("\n").length, 1);
  }
});
