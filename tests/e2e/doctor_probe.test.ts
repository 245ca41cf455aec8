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
