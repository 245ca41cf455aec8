/**
 * `--compare` end to end on Redis and PostgreSQL (issue 15): the same server on the online host
 * and on the target, intercept `--compare`, tcpcopy `--compare --compare-all` (both with
 * `--secret-file`), real clients in the client namespace.
 *
 * - redis (no password): the same keys on both sides except `k3` (another value of the same
 *   length on the target). A redis-cli script reads every key several ways; exactly the
 *   requests that read `k3` mismatch, with reason `body`, nothing else.
 * - PostgreSQL with `trust` for TCP logins on both servers (no module). `pgbench -c 1` (TPC-B)
 *   on the same data: 0 mismatches. Then `pgbench_accounts` changed on the target: exactly the
 *   `SELECT abalance FROM pgbench_accounts ...` requests mismatch, named in the records and in
 *   the exit summary.
 * - PostgreSQL with SCRAM-SHA-256 logins on both servers and `--module postgres --auth-file F`:
 *   compared from the module's pass on (its login differs on the two sides). The same two runs
 *   (pgbench pausing before each transaction, so one statement is held during the login), then
 *   pgbench without pauses: the requests held during the login, sent together with the pass,
 *   must not spill into the answers of the first ones compared after it.
 */
import assert from "node:assert/strict";
import { type Cleanup, isRoot, type Netns, waitFor, withNetns } from "../helpers/netns.ts";
import { buildLab, type Lab } from "../helpers/lab.ts";
import {
  interceptCmd,
  readText,
  type Started,
  startLogged,
  type Stopped,
  stopTcpcopy,
  tcpcopyCmd,
} from "../helpers/replication.ts";
import { startRedisServer } from "../helpers/redis_server.ts";
import type { CompareRecord } from "../../lib/compare/record.ts";
import {
  PG_DB as DB,
  PG_PORT,
  PG_USER as USER,
  type PgServer,
  postgresBin,
  psql,
  startPostgres,
} from "../helpers/postgres_server.ts";

const TUNNEL_PORT = 36524;

/** A lab with intercept --compare on the target for `port`. */
interface CompareLab {
  lab: Lab;
  on: Lab["online"][number];
  secret: string;
  intercept: Started;
}

async function compareLab(env: Cleanup): Promise<CompareLab> {
  const lab = await buildLab(env, 1);
  const on = lab.online[0];
  const secret = `${lab.dir}/secret`;
  await Deno.writeTextFile(secret, "compare e2e secret, 32 bytes long\n", { mode: 0o600 });
  await Deno.chmod(secret, 0o600);
  return { lab, on, secret, intercept: undefined as unknown as Started };
}

/** intercept --compare for `port` on the target (`extra`: more of its options). */
async function startIntercept(
  env: Cleanup,
  c: CompareLab,
  port: number,
  extra: string[] = [],
): Promise<void> {
  c.intercept = startLogged(
    env,
    c.lab.target,
    interceptCmd([
      "--port",
      String(port),
      "--secret-file",
      c.secret,
      "--compare",
      "--stats-interval",
      "0",
      "--drain-seconds",
      "0",
      ...extra,
    ]),
    `${c.lab.dir}/intercept`,
  );
  const listening = await waitFor(
    async () =>
      (await c.on.ns.exec(["bash", "-c", `exec 3<>/dev/tcp/${c.lab.targetIp}/${TUNNEL_PORT}`], {
        check: false,
      })).code === 0,
    20_000,
    100,
  );
  if (!listening) throw new Error(`intercept did not start: ${await readText(c.intercept.err)}`);
}

/** tcpcopy --compare --compare-all for `port`, records into `log` (`extra`: more options). */
async function startCompare(
  env: Cleanup,
  c: CompareLab,
  port: number,
  log: string,
  name: string,
  extra: string[] = [],
): Promise<Started> {
  const t = startLogged(
    env,
    c.on.ns,
    tcpcopyCmd([
      "-x",
      `${c.on.ip}:${port}-${c.lab.targetIp}:${port}`,
      "-s",
      c.lab.targetIp,
      "-i",
      c.on.clientSideIf,
      "--stats-interval",
      "1",
      "--secret-file",
      c.secret,
      "--compare",
      "--compare-all",
      "--compare-log",
      log,
      ...extra,
    ]),
    `${c.lab.dir}/${name}`,
  );
  const up = await waitFor(async () => /\] replicating/.test(await readText(t.err)), 20_000, 50);
  if (!up) throw new Error(`tcpcopy did not start: ${await readText(t.err)}`);
  return t;
}

function records(text: string): CompareRecord[] {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
    .filter((r) => r.type === "compare");
}

/** Waits until `want` records are logged (or 20 s), stops tcpcopy, returns both. */
async function finish(
  t: Started,
  log: string,
  want: number,
): Promise<{ recs: CompareRecord[]; stop: Stopped }> {
  await waitFor(async () => records(await readText(log)).length >= want, 20_000, 200);
  const stop = await stopTcpcopy(t);
  return { recs: records(await readText(log)), stop };
}

function show(tag: string, recs: CompareRecord[]): void {
  console.log(`[${tag}] ${recs.length} records`);
  for (const r of recs.filter((r) => !r.match).slice(0, 20)) {
    console.log(`  ${r.request} ${r.reason} ${JSON.stringify(r.diff ?? null)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Redis

const REDIS_PORT = 6379;

/** redis-server in `ns` on `ip` (with `requirepass` when `password`), up within 5 s. */
function startRedis(
  env: Cleanup,
  ns: Netns,
  ip: string,
  dir: string,
  password?: string,
): Promise<void> {
  return startRedisServer(env, { ns, ip, port: REDIS_PORT, dir, waitMs: 5000, password });
}

/**
 * redis-cli from `ns` to `ip` with a script on stdin (one command per line, one at a time),
 * logged in with `password` first when given (`AUTH default password`).
 */
async function redisCli(
  ns: Netns,
  ip: string,
  script: string,
  password?: string,
): Promise<string> {
  const auth = password === undefined
    ? []
    : ["--user", "default", "--pass", password, "--no-auth-warning"];
  const argv = ["redis-cli", "-h", ip, "-p", String(REDIS_PORT), ...auth];
  return (await ns.exec(argv, { stdin: script, timeoutMs: 15_000 })).stdout;
}

/**
 * The same keys on both servers except `k3`; a redis-cli script reads every key several ways:
 * exactly the requests that read `k3` mismatch, with reason `body`, nothing else. With
 * passwords (`requirepass`, another one on each server, of another length): tcpcopy replays
 * with `--module redis --auth-file` (the target's password), which rewrites the AUTH and
 * passes the session at the next command; compared from there.
 */
async function redisCompare(env: Cleanup, passwords?: { online: string; target: string }) {
  const c = await compareLab(env);
  const { on, lab } = c;
  await startRedis(env, on.ns, on.ip, `${lab.dir}/redis-online`, passwords?.online);
  await startRedis(env, lab.target, lab.targetIp, `${lab.dir}/redis-target`, passwords?.target);
  const data = (k3: string) =>
    `SET k1 value-1\nSET k2 value-2\nSET k3 ${k3}\nSET k4 value-4\nRPUSH l a b c\n`;
  await redisCli(on.ns, on.ip, data("value-3"), passwords?.online);
  await redisCli(lab.target, lab.targetIp, data("VALUE-3"), passwords?.target);
  await startIntercept(env, c, REDIS_PORT);
  let module: string[] = [];
  if (passwords !== undefined) {
    const auth = `${lab.dir}/auth`;
    await Deno.writeTextFile(auth, `default:${passwords.target}\n`, { mode: 0o600 });
    await Deno.chmod(auth, 0o600);
    module = ["--module", "redis", "--auth-file", auth];
  }
  const log = `${lab.dir}/compare.ndjson`;
  const t = await startCompare(env, c, REDIS_PORT, log, "tcpcopy", module);
  const script = [
    "GET k1",
    "GET k2",
    "GET k3",
    "GET k4",
    "MGET k1 k2",
    "MGET k2 k3",
    "STRLEN k3",
    "EXISTS k1 k3",
    "LRANGE l 0 -1",
    "GET k3",
    "GET missing",
    "GETRANGE k3 0 2",
    "GETRANGE k3 6 6",
  ];
  const out = await redisCli(on.client, on.ip, script.join("\n") + "\n", passwords?.online);
  assert.match(out, /value-3/, "the online server answered");
  const { recs, stop } = await finish(t, log, script.length);
  const tag = passwords === undefined ? "redis" : "redis --module";
  show(tag, recs);
  assert.equal(stop.code, 0, stop.log);
  await assertLogComplete(t, recs);
  const stats = await lastStats(t);
  // redis-cli asks for COMMAND DOCS first: a map whose order follows each server's random
  // hash seed, so two identical servers answer it differently (a true difference, left out);
  // with the module it is the command the module passes at (sent with the pass: not compared)
  const own = recs.filter((r) => r.request.startsWith("COMMAND"));
  assert.ok(own.length <= (passwords === undefined ? 1 : 0), JSON.stringify(own));
  assert.equal(recs.length, script.length + own.length, stats);
  const bad = recs.filter((r) => !r.match && !r.request.startsWith("COMMAND"))
    .map((r) => `${r.request} ${r.reason}`).sort();
  // STRLEN and EXISTS agree (same length, key present), GETRANGE k3 6 6 reads "-" on both
  assert.deepEqual(bad, [
    "GET k3 body",
    "GET k3 body",
    "GETRANGE k3 0 2 body",
    "MGET k2 k3 body",
  ]);
  assert.match(stop.log, /compare: top mismatching requests: .*GET/);
  if (passwords !== undefined) {
    assert.match(stats, /"auth_rewritten":1\b/, stats);
    assert.match(stats, /"passed":1\b/, stats);
    // no AUTH among the records, and its answer (and COMMAND DOCS') counted nowhere
    assert.deepEqual(recs.filter((r) => /AUTH/i.test(r.request)), []);
    assert.match(stats, /"unpaired":0\b/, stats);
  }
}

Deno.test({
  name: "tcpcopy --compare e2e redis: one key changed on the target, exactly its reads mismatch",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => withNetns((env) => redisCompare(env)),
});

Deno.test({
  name:
    "tcpcopy --compare --module redis e2e (requirepass, other passwords): the same reads mismatch, the AUTH is not compared",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns((env) =>
      redisCompare(env, { online: "online-pw", target: "a-longer-target-password" })
    ),
});

// ---------------------------------------------------------------------------------------------
// PostgreSQL

const PG_BIN = postgresBin();
type Pg = PgServer;

/** The password of SCRAM logins (the same on both servers, their own salts and nonces). */
const PG_PASSWORD = "compare-e2e-pw";

/**
 * A server on `ip:5432`, `pgbench -i -s 1` on it: trusting every login (no module needed), or
 * with SCRAM-SHA-256 password logins (`--module postgres` replays them).
 */
function startPg(
  env: Cleanup,
  ns: Netns,
  ip: string,
  root: string,
  method: "trust" | "scram-sha-256" = "trust",
): Promise<Pg> {
  const dir = `${root}/pg-${ns.name}`;
  const password = method === "trust" ? undefined : PG_PASSWORD;
  return startPostgres(env, { ns, ip, dir, method, password, maxConnections: 20 });
}

/**
 * pgbench's built-in TPC-B script after a client-side pause (`\\sleep`): each transaction starts
 * `ms` later, so the first one starts after the module's login on the target is done.
 */
function tpcbAfter(ms: number): string {
  return [
    `\\sleep ${ms} ms`,
    "\\set aid random(1, 100000 * :scale)",
    "\\set bid random(1, 1 * :scale)",
    "\\set tid random(1, 10 * :scale)",
    "\\set delta random(-5000, 5000)",
    "BEGIN;",
    "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;",
    "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;",
    "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;",
    "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) " +
    "VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);",
    "END;",
  ].join("\n") + "\n";
}

/**
 * `pgbench -n -c 1 -t N` (simple protocol, TPC-B, or the script file `script`) from the client
 * namespace; 7 requests each.
 */
async function pgbench(
  client: Netns,
  ip: string,
  transactions: number,
  password?: string,
  script?: string,
  more: string[] = [],
): Promise<void> {
  const argv = [
    "pgbench",
    "-n",
    ...(script === undefined ? [] : ["-f", script]),
    ...more,
    "-c",
    "1",
    "-t",
    String(transactions),
    `host=${ip} port=${PG_PORT} user=${USER} dbname=${DB}` +
    (password === undefined ? "" : ` password=${password}`),
  ];
  const r = await client.exec(argv, { timeoutMs: 120_000, check: false });
  if (r.code !== 0) throw new Error(`pgbench failed: ${r.stderr}${r.stdout}`);
}

Deno.test({
  name: "tcpcopy --compare e2e pgbench: same data 0 mismatches; a changed table's reads named",
  ignore: !isRoot() || PG_BIN === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const c = await compareLab(env);
      const { on, lab } = c;
      const root = await Deno.makeTempDir({ prefix: "tcpcopy-cmp-pg-" });
      env.defer(() => Deno.remove(root, { recursive: true }));
      await Deno.chmod(root, 0o755);
      const [, target] = await Promise.all([
        startPg(env, on.ns, on.ip, root),
        startPg(env, lab.target, lab.targetIp, root),
      ]);
      await startIntercept(env, c, PG_PORT);
      const TX = 20;
      // same data: pgbench's transactions are replayed in order on one connection
      const log1 = `${lab.dir}/same.ndjson`;
      const t1 = await startCompare(env, c, PG_PORT, log1, "tcpcopy-same");
      await pgbench(on.client, on.ip, TX);
      // pgbench's first connection asks for the scale; the benchmark connection then runs
      // 7 statements per transaction (BEGIN, 3 UPDATEs, SELECT, INSERT, END) after its login
      const want = 2 + 1 + 1 + TX * 7;
      const same = await finish(t1, log1, want);
      show("pg same", same.recs);
      assert.equal(same.stop.code, 0, same.stop.log);
      await assertLogComplete(t1, same.recs);
      assert.ok(same.recs.length >= TX * 7, `${same.recs.length} records`);
      assert.deepEqual(
        same.recs.filter((r) => !r.match).map((r) => `${r.request} ${r.reason}`),
        [],
      );
      // one changed table on the target: every balance read differs, nothing else does
      await psql(target, "UPDATE pgbench_accounts SET abalance = abalance + 7");
      const log2 = `${lab.dir}/changed.ndjson`;
      const t2 = await startCompare(env, c, PG_PORT, log2, "tcpcopy-changed");
      await pgbench(on.client, on.ip, TX);
      const changed = await finish(t2, log2, want);
      show("pg changed", changed.recs);
      assert.equal(changed.stop.code, 0, changed.stop.log);
      await assertLogComplete(t2, changed.recs);
      const bad = changed.recs.filter((r) => !r.match);
      assert.equal(bad.length, TX, bad.map((r) => `${r.request} ${r.reason}`).join("; "));
      for (const r of bad) {
        assert.match(r.request, /^SELECT abalance FROM pgbench_accounts WHERE aid = \d+/);
        assert.equal(r.reason, "body", JSON.stringify(r));
      }
      assert.match(changed.stop.log, /compare: top mismatching requests: SELECT abalance/);
    }),
});

/** Both servers with SCRAM logins, intercept for the module, the auth file and TPC-B script. */
interface ScramLab {
  c: CompareLab;
  target: Pg;
  /** tcpcopy's module options. */
  module: string[];
  /** {@link tpcbAfter}(100) in a file. */
  script: string;
}

async function scramLab(env: Cleanup): Promise<ScramLab> {
  const c = await compareLab(env);
  const { on, lab } = c;
  const root = await Deno.makeTempDir({ prefix: "tcpcopy-cmp-pgmod-" });
  env.defer(() => Deno.remove(root, { recursive: true }));
  await Deno.chmod(root, 0o755);
  const [, target] = await Promise.all([
    startPg(env, on.ns, on.ip, root, "scram-sha-256"),
    startPg(env, lab.target, lab.targetIp, root, "scram-sha-256"),
  ]);
  const auth = `${lab.dir}/auth`;
  await Deno.writeTextFile(auth, `${USER}:${PG_PASSWORD}\n`, { mode: 0o600 });
  await Deno.chmod(auth, 0o600);
  // (the module reads the target's login replies: a prefix that holds them whole)
  await startIntercept(env, c, PG_PORT, ["--max-prefix", "512"]);
  const script = `${lab.dir}/tpcb.sql`;
  await Deno.writeTextFile(script, tpcbAfter(100));
  return { c, target, module: ["--module", "postgres", "--auth-file", auth], script };
}

/**
 * Waits until the records stop coming (none new for 3 s, at most 60 s: the replay may lag
 * production), stops tcpcopy, returns both.
 */
async function finishQuiet(
  t: Started,
  log: string,
): Promise<{ recs: CompareRecord[]; stop: Stopped }> {
  let n = -1;
  for (let i = 0; i < 20; i++) {
    const now = records(await readText(log)).length;
    if (now === n) break;
    n = now;
    await new Promise((r) => setTimeout(r, 3000));
  }
  const stop = await stopTcpcopy(t);
  return { recs: records(await readText(log)), stop };
}

/** The last stats line tcpcopy printed. */
async function lastStats(t: Started): Promise<string> {
  return (await readText(t.out)).trim().split("\n").at(-1) ?? "";
}

/**
 * With `--compare-all` the log holds one record per compared turn, and the final stats line
 * says so: `compare.compared` = `compare.log_records` = the records read back, no log errors.
 */
async function assertLogComplete(t: Started, recs: CompareRecord[]): Promise<void> {
  const stats = await lastStats(t);
  const c = (JSON.parse(stats) as {
    compare: { compared: number; log_records: number; log_errors: number };
  }).compare;
  assert.equal(c.compared, recs.length, stats);
  assert.equal(c.log_records, recs.length, stats);
  assert.equal(c.log_errors, 0, stats);
}

Deno.test({
  name:
    "tcpcopy --compare --module postgres e2e (SCRAM logins): same data 0 mismatches; a changed table's reads named",
  ignore: !isRoot() || PG_BIN === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const { c, target, module, script } = await scramLab(env);
      const { on, lab } = c;
      const TX = 20;
      // Each connection's login is the module's (other nonces and proofs than production's):
      // compared from the module's pass on. pgbench's first connection (the scale query) has
      // nothing after the pass; the benchmark connection pauses 100 ms before each transaction,
      // so what the module holds during the login (sent with the pass, not compared) is its
      // first statement or, on a slow login, its first transaction or two: 7 statements per
      // transaction are compared, less those.
      const most = TX * 7 - 1, least = TX * 7 - 21; // (up to 3 transactions held)
      const log1 = `${lab.dir}/same.ndjson`;
      const t1 = await startCompare(env, c, PG_PORT, log1, "tcpcopy-same", module);
      await pgbench(on.client, on.ip, TX, PG_PASSWORD, script);
      const same = await finishQuiet(t1, log1);
      show("pgmod same", same.recs);
      assert.equal(same.stop.code, 0, same.stop.log);
      await assertLogComplete(t1, same.recs);
      const stats = await lastStats(t1);
      assert.match(stats, /"passed":2\b/, `both logins replayed and passed: ${stats}`);
      assert.match(stats, /"unpaired":0\b/, stats); // the logins' answers count nowhere
      const n = same.recs.length;
      assert.ok(n >= least && n <= most, `${n} compared: ${stats}`);
      assert.deepEqual(
        same.recs.filter((r) => !r.match).map((r) => `${r.request} ${r.reason}`),
        [],
      );
      // no login message among the compared requests (SASL messages, the startup packet)
      const sql = /^(BEGIN|END|SELECT|UPDATE|INSERT)\b/;
      assert.deepEqual(same.recs.filter((r) => !sql.test(r.request)), []);
      // one changed table on the target: every balance read differs, nothing else does
      await psql(target, "UPDATE pgbench_accounts SET abalance = abalance + 7");
      const log2 = `${lab.dir}/changed.ndjson`;
      const t2 = await startCompare(env, c, PG_PORT, log2, "tcpcopy-changed", module);
      await pgbench(on.client, on.ip, TX, PG_PASSWORD, script);
      const changed = await finishQuiet(t2, log2);
      show("pgmod changed", changed.recs);
      assert.equal(changed.stop.code, 0, changed.stop.log);
      await assertLogComplete(t2, changed.recs);
      const m = changed.recs.length;
      assert.ok(m >= least && m <= most, `${m} compared: ${await lastStats(t2)}`);
      // every balance read compared mismatches (all but the held ones: one per transaction)
      const reads = changed.recs.filter((r) => r.request.startsWith("SELECT abalance"));
      assert.ok(reads.length >= TX - 3, `${reads.length} balance reads compared`);
      const bad = changed.recs.filter((r) => !r.match);
      assert.equal(bad.length, reads.length, bad.map((r) => `${r.request} ${r.reason}`).join("; "));
      for (const r of bad) {
        assert.match(r.request, /^SELECT abalance FROM pgbench_accounts WHERE aid = \d+/);
        assert.equal(r.reason, "body", JSON.stringify(r));
      }
      assert.match(changed.stop.log, /compare: top mismatching requests: SELECT abalance/);
    }),
});

Deno.test({
  name:
    "tcpcopy --compare --module postgres e2e (SCRAM logins): requests held during the login do not spill into the compared ones",
  ignore: !isRoot() || PG_BIN === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const { c, module } = await scramLab(env);
      const { on, lab } = c;
      // pgbench without pauses (1,000 transactions/s, ~1 s: at full speed the whole run can end
      // before the module's login on a loaded host): its statements keep coming while the
      // module logs in on the target, which gets them together with the pass; the first
      // statements after the pass must wait for all of their answers (else those answers run
      // into theirs: mismatches)
      const TX = 1000;
      const log = `${lab.dir}/held.ndjson`;
      const opts = [...module, "--compare-max-pending", "4096"];
      const t = await startCompare(env, c, PG_PORT, log, "tcpcopy-held", opts);
      await pgbench(on.client, on.ip, TX, PG_PASSWORD, undefined, ["-R", "1000"]);
      const { recs, stop } = await finishQuiet(t, log); // (the replay lags production)
      show("pgmod held", recs);
      assert.equal(stop.code, 0, stop.log);
      await assertLogComplete(t, recs);
      const stats = await lastStats(t);
      assert.match(stats, /"passed":2\b/, stats);
      assert.match(stats, /"shutdown":0\b/, `the replay was done: ${stats}`);
      const held = /"captured":(\d+)/.exec(stats.slice(stats.indexOf('"requests"')))?.[1];
      console.log(`[pgmod held] requests captured ${held}, ${recs.length} compared`);
      assert.ok(recs.length > 100, `${recs.length} compared: ${stats}`);
      assert.ok(recs.length <= TX * 7, `${recs.length} compared`);
      assert.deepEqual(recs.filter((r) => !r.match).map((r) => `${r.request} ${r.reason}`), []);
      // the replay lags production: turns over the budget are skipped and their answers are
      // unpaired; the login's answers add none
      const count = (k: string) => Number(new RegExp(`"${k}":(\\d+)`).exec(stats)?.[1]);
      assert.ok(count("unpaired") <= count("skipped"), stats);
    }),
});
