/**
 * `tcpcopy doctor -x ... -s ...` sends one probe SYN and waits for its answer to come back
 * through intercept: it passes when intercept takes the target's port, and fails with the fix
 * when intercept does not see the replies.
 */
import assert from "node:assert/strict";
import { type Cleanup, denoCmd, isRoot, waitFor, withNetns } from "../helpers/netns.ts";
import { buildLab, HTTP_PORT, type Lab, startNginx } from "../helpers/lab.ts";

const MAIN = new URL("../../main.ts", import.meta.url);
const INTERCEPT = new URL("../../intercept.ts", import.meta.url);

/** Starts intercept on the target for `port` and waits until its tunnel port accepts. */
async function startIntercept(env: Cleanup, lab: Lab, port: string): Promise<void> {
  env.child(lab.target.spawn(denoCmd(INTERCEPT, [
    "--port",
    port,
    "--stats-interval",
    "0",
    "--drain-seconds",
    "0",
  ])));
  const on = lab.online[0];
  const up = () =>
    on.ns.exec(["bash", "-c", `exec 3<>/dev/tcp/${lab.targetIp}/36524`], { check: false });
  assert.ok(await waitFor(async () => (await up()).code === 0, 15_000, 100));
}

Deno.test({
  name: "doctor probe: a SYN answered through intercept passes; replies intercept misses fail",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const lab = await buildLab(env, 1);
      const on = lab.online[0];
      await startNginx(env, lab.target, `${lab.dir}/target`, lab.targetIp);
      const doctor = (port: number) =>
        on.ns.exec(
          denoCmd(MAIN, [
            "doctor",
            "--json",
            "-x",
            `${port}-${lab.targetIp}:${port}`,
            "-s",
            lab.targetIp,
          ]),
          { check: false, timeoutMs: 30_000 },
        );
      const probeOf = (stdout: string, port: number) =>
        JSON.parse(stdout).checks.find((c: { id: string }) =>
          c.id === `probe:${lab.targetIp}:${port}`
        );

      // intercept takes port 8081 only: the SYN-ACK of port 80 never reaches it.
      await startIntercept(env, lab, "8081");
      const missed = await doctor(HTTP_PORT);
      assert.equal(missed.code, 1, missed.stderr);
      const m = probeOf(missed.stdout, HTTP_PORT);
      assert.equal(m.status, "fail");
      assert.match(m.summary, /no answer came back through intercept/);
      assert.match(m.fix, /intercept --port 80 on the target/);

      // Port 8081 has no server: intercept sees the RST, the path works, the port is closed.
      const closed = probeOf((await doctor(8081)).stdout, 8081);
      assert.equal(closed.status, "warn");
      assert.match(closed.summary, /RST \(port closed on the target\) came back through intercept/);
    }),
});

Deno.test({
  name: "doctor probe: with intercept on the target's port the SYN-ACK comes back, exit 0",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const lab = await buildLab(env, 1);
      const on = lab.online[0];
      await startNginx(env, lab.target, `${lab.dir}/target`, lab.targetIp);
      await startIntercept(env, lab, "80");
      const out = await on.ns.exec(
        denoCmd(MAIN, ["doctor", "-x", `80-${lab.targetIp}:80`, "-s", lab.targetIp]),
        { check: false, timeoutMs: 30_000 },
      );
      assert.match(
        out.stdout,
        new RegExp(
          `^ok {4}probe:${lab.targetIp.replaceAll(".", "\\.")}:80: probe SYN answered: SYN-ACK`,
          "m",
        ),
        out.stdout + out.stderr,
      );
      assert.equal(out.code, 0, out.stdout);
    }),
});

Deno.test({
  name:
    "doctor modules: --module postgres asks intercept for its reply prefix; a short grant warns with --max-prefix",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const lab = await buildLab(env, 1);
      const on = lab.online[0];
      const secret = `${lab.dir}/secret`;
      const users = `${lab.dir}/db-users`;
      await Deno.writeTextFile(secret, "a shared secret of the doctor test\n", { mode: 0o600 });
      await Deno.writeTextFile(users, "app:doctor-pw-never-shown\nreport:x\n", { mode: 0o600 });
      const up = () =>
        on.ns.exec(["bash", "-c", `exec 3<>/dev/tcp/${lab.targetIp}/36524`], { check: false });
      const doctor = async (extra: string[]) => {
        const child = env.child(lab.target.spawn(denoCmd(INTERCEPT, [
          "--port",
          "5432",
          "--secret-file",
          secret,
          "--stats-interval",
          "0",
          "--drain-seconds",
          "0",
          ...extra,
        ])));
        assert.ok(await waitFor(async () => (await up()).code === 0, 15_000, 100));
        const out = await on.ns.exec(
          denoCmd(MAIN, [
            "doctor",
            "--json",
            "--module",
            "postgres",
            "--auth-file",
            users,
            "--secret-file",
            secret,
            "-s",
            lab.targetIp,
          ]),
          { check: false, timeoutMs: 30_000 },
        );
        child.kill("SIGTERM");
        await child.status;
        assert.ok(!out.stdout.includes("doctor-pw-never-shown"), "no password in the report");
        const checks: { id: string; status: string; summary: string; fix?: string }[] =
          JSON.parse(out.stdout).checks;
        return (id: string) => {
          const c = checks.find((c) => c.id === id);
          assert.ok(c, `${id} in ${out.stdout} ${out.stderr}`);
          return c;
        };
      };
      const id = `module:prefix:${lab.targetIp}:36524`;
      // intercept's default grant: 128 bytes
      let get = await doctor([]);
      assert.equal(get("module:auth-file").status, "pass");
      assert.match(get("module:auth-file").summary, /2 users/);
      assert.equal(get("module:secret-file").status, "pass");
      const short = get(id);
      assert.equal(short.status, "warn", short.summary);
      assert.match(short.summary, /grants 128 bytes/);
      assert.equal(short.fix, "start intercept with --max-prefix 512");
      get = await doctor(["--max-prefix", "512"]);
      const full = get(id);
      assert.equal(full.status, "pass", full.summary);
      assert.match(full.summary, /grants 512 bytes/);
    }),
});
