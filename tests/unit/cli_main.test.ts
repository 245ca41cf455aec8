import assert from "node:assert/strict";
import { runProgram } from "../helpers/program.ts";

const tcpcopy = (args: string[]) => runProgram("tcpcopy", args);

Deno.test("main: bad command lines print one line and exit 2", async () => {
  for (
    const args of [
      [],
      ["--bogus"],
      ["-x", "80-10.0.0.2:70000", "-s", "10.0.0.3"],
      ["-x", "80-10.0.0.2:80", "-s", "10.0.0.3", "-r", "0"],
      ["-x", "80-10.0.0.2:80", "-s", "10.0.0.3", "--offline", "f.pcap", "-T", "x"],
      ["-x", "80-10.0.0.2:80", "-s", "10.0.0.3", "-I", "100"],
    ]
  ) {
    const r = await tcpcopy(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.out, "");
    assert.equal(r.err.trimEnd().split("\n").length, 1, r.err);
    assert.match(r.err, /^tcpcopy: /);
  }
});

Deno.test("main: --help and --version exit 0 on stdout", async () => {
  const help = await tcpcopy(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /--transfer/);
  assert.match(help.out, /e\.g\. -x 80-10\.0\.0\.2:8080/);
  const version = await tcpcopy(["-v"]);
  assert.equal(version.code, 0);
  assert.match(version.out, /^tcpcopy \d+\.\d+\.\d+ /);
});

Deno.test("main and intercept: a group-readable, symlinked or missing --secret-file is one line, exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "secret-cli" });
  const intercept = (args: string[]) => runProgram("intercept", args);
  try {
    const f = `${dir}/secret`;
    await Deno.writeTextFile(f, "0123456789abcdef0123456789\n");
    await Deno.chmod(f, 0o644);
    await Deno.symlink(f, `${dir}/link`);
    for (
      const [file, why] of [[f, /group or others/], [`${dir}/link`, /symlink/], [
        `${dir}/no`,
        /cannot read/,
      ]] as const
    ) {
      const t = await tcpcopy(["-x", "80-10.0.0.2:80", "-s", "127.0.0.1", "--secret-file", file]);
      assert.equal(t.code, 2, t.err);
      assert.equal(t.err.trimEnd().split("\n").length, 1, t.err);
      assert.match(t.err, /^tcpcopy: --secret-file /);
      assert.match(t.err, why);
      const i = await intercept(["--port", "8080", "--secret-file", file]);
      assert.equal(i.code, 2, i.err);
      assert.equal(i.err.trimEnd().split("\n").length, 1, i.err);
      assert.match(i.err, /^intercept: --secret-file /);
      assert.match(i.err, why);
    }
    const help = await tcpcopy(["--help"]);
    assert.match(help.out, /--secret-file FILE/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
