/**
 * build.sh produces two standalone executables that run from a clean copy outside the repo,
 * on a PATH with no deno and no node.
 */
import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url).pathname;

async function run(cmd: string, args: string[], env: Record<string, string>, cwd?: string) {
  const out = await new Deno.Command(cmd, { args, env, cwd, clearEnv: true, stdin: "null" })
    .output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("build.sh builds tcpcopy and intercept that run outside the repo", async () => {
  const dist = await Deno.makeTempDir({ prefix: "tcpcopy-dist-" });
  const elsewhere = await Deno.makeTempDir({ prefix: "tcpcopy-copy-" });
  try {
    const denoDir = Deno.execPath().replace(/\/[^/]+$/, "");
    const build = await run("bash", [`${root}build.sh`, "build"], {
      PATH: `${denoDir}:/usr/bin:/bin`,
      HOME: Deno.env.get("HOME") ?? "/root",
      DIST: dist,
    });
    assert.equal(build.code, 0, `build failed:\n${build.stdout}\n${build.stderr}`);
    assert.match(build.stdout, /built .*tcpcopy: (deno compile executable|self-extracting)/);
    const sums = await Deno.readTextFile(`${dist}/SHA256SUMS`);
    assert.match(sums, /^[0-9a-f]{64} {2}tcpcopy$/m);
    assert.match(sums, /^[0-9a-f]{64} {2}intercept$/m);

    for (const program of ["tcpcopy", "intercept"]) {
      await Deno.copyFile(`${dist}/${program}`, `${elsewhere}/${program}`);
      await Deno.chmod(`${elsewhere}/${program}`, 0o755);
      // No deno, no node on PATH; a fresh HOME so the runtime is unpacked from the file itself.
      const env = { PATH: "/usr/bin:/bin", HOME: `${elsewhere}/home` };
      const version = await run(`${elsewhere}/${program}`, ["--version"], env, elsewhere);
      assert.equal(version.code, 0, version.stderr);
      assert.match(version.stdout, new RegExp(`^${program} \\d+\\.\\d+\\.\\d+ \\(commit [^)]+`));
      assert.doesNotMatch(version.stdout, /commit dev/, "build metadata must be embedded");
      const help = await run(`${elsewhere}/${program}`, ["--help"], env, elsewhere);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, program === "tcpcopy" ? /-x|--transfer/ : /--port|-F/);
    }
  } finally {
    await Deno.remove(dist, { recursive: true });
    await Deno.remove(elsewhere, { recursive: true });
  }
});
