// The MySQL protocol module driven through the module contract with a recording output:
// greetings (MySQL 8, MariaDB 10.11) built byte by byte, proofs against values computed
// independently (Python hashlib, see the comments), auth switch, caching_sha2 fast and full
// auth (RSA key generated here), ERR, mid-stream pickup, TLS/compression, split packets,
// sequence ids, COM_CHANGE_USER and --read-only.
import assert from "node:assert/strict";
import { constants, generateKeyPairSync, privateDecrypt } from "node:crypto";
import type {
  ModuleContext,
  ModuleOutput,
  ModuleSession,
  SendOptions,
} from "../../lib/modules/module.ts";
import { mysqlModule, mysqlModuleWith } from "../../lib/modules/mysql.ts";
import { cachingSha2Proof, nativeProof } from "../../lib/modules/mysql/auth.ts";
import { CAP, parseGreeting } from "../../lib/modules/mysql/packets.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const cat = (...parts: (number[] | Uint8Array | string)[]) => {
  const out: number[] = [];
  for (const p of parts) out.push(...(typeof p === "string" ? enc.encode(p) : p));
  return Uint8Array.from(out);
};
const le16 = (n: number) => [n & 0xff, n >> 8];
const le32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
const pkt = (payload: Uint8Array, seq: number) =>
  cat([payload.length & 0xff, (payload.length >> 8) & 0xff, payload.length >> 16, seq], payload);

/** Scramble 0x01..0x14 (the vectors below were computed for it). */
const SCRAMBLE = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
const SCRAMBLE2 = Uint8Array.from({ length: 20 }, (_, i) => 0x41 + i);
// python3: s1=sha1(b"secret"); s1 ^ sha1(bytes(range(1,21)) + sha1(s1))
const NATIVE_SECRET = "b32bb3a583e1340c0a1108d58b1be49781ad8c2f";
// python3: t1=sha256(b"secret"); t1 ^ sha256(sha256(t1) + bytes(range(1,21)))
const SHA2_SECRET = "746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9";

/** A MySQL 8.0 greeting, field by field. */
function mysql8Greeting(scramble = SCRAMBLE, plugin = "caching_sha2_password"): Uint8Array {
  return cat(
    [10],
    "8.0.36\0",
    le32(42), // connection id
    scramble.subarray(0, 8),
    [0], // filler
    le16(0xffff), // capabilities (low)
    [0xff], // charset utf8mb4_0900_ai_ci
    le16(0x0002), // status
    le16(0xdfff), // capabilities (high)
    [21], // auth plugin data length
    new Array(10).fill(0),
    scramble.subarray(8),
    [0],
    plugin + "\0",
  );
}

/** A MariaDB 10.11 greeting: "5.5.5-" prefix, no CLIENT_MYSQL bit, extended capabilities. */
function mariadbGreeting(scramble = SCRAMBLE, plugin = "mysql_native_password"): Uint8Array {
  return cat(
    [10],
    "5.5.5-10.11.18-MariaDB-0+deb12u1\0",
    le32(7),
    scramble.subarray(0, 8),
    [0],
    le16(0xf7fe),
    [0x2d],
    le16(0x0002),
    le16(0x81ff),
    [21],
    new Array(6).fill(0),
    le32(0x1d), // MariaDB extended capabilities
    scramble.subarray(8),
    [0],
    plugin + "\0",
  );
}

const CLIENT_CAPS = CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH |
  CAP.CONNECT_WITH_DB |
  CAP.CONNECT_ATTRS | CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA | 0x1 | 0x4 | 0x2000;
const ATTRS = cat([13, 3], "_os", [5], "Linux", [1], "x", [1], "y");

/** A HandshakeResponse41 with a production proof (20 bytes of 0xAA) and connect attributes. */
function handshakeResponse(
  opts: { caps?: number; user?: string; plugin?: string; auth?: Uint8Array } = {},
): Uint8Array {
  const caps = opts.caps ?? CLIENT_CAPS;
  const auth = opts.auth ?? new Uint8Array(20).fill(0xaa);
  return cat(
    le32(caps),
    le32(16 << 20),
    [0x21],
    new Array(23).fill(0),
    (opts.user ?? "app") + "\0",
    [auth.length],
    auth,
    "shop\0",
    (opts.plugin ?? "mysql_native_password") + "\0",
    ATTRS,
  );
}

const OK = cat([0, 0, 0, 2, 0, 0, 0]);
const query = (sql: string, seq = 0) => pkt(cat([3], sql), seq);

interface Rig {
  s: ModuleSession;
  sent: { bytes: Uint8Array; opts?: SendOptions }[];
  failed: { reason: string; detail: string }[];
  passed: number;
  counts: Map<string, number>;
  /** All bytes sent so far, concatenated. */
  wire(): Uint8Array;
}

/**
 * `online`: production's side. "accepted" (default): production's greeting and OK are fed at
 * once; "manual": the test feeds production's packets; "trust": `--module-trust-logins`.
 */
type Online = "accepted" | "manual" | "trust";

function rig(
  opts: { readOnly?: boolean; users?: Record<string, string>; online?: Online } = {},
): Rig {
  const users = opts.users ?? { app: "secret" };
  const r: Rig = {
    s: undefined as unknown as ModuleSession,
    sent: [],
    failed: [],
    passed: 0,
    counts: new Map(),
    wire: () => cat(...r.sent.map((x) => x.bytes)),
  };
  const ctx: ModuleContext = {
    credentials: { password: (u) => users[u] },
    readOnly: opts.readOnly ?? false,
    trustLogins: opts.online === "trust",
    random: (b) => b.fill(7),
    count: (name, n = 1) => r.counts.set(name, (r.counts.get(name) ?? 0) + n),
    log: () => {},
  };
  const out: ModuleOutput = {
    send: (bytes, o) => r.sent.push({ bytes: bytes.slice(), opts: o }),
    pass: () => r.passed++,
    fail: (reason, detail) => r.failed.push({ reason, detail }),
  };
  const isWrite = (sql: string) =>
    /^\s*(insert|update|delete|replace|create|drop|alter|truncate)\b/i.test(sql);
  r.s = mysqlModuleWith(isWrite).open(ctx, out);
  if ((opts.online ?? "accepted") === "accepted") {
    r.s.online!(cat(pkt(mariadbGreeting(), 0), pkt(OK, 2)));
  }
  return r;
}

/** Splits a sent packet: [seq, payload]. */
function split(b: Uint8Array): [number, Uint8Array] {
  const len = b[0] | (b[1] << 8) | (b[2] << 16);
  assert.equal(b.length, 4 + len, "packet length field matches its payload");
  return [b[3], b.subarray(4)];
}

/** The auth response inside a sent HandshakeResponse41 (1-byte length form). */
function responseFields(payload: Uint8Array) {
  let at = 32;
  const z = payload.indexOf(0, at);
  const user = dec.decode(payload.subarray(at, z));
  at = z + 1;
  const auth = payload.subarray(at + 1, at + 1 + payload[at]);
  at += 1 + payload[at];
  const z2 = payload.indexOf(0, at);
  const db = dec.decode(payload.subarray(at, z2));
  at = z2 + 1;
  const z3 = payload.indexOf(0, at);
  const plugin = dec.decode(payload.subarray(at, z3));
  return {
    caps: payload[0] | (payload[1] << 8) | (payload[2] << 16),
    user,
    auth,
    db,
    plugin,
    tail: payload.subarray(z3 + 1),
  };
}

Deno.test("mysql: the proofs match independently computed vectors", () => {
  assert.equal(hex(nativeProof("secret", SCRAMBLE)), NATIVE_SECRET);
  assert.equal(hex(cachingSha2Proof("secret", SCRAMBLE)), SHA2_SECRET);
  assert.equal(nativeProof("", SCRAMBLE).length, 0);
});

Deno.test("mysql: greetings of MySQL 8 and MariaDB 10.11 parse", () => {
  const m = parseGreeting(mysql8Greeting());
  assert.ok(typeof m !== "string");
  assert.equal(m.serverVersion, "8.0.36");
  assert.equal(m.plugin, "caching_sha2_password");
  assert.deepEqual(m.scramble, SCRAMBLE);
  const d = parseGreeting(mariadbGreeting(SCRAMBLE2));
  assert.ok(typeof d !== "string");
  assert.equal(d.serverVersion, "5.5.5-10.11.18-MariaDB-0+deb12u1");
  assert.equal(d.plugin, "mysql_native_password");
  assert.deepEqual(d.scramble, SCRAMBLE2);
  assert.equal(typeof parseGreeting(cat([10], "8.0\0", [1, 2])), "string");
  assert.equal(typeof parseGreeting(cat([9], "x\0")), "string");
});

Deno.test("mysql: native login is re-proved for the target's scramble, fields kept, command held until OK", () => {
  const r = rig();
  r.s.target(pkt(mariadbGreeting(), 0));
  r.s.client(pkt(handshakeResponse(), 1));
  assert.equal(r.sent.length, 1);
  const [seq, payload] = split(r.sent[0].bytes);
  assert.equal(seq, 1);
  const f = responseFields(payload);
  assert.equal(f.user, "app");
  assert.equal(f.db, "shop");
  assert.equal(f.plugin, "mysql_native_password");
  assert.equal(hex(f.auth), NATIVE_SECRET);
  assert.deepEqual(f.tail, ATTRS);
  assert.equal(f.caps, CLIENT_CAPS & 0xffffff);
  assert.equal(r.sent[0].opts?.now, undefined, "sent from client(): the engine's usual pacing");
  // A command before the target's OK is held, then released at once.
  r.s.client(query("SELECT 1"));
  assert.equal(r.sent.length, 1);
  r.s.target(pkt(OK, 2));
  assert.deepEqual(r.wire().subarray(r.sent[0].bytes.length), query("SELECT 1"));
  assert.equal(r.sent.at(-1)?.opts?.now, true);
  assert.equal(r.counts.get("logins"), 1);
  // After the login, commands go through unchanged.
  r.s.client(query("SELECT 2"));
  assert.deepEqual(r.sent.at(-1)?.bytes, query("SELECT 2"));
  assert.equal(r.failed.length, 0);
});

Deno.test("mysql: caching_sha2 fast auth, client response before the greeting, plugin taken from the target", () => {
  const r = rig();
  r.s.client(pkt(handshakeResponse({ plugin: "mysql_native_password" }), 1));
  assert.equal(r.sent.length, 0, "held until the greeting");
  r.s.target(pkt(mysql8Greeting(), 0));
  const f = responseFields(split(r.sent[0].bytes)[1]);
  assert.equal(f.plugin, "caching_sha2_password");
  assert.equal(hex(f.auth), SHA2_SECRET);
  assert.equal(r.sent[0].opts?.now, true, "sent from target(): the module did the waiting");
  // The production client's own fast-auth traffic does not exist; the target's 0x01 0x03 + OK.
  r.s.target(pkt(cat([1, 3]), 2));
  assert.equal(r.sent.length, 1);
  r.s.target(pkt(OK, 3));
  r.s.client(query("SELECT 1"));
  assert.deepEqual(r.sent.at(-1)?.bytes, query("SELECT 1"));
  assert.equal(r.failed.length, 0);
});

Deno.test("mysql: auth switch from the target is answered; the client's own switch response is dropped", () => {
  const r = rig();
  r.s.target(pkt(mysql8Greeting(), 0));
  r.s.client(pkt(handshakeResponse(), 1));
  r.s.target(pkt(cat([0xfe], "mysql_native_password\0", SCRAMBLE2, [0]), 2));
  assert.equal(r.sent.length, 2);
  const [seq, auth] = split(r.sent[1].bytes);
  assert.equal(seq, 3);
  assert.deepEqual(auth, nativeProof("secret", SCRAMBLE2));
  // Production had switched too: the captured client's answer (seq 3) must not reach the target.
  r.s.client(pkt(new Uint8Array(20).fill(0xbb), 3));
  r.s.client(query("SELECT 1"));
  assert.equal(r.sent.length, 2);
  r.s.target(pkt(OK, 4));
  assert.deepEqual(r.sent.at(-1)?.bytes, query("SELECT 1"));
  assert.equal(r.counts.get("auth_switches"), 1);
});

Deno.test("mysql: caching_sha2 full auth asks for the RSA key and sends the encrypted password", () => {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = publicKey.export({ type: "spki", format: "pem" }) as string;
  const r = rig();
  r.s.target(pkt(mysql8Greeting(), 0));
  r.s.client(pkt(handshakeResponse({ plugin: "caching_sha2_password" }), 1));
  r.s.target(pkt(cat([1, 4]), 2));
  assert.deepEqual(r.sent[1].bytes, pkt(cat([2]), 3));
  r.s.target(pkt(cat([1], pem), 4));
  const [seq, cipher] = split(r.sent[2].bytes);
  assert.equal(seq, 5);
  const plain = new Uint8Array(
    privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, cipher),
  );
  for (let i = 0; i < plain.length; i++) plain[i] ^= SCRAMBLE[i % 20];
  assert.equal(dec.decode(plain), "secret\0");
  r.s.target(pkt(OK, 6));
  assert.equal(r.counts.get("full_auth"), 1);
  assert.equal(r.counts.get("logins"), 1);
  assert.equal(r.failed.length, 0);
});

Deno.test("mysql: ERR during the login fails auth_failed with user and code, never the password", () => {
  const r = rig({ users: { app: "wrong-pass" } });
  r.s.target(pkt(mariadbGreeting(), 0));
  r.s.client(pkt(handshakeResponse(), 1));
  r.s.target(pkt(cat([0xff], le16(1045), "#28000", "Access denied for user 'app'@'10.0.0.1'"), 2));
  assert.equal(r.failed.length, 1);
  assert.equal(r.failed[0].reason, "auth_failed");
  assert.match(r.failed[0].detail, /"app".*1045/);
  assert.doesNotMatch(r.failed[0].detail, /wrong-pass/);
  assert.equal(
    r.counts.get("auth_failed"),
    undefined,
    "counted once, by the engine, as the reason",
  );
  r.s.client(query("SELECT 1"));
  assert.equal(r.failed.length, 1, "failed once");
});

Deno.test("mysql: mid-stream pickup, TLS, compression, unknown user and unknown plugins fail with a reason", () => {
  const cases: [Uint8Array, string][] = [
    [query("SELECT 1"), "no_login"],
    [cat([1, 2, 3, 4, 5, 6, 7, 8, 9]), "no_login"],
    [
      pkt(
        cat(
          le32(CAP.PROTOCOL_41 | CAP.SSL | CAP.SECURE_CONNECTION),
          le32(1 << 24),
          [0x21],
          new Array(23).fill(0),
        ),
        1,
      ),
      "tls",
    ],
    [pkt(handshakeResponse({ caps: CLIENT_CAPS | CAP.COMPRESS }), 1), "compression"],
    [pkt(handshakeResponse({ user: "nobody" }), 1), "no_credentials"],
  ];
  for (const [bytes, reason] of cases) {
    const r = rig();
    r.s.target(pkt(mariadbGreeting(), 0));
    r.s.client(bytes);
    assert.equal(r.failed[0]?.reason, reason, reason);
    assert.equal(r.sent.length, 0);
  }
  const r = rig();
  r.s.target(pkt(mariadbGreeting(SCRAMBLE, "client_ed25519"), 0));
  r.s.client(pkt(handshakeResponse({ plugin: "client_ed25519" }), 1));
  assert.equal(r.failed[0]?.reason, "unsupported_auth");
});

Deno.test("mysql: packets split at every byte give the same bytes on the wire", () => {
  const whole = rig({ readOnly: true });
  const bytewise = rig({ readOnly: true });
  const greeting = pkt(mysql8Greeting(SCRAMBLE, "mysql_native_password"), 0);
  const client = cat(
    pkt(handshakeResponse(), 1),
    query("SELECT 1"),
    query("INSERT INTO t VALUES (1)"),
    pkt(cat([0x0e]), 0), // COM_PING
    query("SELECT 2"),
  );
  whole.s.target(greeting);
  whole.s.client(client);
  whole.s.target(pkt(OK, 2));
  for (const b of greeting) bytewise.s.target(Uint8Array.of(b));
  for (const b of client) bytewise.s.client(Uint8Array.of(b));
  const ok = pkt(OK, 2);
  for (const b of ok) bytewise.s.target(Uint8Array.of(b));
  assert.deepEqual(bytewise.wire(), whole.wire());
  const login = whole.sent[0].bytes;
  assert.deepEqual(
    whole.wire().subarray(login.length),
    cat(query("SELECT 1"), pkt(cat([0x0e]), 0), query("SELECT 2")),
  );
  assert.equal(whole.counts.get("statements_dropped"), 1);
  assert.equal(bytewise.counts.get("statements_dropped"), 1);
});

/** A session logged in on a MariaDB greeting (native). */
function loggedIn(opts: { readOnly?: boolean; online?: Online } = {}): Rig {
  const r = rig(opts);
  r.s.target(pkt(mariadbGreeting(), 0));
  r.s.client(pkt(handshakeResponse(), 1));
  r.s.target(pkt(OK, 2));
  r.sent.length = 0;
  return r;
}

Deno.test("mysql --read-only: writes dropped, prepared writes and their executions dropped, ids shifted", () => {
  const r = loggedIn({ readOnly: true });
  const prep = (sql: string) => pkt(cat([0x16], sql), 0);
  const exec = (id: number) => pkt(cat([0x17], le32(id), [0], le32(1)), 0);
  const close = (id: number) => pkt(cat([0x19], le32(id)), 0);
  r.s.client(query("update t set a=1"));
  r.s.client(query("select * from t"));
  r.s.client(prep("INSERT INTO t VALUES (?)")); // production id 1: dropped
  r.s.client(exec(1));
  r.s.client(close(1));
  r.s.client(prep("SELECT a FROM t WHERE b=?")); // production id 2, target id 1
  r.s.client(exec(2));
  assert.deepEqual(
    r.wire(),
    cat(query("select * from t"), prep("SELECT a FROM t WHERE b=?"), exec(1)),
  );
  assert.equal(r.counts.get("statements_dropped"), 4);
  assert.equal(r.failed.length, 0);
});

Deno.test("mysql: COM_CHANGE_USER is re-proved with the scramble in effect; its response found after earlier ones", () => {
  const r = loggedIn({ online: "trust" });
  const changeUser = (auth: Uint8Array) =>
    pkt(
      cat(
        [0x11],
        "app\0",
        [auth.length],
        auth,
        "shop\0",
        le16(0x21),
        "mysql_native_password\0",
        ATTRS,
      ),
      0,
    );
  r.s.client(query("SELECT 1"));
  r.s.client(changeUser(new Uint8Array(20).fill(0xcc)));
  r.s.client(pkt(new Uint8Array(20).fill(0xdd), 3)); // the production client's switch answer: dropped
  r.s.client(query("SELECT 2")); // held until the change-user OK
  assert.equal(r.sent.length, 2);
  assert.deepEqual(r.sent[0].bytes, query("SELECT 1"));
  assert.deepEqual(r.sent[1].bytes, changeUser(nativeProof("secret", SCRAMBLE)));
  // The response to SELECT 1 (a result set, seq 1..5), then the change-user switch (seq 1).
  r.s.target(cat(pkt(cat([1]), 1), pkt(cat([3], "def"), 2), pkt(cat([0xfe, 0, 0, 2, 0]), 3)));
  r.s.target(cat(pkt(cat([1], "1"), 4), pkt(cat([0xfe, 0, 0, 2, 0]), 5)));
  assert.equal(r.sent.length, 2);
  r.s.target(pkt(cat([0xfe], "mysql_native_password\0", SCRAMBLE2, [0]), 1));
  assert.deepEqual(r.sent[2].bytes, pkt(nativeProof("secret", SCRAMBLE2), 2));
  r.s.target(pkt(OK, 3));
  assert.deepEqual(r.sent[3].bytes, query("SELECT 2"));
  assert.equal(r.counts.get("change_users"), 1);
  assert.equal(r.failed.length, 0);
});

Deno.test("mysql: a greeting cut by the reply prefix fails reply_truncated; hostile bytes never throw", () => {
  const r = rig();
  const g = pkt(mysql8Greeting(), 0);
  r.s.target(g.subarray(0, 40));
  r.s.targetGap(g.length - 40);
  assert.equal(r.failed[0]?.reason, "reply_truncated");
  let seed = 17;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let n = 0; n < 300; n++) {
    const x = rig({ readOnly: n % 2 === 0 });
    const noise = Uint8Array.from({ length: 1 + (n % 90) }, rnd);
    x.s.target(n % 3 === 0 ? pkt(mysql8Greeting(), 0) : noise);
    x.s.client(n % 5 === 0 ? cat(pkt(handshakeResponse(), 1), noise) : noise);
    x.s.target(noise);
    x.s.targetGap(n);
    x.s.client(noise);
    assert.ok(x.failed.length <= 1);
  }
});

Deno.test("mysql --read-only: SQL-level PREPARE of a write drops its EXECUTE and DEALLOCATE; reads pass", () => {
  const r = loggedIn({ readOnly: true });
  const statements = [
    "PREPARE w FROM 'INSERT INTO t VALUES (1, ''a'')'",
    "EXECUTE w",
    "DEALLOCATE PREPARE w",
    "PREPARE v FROM @sql",
    "EXECUTE `v`",
    'PREPARE r FROM "SELECT * FROM t WHERE a = ?"',
    "EXECUTE r USING @a",
  ];
  for (const sql of statements) r.s.client(query(sql));
  assert.deepEqual(r.wire(), cat(query(statements[5]), query(statements[6])));
  assert.equal(r.counts.get("statements_dropped"), 5);
  assert.equal(r.failed.length, 0);
});

Deno.test("mysql: mysqlModule uses sql_write's MySQL dialect under --read-only", () => {
  const sent: Uint8Array[] = [];
  const s = mysqlModule.open({
    credentials: { password: () => "secret" },
    readOnly: true,
    trustLogins: true,
    random: (b) => b.fill(1),
    count: () => {},
    log: () => {},
  }, { send: (b) => sent.push(b.slice()), pass: () => {}, fail: () => assert.fail("no failure") });
  s.target(pkt(mariadbGreeting(), 0));
  s.client(pkt(handshakeResponse(), 1));
  s.target(pkt(OK, 2));
  sent.length = 0;
  s.client(query("DELETE FROM t"));
  s.client(query("SELECT * FROM t FOR UPDATE"));
  assert.deepEqual(cat(...sent), query("SELECT * FROM t FOR UPDATE"));
  assert.equal(mysqlModule.name, "mysql");
  assert.ok(mysqlModule.replyPrefix >= 460, "an RSA-2048 PEM fits");
});

Deno.test("mysql: a client that closed before the target's greeting keeps the stream open until its commands are sent", () => {
  const r = rig();
  r.s.client(cat(pkt(handshakeResponse(), 1), query("SELECT 1"), pkt(cat([1]), 0)));
  assert.equal(r.s.clientClosed?.(), true, "still waiting for the target");
  r.s.target(pkt(mariadbGreeting(), 0));
  assert.equal(r.passed, 0);
  r.s.target(pkt(OK, 2));
  assert.deepEqual(
    r.wire().subarray(r.sent[0].bytes.length),
    cat(query("SELECT 1"), pkt(cat([1]), 0)),
  );
  assert.equal(r.passed, 1, "pass() lets the engine send the FIN after the held commands");
  const done = loggedIn();
  assert.equal(done.s.clientClosed?.(), false, "nothing held: close at once");
});

Deno.test("mysql adversary: a session's packet buffer follows the bytes that arrived, not the header", () => {
  const r = loggedIn({ readOnly: true });
  const buf = () => (r.s as unknown as { bufferBytes: number }).bufferBytes;
  // a fresh session holds a small buffer (a connection flood costs little per session)
  assert.ok((rig().s as unknown as { bufferBytes: number }).bufferBytes <= 256);
  // a header claiming a 1 MiB query, then 1 byte: nothing is allocated for the claim
  const body = enc.encode("\x03SELECT '" + "x".repeat((1 << 20) - 20) + "'");
  const whole = new Uint8Array(4 + body.length);
  whole.set([body.length & 0xff, (body.length >> 8) & 0xff, body.length >> 16, 0]);
  whole.set(body, 4);
  const same = (a: Uint8Array, b: Uint8Array) =>
    assert.ok(a.length === b.length && a.every((x, i) => x === b[i]), "bytes sent");
  r.s.client(whole.subarray(0, 6));
  assert.ok(buf() <= 256, `buffer ${buf()} after 6 bytes`);
  // trickled in: the buffer grows with the bytes, the query is classified and sent whole
  for (let i = 6; i < whole.length; i += 65536) r.s.client(whole.subarray(i, i + 65536));
  assert.deepEqual(r.failed, []);
  const sent = () => {
    const all = new Uint8Array(r.sent.reduce((n, x) => n + x.bytes.length, 0));
    let at = 0;
    for (const x of r.sent) all.set(x.bytes, at), at += x.bytes.length;
    return all;
  };
  same(sent(), whole);
  // and is given back once the packet is decided
  assert.ok(buf() <= 4096, `buffer ${buf()} after the query`);
  r.sent.length = 0;
  r.s.client(query("select 1"));
  assert.deepEqual(r.wire(), query("select 1"));
});

// ---- production's verdict on the login (the confused-deputy guard) ----

const ERR = cat([0xff, 0x15, 0x04], "#28000Access denied for user 'app'");
const DANGER = query("SELECT 1 INTO OUTFILE '/tmp/pwned'");

Deno.test("mysql adversary: production refuses the login, commands pipelined after the proof never reach the target", () => {
  for (const order of ["online_first", "target_first"] as const) {
    const r = rig({ online: "manual" });
    r.s.online!(pkt(mariadbGreeting(SCRAMBLE2), 0));
    r.s.target(pkt(mariadbGreeting(), 0));
    r.s.client(cat(pkt(handshakeResponse(), 1), DANGER));
    if (order === "online_first") {
      r.s.online!(pkt(ERR, 2));
      r.s.target(pkt(OK, 2));
    } else {
      r.s.target(pkt(OK, 2));
      assert.equal(r.failed.length, 0, `${order}: held until production's verdict`);
      assert.equal(r.sent.length, 1, `${order}: the login only`);
      r.s.client(query("SELECT 2"));
      r.s.online!(pkt(ERR, 2));
    }
    assert.deepEqual(r.failed.map((f) => f.reason), ["online_login_failed"], order);
    assert.equal(r.sent.length, 1, `${order}: only the re-proved login was sent`);
    assert.ok(!r.failed[0].detail.includes("secret"), order);
    assert.equal(r.passed, 0, order);
  }
});

Deno.test("mysql adversary: verdict unknown (gap in production's stream, no greeting) never replays", () => {
  const a = rig({ online: "manual" });
  a.s.online!(pkt(mariadbGreeting(SCRAMBLE2), 0));
  a.s.target(pkt(mariadbGreeting(), 0));
  a.s.client(cat(pkt(handshakeResponse(), 1), DANGER));
  a.s.onlineGap!(11);
  a.s.target(pkt(OK, 2));
  assert.deepEqual(a.failed.map((f) => f.reason), ["online_login_unknown"]);
  assert.equal(a.sent.length, 1);
  // no online stream: the client closes, the stream stays open, nothing more is sent
  const b = rig({ online: "manual" });
  b.s.target(pkt(mariadbGreeting(), 0));
  b.s.client(cat(pkt(handshakeResponse(), 1), DANGER));
  b.s.target(pkt(OK, 2));
  assert.equal(b.s.clientClosed!(), true);
  assert.equal(b.sent.length, 1);
  assert.equal(b.passed, 0);
});

Deno.test("mysql: production's OK (after an auth switch) releases the held commands, whichever side finishes first", () => {
  const online = cat(
    pkt(mariadbGreeting(SCRAMBLE2), 0),
    pkt(cat([0xfe], "mysql_native_password\0", SCRAMBLE2, [0]), 2),
    pkt(OK, 4),
  );
  for (let cut = 0; cut <= online.length; cut++) {
    for (const targetFirst of [false, true]) {
      const r = rig({ online: "manual" });
      const feed = () => {
        const first = r.s.online!(online.subarray(0, cut));
        assert.equal(first, cut > online.length - OK.length, `cut ${cut}: verdict with the OK`);
        if (!first) assert.equal(r.s.online!(online.subarray(cut)), true, "no more needed");
      };
      if (!targetFirst) feed();
      r.s.target(pkt(mariadbGreeting(), 0));
      r.s.client(cat(pkt(handshakeResponse(), 1), query("SELECT 1")));
      r.s.target(pkt(OK, 2));
      if (targetFirst) {
        assert.equal(r.sent.length, 1, "held");
        feed();
      }
      assert.equal(r.failed.length, 0, `cut ${cut}`);
      assert.deepEqual(r.sent.at(-1)!.bytes, query("SELECT 1"), `cut ${cut} ${targetFirst}`);
    }
  }
});

Deno.test("mysql: COM_CHANGE_USER without --module-trust-logins ends the session (production's verdict on it is not read)", () => {
  const r = loggedIn();
  r.s.client(pkt(cat([0x11], "root\0", [0], "\0"), 0));
  assert.deepEqual(r.failed.map((f) => f.reason), ["change_user_unverified"]);
  assert.equal(r.sent.length, 0);
});
