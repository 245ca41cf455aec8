import assert from "node:assert/strict";
import type {
  ModuleContext,
  ModuleOutput,
  ModuleSession,
  SendOptions,
} from "../../lib/modules/module.ts";
import { redisModule } from "../../lib/modules/redis.ts";
import { isReadCommand } from "../../lib/modules/redis/commands.ts";
import { splitInline } from "../../lib/modules/redis/resp.ts";
import { MAX_INLINE } from "../../lib/modules/redis/session.ts";
import { mulberry32 } from "../helpers/prng.ts";
import { concat } from "../helpers/bytes.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A module session with a recording output and context. */
class Rig {
  readonly sent: Uint8Array[] = [];
  /** The options of each send. */
  readonly options: (SendOptions | undefined)[] = [];
  passed = 0;
  failed: { reason: string; detail: string } | null = null;
  readonly counts = new Map<string, number>();
  readonly logs: string[] = [];
  readonly session: ModuleSession;

  /**
   * `online`: production's side. "accepted" (default): production answers +OK to its first
   * 16 commands (every login accepted), fed at once; "manual": the test feeds production's
   * replies; "trust": `--module-trust-logins`.
   */
  constructor(
    readOnly: boolean,
    passwords: Record<string, string> = {},
    online: "accepted" | "manual" | "trust" = "accepted",
  ) {
    const ctx: ModuleContext = {
      credentials: { password: (user) => passwords[user] },
      readOnly,
      trustLogins: online === "trust",
      random: (b) => b.fill(7),
      count: (name, n = 1) => {
        assert.ok(redisModule.counters.includes(name), `undeclared counter ${name}`);
        this.counts.set(name, (this.counts.get(name) ?? 0) + n);
      },
      log: (line) => this.logs.push(line),
    };
    const out: ModuleOutput = {
      send: (bytes, opts) => {
        assert.ok(this.passed === 0 && this.failed === null, "send after pass/fail");
        this.sent.push(bytes.slice());
        this.options.push(opts);
      },
      pass: () => {
        this.passed++;
      },
      fail: (reason, detail) => {
        assert.ok(redisModule.counters.includes(reason), `undeclared reason ${reason}`);
        this.failed = { reason, detail };
      },
    };
    this.session = redisModule.open(ctx, out);
    if (online === "accepted") this.session.online!(enc.encode("+OK\r\n".repeat(16)));
  }

  /**
   * Feeds `text` in chunks of the given sizes (the rest in one chunk); after `pass()` the
   * chunks go to the output unchanged, as the engine replays them.
   */
  feed(data: string | Uint8Array, sizes: number[] = []): this {
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    let i = 0;
    for (const n of [...sizes, bytes.length]) {
      if (i >= bytes.length) break;
      const chunk = bytes.slice(i, i + n);
      if (this.passed > 0) this.sent.push(chunk);
      else this.session.client(chunk);
      i += n;
    }
    return this;
  }

  /** Everything sent, as one string (latin1-safe for tests with ASCII). */
  text(): string {
    return dec.decode(concat(...this.sent));
  }

  count(name: string): number {
    return this.counts.get(name) ?? 0;
  }
}

/** A command as redis-cli sends it. */
function cmd(...args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${enc.encode(a).length}\r\n${a}\r\n`).join("");
}

/** Splits `n` bytes into random chunk sizes. */
function randomSizes(rand: () => number, n: number): number[] {
  const sizes: number[] = [];
  let left = n;
  while (left > 0) {
    const s = 1 + Math.floor(rand() * Math.min(left, rand() < 0.3 ? 3 : 40));
    sizes.push(s);
    left -= s;
  }
  return sizes;
}

// ---- without --read-only: logins rewritten, then the engine takes over

Deno.test("redis: without --read-only a session without AUTH is passed at its first command", () => {
  const input = cmd("PING") + cmd("SET", "a", "1") + cmd("GET", "a");
  const rig = new Rig(false).feed(input);
  assert.equal(rig.passed, 1);
  assert.equal(rig.text(), input, "everything sent unchanged");
  assert.equal(rig.counts.size, 0);
  // Split in the middle of the first command's name: held until the name is known.
  const split = new Rig(false).feed(input, [3, 5, 2]);
  assert.equal(split.passed, 1);
  assert.equal(split.text(), input);
});

Deno.test("redis: AUTH password is rewritten to the auth file's default password", () => {
  const rig = new Rig(false, { default: "target-secret" });
  rig.feed(cmd("AUTH", "prod") + cmd("GET", "k") + cmd("SET", "k", "v"));
  assert.equal(rig.text(), cmd("AUTH", "target-secret") + cmd("GET", "k") + cmd("SET", "k", "v"));
  assert.equal(rig.count("auth_rewritten"), 1);
  assert.equal(rig.passed, 1);
});

Deno.test("redis: AUTH user password and HELLO ... AUTH user password are rewritten", () => {
  const pw = { alice: "a-target", default: "d-target" };
  const a = new Rig(false, pw).feed(cmd("AUTH", "alice", "a-prod") + cmd("PING"));
  assert.equal(a.text(), cmd("AUTH", "alice", "a-target") + cmd("PING"));
  const h = new Rig(false, pw).feed(
    cmd("HELLO", "3", "AUTH", "alice", "a-prod", "SETNAME", "app") + cmd("PING"),
  );
  assert.equal(
    h.text(),
    cmd("HELLO", "3", "AUTH", "alice", "a-target", "SETNAME", "app") + cmd("PING"),
  );
  assert.equal(h.count("auth_rewritten"), 1);
  // SETNAME's value "auth" is not the AUTH option.
  const s = new Rig(false, pw).feed(cmd("hello", "3", "setname", "auth", "auth", "alice", "x"));
  assert.equal(s.text(), cmd("hello", "3", "setname", "auth", "auth", "alice", "a-target"));
  // HELLO without AUTH is replayed unchanged and counts nothing.
  const n = new Rig(false, pw).feed(cmd("HELLO", "3") + cmd("PING"));
  assert.equal(n.text(), cmd("HELLO", "3") + cmd("PING"));
  assert.equal(n.counts.size, 0);
});

Deno.test("redis: a login split byte by byte is rewritten the same way", () => {
  const input = cmd("AUTH", "bob", "p".repeat(300)) + cmd("GET", "x");
  const rig = new Rig(false, { bob: "short" });
  rig.feed(input, Array(input.length).fill(1));
  assert.equal(rig.text(), cmd("AUTH", "bob", "short") + cmd("GET", "x"));
  assert.equal(rig.passed, 1);
});

Deno.test("redis: a user without a password in the auth file is replayed unchanged and logged", () => {
  const input = cmd("AUTH", "carol", "c-prod") + cmd("PING");
  const rig = new Rig(false, { alice: "x" }).feed(input);
  assert.equal(rig.text(), input);
  assert.equal(rig.count("auth_unchanged"), 1);
  assert.equal(rig.count("auth_rewritten"), 0);
  assert.match(rig.logs.join("\n"), /no password for user "carol"/);
});

Deno.test("redis: an inline AUTH is rewritten (sent as a RESP array)", () => {
  const rig = new Rig(false, { default: "new pw" }).feed("AUTH old\r\nGET a\r\n");
  assert.equal(rig.text(), cmd("AUTH", "new pw") + "GET a\r\n");
  assert.equal(rig.passed, 1);
});

Deno.test("redis: without --read-only a stream that does not parse is passed unchanged", () => {
  for (const input of ["$5\r\nhello\r\n", "*x\r\n", '"unbalanced\r\n', cmd("AUTH") + "*9z\r\n"]) {
    const rig = new Rig(false).feed(input);
    assert.equal(rig.passed, 1, JSON.stringify(input));
    assert.equal(rig.failed, null);
    assert.equal(rig.text(), input, JSON.stringify(input));
  }
});

// ---- --read-only

const PIPELINE: readonly [string[], boolean][] = [
  [["SET", "a", "1"], false],
  [["GET", "a"], true],
  [["DEL", "a"], false],
  [["INCR", "n"], false],
  [["MGET", "a", "b", "c"], true],
  [["HSET", "h", "f", "v"], false],
  [["HGETALL", "h"], true],
  [["LPUSH", "l", "x"], false],
  [["LRANGE", "l", "0", "-1"], true],
  [["EXPIRE", "a", "10"], false],
  [["TTL", "a"], true],
  [["FLUSHALL"], false],
  [["EVAL", "return 1", "0"], false],
  [["EVALSHA", "abc", "0"], false],
  [["FCALL", "f", "0"], false],
  [["EVAL_RO", "return 1", "0"], true],
  [["FCALL_RO", "f", "0"], true],
  [["ZADD", "z", "1", "m"], false],
  [["ZRANGE", "z", "0", "-1"], true],
  [["GETDEL", "a"], false],
  [["GETEX", "a", "EX", "5"], false],
  [["SORT", "l"], false],
  [["SORT_RO", "l"], true],
  [["XADD", "s", "*", "f", "v"], false],
  [["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"], false],
  [["XRANGE", "s", "-", "+"], true],
  [["PUBLISH", "ch", "m"], false],
  [["SUBSCRIBE", "ch"], true],
  [["NOSUCHCOMMAND", "x"], false],
  [["JSON.SET", "k", "$", "1"], false],
  [["ping"], true],
  [["get", "lower"], true],
  [["gEt", "mixed"], true],
  [["SELECT", "1"], true],
  [["SWAPDB", "0", "1"], false],
  [["CONFIG", "GET", "maxmemory"], true],
  [["CONFIG", "SET", "maxmemory", "1"], false],
  [["CONFIG", "RESETSTAT"], false],
  [["CLIENT", "SETNAME", "x"], true],
  [["CLIENT", "KILL", "ID", "1"], false],
  [["SCRIPT", "LOAD", "return 1"], true],
  [["SCRIPT", "FLUSH"], false],
  [["COMMAND"], true],
  [["COMMAND", "COUNT"], true],
  [["CONFIG"], false],
  [["OBJECT", "ENCODING", "a"], true],
  [["ACL", "SETUSER", "u", "on"], false],
  [["ACL", "WHOAMI"], true],
  [["WAIT", "1", "0"], false],
  [["INFO", "commandstats"], true],
  [["DBSIZE"], true],
];

function pipelineInput(): { input: string; expected: string; writes: number } {
  let input = "";
  let expected = "";
  let writes = 0;
  for (const [args, read] of PIPELINE) {
    input += cmd(...args);
    if (read) expected += cmd(...args);
    else writes++;
  }
  return { input, expected, writes };
}

Deno.test("redis --read-only: a pipeline keeps its reads byte for byte and drops its writes", () => {
  const { input, expected, writes } = pipelineInput();
  const rig = new Rig(true).feed(input);
  assert.equal(rig.failed, null);
  assert.equal(rig.passed, 0, "never passed: every command is filtered");
  assert.equal(rig.text(), expected);
  assert.equal(rig.count("statements_dropped"), writes);
});

Deno.test("redis --read-only: one send per captured chunk, released at once", () => {
  // Reply sizes differ from production's once writes are dropped: pacing by reply bytes
  // would stall, so read-only sends go out as captured ({ now: true }), one turn per chunk.
  const { input, expected } = pipelineInput();
  const rig = new Rig(true);
  const chunks = input.split(/(?<=\r\n)(?=\*)/); // one command per chunk
  for (const c of chunks) rig.feed(c);
  const kept = chunks.filter((c) => expected.includes(c)).length;
  assert.equal(rig.sent.length, kept);
  assert.ok(rig.options.every((o) => o?.now === true));
  const batch = new Rig(true).feed(input);
  assert.equal(batch.sent.length, 1, "a pipelined chunk is sent as one piece");
  const plain = new Rig(false, { default: "t" }).feed(cmd("AUTH", "p"));
  assert.deepEqual(plain.options, [undefined], "without --read-only the engine paces");
});

Deno.test("redis --read-only: the same output whatever the segmentation", () => {
  const { input, expected, writes } = pipelineInput();
  const rand = mulberry32(6);
  for (let round = 0; round < 200; round++) {
    const rig = new Rig(true).feed(input, randomSizes(rand, input.length));
    assert.equal(rig.text(), expected, `round ${round}`);
    assert.equal(rig.count("statements_dropped"), writes);
  }
  const bytewise = new Rig(true).feed(input, Array(input.length).fill(1));
  assert.equal(bytewise.text(), expected);
});

Deno.test("redis --read-only: MULTI/EXEC keeps the transaction with its reads only", () => {
  const input = cmd("MULTI") + cmd("INCR", "a") + cmd("GET", "a") + cmd("SET", "b", "2") +
    cmd("EXEC") + cmd("WATCH", "a") + cmd("MULTI") + cmd("DEL", "a") + cmd("DISCARD");
  const rig = new Rig(true).feed(input);
  assert.equal(
    rig.text(),
    cmd("MULTI") + cmd("GET", "a") + cmd("EXEC") + cmd("WATCH", "a") + cmd("MULTI") +
      cmd("DISCARD"),
  );
  assert.equal(rig.count("statements_dropped"), 3);
});

Deno.test("redis --read-only: inline commands are classified and sent as RESP", () => {
  const rig = new Rig(true).feed('GET a\r\nSET a b\r\n\r\n  get "x y"\nDEL a\r\nPING\n');
  assert.equal(rig.text(), cmd("GET", "a") + cmd("get", "x y") + cmd("PING"));
  assert.equal(rig.count("statements_dropped"), 2);
});

Deno.test("redis --read-only: AUTH is rewritten and kept, writes after it dropped; a later AUTH is rewritten only with --module-trust-logins", () => {
  const input = cmd("AUTH", "p") + cmd("SET", "a", "1") + cmd("GET", "a") + "AUTH p2\r\n";
  const rig = new Rig(true, { default: "t" });
  rig.feed(input);
  // production's reply to a login after other commands is not read: replayed unchanged
  assert.equal(rig.text(), cmd("AUTH", "t") + cmd("GET", "a") + cmd("AUTH", "p2"));
  assert.equal(rig.count("auth_rewritten"), 1);
  assert.equal(rig.count("auth_unchanged"), 1);
  assert.equal(rig.count("statements_dropped"), 1);
  const trusted = new Rig(true, { default: "t" }, "trust");
  trusted.feed(input);
  assert.equal(trusted.text(), cmd("AUTH", "t") + cmd("GET", "a") + cmd("AUTH", "t"));
  assert.equal(trusted.count("auth_rewritten"), 2);
});

Deno.test("redis --read-only: large values stream through (kept) or vanish (dropped)", () => {
  const big = "v".repeat(3 * 1024 * 1024);
  const input = cmd("SET", "k", big) + cmd("ECHO", big) + cmd("GET", "k");
  const rig = new Rig(true).feed(input, [100, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 7]);
  assert.equal(rig.text(), cmd("ECHO", big) + cmd("GET", "k"));
  assert.equal(rig.count("statements_dropped"), 1);
  // A command name longer than any known one is an unknown command: dropped, not buffered.
  const long = new Rig(true).feed(cmd("X".repeat(100_000), "a") + cmd("PING"));
  assert.equal(long.text(), cmd("PING"));
  assert.equal(long.count("statements_dropped"), 1);
});

Deno.test("redis --read-only: empty commands (*0, blank lines) are not sent", () => {
  const rig = new Rig(true).feed("*0\r\n\r\n" + cmd("PING") + "*-1\r\n");
  assert.equal(rig.text(), cmd("PING"));
  assert.equal(rig.count("statements_dropped"), 0);
});

Deno.test("redis --read-only: a stream Redis would not parse this way ends the session", () => {
  const bad = [
    "*abc\r\n",
    "*03\r\n",
    "*+1\r\n",
    "*1\r\n:4\r\nPING\r\n",
    "*1\r\n$-1\r\n",
    "*1\r\n$4\r\nPINGxx",
    "*1\r\n$4\r\nPING\rx",
    "*1\n$4\r\nPING\r\n",
    "*2000000\r\n",
    "*1\r\n$600000000\r\n",
    "*1\r\n$4" + "4".repeat(40) + "\r\n",
    "*" + "1".repeat(40),
    'GET "unbalanced\r\n',
    "GET 'a'b\r\n",
    "GET a\0b\r\n",
    "G".repeat(MAX_INLINE + 10),
  ];
  for (const input of bad) {
    const rig = new Rig(true).feed(cmd("GET", "ok") + input + cmd("PING"));
    assert.equal(rig.failed?.reason, "malformed", JSON.stringify(input.slice(0, 40)));
    assert.match(rig.failed?.detail ?? "", /^redis: /);
    assert.ok(!rig.text().includes("PING"), "nothing after the bad frame is sent");
  }
});

Deno.test("redis --read-only: a partial command at close is never sent", () => {
  const rig = new Rig(true);
  rig.feed(cmd("GET", "a") + "*2\r\n$3\r\nGET\r\n$5\r\nab");
  rig.session.clientClosed?.();
  rig.feed("cde\r\n");
  // GET's prefix is sent once its name is known (its tail would follow); nothing after close.
  assert.equal(rig.text(), cmd("GET", "a") + "*2\r\n$3\r\nGET\r\n$5\r\nab");
});

/** Parses a RESP stream of arrays of bulk strings (the test's own, strict reader). */
function parseCommands(bytes: Uint8Array): string[][] {
  const s = dec.decode(bytes);
  const cmds: string[][] = [];
  let p = 0;
  const line = (): string => {
    const e = s.indexOf("\r\n", p);
    assert.ok(e > p, `line at ${p}`);
    const l = s.slice(p, e);
    p = e + 2;
    return l;
  };
  while (p < s.length) {
    const head = line();
    assert.equal(head[0], "*");
    const n = Number(head.slice(1));
    const args: string[] = [];
    for (let i = 0; i < n; i++) {
      const b = line();
      assert.equal(b[0], "$");
      const len = Number(b.slice(1));
      args.push(s.slice(p, p + len));
      p += len;
      assert.equal(s.slice(p, p + 2), "\r\n");
      p += 2;
    }
    cmds.push(args);
  }
  return cmds;
}

Deno.test("redis --read-only: fuzzed streams never throw and only reads reach the target", () => {
  const rand = mulberry32(1717);
  const names = ["GET", "SET", "DEL", "PING", "CONFIG", "GET\r\n", "MULTI", "EXEC", "AUTH"];
  let checked = 0;
  let reads = 0;
  for (let round = 0; round < 2000; round++) {
    // A valid pipeline with random mutations (byte flips, truncation, junk).
    let input = "";
    const count = 1 + Math.floor(rand() * 6);
    for (let i = 0; i < count; i++) {
      const name = names[Math.floor(rand() * names.length)];
      input += rand() < 0.2 ? `${name} k v\r\n` : cmd(name, "k", rand() < 0.5 ? "v" : "GET");
    }
    const bytes = enc.encode(input);
    const flips = Math.floor(rand() * 3);
    for (let f = 0; f < flips; f++) {
      bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
    }
    const rig = new Rig(true, { default: "t" }).feed(bytes, randomSizes(rand, bytes.length));
    rig.session.clientClosed?.();
    const out = concat(...rig.sent);
    // Whole commands only, unless the session failed (then a kept command may be cut).
    if (rig.failed !== null) continue;
    checked++;
    for (const args of parseCommands(out)) {
      reads++;
      const name = args[0].toLowerCase();
      const sub = args.length > 1 ? args[1].toLowerCase() : "";
      assert.ok(isReadCommand(name, sub), `write sent: ${JSON.stringify(args)}`);
    }
  }
  assert.ok(checked > 800 && reads > 1200, `only ${checked} streams / ${reads} reads checked`);
});

Deno.test("redis: inline splitting follows Redis (quotes, escapes, errors)", () => {
  const split = (s: string) => {
    const r = splitInline(enc.encode(s));
    return typeof r === "string" ? r : r.map((a) => dec.decode(a));
  };
  assert.deepEqual(split("  set  a   b "), ["set", "a", "b"]);
  assert.deepEqual(split("set \"a b\" 'c d'"), ["set", "a b", "c d"]);
  assert.deepEqual(split('echo "\\x41\\n\\xZZ"'), ["echo", "A\nxZZ"]);
  assert.deepEqual(split("echo 'it\\'s'"), ["echo", "it's"]);
  assert.deepEqual(split('ab"cd"'), ["abcd"]);
  assert.deepEqual(split(""), []);
  assert.equal(typeof split('"open'), "string");
  assert.equal(typeof split('"a"b'), "string");
  assert.equal(typeof split("'a'b"), "string");
});

// ---- production's verdict on a re-proved login (the confused-deputy guard) ----

const DANGER = cmd("CONFIG", "SET", "dir", "/tmp") + cmd("FLUSHALL");

Deno.test("redis adversary: production refuses the AUTH, commands pipelined after it never reach the target", () => {
  for (const readOnly of [false, true]) {
    for (
      const refusal of [
        "-WRONGPASS invalid username-password pair\r\n",
        "-ERR invalid password\r\n",
      ]
    ) {
      const rig = new Rig(readOnly, { default: "target-pw" }, "manual");
      rig.feed(cmd("AUTH", "guess") + DANGER, [7]);
      assert.equal(rig.text(), cmd("AUTH", "target-pw"), "only the re-proved AUTH is sent");
      assert.equal(rig.passed, 0);
      rig.session.client(enc.encode(cmd("GET", "k")));
      rig.session.online!(enc.encode(refusal));
      assert.equal(rig.failed?.reason, "online_login_failed");
      assert.equal(rig.text(), cmd("AUTH", "target-pw"), `${readOnly}: nothing after it`);
      assert.ok(!rig.failed!.detail.includes("target-pw"));
      rig.session.client(enc.encode(cmd("GET", "k")));
      assert.equal(rig.sent.length, 1);
    }
  }
});

Deno.test("redis adversary: production's reply to the AUTH unknown (gap, close) never replays", () => {
  const a = new Rig(false, { default: "pw" }, "manual");
  a.feed(cmd("AUTH", "x") + DANGER);
  a.session.onlineGap!(5);
  assert.equal(a.failed?.reason, "online_login_unknown");
  assert.equal(a.text(), cmd("AUTH", "pw"));
  const b = new Rig(false, { default: "pw" }, "manual");
  b.feed(cmd("AUTH", "x") + DANGER);
  assert.equal(b.session.clientClosed!(), true, "the stream waits for production's verdict");
  assert.equal(b.text(), cmd("AUTH", "pw"));
  assert.equal(b.passed, 0);
});

Deno.test("redis: production's +OK (or HELLO map) releases what waited, in order; split anywhere", () => {
  const hello = "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n" +
    "$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n" +
    "$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
  const replies = "+OK\r\n" + hello + "+PONG\r\n";
  const input = cmd("AUTH", "u", "x") + cmd("HELLO", "3", "AUTH", "u", "y") + cmd("PING") +
    cmd("GET", "k");
  for (let cut = 0; cut <= replies.length; cut++) {
    const rig = new Rig(false, { u: "pw" }, "manual");
    rig.feed(input);
    assert.equal(rig.text(), cmd("AUTH", "u", "pw"), "the first AUTH only, until its +OK");
    rig.session.online!(enc.encode(replies.slice(0, cut)));
    rig.session.online!(enc.encode(replies.slice(cut)));
    assert.equal(rig.failed, null, `cut ${cut}`);
    assert.equal(
      rig.text(),
      cmd("AUTH", "u", "pw") + cmd("HELLO", "3", "AUTH", "u", "pw") + cmd("PING") + cmd("GET", "k"),
      `cut ${cut}`,
    );
    assert.equal(rig.passed, 1);
    assert.ok(rig.options.slice(1).every((o) => o?.now), "released at once");
  }
});

Deno.test("redis: without a re-proved login nothing waits for production (no auth file line)", () => {
  const rig = new Rig(false, {}, "manual");
  rig.feed(cmd("AUTH", "x") + cmd("GET", "k"));
  assert.equal(rig.text(), cmd("AUTH", "x") + cmd("GET", "k"));
  assert.equal(rig.passed, 1);
  assert.equal(rig.count("auth_unchanged"), 1);
});
