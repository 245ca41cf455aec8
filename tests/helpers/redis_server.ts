/**
 * A throwaway redis-server in a test namespace (no persistence, in the foreground, its log in
 * `dir`), shared by the redis e2e tests (module_redis, compare_protocols).
 */
import { type Cleanup, type Netns, requirePrograms, waitFor } from "./netns.ts";
import { readText } from "./replication.ts";

/** Where and how the server listens. */
export interface RedisServer {
  ns: Netns;
  ip: string;
  port: number;
  /** `--requirepass` (none: no password). */
  password?: string;
  /** Its working folder and log (made if missing). */
  dir: string;
  /** How long to wait for PONG (default 10 s). */
  waitMs?: number;
}

/** Starts redis-server and waits (`waitMs`) until it answers PING with PONG. */
export async function startRedisServer(env: Cleanup, s: RedisServer): Promise<void> {
  await Deno.mkdir(s.dir, { recursive: true });
  const pass = s.password === undefined ? [] : ["--requirepass", s.password];
  const argv = [
    "redis-server",
    "--bind",
    s.ip,
    "--port",
    String(s.port),
    ...pass,
    "--save",
    "",
    "--appendonly",
    "no",
    "--protected-mode",
    "no",
    "--daemonize",
    "no",
    "--dir",
    s.dir,
    "--logfile",
    `${s.dir}/redis.log`,
  ];
  requirePrograms(argv);
  env.child(s.ns.spawn(argv));
  const auth = s.password === undefined
    ? []
    : ["--user", "default", "--pass", s.password, "--no-auth-warning"];
  const ping = ["redis-cli", "-h", s.ip, "-p", String(s.port), ...auth, "PING"];
  requirePrograms(ping);
  const up = await waitFor(
    async () =>
      (await s.ns.exec(ping, { check: false, timeoutMs: 15_000 })).stdout.trim() === "PONG",
    s.waitMs ?? 10_000,
    100,
  );
  if (!up) {
    throw new Error(
      `redis-server did not start in ${s.ns.name}: ${await readText(`${s.dir}/redis.log`)}`,
    );
  }
}
