/**
 * A throwaway PostgreSQL server in a test namespace, shared by the PostgreSQL e2e tests
 * (module_postgres, compare_protocols): initdb as user nobody (initdb refuses root) in a
 * folder nobody owns, a config that trades durability for speed, a start that waits for
 * `select 1`, then the `bench` database with `pgbench -i -s 1` on it.
 *
 * Local (Unix socket) connections are trusted so the test can inspect the server with
 * {@link psql}; TCP logins use the method the test asks for.
 */
import { type Cleanup, type Netns, requirePrograms, waitFor } from "./netns.ts";
import { readText, startLogged } from "./replication.ts";
import { asNobody, NOBODY } from "./nobody.ts";
import { findProgram } from "../../lib/setup/probe.ts";

/** Where every test server listens. */
export const PG_PORT = 5432;
/** The role the servers are made with (and pgbench logs in as). */
export const PG_USER = "bench";
/** The database `pgbench -i` fills. */
export const PG_DB = "bench";

/**
 * The folder of the newest installed PostgreSQL server (Debian: /usr/lib/postgresql/N/bin),
 * or undefined when none is installed. initdb and postgres are not on Debian's PATH: the
 * folder is appended to this process's PATH, so the tests' spawns find them.
 */
export function postgresBin(): string | undefined {
  const postgres = findProgram("postgres", "");
  const bin = postgres?.slice(0, postgres.lastIndexOf("/"));
  if (bin && !(Deno.env.get("PATH") ?? "").split(":").includes(bin)) {
    Deno.env.set("PATH", `${Deno.env.get("PATH")}:${bin}`);
  }
  return bin;
}

/** How TCP clients log in (pg_hba method; the password is stored with it). */
export type PgMethod = "trust" | "md5" | "scram-sha-256";

/** What to start. */
export interface PgOptions {
  ns: Netns;
  /** The address it listens on (port {@link PG_PORT}). */
  ip: string;
  /** A folder for this server's data, socket and log (made; one per server). */
  dir: string;
  method: PgMethod;
  /** The role's password (set after start, stored with `method`); none for trust. */
  password?: string;
  maxConnections: number;
  /** `log_connections = on` (tests count logins in the log). */
  logConnections?: boolean;
}

/** A started server. */
export interface PgServer {
  ns: Netns;
  ip: string;
  /** Its Unix socket folder (trusted local logins). */
  sock: string;
  /** Its log (stderr). */
  log: string;
}

/** `psql` through the server's Unix socket (trusted), one value out. */
export async function psql(pg: PgServer, sql: string, db = PG_DB): Promise<string> {
  const argv = ["psql", "-X", "-A", "-t", "-h", pg.sock, "-p", String(PG_PORT), "-U", PG_USER];
  return (await pg.ns.exec([...argv, "-d", db, "-c", sql])).stdout.trim();
}

/** Creates, configures and starts a server, sets the password, fills {@link PG_DB}. */
export async function startPostgres(env: Cleanup, o: PgOptions): Promise<PgServer> {
  const data = `${o.dir}/data`, sock = `${o.dir}/sock`;
  await Deno.mkdir(sock, { recursive: true });
  await Deno.chown(o.dir, NOBODY, NOBODY);
  await Deno.chown(sock, NOBODY, NOBODY);
  const args = ["initdb", "-D", data, "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--locale=C"];
  requirePrograms(args);
  await o.ns.exec([...asNobody("default"), ...args, "--no-sync"], { timeoutMs: 60_000 });
  await Deno.writeTextFile(`${data}/postgresql.conf`, config(o, sock), { append: true });
  await Deno.writeTextFile(
    `${data}/pg_hba.conf`,
    `local all all trust\nhost all all 0.0.0.0/0 ${o.method}\n`,
  );
  const argv = ["postgres", "-D", data];
  requirePrograms(argv);
  const started = startLogged(env, o.ns, [...asNobody("default"), ...argv], `${o.dir}/server`);
  const pg: PgServer = { ns: o.ns, ip: o.ip, sock, log: started.err };
  if (!await waitFor(() => answers(pg), 30_000, 200)) {
    throw new Error(`postgres did not start in ${o.ns.name}: ${await readText(started.err)}`);
  }
  if (o.password !== undefined) await setPassword(pg, o.method, o.password);
  await psql(pg, `CREATE DATABASE ${PG_DB}`, "postgres");
  const cmd = ["pgbench", "-i", "-q", "-s", "1", "-h", sock, "-p", String(PG_PORT)];
  requirePrograms(cmd);
  await o.ns.exec([...cmd, "-U", PG_USER, PG_DB], { timeoutMs: 120_000 });
  return pg;
}

/** The lines appended to postgresql.conf. */
function config(o: PgOptions, sock: string): string {
  const lines = [
    `listen_addresses = '${o.ip}'`,
    `port = ${PG_PORT}`,
    `unix_socket_directories = '${sock}'`,
    "shared_buffers = 16MB",
    `max_connections = ${o.maxConnections}`,
    "fsync = off",
    "synchronous_commit = off",
    "full_page_writes = off",
  ];
  if (o.method !== "trust") lines.push(`password_encryption = '${o.method}'`);
  if (o.logConnections) lines.push("log_connections = on");
  return lines.join("\n") + "\n";
}

/** Whether the server answers `select 1` on its socket. */
async function answers(pg: PgServer): Promise<boolean> {
  const argv = ["psql", "-X", "-h", pg.sock, "-p", String(PG_PORT), "-U", PG_USER];
  const r = await pg.ns.exec([...argv, "-d", "postgres", "-c", "select 1"], { check: false });
  return r.code === 0;
}

/** Sets the role's password and checks it is stored with `method` (md5 or SCRAM). */
async function setPassword(pg: PgServer, method: PgMethod, password: string): Promise<void> {
  await psql(pg, `ALTER ROLE ${PG_USER} PASSWORD '${password.replaceAll("'", "''")}'`, "postgres");
  const stored = await psql(
    pg,
    `SELECT rolpassword FROM pg_authid WHERE rolname = '${PG_USER}'`,
    "postgres",
  );
  const want = method === "md5" ? "md5" : method === "scram-sha-256" ? "SCRAM-SHA-256$" : "";
  if (!stored.startsWith(want)) {
    throw new Error(
      `the password of ${PG_USER} is not stored as ${method}: ${stored.slice(0, 14)}`,
    );
  }
}
