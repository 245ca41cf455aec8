import assert from "node:assert/strict";
import { isWriteStatement, type SqlDialect } from "../../lib/modules/sql_write.ts";
import { mulberry32 } from "../helpers/prng.ts";

/** [sql, expected write?] for a dialect. */
type Case = readonly [string, boolean];

function check(dialect: SqlDialect, cases: readonly Case[]): void {
  const wrong: string[] = [];
  for (const [sql, write] of cases) {
    if (isWriteStatement(sql, dialect) !== write) {
      wrong.push(`${write ? "write" : "read"} expected: ${JSON.stringify(sql)}`);
    }
  }
  assert.deepEqual(wrong, [], `${dialect}: ${wrong.length} misclassified`);
}

/** Cases with the same answer in both dialects. */
const BOTH: readonly Case[] = [
  // plain reads
  ["SELECT 1", false],
  ["select * from t where a = 1", false],
  ["  \n\tSeLeCt 1", false],
  ["(SELECT 1) UNION (SELECT 2)", false],
  ["((select a from t))", false],
  ["WITH x AS (SELECT 1) SELECT * FROM x", false],
  ["VALUES (1), (2)", false],
  ["TABLE t", false],
  ["SHOW tables", false],
  ["SELECT * FROM t FOR UPDATE", false],
  ["SELECT * FROM t FOR SHARE", false],
  ["SELECT t.update, t.delete, t.insert, t.merge FROM t", false],
  ["SELECT 'insert into t values (1)'", false],
  ["SELECT 1 -- ; DROP TABLE t", false],
  ["SELECT 1 /* ; DELETE FROM t */", false],
  ["", false],
  ["   ", false],
  [";;", false],
  ["/* only a comment */", false],
  ["-- only a comment", false],
  // transaction and session control
  ["BEGIN", false],
  ["START TRANSACTION", false],
  ["START TRANSACTION READ ONLY", false],
  ["COMMIT", false],
  ["ROLLBACK", false],
  ["ROLLBACK TO SAVEPOINT a", false],
  ["SAVEPOINT a", false],
  ["RELEASE SAVEPOINT a", false],
  ["SET autocommit = 0", false],
  ["SET NAMES utf8", false],
  ["EXECUTE p", false],
  ["DEALLOCATE PREPARE p", false],
  // writes
  ["INSERT INTO t VALUES (1)", true],
  ["insert into t values (1)", true],
  ["UPDATE t SET a = 1", true],
  ["DELETE FROM t", true],
  ["MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", true],
  ["TRUNCATE t", true],
  ["TRUNCATE TABLE t", true],
  ["CREATE TABLE t (a int)", true],
  ["CREATE TEMPORARY TABLE t (a int)", true],
  ["ALTER TABLE t ADD COLUMN b int", true],
  ["DROP TABLE t", true],
  ["GRANT SELECT ON t TO u", true],
  ["REVOKE SELECT ON t FROM u", true],
  ["CALL p()", true],
  ["LOCK TABLE t", true],
  ["ANALYZE t", true],
  ["UPSERT INTO t VALUES (1)", true],
  ["RENAME TABLE a TO b", true],
  ["SOMETHING NEW", true],
  ["START SLAVE", true],
  // several statements: any write makes the text a write
  ["SELECT 1; SELECT 2", false],
  ["SELECT 1; DELETE FROM t", true],
  ["select 1;drop table t", true],
  ["SELECT 1;\nUPDATE t SET a=1;", true],
  // nested writes
  ["WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", true],
  ["WITH i AS (INSERT INTO t VALUES (1) RETURNING a) SELECT a FROM i", true],
  ["WITH x AS (SELECT 1) UPDATE t SET a = 1", true],
  ["WITH x AS (SELECT 1) DELETE FROM t", true],
  ["EXPLAIN SELECT 1", false],
  ["EXPLAIN ANALYZE SELECT * FROM t", false],
  ["EXPLAIN ANALYZE DELETE FROM t", true],
  ["EXPLAIN UPDATE t SET a = 1", true],
  ["EXPLAIN ANALYZE INSERT INTO t VALUES (1)", true],
  ["EXPLAIN SELECT replace(a, 'x', 'y') FROM t", false],
  // unknown or odd starts
  ["'SELECT'", true],
  ["123", true],
  ["* FROM t", true],
  ["SELECT 1; garbage", true],
  // unterminated strings and comments: the server reads them differently → write
  ["SELECT 'abc", true],
  ["SELECT 1 /* abc", true],
];

const POSTGRES: readonly Case[] = [
  ["SELECT nextval('s')", true],
  ["SELECT pg_catalog.nextval('s')", true],
  ["SELECT NEXTVAL ('s')", true],
  ["SELECT \"nextval\"('s')", true],
  ["SELECT setval('s', 1)", true],
  ["SELECT currval('s')", false],
  ["SELECT lo_import('/etc/passwd')", true],
  ["SELECT lo_get(1)", false],
  ["SELECT pg_terminate_backend(123)", true],
  ["SELECT pg_stat_reset()", true],
  ["SELECT pg_stat_reset_shared('bgwriter')", true],
  ["SELECT pg_replication_origin_create('x')", true],
  ["SELECT pg_notify('c', 'x')", true],
  ["SELECT dblink_exec('db', 'DELETE FROM t')", true],
  ["SELECT pg_advisory_lock(1)", false],
  ["SELECT set_config('a.b', 'c', false)", false],
  ["SELECT nextval", false], // a column, not a call
  ["SELECT * INTO t2 FROM t", true],
  ["SELECT a INTO TEMP t2 FROM t", true],
  ["SELECT * FROM t FOR NO KEY UPDATE", false],
  ["SELECT * FROM t FOR KEY SHARE", false],
  ["SELECT * FROM t FOR UPDATE SKIP LOCKED", false],
  ["DO $$ BEGIN DELETE FROM t; END $$", true],
  ["DO 'BEGIN NULL; END'", true],
  ["END", false],
  ["ABORT", false],
  ["BEGIN ISOLATION LEVEL SERIALIZABLE", false],
  ['SET search_path TO "$user", public', false],
  ["SET LOCAL statement_timeout = 0", false],
  ["RESET ALL", false],
  ["DISCARD ALL", false],
  ["LISTEN c", false],
  ["UNLISTEN *", false],
  ["NOTIFY c, 'x'", true],
  ["DECLARE c CURSOR FOR SELECT * FROM t", false],
  ["FETCH 10 FROM c", false],
  ["MOVE NEXT IN c", false],
  ["CLOSE c", false],
  ["COPY t TO STDOUT", false],
  ["COPY t (a, b) TO STDOUT WITH (FORMAT csv)", false],
  ["COPY (SELECT a FROM t) TO STDOUT", false],
  ["copy (select a from t where b in (select b from u)) to stdout", false],
  ["COPY t FROM STDIN", true],
  ["COPY t (a, b) FROM STDIN", true],
  ["COPY t TO '/tmp/x'", true],
  ["COPY t TO PROGRAM 'rm -rf /'", true],
  ["COPY (DELETE FROM t RETURNING *) TO STDOUT", true],
  ["COPY t", true],
  ["VACUUM", true],
  ["VACUUM ANALYZE t", true],
  ["CLUSTER t", true],
  ["REINDEX TABLE t", true],
  ["REFRESH MATERIALIZED VIEW v", true],
  ["CHECKPOINT", true],
  ["COMMENT ON TABLE t IS 'x'", true],
  ["LOAD 'plugin'", true],
  ["SECURITY LABEL ON TABLE t IS 'x'", true],
  ["PREPARE p AS SELECT * FROM t WHERE a = $1", false],
  ["PREPARE p (int) AS SELECT $1", false],
  ["PREPARE p (int) AS INSERT INTO t VALUES ($1)", true],
  ["PREPARE p AS UPDATE t SET a = 1", true],
  ["PREPARE p AS DELETE FROM t", true],
  ["PREPARE TRANSACTION 'x'", false],
  ["COMMIT PREPARED 'x'", false],
  ["ROLLBACK PREPARED 'x'", false],
  ["EXECUTE p (1)", false],
  ["EXECUTE p (nextval('s'))", true],
  ["EXPLAIN ANALYZE CREATE TABLE t2 AS SELECT 1", true],
  ["EXPLAIN (ANALYZE, BUFFERS) SELECT 1", false],
  ["EXPLAIN (ANALYZE) DELETE FROM t", true],
  ["EXPLAIN ANALYZE SELECT * INTO t2 FROM t", true],
  ["EXPLAIN ANALYZE EXECUTE p", false],
  // PostgreSQL lexing
  ["SELECT $$; DELETE FROM t$$", false],
  ["SELECT $tag$; DELETE FROM t $$ $tag$", false],
  ["SELECT $tag$; $tag$; DELETE FROM t", true],
  ["SELECT $1; DELETE FROM t", true],
  ["SELECT a$b FROM t", false],
  ["SELECT $abc", false],
  ["SELECT $$ unterminated", true],
  ["SELECT /* nested /* comment */ ; DELETE FROM t */ 1", false],
  ["SELECT /* nested /* comment */ 1", true], // still open
  ["SELECT E'\\'; DELETE FROM t; --'", false],
  ["SELECT e'it\\'s'", false],
  ['SELECT "a;b" FROM "DELETE"', false],
  ['SELECT "unterminated', true],
  ["SELECT 1 --\rDELETE FROM t", true],
  ["SELECT 1 # x", false],
  ["SELECT 1--x\n", false],
  // standard_conforming_strings off: '\'' continues the string
  ["SELECT 'a\\'; DELETE FROM t; -- '", true],
  ["SELECT 'a\\' ; SELECT 1", false], // with escapes: unterminated, runs nothing
  ["SELECT 'C:\\dir'", false],
  ["SELECT 1 \u00a0", false],
  ["SELECT\u00a01", true], // NBSP is an identifier character for the server
  ["DESCRIBE t", true], // not PostgreSQL
  ["USE db", true],
  ["DROP PREPARE p", true],
  ["XA START 'x'", true],
  ["SELECT * FROM t INTO OUTFILE '/tmp/x'", true],
];

const MYSQL: readonly Case[] = [
  ["SELECT * FROM t INTO OUTFILE '/tmp/x'", true],
  ["SELECT * INTO DUMPFILE '/tmp/x' FROM t", true],
  ["SELECT a INTO @x FROM t", false],
  ["SELECT a FROM t INTO @x", false],
  ["SELECT INSERT('Quadratic', 3, 4, 'What')", false],
  ["SELECT REPLACE(a, 'x', 'y') FROM t", false],
  ["REPLACE INTO t VALUES (1)", true],
  ["REPLACE t SET a = 1", true],
  ["LOAD DATA INFILE '/x' INTO TABLE t", true],
  ["INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1", true],
  ["SELECT * FROM t LOCK IN SHARE MODE", false],
  ["SELECT NEXTVAL(s)", true],
  ["SELECT NEXT VALUE FOR s", true],
  ["SELECT PREVIOUS VALUE FOR s", false],
  ["SELECT GET_LOCK('x', 1)", false],
  ["SELECT sleep(1)", false],
  ["DESCRIBE t", false],
  ["DESC t", false],
  ["DESC t a", false],
  ["DESCRIBE DELETE FROM t", true],
  ["EXPLAIN FORMAT=JSON SELECT 1", false],
  ["EXPLAIN FORMAT=TREE DELETE FROM t", true],
  ["EXPLAIN REPLACE INTO t VALUES (1)", true],
  ["EXPLAIN FOR CONNECTION 5", false],
  ["HELP 'contents'", false],
  ["USE db", false],
  ["DO SLEEP(1)", false],
  ["DO nextval(s)", true],
  ["XA START 'x'", false],
  ["XA COMMIT 'x'", false],
  ["UNLOCK TABLES", false],
  ["LOCK TABLES t READ", true],
  ["BEGIN WORK", false],
  ["BEGIN NOT ATOMIC SELECT 1; END", true],
  ["DROP PREPARE p", false],
  ["DROP TABLE t", true],
  ["DROP DATABASE db", true],
  ["SET @a = 1", false],
  ["SET @@session.sql_mode = ''", false],
  ["SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'", false],
  ["SET GLOBAL max_connections = 1", true],
  ["SET @@global.max_connections = 1", true],
  ["SET @@GLOBAL.max_connections = 1", true],
  ["SET PERSIST max_connections = 1", true],
  ["SET PERSIST_ONLY max_connections = 1", true],
  ["SET a = 1, GLOBAL b = 2", true],
  ["SET PASSWORD = 'x'", true],
  ["SET PASSWORD FOR u = 'x'", true],
  ["SET DEFAULT ROLE r TO u", true],
  ["SET RESOURCE GROUP g", true],
  ["SET ROLE r", false],
  ["SET @global = 1", false],
  ["SET @x = 'global'", false],
  ["SET TRANSACTION ISOLATION LEVEL READ COMMITTED", false],
  ["SET STATEMENT max_statement_time = 60 FOR SELECT * FROM t", false],
  ["SET STATEMENT max_statement_time = 60 FOR UPDATE t SET a = 1", true],
  ["SET STATEMENT max_statement_time = 60 FOR DELETE FROM t", true],
  ["PREPARE s FROM 'SELECT * FROM t WHERE a = ?'", false],
  ['PREPARE s FROM "SELECT 1"', false],
  ["PREPARE s FROM 'INSERT INTO t VALUES (?)'", true],
  ["PREPARE s FROM 'SELECT ''a''; DROP TABLE t'", true],
  ["PREPARE s FROM 'SELECT \\'a\\''", false],
  ["PREPARE s FROM @sql", true],
  ["PREPARE s FROM 'SELECT 1' ' INTO OUTFILE ''/x'''", true],
  ["PREPARE from FROM 'SELECT 1'", false],
  ["EXECUTE s USING @a", false],
  ["DEALLOCATE PREPARE s", false],
  ["KILL 5", true],
  ["FLUSH TABLES", true],
  ["RESET MASTER", true],
  ["BINLOG 'abc'", true],
  ["OPTIMIZE TABLE t", true],
  ["HANDLER t OPEN", true],
  ["START REPLICA", true],
  // MySQL lexing
  ["SELECT 1 # ; DELETE FROM t", false],
  ["SELECT 1 #\rDELETE FROM t", false], // the comment runs to LF
  ["SELECT 1 -- ; DELETE FROM t", false],
  ["SELECT 1 --\t; DELETE FROM t", false],
  ["SELECT 1 --", false],
  ["SELECT 1 --1; DELETE FROM t", true], // minus minus 1, then a DELETE
  ["SELECT 1 /*! ; DELETE FROM t */", true], // executable comment
  ["SELECT 1 /*!50001 ; DELETE FROM t */", true],
  ["SELECT 1 /*M!100101 ; DELETE FROM t */", true],
  ["/*!40101 SET NAMES utf8 */", false],
  ["/*!40101 SET NAMES utf8 */; /*!40014 SET FOREIGN_KEY_CHECKS=0 */", false],
  ["SELECT 1 /*! unterminated", true],
  ["SELECT 1 /*+ BKA(t) */ FROM t", false],
  ["SELECT 1 /* /* */ ; DELETE FROM t", true], // not nested in MySQL
  ["SELECT 'it\\'s; DELETE FROM t'", true], // NO_BACKSLASH_ESCAPES reading ends the string early
  ["SELECT 'it''s; DELETE FROM t'", false],
  ['SELECT "a; DELETE FROM t"', false],
  ["SELECT `delete` FROM `insert`", false],
  ["SELECT `a``; DELETE FROM t`", false],
  ["SELECT `nextval`(s)", true],
  ["SELECT 'C:\\\\dir'", false],
  ["SELECT $$; DELETE FROM t$$", true], // no dollar quoting in MySQL
  ["SELECT E'\\'; DELETE FROM t; --'", true],
  ["COPY t TO STDOUT", true],
  ["VALUES ROW(1, 2)", false],
  ["END", true],
];

/** What common clients and benchmarks send (pgbench, psql, sysbench, mysqlslap, JDBC). */
const CLIENTS: readonly [string, SqlDialect, boolean][] = [
  ["SELECT abalance FROM pgbench_accounts WHERE aid = $1;", "postgres", false],
  ["UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;", "postgres", true],
  [
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, NOW());",
    "postgres",
    true,
  ],
  ["END;", "postgres", false],
  ["SELECT pg_catalog.set_config('search_path', '', false);", "postgres", false],
  ["SET extra_float_digits = 3", "postgres", false],
  ["SET application_name = 'PostgreSQL JDBC Driver'", "postgres", false],
  [
    "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3;",
    "postgres",
    false,
  ],
  ["SELECT * FROM t WHERE a LIKE 'x\\%' ESCAPE '\\'", "postgres", false],
  ["SELECT c FROM sbtest1 WHERE id=42", "mysql", false],
  ["SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 1 AND 100 ORDER BY c", "mysql", false],
  ["UPDATE sbtest1 SET k=k+1 WHERE id=42", "mysql", true],
  [
    "/* mysql-connector-java-8.0.33 */SELECT  @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client",
    "mysql",
    false,
  ],
  ["SELECT @@version_comment LIMIT 1", "mysql", false],
  ["SELECT @@global.max_connections", "mysql", false],
  ["SHOW VARIABLES LIKE 'sql_mode'", "mysql", false],
  ["SET NAMES utf8mb4 COLLATE utf8mb4_0900_ai_ci", "mysql", false],
  ["SET character_set_results = NULL", "mysql", false],
  ["SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", "mysql", false],
  ["CREATE SCHEMA `mysqlslap`", "mysql", true],
  [
    "INSERT INTO t1 VALUES (964445884,'DPh7kD1E6f4MMQk1ioopsoIIcoD83DD8Wu7689K6oHTAjD3Hts6lYGv8x9G0EL0k87q8G2ExJjz2o3KhnIJBbEJYFROTpO5pNvxgyBT9nSCbNO9AiKL9QYhi0x3hL9')",
    "mysql",
    true,
  ],
  ["SELECT intcol1,charcol1 FROM t1", "mysql", false],
];

Deno.test("sql_write: what common clients and benchmarks send", () => {
  const wrong = CLIENTS.filter(([sql, d, w]) => isWriteStatement(sql, d) !== w);
  assert.deepEqual(wrong, []);
});

Deno.test("sql_write: statements with the same answer in both dialects", () => {
  check("postgres", BOTH);
  check("mysql", BOTH);
});

Deno.test("sql_write: PostgreSQL statements", () => check("postgres", POSTGRES));

Deno.test("sql_write: MySQL statements", () => check("mysql", MYSQL));

Deno.test("sql_write: keywords are matched in any case, comments and blanks between", () => {
  for (const dialect of ["postgres", "mysql"] as const) {
    assert.equal(isWriteStatement("/* c */ DeLeTe /* c */ FROM t", dialect), true);
    assert.equal(isWriteStatement("\n\n  sElEcT\n1\n", dialect), false);
    assert.equal(isWriteStatement("SELECT 1;\n-- comment\n;", dialect), false);
  }
});

Deno.test("sql_write: a write anywhere in a long batch of reads is found", () => {
  const reads = Array.from({ length: 2000 }, (_, i) => `SELECT ${i} FROM t WHERE a = 'x;y'`);
  for (const dialect of ["postgres", "mysql"] as const) {
    assert.equal(isWriteStatement(reads.join("; "), dialect), false);
    const batch = [...reads];
    batch[1234] = "UPDATE t SET a = 1";
    assert.equal(isWriteStatement(batch.join("; "), dialect), true);
  }
});

Deno.test("sql_write: hostile input never throws and takes linear time", () => {
  const rand = mulberry32(17);
  const alphabet = "SELECTINSRUPDAWHFROMselectinto ;()'\"`$#-/*!\\\n\t.@E0123456789xyz";
  for (let i = 0; i < 3000; i++) {
    const len = Math.floor(rand() * 200);
    let sql = "";
    for (let j = 0; j < len; j++) sql += alphabet[Math.floor(rand() * alphabet.length)];
    for (const dialect of ["postgres", "mysql"] as const) {
      assert.equal(typeof isWriteStatement(sql, dialect), "boolean");
    }
  }
  // Large pathological texts: deep parentheses, many comment openers, many dollar signs.
  const big = [
    "SELECT " + "(".repeat(200_000) + "1",
    "SELECT " + "/*".repeat(100_000),
    "SELECT " + "$a".repeat(100_000),
    "SELECT " + "'".repeat(200_001),
    "SELECT " + "\\'".repeat(100_000),
    "PREPARE s FROM '" + "PREPARE s FROM ''".repeat(20_000) + "'",
    "SELECT " + "a.".repeat(100_000),
    ";".repeat(200_000),
  ];
  const t0 = performance.now();
  for (const sql of big) {
    for (const dialect of ["postgres", "mysql"] as const) isWriteStatement(sql, dialect);
  }
  const ms = performance.now() - t0;
  assert.ok(ms < 5000, `pathological inputs took ${ms.toFixed(0)} ms`);
});
