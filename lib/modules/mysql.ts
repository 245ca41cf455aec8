/**
 * The MySQL/MariaDB protocol module (`--module mysql`): replays logins against the target's
 * own scramble (mysql_native_password, caching_sha2_password fast and full auth,
 * mysql_clear_password, auth switches, COM_CHANGE_USER) with passwords from `--auth-file`,
 * and with `--read-only` drops statements that change data. The state machine is in
 * mysql/session.ts; the wire formats in mysql/packets.ts; the proofs in mysql/auth.ts.
 *
 * @module
 */
import type { ProtocolModule } from "./module.ts";
import { MysqlSession, type WriteTest } from "./mysql/session.ts";
import { isWriteStatement } from "./sql_write.ts";

/**
 * Counters of the module (stats `modules.mysql.<name>`). `auth_failed` and `online_login_*`
 * are also failure reasons: the engine counts them when a session fails with one; listed so
 * that they show as 0.
 */
export const MYSQL_COUNTERS = [
  "logins",
  "auth_failed",
  "auth_switches",
  "full_auth",
  "change_users",
  "statements_dropped",
  "online_login_failed",
  "online_login_unknown",
] as const;

/**
 * Reply bytes per packet the module needs: a greeting (~80-110 bytes), an ERR text and an RSA
 * public key PEM for caching_sha2 full auth (451 bytes for a 2048-bit key, 4 + 1 header).
 */
export const MYSQL_REPLY_PREFIX = 512;

/** The module with a given write test (tests inject one; `mysqlModule` uses sql_write.ts). */
export function mysqlModuleWith(isWrite: WriteTest): ProtocolModule {
  return {
    name: "mysql",
    counters: MYSQL_COUNTERS,
    replyPrefix: MYSQL_REPLY_PREFIX,
    open: (ctx, out) => new MysqlSession(ctx, out, isWrite),
  };
}

/** `--module mysql`: the module with the MySQL dialect of lib/modules/sql_write.ts. */
export const mysqlModule: ProtocolModule = mysqlModuleWith((sql) => isWriteStatement(sql, "mysql"));
