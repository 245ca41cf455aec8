import assert from "node:assert/strict";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function tcpcopy(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: p.code, out: dec.decode(p.stdout), err: dec.decode(p.stderr) };
}

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
