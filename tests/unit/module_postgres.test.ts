/**
 * The PostgreSQL module driven through the module contract with a recording ModuleOutput: startup
 * framing, SSLRequest, trust / cleartext / MD5 / SCRAM-SHA-256 logins against a scripted target,
 * failures (wrong password, no password, mid-stream, unsupported mechanism, cut replies) and
 * hostile input. SCRAM and MD5 are checked against values computed outside this code: the
 * RFC 7677 test vector and `md5sum`.
 */
import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { makePostgresModule, postgresModule } from "../../lib/modules/postgres.ts";
import type { ModuleSession, SendOptions } from "../../lib/modules/module.ts";
import { md5Response } from "../../lib/modules/postgres/md5.ts";
import {
  checkServerFinal,
  clientFinal,
  clientFirst,
  parseServerFirst,
  saslPrep,
} from "../../lib/modules/postgres/scram.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";
import { concat } from "../helpers/bytes.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---- a recording ModuleOutput and context ----

interface Recorder {
  sent: { bytes: Uint8Array; opts?: SendOptions }[];
  passed: number;
  failed?: { reason: string; detail: string };
  counts: Map<string, number>;
  logs: string[];
}

interface Options {
  passwords?: Record<string, string>;
  readOnly?: boolean;
  /** Classifier for --read-only (default: the module's, lib/modules/sql_write.ts). */
  isWrite?: (sql: string) => boolean;
  seed?: number;
  /**
   * Production's side: "accepted" (default) feeds production's AuthenticationOk and
   * ReadyForQuery at once, "manual" leaves the online stream to the test, "trust" runs with
   * `--module-trust-logins` and no online stream.
   */
  online?: "accepted" | "manual" | "trust";
}

function open(o: Options = {}): { s: ModuleSession; r: Recorder } {
  const r: Recorder = { sent: [], passed: 0, counts: new Map(), logs: [] };
  const rnd = mulberry32(o.seed ?? 1);
  const mod = o.isWrite ? makePostgresModule(o.isWrite) : postgresModule;
  const s = mod.open({
    credentials: { password: (u) => o.passwords?.[u] },
    readOnly: o.readOnly ?? false,
    trustLogins: o.online === "trust",
    random: (b) => {
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
    },
    count: (name, n = 1) => {
      assert.ok(mod.counters.includes(name), `counter ${name} is declared`);
      r.counts.set(name, (r.counts.get(name) ?? 0) + n);
    },
    log: (line) => r.logs.push(line),
  }, {
    send: (bytes, opts) => {
      assert.equal(r.failed, undefined, "send after fail");
      assert.equal(r.passed, 0, "send after pass");
      r.sent.push({ bytes: bytes.slice(), opts });
    },
    pass: () => r.passed++,
    fail: (reason, detail) => {
      assert.equal(r.failed, undefined, "fail twice");
      assert.ok(mod.counters.includes(reason), `reason ${reason} is a declared counter`);
      r.failed = { reason, detail };
    },
  });
  if ((o.online ?? "accepted") === "accepted") {
    s.online!(concat(auth(0), msg("Z", enc.encode("I"))));
  }
  return { s, r };
}

function sentBytes(r: Recorder): Uint8Array {
  return concat(...r.sent.map((x) => x.bytes));
}

// ---- wire builders (written from the protocol documentation, independent of the module) ----

function be32(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

function msg(type: string, ...body: Uint8Array[]): Uint8Array {
  const b = concat(...body);
  return concat(enc.encode(type), be32(b.length + 4), b);
}

function cstr(s: string): Uint8Array {
  return concat(enc.encode(s), new Uint8Array([0]));
}

function startup(user: string, database = "bench"): Uint8Array {
  const body = concat(
    be32(196608),
    cstr("user"),
    cstr(user),
    cstr("database"),
    cstr(database),
    new Uint8Array([0]),
  );
  return concat(be32(body.length + 4), body);
}

const SSL = concat(be32(8), be32(80877103));
const query = (sql: string) => msg("Q", cstr(sql));
const auth = (code: number, ...rest: Uint8Array[]) => msg("R", be32(code), ...rest);
const authOk = auth(0);
const ready = msg("Z", enc.encode("I"));
const param = (k: string, v: string) => msg("S", cstr(k), cstr(v));
const keyData = msg("K", be32(1234), be32(5678));
const afterLogin = concat(
  authOk,
  param("server_version", "15.10"),
  param("TimeZone", "UTC"),
  keyData,
  ready,
);
const clientPassword = msg("p", cstr("production-proof-that-must-not-be-sent"));
const errorResponse = (code: string, text: string) =>
  msg(
    "E",
    enc.encode("S"),
    cstr("FATAL"),
    enc.encode("C"),
    cstr(code),
    enc.encode("M"),
    cstr(text),
    new Uint8Array([0]),
  );

/** Splits a byte stream into (type, body) messages; fails the test on a bad frame. */
function frames(b: Uint8Array): { type: string; body: Uint8Array }[] {
  const out = [];
  let at = 0;
  while (at < b.length) {
    assert.ok(at + 5 <= b.length, "whole header");
    const len = new DataView(b.buffer, b.byteOffset + at + 1).getUint32(0);
    assert.ok(at + 1 + len <= b.length, "whole message");
    out.push({ type: String.fromCharCode(b[at]), body: b.subarray(at + 5, at + 1 + len) });
    at += 1 + len;
  }
  return out;
}

// ---- framing and startup ----

Deno.test("postgres: startup split byte by byte, then trust login releases the held queries", () => {
  const { s, r } = open();
  const stream = concat(startup("bob"), query("SELECT 1"), query("SELECT 2"));
  for (const b of stream) s.client(new Uint8Array([b]));
  assert.deepEqual(sentBytes(r), startup("bob"), "only the startup message before the login");
  s.target(afterLogin);
  assert.equal(r.failed, undefined);
  assert.deepEqual(sentBytes(r), stream, "startup then the queries, nothing else");
  assert.ok(r.sent.every((x) => x.opts?.now), "login traffic is released at once");
  assert.equal(r.passed, 1);
  assert.equal(r.counts.get("logins_replayed"), 1);
});

Deno.test("postgres: several messages in one chunk; the client's password message is dropped", () => {
  const { s, r } = open({ passwords: { bob: "pw" } });
  s.client(concat(startup("bob"), clientPassword, query("SELECT 1")));
  assert.deepEqual(sentBytes(r), startup("bob"));
  s.target(concat(auth(3))); // cleartext
  const pm = frames(r.sent[1].bytes);
  assert.deepEqual(pm.map((m) => m.type), ["p"]);
  assert.equal(dec.decode(pm[0].body), "pw\0");
  s.target(afterLogin);
  assert.deepEqual(r.sent[2].bytes, query("SELECT 1"));
  assert.equal(r.passed, 1);
});

Deno.test("postgres: target replies split anywhere still log in (every split point)", () => {
  const reply = concat(auth(3), afterLogin);
  for (let cut = 1; cut < reply.length; cut++) {
    const { s, r } = open({ passwords: { bob: "pw" } });
    s.client(concat(startup("bob"), clientPassword, query("SELECT 1")));
    s.target(reply.subarray(0, cut));
    s.target(reply.subarray(cut));
    assert.equal(r.failed, undefined, `cut ${cut}`);
    assert.equal(r.passed, 1, `cut ${cut}`);
    assert.deepEqual(frames(sentBytes(r).subarray(startup("bob").length)).map((m) => m.type), [
      "p",
      "Q",
    ]);
  }
});

Deno.test("postgres: the production client's SCRAM messages arriving after a trust target is ready are still dropped", () => {
  const { s, r } = open();
  s.client(startup("bob"));
  s.target(afterLogin); // trust: ready before the client's captured proof arrives
  assert.equal(r.passed, 0, "not passed while the client's own login messages may follow");
  const p1 = msg("p", cstr("SCRAM-SHA-256"), be32(4), enc.encode("n,,x"));
  s.client(p1.subarray(0, 7));
  s.client(concat(p1.subarray(7), msg("p", enc.encode("c=biws,r=x,p=y"))));
  assert.equal(r.passed, 0);
  s.client(query("SELECT 1"));
  assert.deepEqual(sentBytes(r), concat(startup("bob"), query("SELECT 1")));
  assert.equal(r.passed, 1);
});

Deno.test("postgres: SSLRequest answered 'N' by the target is replayed, then the startup", () => {
  const { s, r } = open();
  s.client(concat(SSL, startup("bob"), query("SELECT 1")));
  assert.deepEqual(sentBytes(r), SSL, "startup waits for the target's answer");
  s.target(enc.encode("N"));
  assert.deepEqual(sentBytes(r), concat(SSL, startup("bob")));
  s.target(afterLogin);
  assert.deepEqual(sentBytes(r), concat(SSL, startup("bob"), query("SELECT 1")));
  assert.equal(r.passed, 1);
});

Deno.test("postgres: GSSENCRequest then SSLRequest, both answered 'N', then the startup", () => {
  const { s, r } = open();
  const gss = concat(be32(8), be32(80877104));
  s.client(concat(gss, SSL, startup("bob")));
  assert.deepEqual(sentBytes(r), gss);
  s.target(enc.encode("N"));
  assert.deepEqual(sentBytes(r), concat(gss, SSL));
  s.target(enc.encode("N"));
  assert.equal(r.failed, undefined);
  assert.deepEqual(sentBytes(r), concat(gss, SSL, startup("bob")));
  s.target(afterLogin);
  s.client(query("SELECT 1"));
  assert.equal(r.passed, 1);
});

Deno.test("postgres: the target accepting SSL, or a TLS session on production, fails with tls", () => {
  {
    const { s, r } = open();
    s.client(concat(SSL, startup("bob")));
    s.target(enc.encode("S"));
    assert.equal(r.failed?.reason, "tls");
  }
  {
    const { s, r } = open();
    s.client(SSL);
    s.client(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])); // a TLS ClientHello
    assert.equal(r.failed?.reason, "tls");
  }
});

Deno.test("postgres: a session picked up mid-stream fails with no_login, nothing sent", () => {
  for (
    const first of [
      query("SELECT 1"),
      new Uint8Array([0, 0, 0, 3, 1, 2, 3, 4]),
      concat(be32(20000), be32(196608)),
    ]
  ) {
    const { s, r } = open();
    s.client(first);
    assert.equal(r.failed?.reason, "no_login");
    assert.equal(r.sent.length, 0);
    s.client(query("SELECT 2")); // later bytes are ignored
    s.target(ready);
    assert.equal(r.sent.length, 0);
  }
});

Deno.test("postgres: CancelRequest and protocol 2 are refused with their reasons", () => {
  {
    const { s, r } = open();
    s.client(concat(be32(16), be32(80877102), be32(42), be32(7)));
    assert.equal(r.failed?.reason, "cancel_request");
    assert.equal(r.sent.length, 0);
  }
  {
    const { s, r } = open();
    s.client(concat(be32(8), be32(2 << 16)));
    assert.equal(r.failed?.reason, "unsupported_protocol");
  }
});

Deno.test("postgres: limits: a startup over 10,000 bytes, a huge password message, too much held", () => {
  {
    const { s, r } = open();
    s.client(concat(be32(10_001), be32(196608)));
    assert.equal(r.failed?.reason, "no_login");
  }
  {
    const { s, r } = open();
    s.client(concat(startup("bob"), enc.encode("p"), be32(0x7fffffff)));
    assert.equal(r.failed?.reason, "malformed");
  }
  {
    const { s, r } = open();
    s.client(startup("bob"));
    const big = query("SELECT '" + "x".repeat(1 << 20) + "'");
    for (let i = 0; i < 3; i++) s.client(big);
    assert.equal(r.failed, undefined, "3 MiB may wait for the login");
    s.client(big);
    s.client(big);
    assert.equal((r as Recorder).failed?.reason, "hold_limit");
  }
});

// ---- MD5 ----

Deno.test("postgres: MD5 response matches md5sum (user alice, password secret, salt 01020304)", () => {
  // printf secretalice | md5sum -> 4a0a68b43b6cd5cf266fa02f196e2371
  // { printf 4a0a68b43b6cd5cf266fa02f196e2371; printf '\x01\x02\x03\x04'; } | md5sum
  const salt = new Uint8Array([1, 2, 3, 4]);
  assert.equal(md5Response("alice", "secret", salt), "md598a0412b9c31436fc53776e863350083");
  const { s, r } = open({ passwords: { alice: "secret" } });
  s.client(concat(startup("alice"), msg("p", cstr("md5deadbeef")), query("SELECT 1")));
  s.target(auth(5, salt));
  const p = frames(r.sent[1].bytes);
  assert.equal(dec.decode(p[0].body), "md598a0412b9c31436fc53776e863350083\0");
  s.target(afterLogin);
  assert.equal(r.passed, 1);
});

// ---- SCRAM ----

Deno.test("postgres: SCRAM-SHA-256 functions reproduce the RFC 7677 test vector", () => {
  const start = clientFirst("user", "rOprNGfwEbeRWgbNEkqO");
  assert.equal(start.message, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  const serverFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
  const server = parseServerFirst(serverFirst, start.nonce);
  assert.ok(typeof server !== "string", String(server));
  const fin = clientFinal("pencil", start, serverFirst, server);
  assert.equal(
    fin.message,
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  );
  assert.equal(fin.serverSignature, "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  assert.equal(
    checkServerFinal("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", fin.serverSignature),
    undefined,
  );
  assert.ok(
    checkServerFinal("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", fin.serverSignature),
  );
  assert.ok(checkServerFinal("e=invalid-proof", fin.serverSignature));
  // the same exchange again comes from the SaltedPassword cache, with the same result
  const again = clientFinal("pencil", start, serverFirst, server);
  assert.equal(again.cached, true);
  assert.equal(again.message, fin.message);
});

Deno.test("postgres: server-first-messages that must be refused", () => {
  const bad = [
    "r=OTHERNONCE123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", // does not extend the client nonce
    "r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", // equals the client nonce
    "r=abcdef,s=***,i=4096",
    "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
    "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999",
    "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
    "m=ext,r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    "r=abcdef",
  ];
  for (const b of bad) assert.equal(typeof parseServerFirst(b, "abc"), "string", b);
});

Deno.test("postgres: SASLprep keeps ASCII, maps non-ASCII spaces and soft hyphens, NFKC", () => {
  assert.equal(saslPrep("pencil"), "pencil");
  assert.equal(saslPrep("a\u00A0b"), "a b");
  assert.equal(saslPrep("I\u00ADX"), "IX");
  assert.equal(saslPrep("\u2168"), "IX"); // ROMAN NUMERAL NINE
  assert.equal(
    saslPrep("a\u0007\u00e9"),
    "a\u0007\u00e9",
    "prohibited output: the raw password is used",
  );
});

/** A scripted SCRAM server: verifies the module's proof with keys derived independently. */
class ScramServer {
  readonly salt = new Uint8Array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12, 13, 14, 15, 16]);
  readonly storedKey: Uint8Array;
  readonly serverKey: Uint8Array;
  clientFirstBare = "";
  serverFirst = "";

  constructor(password: string, readonly iterations = 4096) {
    const salted = pbkdf2Sync(password, this.salt, this.iterations, 32, "sha256");
    this.storedKey = createHash("sha256").update(
      createHmac("sha256", salted).update("Client Key").digest(),
    ).digest();
    this.serverKey = createHmac("sha256", salted).update("Server Key").digest();
  }

  /** SASLInitialResponse → AuthenticationSASLContinue. */
  first(p: Uint8Array): Uint8Array {
    const [m] = frames(p);
    assert.equal(m.type, "p");
    const nul = m.body.indexOf(0);
    assert.equal(dec.decode(m.body.subarray(0, nul)), "SCRAM-SHA-256");
    const len = new DataView(m.body.buffer, m.body.byteOffset + nul + 1).getUint32(0);
    const data = dec.decode(m.body.subarray(nul + 5));
    assert.equal(data.length, len);
    assert.ok(data.startsWith("n,,"), "no channel binding");
    this.clientFirstBare = data.slice(3);
    const nonce = this.clientFirstBare.split(",r=")[1];
    this.serverFirst = `r=${nonce}SERVERNONCE,s=${
      btoa(String.fromCharCode(...this.salt))
    },i=${this.iterations}`;
    return auth(11, enc.encode(this.serverFirst));
  }

  /** SASLResponse → true when the proof is right; also the SASLFinal to answer. */
  final(p: Uint8Array): { ok: boolean; reply: Uint8Array } {
    const [m] = frames(p);
    const data = dec.decode(m.body);
    const i = data.lastIndexOf(",p=");
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${data.slice(0, i)}`;
    const proof = Uint8Array.from(atob(data.slice(i + 3)), (c) => c.charCodeAt(0));
    const sig = createHmac("sha256", this.storedKey).update(authMessage).digest();
    const clientKey = proof.map((b, k) => b ^ sig[k]);
    const ok = createHash("sha256").update(clientKey).digest().equals(this.storedKey);
    const v = createHmac("sha256", this.serverKey).update(authMessage).digest("base64");
    return { ok, reply: auth(12, enc.encode(`v=${v}`)) };
  }
}

function scramLogin(
  password: string,
  serverPassword: string,
  seed: number,
  o: Options = {},
  iterations = 4096,
) {
  const { s, r } = open({ passwords: { bob: password }, seed, ...o });
  const server = new ScramServer(serverPassword, iterations);
  s.client(concat(startup("bob"), msg("p", cstr("SCRAM-SHA-256"), be32(3), enc.encode("abc"))));
  s.target(auth(10, cstr("SCRAM-SHA-256-PLUS"), cstr("SCRAM-SHA-256"), new Uint8Array([0])));
  s.target(server.first(r.sent[1].bytes));
  s.client(concat(msg("p", enc.encode("c=biws,r=prod,p=prod")), query("SELECT 1")));
  const fin = r.sent.length > 2 ? server.final(r.sent[2].bytes) : { ok: false, reply: auth(12) };
  return { s, r, server, fin };
}

Deno.test("postgres: SCRAM-SHA-256 login: the target verifies the module's proof, the module the server's", () => {
  const { s, r, fin } = scramLogin("pencil", "pencil", 7);
  assert.equal(fin.ok, true, "proof accepted by an independent verifier");
  s.target(concat(fin.reply, afterLogin));
  assert.equal(r.failed, undefined);
  assert.equal(r.passed, 1);
  assert.deepEqual(r.sent.at(-1)!.bytes, query("SELECT 1"));
  assert.equal(r.sent.length, 4, "startup, SASLInitialResponse, SASLResponse, held query");
});

Deno.test("postgres: SCRAM nonces differ per session; SaltedPassword is cached across logins", () => {
  const a = scramLogin("pencil", "pencil", 11);
  const b = scramLogin("pencil", "pencil", 12);
  assert.notEqual(a.server.clientFirstBare, b.server.clientFirstBare);
  assert.equal(b.r.counts.get("scram_cache_hits"), 1);
  assert.equal(b.fin.ok, true);
});

Deno.test("postgres: a SASLFinal with a wrong server signature fails the session", () => {
  const { s, r, fin } = scramLogin("pencil", "pencil", 3);
  assert.ok(fin.ok);
  s.target(auth(12, enc.encode("v=" + btoa("x".repeat(32)))));
  assert.equal(r.failed?.reason, "server_signature");
  assert.equal(r.passed, 0);
});

Deno.test("postgres: wrong password: auth_failed with the user and SQLSTATE, never the password", () => {
  const { s, r, fin } = scramLogin("wrong-secret", "pencil", 5);
  assert.equal(fin.ok, false, "the independent verifier refuses the proof");
  s.target(errorResponse("28P01", 'password authentication failed for user "bob"'));
  assert.equal(r.failed?.reason, "auth_failed");
  assert.match(r.failed!.detail, /user "bob"/);
  assert.match(r.failed!.detail, /28P01/);
  assert.doesNotMatch(r.failed!.detail, /wrong-secret/);
  assert.equal(r.passed, 0);
});

Deno.test("postgres: an error after AuthenticationOk is login_failed (e.g. 3D000)", () => {
  const { s, r } = open();
  s.client(concat(startup("bob"), query("SELECT 1")));
  s.target(concat(authOk, errorResponse("3D000", 'database "bench" does not exist')));
  assert.equal(r.failed?.reason, "login_failed");
  assert.match(r.failed!.detail, /3D000/);
});

Deno.test("postgres: no password in the auth file when the target asks for one: no_password", () => {
  for (
    const req of [
      auth(3),
      auth(5, new Uint8Array(4)),
      auth(10, cstr("SCRAM-SHA-256"), new Uint8Array([0])),
    ]
  ) {
    const { s, r } = open({ passwords: { alice: "x" } });
    s.client(concat(startup("bob"), clientPassword));
    s.target(req);
    assert.equal(r.failed?.reason, "no_password");
    assert.match(r.failed!.detail, /"bob"/);
    assert.equal(r.sent.length, 1, "only the startup was sent");
  }
});

Deno.test("postgres: unsupported mechanisms and methods: unsupported_auth", () => {
  const reqs = [
    auth(10, cstr("SCRAM-SHA-256-PLUS"), new Uint8Array([0])),
    auth(10, new Uint8Array([0])),
    auth(7),
    auth(9),
    auth(2),
  ];
  for (const req of reqs) {
    const { s, r } = open({ passwords: { bob: "x" } });
    s.client(startup("bob"));
    s.target(req);
    assert.equal(r.failed?.reason, "unsupported_auth");
  }
});

// ---- the captured client closes before the target has logged in ----

Deno.test("postgres: a client that closes during the login keeps the stream open until the held bytes are sent", () => {
  const { s, r } = open({ passwords: { bob: "pw" } });
  s.client(concat(startup("bob"), clientPassword, query("SELECT 1"), msg("X")));
  assert.equal(s.clientClosed?.(), true, "hold the close: queries wait for the login");
  s.target(auth(3));
  s.target(afterLogin);
  assert.deepEqual(frames(sentBytes(r).subarray(startup("bob").length)).map((m) => m.type), [
    "p",
    "Q",
    "X",
  ]);
  assert.equal(r.passed, 1, "passing lets the engine send the FIN");
});

Deno.test("postgres: a client that closes with only its password message sent: pass, the cut proof is not sent", () => {
  const { s, r } = open();
  s.client(concat(startup("bob"), clientPassword.subarray(0, 9)));
  assert.equal(s.clientClosed?.(), true);
  s.target(afterLogin);
  assert.deepEqual(sentBytes(r), startup("bob"));
  assert.equal(r.passed, 1);
});

Deno.test("postgres: close before the startup, after the login, and during read-only filtering", () => {
  {
    const { s, r } = open();
    s.client(startup("bob").subarray(0, 6));
    assert.equal(s.clientClosed?.() ?? false, false, "nothing to wait for");
    assert.equal(r.sent.length, 0);
  }
  {
    const { s, r } = open();
    s.client(concat(SSL, startup("bob"), query("SELECT 1")));
    assert.equal(
      s.clientClosed?.(),
      true,
      "the startup waits for the target's answer to SSLRequest",
    );
    s.target(enc.encode("N"));
    s.target(afterLogin);
    assert.deepEqual(sentBytes(r), concat(SSL, startup("bob"), query("SELECT 1")));
    assert.equal(r.passed, 1);
  }
  {
    const { s, r } = open({ readOnly: true });
    s.client(concat(startup("bob"), query("DELETE FROM t"), query("SELECT 1")));
    assert.equal(s.clientClosed?.(), true);
    s.target(afterLogin);
    assert.deepEqual(sentBytes(r), concat(startup("bob"), query("SELECT 1")));
    assert.equal(r.passed, 1, "read-only passes once closed: nothing more to filter");
  }
  {
    const { s, r } = loggedIn();
    s.client(query("SELECT 1"));
    assert.equal(s.clientClosed?.() ?? false, false, "filtering: nothing held");
    assert.equal(r.passed, 0);
  }
});

// ---- cut-off replies (reply prefix shorter than a packet) ----

Deno.test("postgres: a gap inside a skipped ParameterStatus is harmless; a gap after AuthenticationOk releases", () => {
  {
    const { s, r } = open();
    s.client(concat(startup("bob"), query("SELECT 1")));
    const ps = param("server_version", "15.10 (Debian 15.10-0+deb12u1)");
    s.target(concat(authOk, ps.subarray(0, 8)));
    s.targetGap(ps.length - 8 + 30); // the rest of the packet: more ParameterStatus, ReadyForQuery
    assert.equal(r.passed, 1, "login succeeded and the rest was cut: released");
    assert.equal(r.failed, undefined);
  }
  {
    const { s, r } = open();
    s.client(concat(startup("bob"), query("SELECT 1")));
    const ps = param("server_version", "15.10 (Debian 15.10-0+deb12u1)");
    s.target(ps.subarray(0, 8)); // before AuthenticationOk (a server would not, but the module must cope)
    s.targetGap(ps.length - 8);
    assert.equal(r.failed, undefined, "the gap is exactly the rest of a skipped message");
    s.target(afterLogin);
    assert.equal(r.passed, 1);
  }
  {
    const { s, r } = open({ passwords: { bob: "x" } });
    s.client(startup("bob"));
    const sasl = auth(10, cstr("SCRAM-SHA-256"), new Uint8Array([0]));
    s.target(sasl.subarray(0, 12));
    s.targetGap(sasl.length - 12);
    assert.equal(r.failed?.reason, "reply_gap");
  }
});

// ---- --read-only (lib/modules/sql_write.ts classifies) ----

function loggedIn(o: Options = {}) {
  const x = open({ readOnly: true, ...o });
  x.s.client(startup("bob"));
  x.s.target(afterLogin);
  return x;
}

Deno.test("postgres --read-only: simple queries that write are dropped, reads replayed", () => {
  const { s, r } = open({ readOnly: true });
  s.client(concat(startup("bob"), query("BEGIN"), query("UPDATE t SET a = 1"), query("SELECT 1")));
  s.target(afterLogin);
  assert.equal(r.passed, 0, "read-only keeps filtering");
  s.client(query("SELECT 2"));
  s.client(query("INSERT INTO h VALUES (1)"));
  s.client(query("END"));
  const types = frames(sentBytes(r).subarray(startup("bob").length)).map((m) => dec.decode(m.body));
  assert.deepEqual(types, ["BEGIN\0", "SELECT 1\0", "SELECT 2\0", "END\0"]);
  assert.equal(r.counts.get("statements_dropped"), 2);
  assert.equal(r.sent.length, 4, "nothing sent for the INSERT");
  assert.ok(r.sent.every((x) => x.opts?.now), "read-only bytes go at once (the online pace)");
});

Deno.test("postgres --read-only: extended protocol drops Parse/Bind/Describe/Execute of writes, keeps Sync", () => {
  const { s, r } = loggedIn();
  const parse = (name: string, sql: string) =>
    msg("P", cstr(name), cstr(sql), new Uint8Array([0, 0]));
  const bind = (portal: string, stmt: string) =>
    msg("B", cstr(portal), cstr(stmt), new Uint8Array([0, 0, 0, 0, 0, 0]));
  const describe = (kind: string, name: string) => msg("D", enc.encode(kind), cstr(name));
  const execute = (portal: string) => msg("E", cstr(portal), be32(0));
  const close = (kind: string, name: string) => msg("C", enc.encode(kind), cstr(name));
  const sync = msg("S"), flush = msg("H");
  const input = concat(
    parse("w", "UPDATE a SET x = $1"),
    parse("r", "SELECT x FROM a"),
    sync,
    bind("", "w"),
    describe("P", ""),
    execute(""),
    sync,
    bind("p1", "r"),
    describe("S", "r"),
    execute("p1"),
    flush,
    sync,
    parse("", "DELETE FROM a"),
    bind("", ""),
    execute(""),
    sync,
    parse("", "SELECT 2"),
    bind("", ""),
    execute(""),
    close("S", "w"),
    sync,
  );
  // fed in awkward pieces
  const cuts = [3, 17, 18, 40, 41, 90, 200];
  let at = 0;
  for (const c of [...cuts, input.length]) {
    s.client(input.subarray(at, Math.min(c, input.length)));
    at = Math.min(c, input.length);
  }
  assert.equal(r.failed, undefined);
  const got = frames(sentBytes(r).subarray(startup("bob").length)).map((m) =>
    m.type + (m.type === "P" ? ":" + dec.decode(m.body).split("\0")[1] : "")
  );
  assert.deepEqual(got, [
    "P:SELECT x FROM a",
    "S",
    "S",
    "B",
    "D",
    "E",
    "H",
    "S",
    "S",
    "P:SELECT 2",
    "B",
    "E",
    "S",
  ]);
  assert.equal(r.counts.get("statements_dropped"), 2, "two Executes of writes");
});

Deno.test("postgres --read-only: COPY FROM STDIN data goes with its dropped statement", () => {
  const { s, r } = loggedIn();
  s.client(
    concat(
      query("COPY t FROM STDIN"),
      msg("d", enc.encode("1\n")),
      msg("d", enc.encode("2\n")),
      msg("c"),
    ),
  );
  s.client(concat(query("COPY t TO STDOUT"), query("SELECT 1")));
  const got = frames(sentBytes(r).subarray(startup("bob").length)).map((m) => m.type);
  assert.deepEqual(got, ["Q", "Q"]);
});

Deno.test("postgres --read-only: pgbench's TPC-B-like script keeps BEGIN, the SELECT and END", () => {
  const { s, r } = loggedIn();
  const script = [
    "BEGIN;",
    "UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 5;",
    "SELECT abalance FROM pgbench_accounts WHERE aid = 5;",
    "UPDATE pgbench_tellers SET tbalance = tbalance + -1234 WHERE tid = 1;",
    "UPDATE pgbench_branches SET bbalance = bbalance + -1234 WHERE bid = 1;",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 5, -1234, CURRENT_TIMESTAMP);",
    "END;",
  ];
  s.client(concat(...script.map(query), msg("X")));
  const got = frames(sentBytes(r).subarray(startup("bob").length)).map((m) =>
    m.type === "Q" ? dec.decode(m.body.subarray(0, m.body.length - 1)) : m.type
  );
  assert.deepEqual(got, [script[0], script[2], script[6], "X"]);
  assert.equal(r.counts.get("statements_dropped"), 4);
});

Deno.test("postgres --read-only: the classifier is the one given (a module that drops every SELECT)", () => {
  const { s, r } = loggedIn({ isWrite: (sql) => /select/i.test(sql) });
  s.client(concat(query("SELECT 1"), query("UPDATE t SET a = 1")));
  const got = frames(sentBytes(r).subarray(startup("bob").length)).map((m) => dec.decode(m.body));
  assert.deepEqual(got, ["UPDATE t SET a = 1\0"]);
});

Deno.test("postgres --read-only: a malformed message after the login fails the session", () => {
  const { s, r } = loggedIn();
  s.client(concat(enc.encode("Q"), be32(2)));
  assert.equal(r.failed?.reason, "malformed");
});

// ---- hostile input ----

Deno.test("postgres: random and mutated input never throws, and never sends after fail/pass", () => {
  const rnd = mulberry32(1717);
  const int = randomInt(rnd);
  const good = concat(startup("bob"), clientPassword, query("SELECT 1"));
  const reply = concat(auth(5, new Uint8Array([1, 2, 3, 4])), afterLogin);
  for (let round = 0; round < 3000; round++) {
    const { s } = open({ passwords: { bob: "pw" }, readOnly: round % 2 === 0 });
    const c = round % 3 === 0 ? Uint8Array.from({ length: int(80) }, () => int(256)) : good.slice();
    const t = round % 5 === 0
      ? Uint8Array.from({ length: int(80) }, () => int(256))
      : reply.slice();
    for (let k = 0; k < 3; k++) {
      if (c.length) c[int(c.length)] = int(256);
      if (t.length) t[int(t.length)] = int(256);
    }
    let ci = 0, ti = 0;
    while (ci < c.length || ti < t.length) {
      if (int(2) === 0 && ci < c.length) {
        const n = 1 + int(20);
        s.client(c.subarray(ci, ci + n));
        ci += n;
      } else if (ti < t.length) {
        const n = 1 + int(20);
        s.target(t.subarray(ti, ti + n));
        ti += n;
        if (int(10) === 0) s.targetGap(1 + int(50));
      }
    }
  }
});

// ---- production's verdict on the login (the confused-deputy guard) ----

/** The client's frames the target got after the startup message (the module's own proof aside). */
function sentTypes(r: Recorder, user = "mallory"): string[] {
  return frames(sentBytes(r).subarray(startup(user).length)).map((m) => m.type);
}

const DANGER = query("COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned'");

Deno.test("postgres adversary: production refuses the login, the client pipelines a query after its proof: nothing after the login reaches the target", () => {
  for (const order of ["online_first", "target_first"] as const) {
    for (const method of ["trust", "md5", "cleartext"] as const) {
      const { s, r } = open({ passwords: { mallory: "target-pw" }, online: "manual" });
      // the attacker's client: startup, a wrong proof and the payload, all at once
      s.client(concat(startup("mallory"), clientPassword, DANGER));
      s.online!(auth(5, new Uint8Array([1, 2, 3, 4]))); // production's challenge
      const refuse = () => s.online!(errorResponse("28P01", "password authentication failed"));
      const loginOnTarget = () => {
        if (method === "md5") s.target(auth(5, new Uint8Array([9, 9, 9, 9])));
        if (method === "cleartext") s.target(auth(3));
        s.target(afterLogin);
      };
      if (order === "online_first") {
        refuse();
        loginOnTarget();
      } else {
        loginOnTarget();
        assert.equal(r.failed, undefined, `${order}/${method}: held, not failed yet`);
        refuse();
      }
      const what = `${order}/${method}`;
      assert.equal(r.failed?.reason, "online_login_failed", what);
      assert.ok(!sentTypes(r).includes("Q"), `${what}: the query never reaches the target`);
      assert.equal(r.passed, 0, what);
      assert.ok(r.failed!.detail.includes("mallory"), what);
      assert.ok(!r.failed!.detail.includes("target-pw"), what);
      s.client(query("SELECT 1")); // later bytes of a failed session: ignored
      assert.ok(!sentTypes(r).includes("Q"), what);
    }
  }
});

Deno.test("postgres adversary: a refusal after AuthenticationOk on production (e.g. no such database) also holds everything", () => {
  const { s, r } = open({ online: "manual" });
  s.client(concat(startup("mallory"), DANGER));
  s.online!(concat(authOk, errorResponse("3D000", "database does not exist")));
  s.target(afterLogin);
  assert.equal(r.failed?.reason, "online_login_failed");
  assert.ok(!sentTypes(r).includes("Q"));
});

Deno.test("postgres adversary: production's verdict unknown (capture gap, stream closed by the client) never replays", () => {
  // a gap in production's replies before its verdict
  const a = open({ passwords: { mallory: "pw" }, online: "manual" });
  a.s.client(concat(startup("mallory"), clientPassword, DANGER));
  a.s.online!(auth(3));
  a.s.onlineGap!(40);
  a.s.target(concat(auth(3)));
  a.s.target(afterLogin);
  assert.equal(a.r.failed?.reason, "online_login_unknown");
  assert.ok(!sentTypes(a.r).includes("Q"));
  // no online stream at all: the target logs in, the client closes: held, never sent
  const b = open({ online: "manual" });
  b.s.client(concat(startup("mallory"), DANGER));
  b.s.target(afterLogin);
  assert.equal(b.s.clientClosed!(), true, "the replayed stream waits for production's verdict");
  assert.ok(!sentTypes(b.r).includes("Q"));
  assert.equal(b.r.passed, 0);
  // ReadyForQuery without AuthenticationOk on production: not a verdict to trust
  const c = open({ online: "manual" });
  c.s.client(concat(startup("mallory"), DANGER));
  c.s.online!(ready);
  c.s.target(afterLogin);
  assert.equal(c.r.failed?.reason, "online_login_unknown");
  assert.ok(!sentTypes(c.r).includes("Q"));
});

Deno.test("postgres: production's accepted login releases the held queries, whichever side finishes first", () => {
  const onlineLogin = concat(auth(5, new Uint8Array([1, 2, 3, 4])), afterLogin);
  for (let cut = 0; cut <= onlineLogin.length; cut++) {
    for (const targetFirst of [false, true]) {
      const { s, r } = open({ passwords: { bob: "pw" }, online: "manual" });
      s.client(concat(SSL));
      s.online!(enc.encode("N"));
      s.target(enc.encode("N"));
      s.client(concat(startup("bob"), clientPassword, query("SELECT 1")));
      const onl = () => {
        s.online!(onlineLogin.subarray(0, cut));
        s.online!(onlineLogin.subarray(cut));
      };
      if (!targetFirst) onl();
      s.target(auth(3));
      s.target(afterLogin);
      if (targetFirst) {
        assert.equal(r.passed, 0, `cut ${cut}: held until production's verdict`);
        onl();
      }
      const what = `cut ${cut} targetFirst ${targetFirst}`;
      assert.equal(r.failed, undefined, what);
      assert.equal(r.passed, 1, what);
      assert.deepEqual(r.sent.at(-1)!.bytes, query("SELECT 1"), what);
    }
  }
});

Deno.test("postgres --module-trust-logins: the held queries go once the target logged in, no online stream needed", () => {
  const { s, r } = open({ online: "trust" });
  s.client(concat(startup("bob"), query("SELECT 1")));
  s.target(afterLogin);
  assert.equal(r.passed, 1);
  assert.deepEqual(r.sent.at(-1)!.bytes, query("SELECT 1"));
});

Deno.test("postgres: a target asking for more than 100,000 SCRAM iterations: unsupported_auth", () => {
  const { r } = scramLogin("pencil", "pencil", 9, {}, 100_001);
  assert.equal(r.failed?.reason, "unsupported_auth");
  assert.match(r.failed!.detail, /100001 SCRAM iterations/);
  assert.equal(r.sent.length, 2, "startup and SASLInitialResponse only: no proof computed");
  const ok = scramLogin("pencil", "pencil", 10, {}, 100_000);
  assert.equal(ok.fin.ok, true, "100,000 iterations is accepted");
});
