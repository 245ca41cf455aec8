/**
 * Which Redis commands `--read-only` replays: an allow-list of commands that change no data.
 * Every command not listed (writes, module commands, commands of a newer Redis) is dropped.
 *
 * Where do I change X: a read command missing → add it to {@link READS}; a container command
 * (`CONFIG GET`, `CLIENT LIST`) → its read subcommands in {@link READ_SUBCOMMANDS}.
 *
 * Decisions (documented in README.md, "Databases → Redis"):
 * - Scripts and functions (`EVAL`, `EVALSHA`, `FCALL`) cannot be classified: dropped. Their
 *   read-only forms (`EVAL_RO`, `EVALSHA_RO`, `FCALL_RO`, which Redis itself refuses to let
 *   write) are replayed, and so is `SCRIPT LOAD` (it caches a script, no data).
 * - Commands that write only with an option are dropped whole: `SORT` (STORE),
 *   `GEORADIUS` / `GEORADIUSBYMEMBER` (STORE); their `_RO` forms are replayed. `GETEX`,
 *   `GETDEL`, `GETSET`, `BITFIELD`, `XREADGROUP` (moves entries to the pending list) and the
 *   blocking pops are writes.
 * - `MULTI` / `EXEC` / `DISCARD` / `WATCH` / `UNWATCH` are replayed: a transaction keeps its
 *   reads, its writes are dropped, an all-write transaction becomes an empty one.
 * - `PUBLISH` / `SPUBLISH` are dropped (a side effect seen by other clients), subscribing is
 *   replayed. `WAIT` / `WAITAOF` are dropped (they block on a target without replicas).
 *
 * @module
 */

/** Commands replayed under `--read-only` (lowercase). */
export const READS: ReadonlySet<string> = new Set([
  // connection and transactions
  "auth",
  "hello",
  "ping",
  "echo",
  "select",
  "quit",
  "reset",
  "readonly",
  "readwrite",
  "multi",
  "exec",
  "discard",
  "watch",
  "unwatch",
  // keys
  "exists",
  "type",
  "ttl",
  "pttl",
  "expiretime",
  "pexpiretime",
  "keys",
  "scan",
  "randomkey",
  "dump",
  "touch",
  "dbsize",
  // strings and bits
  "get",
  "mget",
  "strlen",
  "getrange",
  "substr",
  "lcs",
  "stralgo",
  "getbit",
  "bitcount",
  "bitpos",
  "bitfield_ro",
  // hashes
  "hget",
  "hmget",
  "hgetall",
  "hkeys",
  "hvals",
  "hlen",
  "hexists",
  "hstrlen",
  "hscan",
  "hrandfield",
  "httl",
  "hpttl",
  "hexpiretime",
  "hpexpiretime",
  // lists
  "lrange",
  "lindex",
  "llen",
  "lpos",
  // sets
  "smembers",
  "sismember",
  "smismember",
  "scard",
  "srandmember",
  "sinter",
  "sintercard",
  "sunion",
  "sdiff",
  "sscan",
  // sorted sets
  "zrange",
  "zrangebyscore",
  "zrangebylex",
  "zrevrange",
  "zrevrangebyscore",
  "zrevrangebylex",
  "zrank",
  "zrevrank",
  "zscore",
  "zmscore",
  "zcard",
  "zcount",
  "zlexcount",
  "zscan",
  "zrandmember",
  "zinter",
  "zintercard",
  "zunion",
  "zdiff",
  // hyperloglog, geo, streams
  "pfcount",
  "geopos",
  "geodist",
  "geohash",
  "georadius_ro",
  "georadiusbymember_ro",
  "geosearch",
  "xrange",
  "xrevrange",
  "xlen",
  "xread",
  "xpending",
  // scripts that Redis keeps read-only
  "eval_ro",
  "evalsha_ro",
  "fcall_ro",
  "sort_ro",
  // pub/sub (receiving)
  "subscribe",
  "psubscribe",
  "ssubscribe",
  "unsubscribe",
  "punsubscribe",
  "sunsubscribe",
  // server information
  "info",
  "time",
  "lastsave",
  "role",
  "lolwut",
  "monitor",
]);

/** Container commands and their read subcommands (lowercase). */
export const READ_SUBCOMMANDS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ["object", new Set(["encoding", "freq", "idletime", "refcount", "help"])],
  ["xinfo", new Set(["consumers", "groups", "stream", "help"])],
  ["pubsub", new Set(["channels", "numpat", "numsub", "shardchannels", "shardnumsub", "help"])],
  ["command", new Set(["count", "docs", "getkeys", "getkeysandflags", "info", "list", "help"])],
  ["config", new Set(["get", "help"])],
  [
    "client",
    new Set([
      "id",
      "info",
      "list",
      "getname",
      "setname",
      "setinfo",
      "getredir",
      "tracking",
      "trackinginfo",
      "caching",
      "no-evict",
      "no-touch",
      "reply",
      "help",
    ]),
  ],
  ["slowlog", new Set(["get", "len", "help"])],
  ["latency", new Set(["latest", "history", "graph", "doctor", "histogram", "help"])],
  ["memory", new Set(["usage", "stats", "doctor", "malloc-stats", "help"])],
  ["script", new Set(["exists", "load", "help"])],
  ["function", new Set(["list", "dump", "stats", "help"])],
  [
    "acl",
    new Set(["whoami", "list", "users", "getuser", "cat", "log", "dryrun", "genpass", "help"]),
  ],
  [
    "cluster",
    new Set([
      "info",
      "nodes",
      "slots",
      "shards",
      "myid",
      "myshardid",
      "keyslot",
      "countkeysinslot",
      "getkeysinslot",
      "links",
      "help",
    ]),
  ],
  ["module", new Set(["list", "help"])],
]);

/** True when `name` (lowercase) is a container command: its subcommand decides. */
export function isContainer(name: string): boolean {
  return READ_SUBCOMMANDS.has(name);
}

/**
 * True when the command `name` (lowercase), with subcommand `sub` (lowercase, "" when absent)
 * for container commands, changes no data and is replayed under `--read-only`.
 * A bare `COMMAND` (no subcommand) is a read.
 */
export function isReadCommand(name: string, sub: string): boolean {
  if (READS.has(name)) return true;
  const subs = READ_SUBCOMMANDS.get(name);
  if (subs === undefined) return false;
  if (sub === "") return name === "command";
  return subs.has(sub);
}
