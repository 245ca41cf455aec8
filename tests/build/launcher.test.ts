/**
 * The self-extracting launcher (build.sh build_launcher) verifies what it runs: the runtime and
 * the program are checked against the SHA-256 sums built into it before every exec, and its cache
 * directory must be a real directory owned by the caller with mode 0700. Each refusal is one line
 * on stderr and a non-zero exit, and nothing of the refused files runs.
 */
import assert from "node:assert/strict";
import { isRoot } from "../helpers/netns.ts";
import { networkEnv } from "../helpers/network_env.ts";
import { NOBODY, setprivArgs } from "../helpers/nobody.ts";
import { heapLimitOf, heapLimitWith } from "../helpers/v8_flags.ts";
import { V8_FLAGS } from "../../lib/process/v8_flags.ts";

const root = new URL("../../", import.meta.url).pathname;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], env: Record<string, string>): Promise<Result> {
  const out = await new Deno.Command(cmd, { args, env, clearEnv: true, stdin: "null" }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const PATH = "/usr/bin:/bin";

/** `tcpcopy --version` through the launcher with exactly `env` (plus PATH). */
const version = (launcher: string, env: Record<string, string>) =>
  run(launcher, ["--version"], { PATH, ...env });

/** The same as user nobody (setpriv), HOME etc. given in `env`. */
const versionAsNobody = (launcher: string, env: Record<string, string>) =>
  run("setpriv", [
    ...setprivArgs("default"),
    "env",
    "-i",
    `PATH=${PATH}`,
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    launcher,
    "--version",
  ], {});

function assertWorks(r: Result): void {
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^tcpcopy \d+\.\d+\.\d+ /);
}

/** Refused: non-zero exit, one line on stderr matching `line`, nothing printed by the program. */
function assertRefused(r: Result, line: RegExp): void {
  assert.notEqual(r.code, 0, `must be refused:\n${r.stdout}${r.stderr}`);
  assert.equal(r.stdout, "", "nothing of the refused files ran");
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0], /^tcpcopy: /);
  assert.match(lines[0], line);
}

async function statOf(path: string): Promise<{ uid: number; mode: number }> {
  const info = await Deno.lstat(path);
  return { uid: info.uid!, mode: info.mode! & 0o7777 };
}

/** The one versioned cache directory below `base` (tcpcopy-<hash>). */
async function versionDir(base: string): Promise<string> {
  const names: string[] = [];
  for await (const e of Deno.readDir(base)) if (e.isDirectory) names.push(e.name);
  assert.equal(names.length, 1, `one cache version in ${base}: ${names}`);
  assert.match(names[0], /^tcpcopy-[0-9a-f]{16}$/);
  return `${base}/${names[0]}`;
}

Deno.test({
  name: "launcher: checks the runtime and program it runs and refuses a cache it does not own",
  ignore: !isRoot(),
  fn: async (t) => {
    const tmp = await Deno.makeTempDir({ prefix: "tcpcopy-launcher-" });
    try {
      await Deno.chmod(tmp, 0o755);
      const dist = `${tmp}/dist`;
      const denoDir = Deno.execPath().replace(/\/[^/]+$/, "");
      const build = await run("bash", [`${root}build.sh`, "build"], {
        ...networkEnv(),
        PATH: `${denoDir}:${PATH}`,
        HOME: Deno.env.get("HOME") ?? "/root",
        DIST: dist,
        BUILD_LAUNCHER: "1",
      });
      assert.equal(build.code, 0, `build failed:\n${build.stdout}\n${build.stderr}`);
      assert.match(build.stdout, /built .*tcpcopy: self-extracting launcher/);
      const launcher = `${tmp}/tcpcopy`;
      await Deno.copyFile(`${dist}/tcpcopy`, launcher);
      await Deno.chmod(launcher, 0o755);
      // intercept's launcher execs with intercept's own list (its sh text, before the payload).
      const stub = new TextDecoder().decode(
        (await Deno.readFile(`${dist}/intercept`)).subarray(0, 16384),
      );
      assert.ok(
        stub.includes(`"--v8-flags=${V8_FLAGS.intercept.join(",")}"`),
        "intercept's V8 flags",
      );
      await Deno.remove(dist, { recursive: true }); // 80 MB less on disk during the test

      const home = `${tmp}/root-home`; // does not exist yet
      const base = `${home}/.cache/tcpcopy-deno`;

      await t.step(
        "a fresh HOME works; the cache is created 0700, owned by the caller",
        async () => {
          const first = await version(launcher, { HOME: home });
          assertWorks(first);
          // The exec line passes tcpcopy's V8 flags of lib/process/v8_flags.ts.
          assert.equal(
            heapLimitOf(first.stdout),
            await heapLimitWith(V8_FLAGS.tcpcopy),
            first.stdout,
          );
          assert.deepEqual(await statOf(base), { uid: 0, mode: 0o700 });
          await versionDir(base);
          assertWorks(await version(launcher, { HOME: home })); // and again, from the cache
        },
      );

      await t.step("a replaced app.js is refused, the original runs again", async () => {
        const app = `${await versionDir(base)}/app.js`;
        const original = await Deno.readFile(app);
        await Deno.writeTextFile(app, 'console.log("tampered");\n');
        assertRefused(
          await version(launcher, { HOME: home }),
          /refusing to run .*\/app\.js: its SHA-256 is not the one built into this launcher \(the cache was modified: remove .* to unpack it again\)$/,
        );
        // One appended byte is enough.
        const plusOne = new Uint8Array(original.length + 1);
        plusOne.set(original);
        plusOne[original.length] = 0x0a;
        await Deno.writeFile(app, plusOne);
        assertRefused(await version(launcher, { HOME: home }), /app\.js: its SHA-256/);
        await Deno.writeFile(app, original);
        assertWorks(await version(launcher, { HOME: home }));
      });

      await t.step("a replaced deno runtime is refused and never executed", async () => {
        const deno = `${await versionDir(base)}/deno`;
        const original = `${tmp}/deno.orig`;
        await Deno.rename(deno, original);
        const marker = `${tmp}/planted-ran`;
        await Deno.writeTextFile(deno, `#!/bin/sh\ntouch ${marker}\necho planted\n`);
        await Deno.chmod(deno, 0o755);
        assertRefused(
          await version(launcher, { HOME: home }),
          /refusing to run .*\/deno: its SHA-256 is not the one built into this launcher/,
        );
        await assert.rejects(Deno.stat(marker), Deno.errors.NotFound, "the planted file ran");
        await Deno.remove(deno);
        await Deno.rename(original, deno);
        assertWorks(await version(launcher, { HOME: home }));
      });

      await t.step("a cache directory with mode 0777 or 0755 is refused", async () => {
        for (const mode of [0o777, 0o755]) {
          await Deno.chmod(base, mode);
          assertRefused(
            await version(launcher, { HOME: home }),
            new RegExp(
              `refusing cache directory ${base}: mode drwx.*, expected drwx------ \\(0700\\)`,
            ),
          );
        }
        await Deno.chmod(base, 0o700);
        assertWorks(await version(launcher, { HOME: home }));
      });

      await t.step("a cache directory owned by another user is refused", async () => {
        await Deno.chown(base, NOBODY, NOBODY);
        assertRefused(
          await version(launcher, { HOME: home }),
          new RegExp(
            `refusing cache directory ${base}: owned by uid ${NOBODY}, not by the caller \\(uid 0\\)`,
          ),
        );
        await Deno.chown(base, 0, 0);
      });

      await t.step("a cache directory that is a symbolic link is refused", async () => {
        const linkHome = `${tmp}/link-home`;
        await Deno.mkdir(`${linkHome}/.cache`, { recursive: true, mode: 0o700 });
        await Deno.symlink(base, `${linkHome}/.cache/tcpcopy-deno`);
        assertRefused(
          await version(launcher, { HOME: linkHome }),
          /refusing cache directory .*link-home\/\.cache\/tcpcopy-deno: it is a symbolic link$/,
        );
      });

      await t.step("a cache in a directory others may write to is refused", async () => {
        const openHome = `${tmp}/open-home`;
        await Deno.mkdir(`${openHome}/.cache`, { recursive: true });
        await Deno.chmod(`${openHome}/.cache`, 0o777);
        assertRefused(
          await version(launcher, { HOME: openHome }),
          /refusing cache directory .*open-home\/\.cache\/tcpcopy-deno: .*open-home\/\.cache has mode drwxrwxrwx, writable by group or others$/,
        );
        await assert.rejects(Deno.stat(`${openHome}/.cache/tcpcopy-deno`), Deno.errors.NotFound);
      });

      await t.step("root with a user's HOME (sudo without -H) writes nothing there", async () => {
        // alice's HOME without a .cache yet: root must not create one in it, whose owner alice
        // could rename away and replace while root checks and execs.
        const userHome = `${tmp}/alice`;
        await Deno.mkdir(userHome, { mode: 0o700 });
        await Deno.chown(userHome, NOBODY, NOBODY);
        assertRefused(
          await version(launcher, { HOME: userHome }),
          new RegExp(
            `refusing cache directory ${userHome}/\\.cache/tcpcopy-deno: ${userHome} is owned by ` +
              `uid ${NOBODY}, not by the caller \\(uid 0\\) or root \\(sudo: use -H`,
          ),
        );
        await assert.rejects(Deno.lstat(`${userHome}/.cache`), Deno.errors.NotFound);
      });

      await t.step("a launcher whose payload was swapped is refused at unpack", async () => {
        // Same stub (same embedded sums and version name), another runtime and program.
        const text = await Deno.readFile(launcher);
        const m = /tail -n \+(\d+) "\$0"/.exec(new TextDecoder().decode(text.subarray(0, 8192)));
        assert.ok(m, "the stub names its payload line");
        let nl = 0, cut = 0;
        while (nl < Number(m[1]) - 1) if (text[cut++] === 0x0a) nl++;
        const fake = `${tmp}/fake`;
        await Deno.mkdir(fake);
        await Deno.writeTextFile(`${fake}/deno`, "#!/bin/sh\necho planted\n");
        await Deno.chmod(`${fake}/deno`, 0o755);
        await Deno.writeTextFile(`${fake}/app.js`, 'console.log("planted");\n');
        const tar = await new Deno.Command("tar", {
          args: ["-C", fake, "-czf", "-", "deno", "app.js"],
          stdout: "piped",
        }).output();
        const swapped = `${tmp}/tcpcopy-swapped`;
        await Deno.writeFile(swapped, new Uint8Array([...text.subarray(0, cut), ...tar.stdout]));
        await Deno.chmod(swapped, 0o755);
        const swapHome = `${tmp}/swap-home`;
        assertRefused(
          await version(swapped, { HOME: swapHome }),
          /refusing to run .*\/deno: its SHA-256 is not the one built into this launcher \(this launcher file is damaged or was modified\)$/,
        );
        const names = [];
        for await (const e of Deno.readDir(`${swapHome}/.cache/tcpcopy-deno`)) names.push(e.name);
        assert.deepEqual(names, [], "nothing is left in the cache");
      });

      await t.step("a fresh HOME works for an unprivileged user too", async () => {
        const userHome = `${tmp}/nobody-home`;
        await Deno.mkdir(userHome);
        await Deno.chown(userHome, NOBODY, NOBODY);
        assertWorks(await versionAsNobody(launcher, { HOME: userHome }));
        assert.deepEqual(await statOf(`${userHome}/.cache/tcpcopy-deno`), {
          uid: NOBODY,
          mode: 0o700,
        });
      });

      await t.step("ambient capabilities reach the program through the launcher", async () => {
        // systemd's User= + AmbientCapabilities= (README): sh, then the runtime, keep them.
        const out = await run("setpriv", [
          ...setprivArgs("ambient-net"),
          "env",
          "-i",
          `PATH=${PATH}`,
          `HOME=${tmp}/nobody-home`,
          launcher,
          "doctor",
        ], {});
        assert.match(
          out.stdout,
          /^ok {4}privileges: capabilities present$/m,
          out.stdout + out.stderr,
        );
      });

      await t.step(
        "without HOME, a user's cache under TMPDIR planted by another is refused",
        async () => {
          const tmpdir = `${tmp}/tmpdir`; // a /tmp of its own: root-owned, sticky, world-writable
          await Deno.mkdir(tmpdir);
          await Deno.chmod(tmpdir, 0o1777);
          assertWorks(await versionAsNobody(launcher, { TMPDIR: tmpdir }));
          assert.deepEqual(await statOf(`${tmpdir}/tcpcopy-deno-${NOBODY}`), {
            uid: NOBODY,
            mode: 0o700,
          });
          // Planted before the user's first run by someone else (here root): refused.
          await Deno.remove(`${tmpdir}/tcpcopy-deno-${NOBODY}`, { recursive: true });
          await Deno.mkdir(`${tmpdir}/tcpcopy-deno-${NOBODY}`, { mode: 0o700 });
          assertRefused(
            await versionAsNobody(launcher, { TMPDIR: tmpdir }),
            new RegExp(
              `tcpcopy-deno-${NOBODY}: owned by uid 0, not by the caller \\(uid ${NOBODY}\\)`,
            ),
          );
        },
      );

      await t.step("root without HOME uses /var/cache/tcpcopy-deno, never /tmp", async () => {
        // The host's own cache: remove only this build's version directory (its name is in the
        // stub), and the base only if this test created it, so parallel runs do not collide.
        const varBase = "/var/cache/tcpcopy-deno";
        const stub = new TextDecoder().decode((await Deno.readFile(launcher)).subarray(0, 4096));
        const ours = `${varBase}/${/ v=(tcpcopy-[0-9a-f]{16}) /.exec(stub)![1]}`;
        const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);
        const baseExisted = await exists(varBase), oursExisted = await exists(ours);
        try {
          assertWorks(await version(launcher, { TMPDIR: `${tmp}/tmpdir` }));
          assert.deepEqual(await statOf(varBase), { uid: 0, mode: 0o700 });
          assert.ok(await exists(`${ours}/deno`), `unpacked into ${ours}`);
          await assert.rejects(Deno.stat(`${tmp}/tmpdir/tcpcopy-deno-0`), Deno.errors.NotFound);
        } finally {
          if (!oursExisted) await Deno.remove(ours, { recursive: true }).catch(() => {});
          if (!baseExisted) await Deno.remove(varBase).catch(() => {}); // only when empty
        }
      });
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
