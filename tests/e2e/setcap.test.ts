/**
 * Running without root: with `setcap cap_net_raw,cap_net_admin+ep` on the runtime, an
 * unprivileged user passes the doctor's privilege check and can open a live capture; without
 * the capabilities both fail with the exact fix.
 */
import assert from "node:assert/strict";
import { isRoot, run } from "../helpers/netns.ts";
import { asNobody, NOBODY, type NobodyCaps } from "../helpers/nobody.ts";

const root = new URL("../../", import.meta.url).pathname;

/**
 * Runs `deno args` as nobody with a HOME and DENO_DIR under `dir` and the extra `env`
 * assignments; never throws on a non-zero exit.
 */
function denoAsNobody(
  dir: string,
  deno: string,
  args: string[],
  opts: { env?: string[]; caps?: NobodyCaps } = {},
) {
  return run([
    ...asNobody(opts.caps ?? "none"),
    "env",
    `HOME=${dir}/home`,
    `DENO_DIR=${dir}/home/deno`,
    "DENO_NO_UPDATE_CHECK=1",
    ...opts.env ?? [],
    deno,
    ...args,
  ], { check: false, timeoutMs: 60_000 });
}

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
 * main.ts, intercept.ts and lib/ copied into `dir`, readable by everyone (the user runs them; a checkout under
 * /root, mode 0700, is not readable by them). Returns the copy's root, with a trailing slash.
 */
async function publicCopy(dir: string): Promise<string> {
  const src = `${dir}/src`;
  await Deno.mkdir(src);
  await Deno.chmod(src, 0o755);
  await copyTree(`${root}main.ts`, `${src}/main.ts`);
  await copyTree(`${root}intercept.ts`, `${src}/intercept.ts`);
  await copyTree(`${root}lib`, `${src}/lib`);
  return `${src}/`;
}

/**
 * Sets up `dir` (made readable by everyone) for both tests: a public copy of the sources, two
 * copies of this runtime, `deno-caps` with cap_net_raw,cap_net_admin+ep and `deno-plain`
 * without, and a HOME user nobody can write to (`dir/home`, 0777).
 */
async function twoRuntimes(dir: string) {
  await Deno.chmod(dir, 0o755);
  const src = await publicCopy(dir);
  const withCaps = `${dir}/deno-caps`, without = `${dir}/deno-plain`;
  for (const f of [withCaps, without]) {
    await Deno.copyFile(Deno.execPath(), f);
    await Deno.chmod(f, 0o755);
  }
  await run(["setcap", "cap_net_raw,cap_net_admin+ep", withCaps]);
  await Deno.mkdir(`${dir}/home`, { mode: 0o777 });
  await Deno.chmod(`${dir}/home`, 0o777);
  return { src, withCaps, without };
}

Deno.test({
  name:
    "setcap: an unprivileged user with cap_net_raw,cap_net_admin captures; without, a clear fix",
  ignore: !isRoot(),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "tcpcopy-setcap-" });
    try {
      const { src, withCaps, without } = await twoRuntimes(dir);

      const nobody = (deno: string, args: string[]) => denoAsNobody(dir, deno, args);

      const doctorCaps = await nobody(withCaps, [
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
      const doctorPlain = await nobody(without, [
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
      const capCaps = await nobody(withCaps, ["eval", probe]);
      assert.match(capCaps.stdout, /^opened (ring|pcap)$/m, capCaps.stdout + capCaps.stderr);
      const capPlain = await nobody(without, ["eval", probe]);
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

/** Where the host's copies of the three libraries are (resolved, so copies are real files). */
async function systemLibraries(): Promise<Record<string, string>> {
  const find = async (soname: string) => {
    const out = await run(["sh", "-c", `ldconfig -p | grep -m1 -F '${soname} '`]);
    return await Deno.realPath(out.stdout.trim().split(" => ")[1]);
  };
  return {
    TCPCOPY_LIBC: await find("libc.so.6"),
    TCPCOPY_LIBPCAP: await find("libpcap.so.0.8"),
    TCPCOPY_LIBNFQ: await find("libnetfilter_queue.so.1"),
  };
}

const SONAME: Record<string, string> = {
  TCPCOPY_LIBC: "libc.so.6",
  TCPCOPY_LIBPCAP: "libpcap.so.0.8",
  TCPCOPY_LIBNFQ: "libnetfilter_queue.so.1",
};

Deno.test({
  name:
    "setcap: TCPCOPY_LIB* pointing at a user-writable library are refused with raised capabilities",
  ignore: !isRoot(),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "tcpcopy-setcap-lib-" });
    try {
      const { src, withCaps, without } = await twoRuntimes(dir);

      // Three places for copies of the real libraries: owned by the user (the attack), root-owned
      // 0755 in root-owned 0755 directories (accepted), root-owned files in a 0777 directory.
      const libs = await systemLibraries();
      const places = { user: `${dir}/user`, root: `${dir}/root`, open: `${dir}/open` };
      for (const [kind, p] of Object.entries(places)) {
        await Deno.mkdir(p);
        await Deno.chmod(p, kind === "open" ? 0o777 : 0o755);
        for (const [v, src] of Object.entries(libs)) {
          await Deno.copyFile(src, `${p}/${SONAME[v]}`);
          await Deno.chmod(`${p}/${SONAME[v]}`, 0o755);
          if (kind === "user") await Deno.chown(`${p}/${SONAME[v]}`, NOBODY, NOBODY);
        }
        if (kind === "user") await Deno.chown(p, NOBODY, NOBODY);
      }
      const overrides = (p: string) => Object.keys(libs).map((v) => `${v}=${p}/${SONAME[v]}`);

      const nobody = (deno: string, env: string[], args: string[]) =>
        denoAsNobody(dir, deno, args, { env });
      // tcpcopy's doctor judges libc and libpcap, intercept's (NFQUEUE mode) libnetfilter_queue.
      const doctor = async (deno: string, env: string[]) => {
        const outs = await Promise.all(
          ["main.ts", "intercept.ts"].map((program) =>
            nobody(deno, env, ["run", "-A", "--no-lock", `${src}${program}`, "doctor"])
          ),
        );
        return {
          stdout: outs.map((o) => o.stdout).join("\n"),
          stderr: outs.map((o) => o.stderr).join("\n"),
        };
      };
      const libLine = (out: string, soname: string) =>
        out.split("\n").find((l) => l.includes(soname)) ?? `(no line for ${soname})`;

      // Without raised capabilities the user's own copies load: overrides stay useful.
      const plain = await doctor(without, overrides(places.user));
      for (const soname of Object.values(SONAME)) {
        assert.match(libLine(plain.stdout, soname), /^ok /, plain.stdout + plain.stderr);
      }
      // Ambient capabilities (systemd User= + AmbientCapabilities=) are the caller's own: the
      // plain runtime gets them, and the user's overrides still load.
      const ambientOuts = await Promise.all(
        ["main.ts", "intercept.ts"].map((program) =>
          denoAsNobody(dir, without, ["run", "-A", "--no-lock", `${src}${program}`, "doctor"], {
            env: overrides(places.user),
            caps: "ambient-net",
          })
        ),
      );
      const ambient = {
        stdout: ambientOuts.map((o) => o.stdout).join("\n"),
        stderr: ambientOuts.map((o) => o.stderr).join("\n"),
      };
      assert.match(ambient.stdout, /^ok {4}privileges: capabilities present$/m, ambient.stdout);
      for (const soname of Object.values(SONAME)) {
        assert.match(libLine(ambient.stdout, soname), /^ok /, ambient.stdout + ambient.stderr);
      }
      // With raised capabilities, each user-owned override is refused, naming variable and path.
      const attacked = await doctor(withCaps, overrides(places.user));
      for (const [v, soname] of Object.entries(SONAME)) {
        const line = libLine(attacked.stdout, soname);
        assert.match(line, /^FAIL /, attacked.stdout + attacked.stderr);
        assert.ok(line.includes(`${v}=${places.user}/${soname}`), line);
        assert.match(line, /refused/, line);
        assert.match(line, /owned by uid 65534/, line);
      }
      assert.match(attacked.stdout, /^ {6}fix: unset TCPCOPY_LIBPCAP, /m, attacked.stdout);
      // Root-owned 0755 copies in root-owned 0755 directories are accepted.
      const rooted = await doctor(withCaps, overrides(places.root));
      for (const soname of Object.values(SONAME)) {
        assert.match(libLine(rooted.stdout, soname), /^ok /, rooted.stdout + rooted.stderr);
      }
      // A root-owned file in a directory others may write to is refused too.
      const open = await doctor(withCaps, overrides(places.open));
      for (const [v, soname] of Object.entries(SONAME)) {
        const line = libLine(open.stdout, soname);
        assert.match(line, /^FAIL /, open.stdout);
        assert.ok(line.includes(`${v}=${places.open}/${soname}`), line);
        assert.match(line, new RegExp(`${places.open} is writable by group or others`), line);
      }
      // A relative path is refused, and the real loader (not only the doctor) says so.
      const probe = `
        import { loadPcap } from "${src}lib/io/pcap_lib.ts";
        try { loadPcap(); console.log("loaded"); } catch (e) { console.log("error: " + e.message); }`;
      const relative = await nobody(withCaps, ["TCPCOPY_LIBPCAP=user/libpcap.so.0.8"], [
        "eval",
        probe,
      ]);
      assert.match(
        relative.stdout,
        /^error: TCPCOPY_LIBPCAP=user\/libpcap\.so\.0\.8 refused: .*not an absolute path/m,
        relative.stdout + relative.stderr,
      );
      const direct = await nobody(withCaps, [`TCPCOPY_LIBPCAP=${places.user}/libpcap.so.0.8`], [
        "eval",
        probe,
      ]);
      assert.match(
        direct.stdout,
        new RegExp(`^error: TCPCOPY_LIBPCAP=${places.user}/libpcap\\.so\\.0\\.8 refused: `, "m"),
        direct.stdout + direct.stderr,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
