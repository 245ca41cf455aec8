/**
 * Running without root: with `setcap cap_net_raw,cap_net_admin+ep` on the runtime, an
 * unprivileged user passes the doctor's privilege check and can open a live capture; without
 * the capabilities both fail with the exact fix.
 */
import assert from "node:assert/strict";
import { isRoot, run } from "../helpers/netns.ts";

const root = new URL("../../", import.meta.url).pathname;
const NOBODY = "65534";

async function copyTree(from: string, to: string): Promise<void> {
  if ((await Deno.stat(from)).isDirectory) {
    await Deno.mkdir(to);
    await Deno.chmod(to, 0o755);
    for await (const e of Deno.readDir(from)) {
      await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    }
  } else {
    await Deno.copyFile(from, to);
    await Deno.chmod(to, 0o644);
  }
}

/**
 * main.ts and lib/ copied into `dir`, readable by everyone (the user runs them; a checkout under
 * /root, mode 0700, is not readable by them). Returns the copy's root, with a trailing slash.
 */
async function publicCopy(dir: string): Promise<string> {
  const src = `${dir}/src`;
  await Deno.mkdir(src);
  await Deno.chmod(src, 0o755);
  await copyTree(`${root}main.ts`, `${src}/main.ts`);
  await copyTree(`${root}lib`, `${src}/lib`);
  return `${src}/`;
}

Deno.test({
  name:
    "setcap: an unprivileged user with cap_net_raw,cap_net_admin captures; without, a clear fix",
  ignore: !isRoot(),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "tcpcopy-setcap-" });
    try {
      await Deno.chmod(dir, 0o755);
      const src = await publicCopy(dir);
      const withCaps = `${dir}/deno-caps`, without = `${dir}/deno-plain`;
      await Deno.copyFile(Deno.execPath(), withCaps);
      await Deno.copyFile(Deno.execPath(), without);
      await Deno.chmod(withCaps, 0o755);
      await Deno.chmod(without, 0o755);
      await run(["setcap", "cap_net_raw,cap_net_admin+ep", withCaps]);
      await Deno.mkdir(`${dir}/home`, { mode: 0o777 });
      await Deno.chmod(`${dir}/home`, 0o777);

      const asNobody = (deno: string, args: string[]) =>
        run([
          "setpriv",
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          "--clear-groups",
          "--inh-caps=-all",
          "env",
          `HOME=${dir}/home`,
          `DENO_DIR=${dir}/home/deno`,
          "DENO_NO_UPDATE_CHECK=1",
          deno,
          ...args,
        ], { check: false, timeoutMs: 60_000 });

      const doctorCaps = await asNobody(withCaps, [
        "run",
        "-A",
        "--no-lock",
        `${src}main.ts`,
        "doctor",
      ]);
      assert.match(
        doctorCaps.stdout,
        /^ok {4}privileges: capabilities present$/m,
        doctorCaps.stderr,
      );
      const doctorPlain = await asNobody(without, [
        "run",
        "-A",
        "--no-lock",
        `${src}main.ts`,
        "doctor",
      ]);
      assert.equal(doctorPlain.code, 1);
      assert.match(doctorPlain.stdout, /^FAIL {2}privileges: uid 65534 without CAP_NET_RAW$/m);
      assert.match(doctorPlain.stdout, /fix: .*setcap cap_net_raw,cap_net_admin\+ep/);

      // A real capture needs CAP_NET_RAW: it opens with the capabilities, and without them the
      // error names what is missing.
      const probe = `
        import { openCapture } from "${src}lib/io/capture.ts";
        try {
          const c = openCapture({ device: "lo", filter: "tcp port 9" });
          console.log("opened " + c.engine);
          c.close();
        } catch (e) { console.log("error: " + e.message); }`;
      const capCaps = await asNobody(withCaps, ["eval", probe]);
      assert.match(capCaps.stdout, /^opened (ring|pcap)$/m, capCaps.stdout + capCaps.stderr);
      const capPlain = await asNobody(without, ["eval", probe]);
      assert.match(
        capPlain.stdout,
        /^error: .*(CAP_NET_RAW|root)/m,
        capPlain.stdout + capPlain.stderr,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
