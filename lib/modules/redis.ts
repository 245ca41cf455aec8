/**
 * The Redis protocol module (`--module redis`): replays a captured Redis session with the
 * target's password in its `AUTH` / `HELLO ... AUTH` (from `--auth-file`) and, with
 * `--read-only`, without its write commands.
 *
 * Redis has no challenge: a login is the password itself, so the module needs none of the
 * target's replies (`replyPrefix` 0) and never holds a command for one. Without `--read-only`
 * the session is handed to the engine after its login commands (`out.pass()`), so a session
 * without AUTH costs one look at its first command.
 *
 * Counters: `statements_dropped` (write commands not sent, `--read-only`), `auth_rewritten`
 * (a login sent with the auth file's password), `auth_unchanged` (a login whose user has no
 * line in the auth file, replayed as captured), `malformed` (a `--read-only` session whose
 * client stream does not parse as Redis would parse it: ended), `online_login_failed` /
 * `online_login_unknown` (production refused a re-proved AUTH/HELLO, or its reply was not
 * captured: nothing after it was sent), `hold_limit` (over 4 MiB waiting for that reply).
 *
 * The parser is in redis/session.ts, the read allow-list in redis/commands.ts.
 *
 * @module
 */

import type { ProtocolModule } from "./module.ts";
import { RedisSession } from "./redis/session.ts";

/** `--module redis`: AUTH rewriting from `--auth-file` and `--read-only` for Redis. */
export const redisModule: ProtocolModule = {
  name: "redis",
  counters: [
    "statements_dropped",
    "auth_rewritten",
    "auth_unchanged",
    "malformed",
    "online_login_failed",
    "online_login_unknown",
    "hold_limit",
  ],
  replyPrefix: 0,
  open: (ctx, out) => new RedisSession(ctx, out),
};
