/**
 * The pure decisions behind setcap-safe library loading: whether the process runs with raised
 * privileges (privilege.ts) and whether a TCPCOPY_LIB* override may then be loaded
 * (library_override.ts).
 */
import assert from "node:assert/strict";
import {
  AT_SECURE,
  judgePrivilege,
  parseAuxvSecure,
  parseProcStatus,
  type Privilege,
  type ProcStatus,
} from "../../lib/io/privilege.ts";
import { judgeOverride, type PathEntry, type PathFacts } from "../../lib/io/library_override.ts";

const STATUS_SETCAP = `Name:\tdeno
Umask:\t0022
State:\tR (running)
Uid:\t65534\t65534\t65534\t65534
Gid:\t65534\t65534\t65534\t65534
CapInh:\t0000000000000000
CapPrm:\t0000000000003000
CapEff:\t0000000000003000
CapBnd:\t000001fffeffffff
CapAmb:\t0000000000000000
`;

const status = (over: Partial<ProcStatus> = {}): ProcStatus => ({
  uid: 1000,
  euid: 1000,
  gid: 1000,
  egid: 1000,
  capPrm: 0n,
  capAmb: 0n,
  ...over,
});

function auxv(pairs: [number, number][]): Uint8Array {
  const bytes = new Uint8Array(pairs.length * 16);
  const view = new DataView(bytes.buffer);
  pairs.forEach(([t, v], i) => {
    view.setBigUint64(i * 16, BigInt(t), true);
    view.setBigUint64(i * 16 + 8, BigInt(v), true);
  });
  return bytes;
}

Deno.test("privilege: /proc/self/status and auxv are parsed", () => {
  assert.deepEqual(parseProcStatus(STATUS_SETCAP), {
    uid: 65534,
    euid: 65534,
    gid: 65534,
    egid: 65534,
    capPrm: 0x3000n,
    capAmb: 0n,
  });
  assert.equal(parseProcStatus("Name:\tdeno\n"), undefined);
  assert.equal(parseAuxvSecure(auxv([[6, 4096], [AT_SECURE, 1], [0, 0]])), 1);
  assert.equal(parseAuxvSecure(auxv([[6, 4096], [AT_SECURE, 0], [0, 0]])), 0);
  assert.equal(parseAuxvSecure(auxv([[6, 4096], [0, 0], [AT_SECURE, 1]])), 0, "stops at AT_NULL");
  assert.equal(parseAuxvSecure(new Uint8Array(15)), undefined);
});

Deno.test("privilege: file capabilities, setuid and setgid are raised; root and ambient are not", () => {
  const j = (s: ProcStatus, atSecure: number | { error: string } = 0) =>
    judgePrivilege({ atSecure, status: s });
  // setcap'ed executable run by a user: auxv unreadable, CapPrm beyond CapAmb.
  const setcap = j(parseProcStatus(STATUS_SETCAP)!, { error: "Permission denied" });
  assert.equal(setcap.raised, true);
  assert.match(setcap.why, /CapPrm 0x3000 beyond CapAmb 0x0 for uid 65534/);
  assert.equal(j(status({ euid: 0 })).raised, true, "setuid root");
  assert.match(j(status({ egid: 0 })).why, /setgid/);
  assert.match(j(status(), 1).why, /^AT_SECURE=1$/, "the kernel's flag wins");
  // root (sudo, a system unit): the full set, no AT_SECURE.
  assert.equal(
    j(status({ uid: 0, euid: 0, gid: 0, egid: 0, capPrm: 0x1ffn << 32n })).raised,
    false,
  );
  // systemd User=tcpcopy + AmbientCapabilities=: the capabilities are the caller's own.
  assert.equal(j(status({ capPrm: 0x3000n, capAmb: 0x3000n })).raised, false);
  // A plain user.
  assert.equal(j(status()).raised, false);
});

Deno.test("privilege: what cannot be read counts as raised", () => {
  assert.equal(judgePrivilege({ atSecure: 0, status: { error: "EACCES" } }).raised, true);
  const noAuxv = judgePrivilege({ atSecure: { error: "EACCES" }, status: status() });
  assert.equal(noAuxv.raised, true);
  assert.match(noAuxv.why, /cannot read \/proc\/self\/auxv \(EACCES\)/);
});

const RAISED: Privilege = { raised: true, why: "AT_SECURE=1" };
const PLAIN: Privilege = { raised: false, why: "" };

const dir = (path: string, uid = 0, mode = 0o755): PathEntry => ({ path, uid, mode, kind: "dir" });
const file = (path: string, uid = 0, mode = 0o755): PathEntry => ({
  path,
  uid,
  mode,
  kind: "file",
});

/** Path facts for /opt/lib/libpcap.so with the given last directory and file entries. */
function facts(last: PathEntry = dir("/opt/lib"), f: PathEntry = file("/opt/lib/libpcap.so")) {
  return (): PathFacts => ({
    realPath: "/opt/lib/libpcap.so",
    entries: [dir("/"), dir("/opt"), last, f],
  });
}

Deno.test("override: without raised privileges any value is used as given, unchecked", () => {
  let inspected = false;
  const v = judgeOverride("TCPCOPY_LIBPCAP", "rel/libpcap.so", PLAIN, () => {
    inspected = true;
    return { error: "x" };
  });
  assert.deepEqual(v, { kind: "use", path: "rel/libpcap.so" });
  assert.equal(inspected, false);
});

Deno.test("override: raised, a root-owned 0755 file in root-owned 0755 directories is used", () => {
  assert.deepEqual(
    judgeOverride("TCPCOPY_LIBPCAP", "/opt/lib/libpcap.so", RAISED, facts()),
    { kind: "use", path: "/opt/lib/libpcap.so" },
  );
  // The resolved path is what gets loaded (a symlink cannot be swapped after the check).
  const viaLink = judgeOverride("TCPCOPY_LIBPCAP", "/usr/lib/link.so", RAISED, facts());
  assert.deepEqual(viaLink, { kind: "use", path: "/opt/lib/libpcap.so" });
  // A sticky directory writable by others (like /tmp) cannot lose root's entries: accepted.
  assert.equal(
    judgeOverride("TCPCOPY_LIBC", "/x", RAISED, facts(dir("/opt/lib", 0, 0o1777))).kind,
    "use",
  );
});

Deno.test("override: raised, each unsafe path is refused with variable, path and reason", () => {
  const refused = (value: string, f: () => PathFacts, reason: RegExp) => {
    const v = judgeOverride("TCPCOPY_LIBNFQ", value, RAISED, f);
    assert.equal(v.kind, "refuse", `${value} must be refused`);
    if (v.kind !== "refuse") return;
    assert.ok(v.message.startsWith(`TCPCOPY_LIBNFQ=${value} refused: `), v.message);
    assert.match(v.message, /raised privileges \(AT_SECURE=1\)/);
    assert.match(v.message, reason);
    assert.ok(!v.message.includes("\n"), "one line");
  };
  refused("lib/libnfq.so", facts(), /not an absolute path/);
  refused(
    "/opt/lib/libpcap.so",
    facts(undefined, file("/opt/lib/libpcap.so", 1000)),
    /owned by uid 1000, not root/,
  );
  refused(
    "/x",
    facts(undefined, file("/opt/lib/libpcap.so", 0, 0o775)),
    /libpcap\.so is writable by group or others \(mode 0775\)/,
  );
  refused(
    "/x",
    facts(undefined, file("/opt/lib/libpcap.so", 0, 0o757)),
    /writable by group or others/,
  );
  refused("/x", facts(dir("/opt/lib", 1000)), /\/opt\/lib is owned by uid 1000/);
  refused(
    "/x",
    facts(dir("/opt/lib", 0, 0o777)),
    /\/opt\/lib is writable by group or others \(mode 0777\)/,
  );
  refused("/x", facts(dir("/opt/lib", 0, 0o770)), /writable/);
  // A sticky bit on the file itself does not make it safe.
  refused("/x", facts(undefined, file("/opt/lib/libpcap.so", 0, 0o1777)), /writable/);
  refused(
    "/x",
    facts(undefined, { ...file("/opt/lib/libpcap.so"), kind: "dir" }),
    /not a regular file/,
  );
  refused("/x", facts({ ...dir("/opt/lib"), kind: "symlink" }), /changed into a symbolic link/);
  refused(
    "/x",
    () => ({ error: "No such file or directory" }),
    /cannot be inspected \(No such file/,
  );
});
