/**
 * `--module redis` end to end: real redis-server on the online host and on the target, with
 * different passwords (`requirepass`), intercept (NFQUEUE) and tcpcopy with --secret-file,
 * --auth-file holding the target's password, and real clients (redis-cli, redis-benchmark)
 * in the client namespace.
 *
 * - `--read-only`: the writes (SET, INCR, HSET, LPUSH, EXPIRE, DEL, FLUSHALL, EVAL, MULTI'd
 *   SETs, redis-benchmark's SETs) never reach the target (DBSIZE 0, no write in its
 *   commandstats) while every GET replicates (the target's GET count equals the online one:
 *   loss 0 for the replayed reads), and every replayed login is accepted with the target's
 *   password.
 * - without `--read-only`: the same traffic replicates whole (writes included) with the
 *   logins rewritten, so the first test can fail.
 */
import assert from "node:assert/strict";
import { type Cleanup, isRoot, type Netns, waitFor, withNetns } from "../helpers/netns.ts";
import { buildLab, type Lab } from "../helpers/lab.ts";
import { startRedisServer } from "../helpers/redis_server.ts";
import {
  interceptCmd,
  readText,
  settle,
  type Started,
  startLogged,
  stopTcpcopy,
  tcpcopyCmd,
} from "../helpers/replication.ts";

const PORT = 6379;
const TUNNEL_PORT = 36524;
const ONLINE_PASSWORD = "online-pw-1";
const TARGET_PASSWORD = "target-pw-2";

/** A lab with redis-server on both sides, intercept, and tcpcopy with the given flags. */
interface RedisLab {
  lab: Lab;
  on: Lab["online"][number];
  target: string;
  tcpcopy: Started;
  intercept: Started;
}

/** redis-server with `password` in `ns` on `ip`. */
function startRedis(env: Cleanup, ns: Netns, ip: string, password: string, dir: string) {
  return startRedisServer(env, { ns, ip, port: PORT, password, dir });
}

/** Runs one redis-cli command (from `ns` to `ip`), returns its stdout. */
async function redisCli(
  ns: Netns,
  ip: string,
  password: string,
  args: string[],
  check = true,
): Promise<string> {
  const r = await ns.exec(
    [
      "redis-cli",
      "-h",
      ip,
      "-p",
      String(PORT),
      "--user",
      "default",
      "--pass",
      password,
      "--no-auth-warning",
      ...args,
    ],
    { check, timeoutMs: 15_000 },
  );
  return r.stdout;
}

/** `INFO commandstats` as command → calls (and `auth_failed`: AUTHs refused). */
async function commandCalls(ns: Netns, ip: string, password: string): Promise<Map<string, number>> {
  const text = await redisCli(ns, ip, password, ["INFO", "commandstats"]);
  const calls = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1], Number(m[2]));
  const auth = /^cmdstat_auth:.*failed_calls=(\d+)/m.exec(text);
  calls.set("auth_failed", auth ? Number(auth[1]) : NaN);
  return calls;
}

async function setUp(env: Cleanup, tcpcopyExtra: string[]): Promise<RedisLab> {
  const lab = await buildLab(env, 1);
  const on = lab.online[0];
  const target = lab.targetIp;
  const secret = `${lab.dir}/secret`, auth = `${lab.dir}/auth`;
  await Deno.writeTextFile(secret, "e2e redis secret, 32 bytes long.\n", { mode: 0o600 });
  await Deno.chmod(secret, 0o600);
  await Deno.writeTextFile(auth, `# the target's password\ndefault:${TARGET_PASSWORD}\n`, {
    mode: 0o600,
  });
  await Deno.chmod(auth, 0o600);
  await startRedis(env, on.ns, on.ip, ONLINE_PASSWORD, `${lab.dir}/redis-online`);
  await startRedis(env, lab.target, target, TARGET_PASSWORD, `${lab.dir}/redis-target`);
  const intercept = startLogged(
    env,
    lab.target,
    interceptCmd([
      "--port",
      String(PORT),
      "--secret-file",
      secret,
      "--stats-interval",
      "0",
      "--drain-seconds",
      "0",
    ]),
    `${lab.dir}/intercept`,
  );
  const listening = await waitFor(
    async () => {
      const r = await on.ns.exec(["bash", "-c", `exec 3<>/dev/tcp/${target}/${TUNNEL_PORT}`], {
        check: false,
      });
      return r.code === 0;
    },
    20_000,
    100,
  );
  if (!listening) throw new Error(`intercept did not start: ${await readText(intercept.err)}`);
  const tcpcopy = startLogged(
    env,
    on.ns,
    tcpcopyCmd([
      "-x",
      `${on.ip}:${PORT}-${target}:${PORT}`,
      "-s",
      target,
      "-i",
      on.clientSideIf,
      "--stats-interval",
      "1",
      "--secret-file",
      secret,
      "--module",
      "redis",
      "--auth-file",
      auth,
      ...tcpcopyExtra,
    ]),
    `${lab.dir}/tcpcopy`,
  );
  const up = await waitFor(async () => /\] replicating/.test(await readText(tcpcopy.err)), 20_000);
  if (!up) throw new Error(`tcpcopy did not start: ${await readText(tcpcopy.err)}`);
  return { lab, on, target, tcpcopy, intercept };
}

/** The client traffic: a redis-cli script with writes and reads, then redis-benchmark. */
async function traffic(r: RedisLab): Promise<void> {
  const { on } = r;
  const script = [
    "SET sentinel v1",
    "GET sentinel",
    "INCR counter",
    "HSET h f v",
    "HGETALL h",
    "LPUSH l a b c",
    "LRANGE l 0 -1",
    "EXPIRE sentinel 1000",
    "MULTI",
    "SET in_multi 1",
    "GET sentinel",
    "EXEC",
    "EVAL \"return redis.call('SET', 'by_eval', 1)\" 0",
    "GET by_eval",
    "MGET sentinel counter",
    "DEL counter",
    "EXISTS sentinel",
  ].join("\n") + "\n";
  const out = await on.client.exec(
    [
      "redis-cli",
      "-h",
      on.ip,
      "-p",
      String(PORT),
      "--user",
      "default",
      "--pass",
      ONLINE_PASSWORD,
      "--no-auth-warning",
    ],
    { stdin: script, timeoutMs: 20_000 },
  );
  assert.match(out.stdout, /v1/, "the online server answered the script");
  await on.client.exec([
    "redis-benchmark",
    "-h",
    on.ip,
    "-p",
    String(PORT),
    "--user",
    "default",
    "-a",
    ONLINE_PASSWORD,
    "-t",
    "set,get",
    "-n",
    "2000",
    "-c",
    "4",
    "-r",
    "1000",
    "-q",
  ], { timeoutMs: 60_000 });
}

/** The sum of a stats line's `lost` counters. */
function totalLost(line: Record<string, unknown>): number {
  const lost = line.lost as Record<string, number> | undefined;
  return lost === undefined ? NaN : Object.values(lost).reduce((a, b) => a + b, 0);
}

/** The last JSON stats line of tcpcopy's output with a `modules` object, if any. */
function moduleStats(stats: Record<string, unknown>[]): Record<string, unknown> | undefined {
  for (let i = stats.length - 1; i >= 0; i--) {
    const m = stats[i].modules as Record<string, unknown> | undefined;
    if (m !== undefined) return m;
  }
  return undefined;
}

Deno.test({
  name: "redis module e2e: --read-only keeps every write off the target, reads replicate (loss 0)",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const r = await setUp(env, ["--read-only"]);
      const { on, lab } = r;
      await traffic(r);
      const online = await commandCalls(on.ns, on.ip, ONLINE_PASSWORD);
      const onlineGets = online.get("get") ?? 0;
      assert.ok(onlineGets >= 2000, `online GETs ${onlineGets}`);
      assert.ok((online.get("set") ?? 0) >= 2000, "the online server took the writes");
      const targetGets = await settle(
        async () => (await commandCalls(lab.target, r.target, TARGET_PASSWORD)).get("get") ?? 0,
        onlineGets,
        30_000,
      );
      const targetCalls = await commandCalls(lab.target, r.target, TARGET_PASSWORD);
      const dbsize = Number(
        (await redisCli(lab.target, r.target, TARGET_PASSWORD, ["DBSIZE"])).trim(),
      );
      const denied = targetCalls.get("auth_failed");
      const stop = await stopTcpcopy(r.tcpcopy);
      const mods = moduleStats(stop.stats);
      console.log(
        `[redis read-only] online get=${onlineGets} set=${online.get("set")} | target ` +
          `get=${targetGets} dbsize=${dbsize} auth_denied=${denied} calls=` +
          JSON.stringify(Object.fromEntries(targetCalls)) + ` | modules=${JSON.stringify(mods)}`,
      );
      const last = stop.stats.at(-1) ?? {};
      console.log(
        `[redis read-only] tcpcopy requests=${JSON.stringify(last.requests)} ` +
          `lost=${JSON.stringify(last.lost)}`,
      );
      assert.equal(stop.code, 0, stop.log);
      assert.equal(dbsize, 0, "no write reached the target");
      for (const write of ["set", "incr", "hset", "lpush", "expire", "del", "eval", "flushall"]) {
        assert.equal(targetCalls.get(write), undefined, `the target ran ${write}`);
      }
      assert.equal(targetGets, onlineGets, "every GET replicated (loss 0 for reads)");
      for (const read of ["hgetall", "lrange", "mget", "exists", "multi", "exec"]) {
        assert.equal(targetCalls.get(read), online.get(read), `${read} calls`);
      }
      assert.equal(denied, 0, "every replayed AUTH was accepted with the target's password");
      assert.ok((targetCalls.get("auth") ?? 0) >= 5, "the logins were replayed");
      const redis = mods?.redis as Record<string, number> | undefined;
      assert.ok(redis !== undefined, `module stats: ${JSON.stringify(stop.stats.at(-1))}`);
      assert.ok(redis.statements_dropped >= 2000 + 8, `dropped ${redis.statements_dropped}`);
      assert.ok(redis.auth_rewritten >= 5, `auth_rewritten ${redis.auth_rewritten}`);
      assert.equal(totalLost(last), 0, `lost ${JSON.stringify(last.lost)}`);
      // commands sent at once: answered by the target's ACK windows, never above what was sent
      const req = last.requests as Record<string, number>;
      assert.ok(req.answered > 0 && req.answered <= req.sent, `requests ${JSON.stringify(req)}`);
    }),
});

Deno.test({
  name: "redis module e2e: without --read-only writes replicate too, logins rewritten",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const r = await setUp(env, []);
      const { on, lab } = r;
      await traffic(r);
      const online = await commandCalls(on.ns, on.ip, ONLINE_PASSWORD);
      const onlineSets = online.get("set") ?? 0;
      const onlineGets = online.get("get") ?? 0;
      const both = (c: Map<string, number>) => (c.get("set") ?? 0) + (c.get("get") ?? 0);
      await settle(
        async () => both(await commandCalls(lab.target, r.target, TARGET_PASSWORD)),
        onlineSets + onlineGets,
        30_000,
      );
      const targetCalls = await commandCalls(lab.target, r.target, TARGET_PASSWORD);
      const onlineKeys = (await redisCli(on.ns, on.ip, ONLINE_PASSWORD, ["DBSIZE"])).trim();
      const targetKeys = (await redisCli(lab.target, r.target, TARGET_PASSWORD, ["DBSIZE"])).trim();
      const denied = targetCalls.get("auth_failed");
      const stop = await stopTcpcopy(r.tcpcopy);
      console.log(
        `[redis replay] online set=${onlineSets} get=${onlineGets} keys=${onlineKeys} | ` +
          `target set=${targetCalls.get("set")} get=${targetCalls.get("get")} keys=${targetKeys} ` +
          `auth_denied=${denied} | modules=${JSON.stringify(moduleStats(stop.stats))}`,
      );
      assert.equal(stop.code, 0, stop.log);
      assert.equal(targetCalls.get("set"), onlineSets, "every SET replicated");
      assert.equal(targetCalls.get("get"), online.get("get"), "every GET replicated");
      assert.equal(targetKeys, onlineKeys, "the target holds the same keys");
      assert.equal(denied, 0, "every replayed AUTH was accepted with the target's password");
      assert.equal(totalLost(stop.stats.at(-1) ?? {}), 0, "tcpcopy counted no loss");
    }),
});
