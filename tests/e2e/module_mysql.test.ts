/**
 * The MySQL module end to end: two MariaDB servers (online and target, fresh data directories,
 * the same user and password with mysql_native_password, different scrambles), real clients
 * (`mariadb` one connection per statement batch, and `mariadb-slap`) against the online server,
 * tcpcopy with `--module mysql --auth-file` and intercept with the reply payload extension
 * (both with `--secret-file`). Loss is counted from both servers' general query logs; the rows
 * are compared by checksum. With `--read-only`, the target's tables stay unchanged while the
 * reads replicate.
 */
import assert from "node:assert/strict";
import { type Cleanup, isRoot, type Netns, waitFor, withNetns } from "../helpers/netns.ts";
import { countLines } from "../helpers/lab.ts";
import {
  interceptCpu,
  readText,
  type Replication,
  report,
  settle,
  type Started,
  startLogged,
  startReplication,
  stopTcpcopy,
  tcpcopyCmd,
} from "../helpers/replication.ts";

const DB_PORT = 3306;
const USER = "app", PASSWORD = "e2e-Pass-7";
/** Connections of the statement loop (one login each). */
const LOOP_CONNECTIONS = 40;
/** mariadb-slap: concurrency x iterations logins, NUMBER_OF_QUERIES selects in all. */
const SLAP = { concurrency: 4, iterations: 3, queries: 600 };

interface Db {
  sock: string;
  generalLog: string;
}

/** A fresh MariaDB in `ns` on `ip`:3306 with user app and table shop.items. */
async function startMariadb(env: Cleanup, ns: Netns, ip: string, dir: string): Promise<Db> {
  await Deno.mkdir(dir, { recursive: true });
  const data = `${dir}/data`, sock = `${dir}/sock`, generalLog = `${dir}/general.log`;
  await ns.exec([
    "mariadb-install-db",
    "--no-defaults",
    `--datadir=${data}`,
    "--user=root",
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
  ], { timeoutMs: 120_000 });
  env.child(ns.spawn([
    "mariadbd",
    "--no-defaults",
    `--datadir=${data}`,
    "--user=root",
    `--bind-address=${ip}`,
    `--port=${DB_PORT}`,
    `--socket=${sock}`,
    `--pid-file=${dir}/pid`,
    `--log-error=${dir}/error.log`,
    "--skip-name-resolve",
    "--skip-log-bin",
    "--innodb-buffer-pool-size=16M",
    "--general-log=1",
    `--general-log-file=${generalLog}`,
  ], { stderr: "null" }));
  const up = await waitFor(
    async () =>
      (await ns.exec(["mariadb", "--no-defaults", `--socket=${sock}`, "-uroot", "-e", "SELECT 1"], {
        check: false,
      })).code === 0,
    60_000,
    200,
  );
  if (!up) throw new Error(`mariadbd did not start: ${await readText(`${dir}/error.log`)}`);
  await root(
    ns,
    sock,
    [
      `CREATE USER '${USER}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('${PASSWORD}')`,
      "CREATE DATABASE shop",
      `GRANT ALL ON shop.* TO '${USER}'@'%'`,
      "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(64), n INT)",
      "INSERT INTO shop.items VALUES (0, 'seed', 0)",
    ].join("; "),
  );
  return { sock, generalLog };
}

/** Runs SQL as root over the server's socket; returns the output (tab-separated, no names). */
async function root(ns: Netns, sock: string, sql: string): Promise<string> {
  const r = await ns.exec([
    "mariadb",
    "--no-defaults",
    `--socket=${sock}`,
    "-uroot",
    "-N",
    "-B",
    "-e",
    sql,
  ]);
  return r.stdout.trim();
}

/** Rows and a checksum of shop.items. */
function tableSum(ns: Netns, db: Db): Promise<string> {
  return root(
    ns,
    db.sock,
    "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS(',', id, name, n))), 0) FROM shop.items",
  );
}

/** tcpcopy for the MySQL port with the module, like startTcpcopy in replication.ts. */
async function startMysqlTcpcopy(
  env: Cleanup,
  rep: Replication,
  extra: string[],
): Promise<Started> {
  const h = rep.lab.online[0];
  const target = rep.lab.targetIps[0];
  const args = [
    "-x",
    `${h.ip}:${DB_PORT}-${target}:${DB_PORT}`,
    "-s",
    target,
    "-i",
    h.clientSideIf,
    "--stats-interval",
    "1",
    ...extra,
  ];
  const t = startLogged(env, h.ns, tcpcopyCmd(args), `${rep.lab.dir}/tcpcopy-mysql`);
  const up = await waitFor(async () => /\] replicating/.test(await readText(t.err)), 20_000, 50);
  if (!up) throw new Error(`tcpcopy did not start: ${await readText(t.err)}`);
  return t;
}

/** The lab with MariaDB on the online host and the target, intercept and tcpcopy with the module. */
async function mysqlLab(env: Cleanup, tcpcopyExtra: string[], authPassword = PASSWORD) {
  const dir = await Deno.makeTempDir({ prefix: "tcpcopy-mysql-" });
  env.defer(() => Deno.remove(dir, { recursive: true }));
  const secret = `${dir}/secret`, authFile = `${dir}/auth`;
  await Deno.writeTextFile(secret, "mysql e2e secret, 32 bytes long!\n", { mode: 0o600 });
  await Deno.chmod(secret, 0o600);
  await Deno.writeTextFile(authFile, `${USER}:${authPassword}\n`, { mode: 0o600 });
  await Deno.chmod(authFile, 0o600);
  const rep = await startReplication(env, {
    deferTcpcopy: true,
    interceptArgs: ["--port", String(DB_PORT), "--secret-file", secret, "--max-prefix", "512"],
  });
  const on = rep.online[0];
  const online = await startMariadb(env, on.ns, on.ip, `${dir}/online`);
  const target = await startMariadb(env, rep.lab.target, rep.lab.targetIp, `${dir}/target`);
  const tcpcopy = await startMysqlTcpcopy(env, rep, [
    "--secret-file",
    secret,
    "--module",
    "mysql",
    "--auth-file",
    authFile,
    ...tcpcopyExtra,
  ]);
  return { rep, on, online, target, tcpcopy };
}

/** The client's mariadb command line to the online server. */
function client(ip: string): string {
  return `mariadb --no-defaults --protocol=TCP -h ${ip} -P ${DB_PORT} -u ${USER} -p${PASSWORD} shop`;
}

/** LOOP_CONNECTIONS connections, each: INSERT, UPDATE, SELECT (ids from `base`). */
async function statementLoop(
  on: { client: Netns; ip: string },
  base: number,
  connections = LOOP_CONNECTIONS,
): Promise<void> {
  const script = `for i in $(seq ${base + 1} ${base + connections}); do
  ${
    client(on.ip)
  } -e "INSERT INTO items VALUES ($i, 'item-$i', $i); UPDATE items SET n = n + 1 WHERE id = $i; SELECT name FROM items WHERE id = $i" >/dev/null || exit 1
done`;
  await on.client.exec(["bash", "-c", script], { timeoutMs: 120_000 });
}

/** mariadb-slap: reads only, SLAP.concurrency clients x SLAP.iterations rounds. */
async function slap(on: { client: Netns; ip: string }): Promise<void> {
  await on.client.exec([
    "mariadb-slap",
    "--no-defaults",
    "--protocol=TCP",
    "-h",
    on.ip,
    "-P",
    String(DB_PORT),
    "-u",
    USER,
    `-p${PASSWORD}`,
    "--create-schema=shop",
    "--no-drop",
    `--query=SELECT COUNT(*) FROM items WHERE n >= 0`,
    `--concurrency=${SLAP.concurrency}`,
    `--iterations=${SLAP.iterations}`,
    `--number-of-queries=${SLAP.queries}`,
  ], { timeoutMs: 120_000 });
}

/** Statements of the test's clients in a general log (not the set-up's, which run as root). */
const READS = /\sQuery\t(SELECT name FROM items|SELECT COUNT\(\*\) FROM items)/;
const WRITES = /\sQuery\t(INSERT INTO items|UPDATE items)/;
const LOGINS = new RegExp(`\\sConnect\\t${USER}@`);

Deno.test({
  name:
    "mysql module e2e: MariaDB native logins replayed against the target's scramble, loss 0, same rows",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const { rep, on, online, target, tcpcopy } = await mysqlLab(env, []);
      await statementLoop(on, 0);
      await slap(on);
      const onStatements = await countLines(online.generalLog, READS) +
        await countLines(online.generalLog, WRITES);
      const onLogins = await countLines(online.generalLog, LOGINS);
      const tgtStatements = await settle(
        async () =>
          await countLines(target.generalLog, READS) + await countLines(target.generalLog, WRITES),
        onStatements,
        60_000,
      );
      const tgtLogins = await countLines(target.generalLog, LOGINS);
      const icpu = await interceptCpu(rep);
      const stop = await stopTcpcopy(tcpcopy);
      const last = stop.stats.at(-1) as Record<string, unknown> | undefined;
      console.log(
        report("mysql", onStatements, tgtStatements, onStatements, {
          tcpcopy: stop.cpuS,
          intercept: icpu,
        }),
      );
      console.log(
        `[mysql] logins online=${onLogins} target=${tgtLogins} lost.module=${
          JSON.stringify((last?.lost as Record<string, number> | undefined)?.module)
        } module=${JSON.stringify(last?.modules)}`,
      );
      assert.equal(
        onLogins,
        LOOP_CONNECTIONS + SLAP.concurrency * SLAP.iterations + 1,
        "online logins",
      );
      assert.equal(tgtStatements, onStatements, "loss ratio must be 0");
      assert.equal(tgtLogins, onLogins, "every login replayed");
      const mod = (last?.modules as Record<string, Record<string, number>> | undefined)?.mysql;
      assert.equal(mod?.logins, onLogins, "the module counted every login");
      assert.equal(mod?.failed, 0);
      assert.equal(
        await tableSum(rep.lab.target, target),
        await tableSum(on.ns, online),
        "same rows",
      );
      assert.equal(stop.code, 0);
    }),
});

Deno.test({
  name: "mysql module e2e: --read-only leaves the target's tables unchanged while reads replicate",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const { rep, on, online, target, tcpcopy } = await mysqlLab(env, ["--read-only"]);
      const before = await tableSum(rep.lab.target, target);
      await statementLoop(on, 1000);
      await slap(on);
      const onReads = await countLines(online.generalLog, READS);
      const onWrites = await countLines(online.generalLog, WRITES);
      const tgtReads = await settle(() => countLines(target.generalLog, READS), onReads, 60_000);
      const tgtWrites = await countLines(target.generalLog, WRITES);
      const stop = await stopTcpcopy(tcpcopy);
      const last = stop.stats.at(-1) as Record<string, unknown> | undefined;
      console.log(
        `[mysql --read-only] reads online=${onReads} target=${tgtReads} writes online=${onWrites} ` +
          `target=${tgtWrites} module=${JSON.stringify(last?.modules)}`,
      );
      assert.equal(onWrites, 2 * LOOP_CONNECTIONS);
      assert.equal(tgtReads, onReads, "every read replicated");
      assert.equal(tgtWrites, 0, "no write reached the target");
      const mod = (last?.modules as Record<string, Record<string, number>> | undefined)?.mysql;
      assert.equal(mod?.statements_dropped, onWrites, "every write counted as dropped");
      assert.equal(await tableSum(rep.lab.target, target), before, "target table unchanged");
      assert.notEqual(await tableSum(on.ns, online), before, "the online table did change");
      assert.equal(stop.code, 0);
    }),
});

Deno.test({
  name:
    "mysql module e2e: a wrong password in the auth file: every login counted auth_failed, logged, nothing replayed",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const { rep, on, online, target, tcpcopy } = await mysqlLab(env, [], "not-the-password");
      const n = 5;
      await statementLoop(on, 2000, n);
      assert.equal(await countLines(online.generalLog, LOGINS), n);
      const refused = await settle(
        () => countLines(target.generalLog, /Access denied for user 'app'/),
        n,
        20_000,
      );
      const stop = await stopTcpcopy(tcpcopy);
      const last = stop.stats.at(-1) as Record<string, unknown> | undefined;
      const mod = (last?.modules as Record<string, Record<string, number>> | undefined)?.mysql;
      console.log(`[mysql wrong password] refused=${refused} module=${JSON.stringify(mod)}`);
      assert.equal(refused, n, "the target refused each replayed login");
      assert.equal(await countLines(target.generalLog, WRITES), 0);
      assert.equal(mod?.auth_failed, n);
      assert.equal(mod?.logins, 0);
      assert.match(stop.log, /login of user "app" refused by the target: error 1045/);
      assert.doesNotMatch(stop.log, /not-the-password/);
      assert.equal(
        (await tableSum(rep.lab.target, target)).split("\t")[0],
        "1",
        "only the seed row",
      );
    }),
});
