/**
 * build.sh produces two standalone executables that run from a clean copy outside the repo,
 * on a PATH with no deno and no node.
 */
import assert from "node:assert/strict";
import { isRoot, waitFor, withNetns } from "../helpers/netns.ts";
import { ab, buildLab, countLines, HTTP_PORT, startNginx } from "../helpers/lab.ts";
import { networkEnv } from "../helpers/network_env.ts";
import { heapLimitOf, heapLimitWith } from "../helpers/v8_flags.ts";
import { V8_FLAGS } from "../../lib/process/v8_flags.ts";

const root = new URL("../../", import.meta.url).pathname;

async function run(cmd: string, args: string[], env: Record<string, string>, cwd?: string) {
  const out = await new Deno.Command(cmd, { args, env, cwd, clearEnv: true, stdin: "null" })
    .output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test({
  name: "build.sh builds tcpcopy and intercept that run outside the repo (and replicate, as root)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dist = await Deno.makeTempDir({ prefix: "tcpcopy-dist-" });
    const elsewhere = await Deno.makeTempDir({ prefix: "tcpcopy-copy-" });
    try {
      const denoDir = Deno.execPath().replace(/\/[^/]+$/, "");
      const build = await run("bash", [`${root}build.sh`, "build"], {
        ...networkEnv(),
        PATH: `${denoDir}:/usr/bin:/bin`,
        HOME: Deno.env.get("HOME") ?? "/root",
        DIST: dist,
      });
      assert.equal(build.code, 0, `build failed:\n${build.stdout}\n${build.stderr}`);
      assert.match(build.stdout, /built .*tcpcopy: (deno compile executable|self-extracting)/);
      const sums = await Deno.readTextFile(`${dist}/SHA256SUMS`);
      assert.match(sums, /^[0-9a-f]{64} {2}tcpcopy$/m);
      assert.match(sums, /^[0-9a-f]{64} {2}intercept$/m);

      for (const program of ["tcpcopy", "intercept"] as const) {
        await Deno.copyFile(`${dist}/${program}`, `${elsewhere}/${program}`);
        await Deno.chmod(`${elsewhere}/${program}`, 0o755);
        // No deno, no node on PATH; a fresh HOME so the runtime is unpacked from the file itself.
        const env = { PATH: "/usr/bin:/bin", HOME: `${elsewhere}/home` };
        const version = await run(`${elsewhere}/${program}`, ["--version"], env, elsewhere);
        assert.equal(version.code, 0, version.stderr);
        assert.match(version.stdout, new RegExp(`^${program} \\d+\\.\\d+\\.\\d+ \\(commit [^)]+`));
        assert.doesNotMatch(version.stdout, /commit dev/, "build metadata must be embedded");
        // Started with its own V8 flags of lib/process/v8_flags.ts (either kind of executable).
        assert.equal(
          heapLimitOf(version.stdout),
          await heapLimitWith(V8_FLAGS[program]),
          version.stdout,
        );
        const help = await run(`${elsewhere}/${program}`, ["--help"], env, elsewhere);
        assert.equal(help.code, 0, help.stderr);
        assert.match(help.stdout, program === "tcpcopy" ? /-x|--transfer/ : /--port|-F/);
      }
      if (isRoot()) await replicateWithBuiltFiles(elsewhere);
    } finally {
      await Deno.remove(dist, { recursive: true });
      await Deno.remove(elsewhere, { recursive: true });
    }
  },
});

/**
 * The built files do the real job (FFI capture, raw send, NFQUEUE, tunnel): a lab with nginx on
 * the online host and the target, intercept and tcpcopy from the copies, 200 requests replayed.
 */
async function replicateWithBuiltFiles(dir: string): Promise<void> {
  await withNetns(async (env) => {
    const lab = await buildLab(env, 1);
    const on = lab.online[0];
    const onlineLog = await startNginx(env, on.ns, `${lab.dir}/online`, on.ip);
    const targetLog = await startNginx(env, lab.target, `${lab.dir}/target`, lab.targetIp);
    const home = { HOME: `${dir}/home` };
    env.child(lab.target.spawn([`${dir}/intercept`, "--port", "80", "--stats-interval", "0"], {
      env: home,
    }));
    const tunnelUp = () =>
      on.ns.exec(["bash", "-c", `exec 3<>/dev/tcp/${lab.targetIp}/36524`], { check: false });
    assert.ok(await waitFor(async () => (await tunnelUp()).code === 0, 30_000, 100));
    const err = `${lab.dir}/tcpcopy.err`;
    const tcpcopy = [`${dir}/tcpcopy`, "-x", `80-${lab.targetIp}:80`, "-s", lab.targetIp];
    env.child(
      on.ns.spawn(["bash", "-c", `exec ${tcpcopy.join(" ")} -i ${on.clientSideIf} 2>${err}`], {
        env: home,
      }),
    );
    const log = () => Deno.readTextFile(err).catch(() => "");
    assert.ok(await waitFor(async () => /replicating/.test(await log()), 30_000), await log());
    assert.equal(await ab(on.client, `http://${on.ip}:${HTTP_PORT}/built`, { requests: 200 }), 200);
    assert.equal(await countLines(onlineLog, /GET \/built /), 200);
    assert.ok(
      await waitFor(async () => await countLines(targetLog, /GET \/built /) >= 200, 20_000),
      `target served ${await countLines(targetLog)} of 200`,
    );
  });
}
