/**
 * The one list of system packages (lib/setup/packages.ts) stays true: every external program the
 * sources run is listed with the package that provides it, every listed program is run somewhere,
 * and the set-up decision says what it installs, or what to install, in one line.
 */
import assert from "node:assert/strict";
import {
  installCommand,
  packageAdvice,
  packagesFor,
  REQUIREMENTS,
  requirementsFor,
} from "../../lib/setup/packages.ts";
import { planSetup } from "../../lib/setup/plan.ts";
import { programsOf, requirePrograms } from "../helpers/netns.ts";
import { networkEnv } from "../helpers/network_env.ts";

const root = new URL("../../", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;

function* tsFiles(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* tsFiles(path);
    else if (e.name.endsWith(".ts") && path !== SELF) yield path;
  }
}

const WORD = String.raw`[a-z][\w.+-]*`;
/** Calls and assignments whose array argument is a command line. */
const COMMAND_ARRAY = new RegExp(
  String.raw`(?:\b(?:exec|spawn|run|wrap|runCommand)\(|\b(?:args|cmd|argv)\s*=)\s*\[\s*"(${WORD})"`,
  "g",
);
/** The arguments of `Deno.execPath()` (`["run", "-A", ...]`) are not a program. */
const DENO_SUBCOMMANDS = new Set(["run", "eval", "test", "bench", "compile", "bundle", "check"]);
const DIRECT = new RegExp(String.raw`(?:new Deno\.Command|\bcommand)\(\s*"(${WORD})"`, "g");
const TASKSET = new RegExp(String.raw`"taskset",\s*"-c",\s*"[\d,-]+",\s*"(${WORD})"`, "g");
/** Shell scripts: `sh(ns, \`...\`)` and `["bash", "-c", \`...\`]`. */
const SCRIPT = /(?:\bsh\(\s*[\w.[\]]+,\s*|"bash",\s*"-c",\s*)`([^`]*)`/g;

/** The external programs a TypeScript source runs (comments are not code). */
export function programsRunIn(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found = new Set<string>();
  for (const re of [COMMAND_ARRAY, DIRECT, TASKSET]) {
    for (const m of code.matchAll(re)) if (!DENO_SUBCOMMANDS.has(m[1])) found.add(m[1]);
  }
  for (const m of code.matchAll(SCRIPT)) {
    for (const part of m[1].split(/\|\||&&|[|;]/)) {
      const word = part.trim().replace(/^exec\s+/, "").split(/\s+/)[0];
      if (new RegExp(`^${WORD}$`).test(word)) found.add(word);
    }
  }
  return [...found];
}

function scanTree(): Map<string, string> {
  const where = new Map<string, string>();
  for (const dir of ["lib", "tests", "tools", "bench"]) {
    for (const file of tsFiles(`${root}${dir}`)) {
      for (const p of programsRunIn(Deno.readTextFileSync(file))) {
        if (!where.has(p)) where.set(p, file.slice(root.length));
      }
    }
  }
  return where;
}

Deno.test("packages: the scanner finds programs in every form the sources use", () => {
  const src = `
    await ns.exec(["frob", "-x"]);
    const args = ["zap", "-q"];
    const denoArgs = ["run", "-A", "x.ts"], argv = ["eval", "1"];
    const c = new Deno.Command("quux", { args: [] });
    await command("ethtool", ["-k", dev]);
    b.spawn(["taskset", "-c", "1", "blip", "-n"]);
    await sh(on.client, \`curl -s x | grep y && exec wc -l\`);
    ns.spawn(["bash", "-c", \`exec \${cmd} >out\`]);
    // ns.exec(["commented", "-x"]);
    /* ns.exec(["blocked", "-x"]); */
    const symbols = { f: { parameters: ["pointer", "i32"], result: "i32" } };
  `;
  assert.deepEqual(
    programsRunIn(src).sort(),
    ["bash", "blip", "curl", "ethtool", "frob", "grep", "quux", "taskset", "wc", "zap"],
  );
});

Deno.test("packages: every program the sources run is on the list, and every listed one is run", () => {
  const used = scanTree();
  const listed = new Set(REQUIREMENTS.filter((r) => r.kind === "program").map((r) => r.name));
  const unlisted = [...used].filter(([p]) => !listed.has(p)).map(([p, f]) => `${p} (${f})`);
  assert.deepEqual(unlisted, [], "add these programs to lib/setup/packages.ts");
  const unused = [...listed].filter((p) => !used.has(p));
  assert.deepEqual(unused, [], "listed but run nowhere: remove them from the list");
  for (const p of ["nginx", "ab", "curl", "tcpdump", "nft", "iptables", "ip6tables", "ip"]) {
    assert.ok(used.has(p), `the scan should find ${p}`);
  }
});

Deno.test("packages: every library the programs load is on the list and loaded through it", () => {
  const io = [...tsFiles(`${root}lib/io`)].map((f) => Deno.readTextFileSync(f)).join("\n");
  for (const r of REQUIREMENTS.filter((r) => r.kind === "library")) {
    assert.ok(io.includes(`librarySpec("${r.name}")`), `${r.name} is loaded with librarySpec`);
    assert.match(r.envVar ?? "", /^TCPCOPY_LIB/);
  }
  assert.doesNotMatch(io, /soname: "/, "no library spec outside lib/setup/packages.ts");
});

Deno.test("packages: the tests' command runner refuses unlisted and missing programs", () => {
  assert.deepEqual(programsOf(["ip", "netns", "exec", "ns1", "taskset", "-c", "1", "nginx"]), [
    "ip",
    "taskset",
    "nginx",
  ]);
  assert.deepEqual(programsOf([Deno.execPath(), "run", "x.ts"]), []);
  assert.throws(
    () => requirePrograms(["frobnicate", "-x"]),
    /frobnicate: a test runs it but lib\/setup\/packages\.ts does not list it/,
  );
  const savedPath = Deno.env.get("PATH");
  try {
    // perf is listed (bench) and usually absent; with an empty PATH only the sbin folders count.
    Deno.env.set("PATH", "/nonexistent");
    assert.throws(() => requirePrograms(["perf", "stat"]), (e: Error) => {
      assert.match(e.message, /^perf is not installed: install linux-perf \(Debian\/Ubuntu\)/);
      return true;
    });
  } finally {
    if (savedPath === undefined) Deno.env.delete("PATH");
    else Deno.env.set("PATH", savedPath);
  }
});

Deno.test("packages: advice, package names per manager, and renamed Debian packages", () => {
  assert.equal(packageAdvice("ab"), "apache2-utils (Debian/Ubuntu) / httpd-tools (RPM)");
  const demo = requirementsFor(["demo"]);
  assert.ok(demo.some((r) => r.name === "nginx") && demo.some((r) => r.name === "iptables"));
  assert.ok(!demo.some((r) => r.name === "perf"), "bench tools are not installed for the demo");
  const nginx = REQUIREMENTS.filter((r) => r.name === "nginx" || r.name === "libpcap.so.0.8");
  assert.deepEqual(packagesFor(nginx, "apt"), ["libpcap0.8", "nginx-light"]);
  assert.deepEqual(packagesFor(nginx, "apt", (p) => !p.startsWith("nginx-light")), [
    "libpcap0.8",
    "nginx",
  ]);
  assert.deepEqual(packagesFor(nginx, "dnf"), ["libpcap", "nginx"]);
  // iptables and ip6tables come from one package: listed once.
  const ipt = REQUIREMENTS.filter((r) => r.name.startsWith("ip") && r.name.endsWith("tables"));
  assert.deepEqual(packagesFor(ipt, "apt"), ["iptables"]);
  assert.equal(installCommand("yum", ["a", "b"]), "sudo yum install -y a b");
});

Deno.test("packages: the set-up plan installs as root, or stops with one line naming packages", () => {
  const lacking = REQUIREMENTS.filter((r) => r.name === "nginx" || r.name === "ab");
  const base = { missing: lacking, purposes: ["demo"] as const, checkOnly: false };
  assert.deepEqual(planSetup({ ...base, missing: [], root: false, manager: "apt" }), {
    action: "ok",
  });
  const install = planSetup({ ...base, root: true, manager: "apt" });
  assert.equal(install.action, "install");
  if (install.action === "install") {
    assert.deepEqual(install.packages, ["nginx-light", "apache2-utils"]);
    assert.match(install.line, /^installing nginx-light apache2-utils \(missing for the demo: /);
  }
  const user = planSetup({ ...base, root: false, manager: "apt" });
  assert.equal(user.action, "stop");
  if (user.action === "stop") {
    assert.doesNotMatch(user.line, /\n/);
    assert.match(
      user.line,
      /nginx \(.*\), ab \(.*\); install them with: sudo apt-get install -y --no-install-recommends nginx-light apache2-utils \(as root/,
    );
  }
  const check = planSetup({ ...base, root: true, manager: "dnf", checkOnly: true });
  assert.equal(check.action, "stop");
  if (check.action === "stop") assert.match(check.line, /sudo dnf install -y nginx httpd-tools$/);
  const unknown = planSetup({ ...base, root: true });
  assert.equal(unknown.action, "stop");
  if (unknown.action === "stop") {
    assert.match(
      unknown.line,
      /no apt-get, dnf or yum here: .*nginx \(nginx-light or nginx \/ RPM nginx\)/,
    );
  }
});

Deno.test("build tests pass the machine's certificate and proxy settings to build.sh", () => {
  const env = networkEnv({
    SSL_CERT_FILE: "/etc/ssl/certs/ca.pem",
    https_proxy: "http://proxy:3128",
    HOME: "/root",
    SECRET_TOKEN: "x",
  });
  assert.deepEqual(env, {
    SSL_CERT_FILE: "/etc/ssl/certs/ca.pem",
    https_proxy: "http://proxy:3128",
  });
  // every test that runs build.sh with a cleared environment passes them on
  let checked = 0;
  for (const file of tsFiles(`${root}tests`)) {
    const text = Deno.readTextFileSync(file);
    if (!text.includes("clearEnv: true") || !text.includes("build.sh")) continue;
    checked++;
    assert.match(text, /\.\.\.networkEnv\(\)/, `${file} clears the environment for build.sh`);
  }
  assert.ok(checked >= 2, "the build and launcher tests run build.sh with a cleared environment");
});
