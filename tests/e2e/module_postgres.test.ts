/**
 * `--module postgres` end to end: two real PostgreSQL servers (online host and target, each in
 * its namespace, same user and password, their own salts and nonces), real `pgbench` clients on
 * the online host's client namespace, tcpcopy with `--module postgres --auth-file F` on the online
 * host and intercept (NFQUEUE, payload prefix for authenticated peers) on the target.
 *
 * - SCRAM-SHA-256 (`password_encryption = scram-sha-256`, `scram-sha-256` in pg_hba on both):
 *   `pgbench -t N -c 4` and `pgbench -C` replay with 0 loss: the target ends with the same
 *   number of pgbench_history rows (one per transaction) and authorized as many logins.
 * - MD5 (`password_encryption = md5`, `md5` in pg_hba): the same.
 * - With intercept's default reply prefix (128 bytes: login replies cut): the same for SCRAM.
 * - `--read-only` (pgbench simple, then `-M prepared`): the target's tables stay unchanged (no
 *   history row, balances 0) while the reads replicate (index scans of pgbench_accounts grow).
 *
 * The servers run as user nobody (initdb refuses root) from a temporary folder nobody owns.
 */
import assert from "node:assert/strict";
import { type Cleanup, isRoot, type Netns, waitFor, withNetns } from "../helpers/netns.ts";
import { buildLab, type Lab } from "../helpers/lab.ts";
import {
  interceptCmd,
  readText,
  type Started,
  startLogged,
  stopTcpcopy,
  tcpcopyCmd,
} from "../helpers/replication.ts";
import {
  PG_DB as DB,
  PG_PORT,
  PG_USER as USER,
  type PgServer,
  postgresBin,
  psql,
  startPostgres,
} from "../helpers/postgres_server.ts";

const PASSWORD = "e2e-pw-not-the-production-one";
const PG_BIN = postgresBin();

type Method = "scram-sha-256" | "md5";
type Pg = PgServer;

/** Creates, configures and starts a server on `ip:5432` in `ns`; `pgbench -i` on it. */
function startPg(env: Cleanup, ns: Netns, ip: string, root: string, method: Method): Promise<Pg> {
  const dir = `${root}/pg-${ns.name}`;
  return startPostgres(env, {
    ns,
    ip,
    dir,
    method,
    password: PASSWORD,
    maxConnections: 40,
    logConnections: true,
  });
}

/** The conninfo a client uses over TCP (password authentication on both servers). */
function conninfo(ip: string): string {
  return `host=${ip} port=${PG_PORT} user=${USER} password='${
    PASSWORD.replaceAll("'", "\\'")
  }' dbname=${DB}`;
}

/** Runs pgbench in the client namespace; returns the processed transaction count. */
async function pgbench(client: Netns, ip: string, args: string[]): Promise<number> {
  const argv = ["pgbench", "-n", ...args, conninfo(ip)];
  const r = await client.exec(argv, { timeoutMs: 180_000, check: false });
  const m = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  if (r.code !== 0 || !m) {
    throw new Error(`pgbench ${args.join(" ")} failed: ${r.stderr}${r.stdout}`);
  }
  return Number(m[1]);
}

/** Counts pgbench's "connection authorized" lines of a server log (logins that passed). */
async function authorized(pg: Pg): Promise<number> {
  const re = / connection authorized: user=bench database=bench application_name=pgbench/;
  return (await readText(pg.log)).split("\n").filter((l) => re.test(l)).length;
}

/** The server's log lines about failed or cut connections (for failure messages). */
async function troubles(pg: Pg): Promise<string> {
  const lines = (await readText(pg.log)).split("\n").filter((l) =>
    /FATAL|ERROR|could not|unexpected|incomplete/.test(l)
  );
  return `${lines.length} lines: ${lines.slice(0, 12).join(" | ")}`;
}

interface Rig {
  lab: Lab;
  online: Pg;
  target: Pg;
  tcpcopy: Started;
  intercept: Started;
}

/** The lab, both servers, intercept and tcpcopy with the module. */
async function startRig(
  env: Cleanup,
  method: Method,
  tcpcopyExtra: string[] = [],
  maxPrefix: number | "default" = 512,
): Promise<Rig> {
  const lab = await buildLab(env, 1);
  const h = lab.online[0];
  const root = await Deno.makeTempDir({ prefix: "tcpcopy-pg-" });
  env.defer(() => Deno.remove(root, { recursive: true }));
  await Deno.chmod(root, 0o755);
  const [online, target] = await Promise.all([
    startPg(env, h.ns, h.ip, root, method),
    startPg(env, lab.target, lab.targetIp, root, method),
  ]);
  const secret = `${lab.dir}/secret`, authFile = `${lab.dir}/auth`;
  await Deno.writeTextFile(secret, "module e2e shared secret, 32 bytes\n", { mode: 0o600 });
  await Deno.writeTextFile(authFile, `${USER}:${PASSWORD}\n`, { mode: 0o600 });
  await Deno.chmod(secret, 0o600);
  await Deno.chmod(authFile, 0o600);
  const intercept = startLogged(
    env,
    lab.target,
    interceptCmd([
      "--port",
      String(PG_PORT),
      "--secret-file",
      secret,
      ...(maxPrefix === "default" ? [] : ["--max-prefix", String(maxPrefix)]),
      "--stats-interval",
      "0",
      "--drain-seconds",
      "0",
    ]),
    `${lab.dir}/intercept`,
  );
  const listening = await waitFor(
    async () => {
      const r = await h.ns.exec(["bash", "-c", `exec 3<>/dev/tcp/${lab.targetIp}/36524`], {
        check: false,
      });
      return r.code === 0;
    },
    20_000,
    100,
  );
  if (!listening) throw new Error(`intercept did not start: ${await readText(intercept.err)}`);
  const args = [
    "-x",
    `${h.ip}:${PG_PORT}-${lab.targetIp}:${PG_PORT}`,
    "-s",
    lab.targetIp,
    "-i",
    h.clientSideIf,
    "--stats-interval",
    "1",
    "--secret-file",
    secret,
    "--module",
    "postgres",
    "--auth-file",
    authFile,
    ...tcpcopyExtra,
  ];
  const tcpcopy = startLogged(env, h.ns, tcpcopyCmd(args), `${lab.dir}/tcpcopy`);
  const up = await waitFor(
    async () => /\] replicating/.test(await readText(tcpcopy.err)),
    20_000,
    50,
  );
  if (!up) throw new Error(`tcpcopy did not start: ${await readText(tcpcopy.err)}`);
  return { lab, online, target, tcpcopy, intercept };
}

/** Polls `count` until it reaches `want` or stops moving for 5 s (bounded to 60 s). */
async function settled(count: () => Promise<number>, want: number): Promise<number> {
  let last = -1, since = Date.now();
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const n = await count();
    if (n >= want) return n;
    if (n !== last) [last, since] = [n, Date.now()];
    else if (Date.now() - since > 5000) return n;
    await new Promise((r) => setTimeout(r, 250));
  }
  return await count();
}

const history = (pg: Pg) => psql(pg, "SELECT count(*) FROM pgbench_history").then(Number);

/** Replays `pgbench -t` and `pgbench -C` with `method` logins; asserts the target did the same work. */
async function replayBoth(method: Method, maxPrefix: number | "default" = 512): Promise<void> {
  await withNetns(async (env) => {
    const rig = await startRig(env, method, [], maxPrefix);
    const client = rig.lab.online[0].client;
    const base = [await authorized(rig.online), await authorized(rig.target)]; // pgbench -i
    const t0 = Date.now();
    const keep = await pgbench(client, rig.online.ip, ["-t", "200", "-c", "4"]);
    const short = await pgbench(client, rig.online.ip, ["-C", "-t", "100", "-c", "4"]);
    const runMs = Date.now() - t0;
    const online = await history(rig.online);
    assert.equal(online, keep + short, "one history row per transaction online");
    const target = await settled(() => history(rig.target), online);
    const logins = [await authorized(rig.online) - base[0], await authorized(rig.target) - base[1]];
    const stop = await stopTcpcopy(rig.tcpcopy);
    const last = stop.stats.at(-1) ?? {};
    console.log(
      `[postgres ${method} prefix ${maxPrefix}] transactions online=${online} target=${target} loss=${
        ((online - target) / online).toFixed(4)
      } logins online=${logins[0]} target=${logins[1]} (replay rate ${
        (logins[1] / logins[0]).toFixed(4)
      }) ` +
        `pgbench ${runMs} ms tcpcopy cpu=${stop.cpuS.toFixed(2)}s`,
    );
    console.log(`[stats] ${JSON.stringify(last)}`);
    if (target !== online) console.log(`[target server log] ${await troubles(rig.target)}`);
    assert.equal(target, online, `loss must be 0 (tcpcopy log: ${stop.log.slice(-2000)})`);
    assert.equal(logins[1], logins[0], "every login was replayed and accepted by the target");
    // every replayed request was answered (the held post-login ones too: target ACK windows).
    // `answered` is a lower bound for module sessions (README, Databases, `requests.answered`): in ~1 of 5 suites
    // one request of ~10,000 was not counted (9,909 of 9,910, 9,925 of 9,926, 7,749 of 7,750,
    // 4,550 of 4,551) while every transaction and login above reached the target; allowed: 2.
    const req = last.requests as Record<string, number>;
    assert.ok(
      req.answered <= req.sent && req.sent - req.answered <= 2,
      `requests ${JSON.stringify(req)}`,
    );
    assert.equal(stop.code, 0, stop.log);
  });
}

const ignore = !isRoot() || PG_BIN === undefined; // needs root (namespaces) and a PostgreSQL server

Deno.test({
  name: "module postgres e2e: SCRAM-SHA-256 logins, pgbench and pgbench -C replay with loss 0",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => replayBoth("scram-sha-256"),
});

Deno.test({
  name: "module postgres e2e: MD5 logins, pgbench and pgbench -C replay with loss 0",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => replayBoth("md5"),
});

Deno.test({
  name:
    "module postgres e2e: with intercept's default reply prefix (cut login replies) SCRAM logins still replay",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => replayBoth("scram-sha-256", "default"),
});

Deno.test({
  name:
    "module postgres e2e: --read-only leaves the target's tables unchanged while reads replicate",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rig = await startRig(env, "scram-sha-256", ["--read-only"]);
      const client = rig.lab.online[0].client;
      const scans = (pg: Pg) =>
        psql(
          pg,
          "SELECT coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'pgbench_accounts'",
        )
          .then(Number);
      const before = await scans(rig.target);
      const t0 = Date.now();
      // simple protocol, then prepared statements (Parse/Bind/Execute: dropped by statement name)
      const n = await pgbench(client, rig.online.ip, ["-t", "100", "-c", "4"]) +
        await pgbench(client, rig.online.ip, ["-M", "prepared", "-t", "50", "-c", "4"]);
      const runMs = Date.now() - t0;
      const online = await history(rig.online);
      assert.equal(online, n);
      // each transaction reads one account by its key: the target's index scans grow by n
      const after = await settled(() => scans(rig.target), before + n);
      const settleMs = Date.now() - t0 - runMs;
      const stop = await stopTcpcopy(rig.tcpcopy);
      const balance = await psql(rig.target, "SELECT sum(abalance) FROM pgbench_accounts");
      const targetHistory = await history(rig.target);
      console.log(
        `[postgres read-only] online transactions=${online} target history=${targetHistory} ` +
          `target account scans +${after - before} balance sum=${balance} ` +
          `pgbench ${runMs} ms, target scans settled ${settleMs} ms later`,
      );
      console.log(`[stats] ${JSON.stringify(stop.stats.at(-1) ?? {})}`);
      // requests sent at once: answered counts by the target's ACK windows, never above
      // what was sent (requests that reached the target together count once)
      const req = (stop.stats.at(-1) ?? {}).requests as Record<string, number>;
      assert.ok(req.answered > 0 && req.answered <= req.sent, `requests ${JSON.stringify(req)}`);
      assert.equal(targetHistory, 0, "no INSERT reached the target");
      assert.equal(balance, "0", "no UPDATE reached the target");
      assert.ok(
        after - before >= n,
        `reads replicated: ${after - before} scans for ${n} transactions`,
      );
      assert.equal(stop.code, 0, stop.log);
    }),
});

/** A PostgreSQL message: type byte, length, body. */
function pgMessage(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setUint32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

const cstring = (s: string) => new TextEncoder().encode(s + "\0");

/**
 * The adversary: a raw client that names the auth file's user, answers production's MD5
 * challenge with a wrong proof and pipelines `CREATE TABLE pwned ()` right after it (in the
 * same write), without waiting for production's verdict. Returns whether production refused.
 */
async function attack(rig: Rig): Promise<boolean> {
  const h = rig.lab.online[0];
  const params = [...cstring("user"), ...cstring(USER), ...cstring("database"), ...cstring(DB), 0];
  const startup = new Uint8Array(8 + params.length);
  new DataView(startup.buffer).setUint32(0, startup.length);
  new DataView(startup.buffer).setUint32(4, 196608);
  startup.set(params, 8);
  const proof = pgMessage("p", cstring("md5" + "0".repeat(32))); // not the password's
  const query = pgMessage("Q", cstring("CREATE TABLE pwned ()"));
  const dir = rig.lab.dir;
  await Deno.writeFile(`${dir}/startup.bin`, startup);
  await Deno.writeFile(`${dir}/attack.bin`, new Uint8Array([...proof, ...query]));
  const script = `exec 3<>/dev/tcp/${rig.online.ip}/${PG_PORT}; cat ${dir}/startup.bin >&3; ` +
    `sleep 0.5; cat ${dir}/attack.bin >&3; timeout 2 cat <&3 > ${dir}/answer.bin; exit 0`;
  await h.client.exec(["bash", "-c", script], { timeoutMs: 20_000 });
  const log = await readText(rig.online.log);
  return /password authentication failed for user "bench"/.test(log);
}

const pwned = (pg: Pg) =>
  psql(pg, "SELECT count(*) FROM pg_tables WHERE tablename = 'pwned'").then(Number);

Deno.test({
  name:
    "module postgres e2e adversary: a login production refuses, with a query pipelined after the proof, never runs on the target",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      // default: production's verdict awaited
      const rig = await startRig(env, "md5");
      assert.equal(await attack(rig), true, "production refused the wrong password");
      assert.equal(await pwned(rig.online), 0, "production did not run it");
      // the replayed login itself is fine: show the target ran nothing after it
      await new Promise((r) => setTimeout(r, 2000));
      const stop = await stopTcpcopy(rig.tcpcopy);
      const mods = ((stop.stats.at(-1) ?? {}).modules as Record<string, Record<string, number>>)
        .postgres;
      console.log(
        `[postgres adversary] target pwned=${await pwned(rig.target)} ${JSON.stringify(mods)}`,
      );
      assert.equal(await pwned(rig.target), 0, "the pipelined query never reached the target");
      assert.equal(mods.online_login_failed, 1, stop.log.slice(-2000));
      assert.equal(mods.passed, 0);
      assert.match(stop.log, /online_login_failed/);
      assert.equal(stop.code, 0, stop.log);
    }),
});

Deno.test({
  name:
    "module postgres e2e adversary: with --module-trust-logins the same attack runs on the target (what the default prevents)",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rig = await startRig(env, "md5", ["--module-trust-logins"]);
      assert.equal(await attack(rig), true, "production refused the wrong password");
      const n = await settled(() => pwned(rig.target), 1);
      const stop = await stopTcpcopy(rig.tcpcopy);
      console.log(`[postgres adversary, trusted logins] target pwned=${n}`);
      assert.equal(n, 1, "the unsafe opt-out replays the query as the auth file's user");
      assert.equal(stop.code, 0, stop.log);
    }),
});
