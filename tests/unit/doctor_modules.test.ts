/**
 * `tcpcopy doctor --module ...`: the module checks (lib/doctor/module_checks.ts), the facts
 * read from a real auth file (module_facts.ts: never a password in a verdict) and the doctor's
 * module flags (lib/cli/doctor_args.ts).
 */
import assert from "node:assert/strict";
import { checkModules, type ModuleFacts } from "../../lib/doctor/module_checks.ts";
import { gatherModuleFacts } from "../../lib/doctor/module_facts.ts";
import { parseDoctorArgs } from "../../lib/cli/doctor_args.ts";

const PG = { name: "postgres", replyPrefix: 512 };
const REDIS = { name: "redis", replyPrefix: 0 };

function facts(over: Partial<ModuleFacts> = {}): ModuleFacts {
  return {
    modules: [PG],
    authFile: "/etc/tcpcopy/db-users",
    auth: { users: 2 },
    secretFile: true,
    grants: {},
    ...over,
  };
}

const byId = (f: ModuleFacts) => Object.fromEntries(checkModules(f).map((v) => [v.id, v]));

Deno.test("doctor modules: nothing without a module; a good set-up passes", () => {
  assert.deepEqual(checkModules(facts({ modules: [] })), []);
  const v = byId(facts({ grants: { "10.0.0.2:36524": 512 } }));
  assert.equal(v["module:auth-file"].status, "pass");
  assert.match(v["module:auth-file"].summary, /2 users \(passwords not shown\)/);
  assert.equal(v["module:secret-file"].status, "pass");
  assert.equal(v["module:prefix:10.0.0.2:36524"].status, "pass");
});

Deno.test("doctor modules: a short grant warns with intercept's --max-prefix to set", () => {
  const v = byId(facts({ grants: { "10.0.0.2:36524": 128, "10.0.0.3:36524": "timed out" } }));
  const short = v["module:prefix:10.0.0.2:36524"];
  assert.equal(short.status, "warn");
  assert.match(short.summary, /grants 128 bytes .* postgres asks 512/);
  assert.equal(short.fix, "start intercept with --max-prefix 512");
  assert.equal(v["module:prefix:10.0.0.3:36524"].status, "fail");
  // the largest prefix of the modules in use is the one asked for
  const mixed = byId(
    facts({ modules: [REDIS, { name: "mysql", replyPrefix: 1024 }, PG], grants: { a: 512 } }),
  );
  assert.equal(mixed["module:prefix:a"].fix, "start intercept with --max-prefix 1024");
});

Deno.test("doctor modules: no --secret-file fails for a module that reads replies, not for redis", () => {
  const v = byId(facts({ secretFile: false }));
  assert.equal(v["module:secret-file"].status, "fail");
  assert.match(v["module:secret-file"].fix!, /same file to intercept/);
  const r = byId(facts({ modules: [REDIS], secretFile: false, grants: {} }));
  assert.equal(r["module:secret-file"], undefined);
  assert.equal(r["module:auth-file"].status, "pass");
});

Deno.test("doctor modules: auth file missing, unsafe, empty or bad: fails, never a password", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/users`;
    const secret = "pa55:w0rd-never-shown";
    const run = async () => {
      const f = await gatherModuleFacts({ modules: [PG], authFile: file, intercepts: [] });
      const v = byId(f)["module:auth-file"];
      assert.ok(!JSON.stringify(v).includes(secret), JSON.stringify(v));
      return v;
    };
    let v = await run();
    assert.equal(v.status, "fail");
    assert.match(v.summary, /--auth-file/);
    await Deno.writeTextFile(file, `app:${secret}\n`, { mode: 0o600 });
    await Deno.chmod(file, 0o644);
    v = await run();
    assert.equal(v.status, "fail");
    assert.match(v.fix!, /chmod 600/);
    await Deno.chmod(file, 0o600);
    v = await run();
    assert.equal(v.status, "pass");
    assert.match(v.summary, /1 user \(passwords not shown\)/);
    await Deno.writeTextFile(file, "# nobody\n\n");
    assert.equal((await run()).status, "fail");
    await Deno.writeTextFile(file, `app:${secret}\napp:${secret}\nno colon ${secret}\n`);
    v = await run();
    assert.equal(v.status, "fail");
    assert.match(v.summary, /line 2/);
    const none = byId(facts({ authFile: undefined, auth: undefined }))["module:auth-file"];
    assert.equal(none.status, "warn");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("doctor args: --module, -x ...@NAME, --auth-file, --read-only", () => {
  const r = parseDoctorArgs([
    "-x",
    "5432-10.0.0.2:5432,6379-10.0.0.2:6379@redis",
    "--module",
    "postgres",
    "--auth-file",
    "/etc/u",
    "--read-only",
  ]);
  assert.ok(!("error" in r), JSON.stringify(r));
  assert.deepEqual(r.modules, [PG, REDIS]);
  assert.equal(r.authFile, "/etc/u");
  const plain = parseDoctorArgs(["-x", "80-10.0.0.2:80"]);
  assert.ok(!("error" in plain));
  assert.deepEqual(plain.modules, []);
  const unknown = parseDoctorArgs(["--module", "oracle"]);
  assert.ok("error" in unknown);
  assert.match(unknown.error, /--module 'oracle': unknown module 'oracle'; built in: mysql/);
  const orphan = parseDoctorArgs(["--auth-file", "/etc/u"]);
  assert.ok("error" in orphan);
  assert.match(orphan.error, /only used with --module/);
  const ro = parseDoctorArgs(["--read-only"]);
  assert.ok("error" in ro && /--read-only/.test(ro.error));
});

Deno.test("doctor: production's verdict on logins is awaited by default; --module-trust-logins warns", () => {
  const pg = [{ name: "postgres", replyPrefix: 512 }];
  const safe = byId(facts({ modules: pg }))["module:logins"];
  assert.equal(safe.status, "pass");
  assert.match(safe.summary, /before production accepted/);
  const trusted = byId(facts({ modules: pg, trustLogins: true }))["module:logins"];
  assert.equal(trusted.status, "warn");
  assert.match(trusted.summary, /--module-trust-logins/);
  const req = parseDoctorArgs(["-x", "5432-10.0.0.2:5432@postgres", "--module-trust-logins"]);
  assert.ok(!("error" in req) && req.trustLogins === true);
  const bad = parseDoctorArgs(["-x", "5432-10.0.0.2:5432", "--module-trust-logins"]);
  assert.ok("error" in bad && /only used with --module/.test(bad.error));
});
