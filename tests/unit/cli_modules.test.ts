/**
 * `--module`, `-x ...@NAME`, `--auth-file`, `--read-only` (tcpcopy's command line), the
 * auth file reader, the module registry, and the reply prefix the modules make tcpcopy ask for.
 */
import assert from "node:assert/strict";
import { parseTcpcopyArgs } from "../../lib/cli/tcpcopy.ts";
import { parseInterceptArgs } from "../../lib/cli/intercept.ts";
import { lookupModule, MODULES, replyPrefixOf } from "../../lib/modules/registry.ts";
import { parseAuthText, readAuthFile } from "../../lib/modules/auth_file.ts";
import type { ModuleName, ProtocolModule } from "../../lib/modules/module.ts";
import { engineConfigOf, readReplySegment, replyPrefixFor } from "../../lib/tcpcopy/convert.ts";
import { emptyReplySegment } from "../../lib/tcpcopy/convert.ts";
import { ParsedTcp, parseIpTcp } from "../../lib/wire/packet.ts";

const BASE = ["-x", "5432-10.0.0.2:5432", "-s", "10.0.0.3"];
const SECRET = ["--secret-file", "/etc/tcpcopy/secret"];

function run(args: string[]) {
  const r = parseTcpcopyArgs(args);
  if (r.kind !== "run") throw new Error(`expected a config, got ${JSON.stringify(r)}`);
  return r.config;
}

function error(args: string[]): string {
  const r = parseTcpcopyArgs(args);
  if (r.kind !== "error") throw new Error(`expected an error, got ${r.kind}`);
  assert.equal(r.exitCode, 2);
  assert(!r.message.includes("\n"), "one line");
  return r.message;
}

/** Runs `fn` with `redis` (a name the contract knows) bound to a toy module in the registry. */
function withModule(replyPrefix: number, fn: (m: ProtocolModule) => void): void {
  const name: ModuleName = "redis";
  const saved = MODULES[name];
  const m: ProtocolModule = {
    name,
    counters: [],
    replyPrefix,
    open: (_ctx, out) => ({ client: (d) => out.send(d), target() {}, targetGap() {} }),
  };
  MODULES[name] = m;
  try {
    fn(m);
  } finally {
    if (saved) MODULES[name] = saved;
    else delete MODULES[name];
  }
}

Deno.test("--module: an unknown name lists what is built in", () => {
  const msg = error([...BASE, ...SECRET, "--module", "oracle"]);
  assert.match(msg, /^tcpcopy: --module 'oracle': unknown module 'oracle'; built in: /);
  const msg2 = error([
    "-x",
    "5432-10.0.0.2:5432@oracle",
    "-s",
    "10.0.0.3",
    ...SECRET,
  ]);
  assert.match(msg2, /-x\/--transfer '10\.0\.0\.2:5432@oracle': unknown module 'oracle'/);
  const known = Object.keys(MODULES).sort();
  assert.match(msg, new RegExp(`built in: ${known.length ? known.join(", ") : "none"}$`));
});

Deno.test("--module and @NAME: every transfer or one, and a module needs --secret-file", () => {
  withModule(200, (m) => {
    const c = run([...BASE, ...SECRET, "-x", "6379-10.0.0.2:6379", "--module", "redis"]);
    assert.deepEqual(c.transfers.map((t) => t.module), ["redis", "redis"]);
    assert.equal(c.readOnly, false);
    assert.equal(c.authFile, null);
    const one = run([...BASE, ...SECRET, "-x", "6379-10.0.0.2:6379@redis"]);
    assert.deepEqual(one.transfers.map((t) => t.module), [null, "redis"]);
    // the engine gets the module object on that transfer only, tcpcopy asks for its prefix
    const ec = engineConfigOf(one);
    assert.equal(ec.transfers[0].module, undefined);
    assert.equal(ec.transfers[1].module, m);
    assert.equal(replyPrefixFor(one), 200);
    assert.equal(replyPrefixFor(run([...BASE])), 0);
    const msg = error([...BASE, "--module", "redis"]);
    assert.match(msg, /module 'redis' needs --secret-file FILE: intercept sends the target's/);
    assert.match(error(["-x", "6379-10.0.0.2:6379@redis", "-s", "10.0.0.3"]), /--secret-file/);
    const ro = run([...BASE, ...SECRET, "--module", "redis", "--read-only", "--auth-file", "F"]);
    assert.equal(ro.readOnly, true);
    assert.equal(ro.authFile, "F");
    assert.equal(
      engineConfigOf(ro, { credentials: { password: () => "p" }, readOnly: false })
        .modules?.readOnly,
      true,
    );
    assert.match(
      error([...BASE, ...SECRET, "--module", "redis", "--auth-file", " "]),
      /--auth-file ' ': expected the path of a file/,
    );
  });
});

Deno.test("a module that reads no replies (prefix 0) needs no --secret-file", () => {
  withModule(0, () => {
    const c = run([...BASE, "--module", "redis", "--read-only"]);
    assert.deepEqual(c.transfers.map((t) => t.module), ["redis"]);
    assert.equal(replyPrefixFor(c), 0);
  });
});

Deno.test("--read-only and --auth-file without a module are refused", () => {
  assert.match(
    error([...BASE, ...SECRET, "--read-only"]),
    /^tcpcopy: --read-only: only used with --module NAME/,
  );
  assert.match(
    error([...BASE, ...SECRET, "--auth-file", "/etc/x"]),
    /^tcpcopy: --auth-file '\/etc\/x': only used with --module NAME/,
  );
});

Deno.test("help lists the module flags", () => {
  const r = parseTcpcopyArgs(["-h"]);
  assert.equal(r.kind, "help");
});

Deno.test("registry: lookup and the largest reply prefix", () => {
  const bad = lookupModule("nope");
  assert(!bad.ok);
  assert.match(bad.error, /^unknown module 'nope'; built in: /);
  assert(!lookupModule("toString").ok); // not an inherited property
  withModule(300, (m) => {
    const r = lookupModule("redis");
    assert(r.ok && r.module === m);
    assert.equal(replyPrefixOf([undefined, m, { ...m, replyPrefix: 20 }]), 300);
  });
  for (const [name, m] of Object.entries(MODULES)) {
    assert.equal(m.name, name, "a module is registered under its own name");
    assert(m.replyPrefix >= 0 && m.replyPrefix <= 1460, `${name}: replyPrefix in 0..1460`);
  }
});

Deno.test("intercept --max-prefix: 0..1460", () => {
  const base = ["--port", "80"];
  const ok = parseInterceptArgs([...base, "--max-prefix", "1460"]);
  assert.equal(ok.kind, "run");
  if (ok.kind === "run") assert.equal(ok.config.maxPrefix, 1460);
  const bad = parseInterceptArgs([...base, "--max-prefix", "1461"]);
  assert.equal(bad.kind, "error");
  if (bad.kind === "error") assert.match(bad.message, /--max-prefix/);
});

Deno.test("auth file text: user:password lines, comments, ':' in passwords, CRLF", () => {
  const r = parseAuthText("# users\n\napp:pa:ss word\r\n  # indented comment\nreport:\n");
  assert(r.ok);
  assert.deepEqual([...r.users], [["app", "pa:ss word"], ["report", ""]]);
  const noColon = parseAuthText("app:x\nsecretwithoutcolon\n");
  assert(!noColon.ok);
  assert.equal(noColon.error, "line 2: expected user:password (no ':' on the line)");
  const twice = parseAuthText("app:one\napp:two-secret\n");
  assert(!twice.ok);
  assert.equal(twice.error, 'line 2: user "app" is given twice (first on line 1)');
  assert(!twice.error.includes("two-secret"));
  const empty = parseAuthText(":pw\n");
  assert(!empty.ok);
  assert.match(empty.error, /^line 1: the user name before ':' is empty$/);
});

Deno.test("auth file: owner-only regular file, checked like the tunnel secret", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const f = `${dir}/users`;
    Deno.writeTextFileSync(f, "app:s3cr3t:x\n");
    Deno.chmodSync(f, 0o600);
    const ok = readAuthFile(f);
    assert(ok.ok);
    assert.equal(ok.credentials.password("app"), "s3cr3t:x");
    assert.equal(ok.credentials.password("other"), undefined);
    assert.equal(ok.credentials.size, 1);
    Deno.chmodSync(f, 0o640);
    const grp = readAuthFile(f);
    assert(!grp.ok);
    assert.match(grp.error, /^--auth-file ".*": is accessible by group or others \(mode 640\)/);
    Deno.chmodSync(f, 0o400);
    assert(readAuthFile(f).ok);
    Deno.symlinkSync(f, `${dir}/link`);
    const link = readAuthFile(`${dir}/link`);
    assert(!link.ok);
    assert.match(link.error, /is a symlink/);
    assert.match((readAuthFile(dir) as { error: string }).error, /is not a regular file/);
    assert.match((readAuthFile(`${dir}/none`) as { error: string }).error, /cannot read it/);
    const bad = `${dir}/bad`;
    Deno.writeTextFileSync(bad, "# c\napp hunter2\n");
    Deno.chmodSync(bad, 0o600);
    const r = readAuthFile(bad);
    assert(!r.ok);
    assert.match(r.error, /: line 2: expected user:password/);
    assert(!r.error.includes("hunter2"), "the password is never echoed");
    const blank = `${dir}/blank`;
    Deno.writeTextFileSync(blank, "# nothing\n");
    Deno.chmodSync(blank, 0o600);
    assert.match((readAuthFile(blank) as { error: string }).error, /holds no user:password line/);
    const bin = `${dir}/bin`;
    Deno.writeFileSync(bin, new Uint8Array([0x61, 0x3a, 0xff, 0xfe]));
    Deno.chmodSync(bin, 0o600);
    assert.match((readAuthFile(bin) as { error: string }).error, /is not UTF-8 text/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** An IPv4 TCP packet with `payload` (checksums left 0: the parser does not check them). */
function packet(payload: number[], totalPayload = payload.length): Uint8Array {
  const b = new Uint8Array(40 + payload.length);
  b[0] = 0x45;
  const total = 40 + totalPayload;
  b[2] = total >> 8;
  b[3] = total & 0xff;
  b[8] = 64;
  b[9] = 6;
  b.set([10, 0, 0, 2], 12);
  b.set([192, 0, 2, 10], 16);
  b[20] = 0x15;
  b[21] = 0x38; // port 5432
  b[22] = 0x9c;
  b[23] = 0x40; // port 40000
  b[32] = 0x50; // data offset 5
  b[33] = 0x18; // PSH ACK
  b.set(payload, 40);
  return b;
}

Deno.test("reply records: the payload prefix reaches the engine only when one was granted", () => {
  const p = new ParsedTcp();
  const seg = emptyReplySegment();
  const ts = { tsval: 0, tsecr: 0 };
  // a record of a 100-byte reply cut after 5 payload bytes (prefix 5 granted)
  const rec = packet([1, 2, 3, 4, 5], 100);
  assert.equal(parseIpTcp(rec, 0, p), null);
  assert(readReplySegment(p, seg, ts, 5));
  assert.equal(seg.payloadLength, 100);
  assert.deepEqual([...seg.payloadPrefix!], [1, 2, 3, 4, 5]);
  // more bytes than granted (a padded record): cut to the grant
  assert(readReplySegment(p, seg, ts, 3));
  assert.deepEqual([...seg.payloadPrefix!], [1, 2, 3]);
  // no prefix granted (v6 records are zero padded): nothing passed, even if bytes follow
  assert(readReplySegment(p, seg, ts, 0));
  assert.equal(seg.payloadPrefix, undefined);
  // padding beyond the IP length is never payload
  const short = packet([9, 9, 0, 0], 2);
  assert.equal(parseIpTcp(short, 0, p), null);
  assert(readReplySegment(p, seg, ts, 128));
  assert.deepEqual([...seg.payloadPrefix!], [9, 9]);
});

Deno.test("modules: the capture takes production's replies for module transfers only; --module-trust-logins turns that off", () => {
  const two = ["-x", "5432-10.0.0.2:5432@postgres,80-10.0.0.2:8080", "-s", "10.0.0.3", ...SECRET];
  const c = run(two);
  assert.equal(c.trustLogins, false);
  assert.match(c.filter, /\(src port 5432\)/);
  assert.doesNotMatch(c.filter, /src port 80\b/, "no answers for a transfer without a module");
  assert.equal(
    engineConfigOf(c, { credentials: { password: () => undefined }, readOnly: false }).modules
      ?.trustLogins,
    false,
  );
  const t = run([...two, "--module-trust-logins"]);
  assert.equal(t.trustLogins, true);
  assert.doesNotMatch(t.filter, /src port/);
  assert.equal(
    engineConfigOf(t, { credentials: { password: () => undefined }, readOnly: false }).modules
      ?.trustLogins,
    true,
  );
  assert.match(
    error([...BASE, "--module-trust-logins"]),
    /--module-trust-logins: only used with --module/,
  );
});
