/**
 * Does an SQL text change data? The classifier behind `--read-only` for the PostgreSQL and
 * MySQL modules: {@link isWriteStatement} answers from the statement text alone.
 *
 * The rule is an allow-list: a statement is a read only when its first keyword is one of the
 * known read or session keywords below and nothing inside it is a known write. Anything else
 * (an unknown first keyword, a text the lexer cannot follow, an unterminated string or
 * comment) counts as a write, so a new statement kind is dropped rather than replayed.
 *
 * Reads (replayed), per dialect:
 * - both: SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN, SET, BEGIN, START TRANSACTION, COMMIT,
 *   ROLLBACK, SAVEPOINT, RELEASE, PREPARE (classified by the prepared text), EXECUTE,
 *   DEALLOCATE;
 * - PostgreSQL: END, ABORT, COPY ... TO STDOUT, DECLARE (cursor), FETCH, MOVE, CLOSE, LISTEN,
 *   UNLISTEN, RESET, DISCARD, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED;
 * - MySQL: DESCRIBE/DESC, HELP, USE, DO, XA, UNLOCK, DROP PREPARE.
 *
 * Writes (dropped) include INSERT, UPDATE, DELETE, MERGE, REPLACE, TRUNCATE, COPY ... FROM (and
 * COPY ... TO a file or program), CREATE, ALTER, DROP, GRANT, REVOKE, RENAME, COMMENT, CALL,
 * DO (PostgreSQL: an anonymous code block), LOAD, VACUUM, ANALYZE, CLUSTER, REINDEX, REFRESH,
 * LOCK, NOTIFY, CHECKPOINT, KILL, FLUSH, RESET (MySQL), BINLOG, and every keyword not listed
 * as a read. Inside a read statement these also make it a write:
 * - a nested INSERT / UPDATE / DELETE / MERGE (a data-modifying CTE `WITH x AS (DELETE ...)`,
 *   `EXPLAIN [ANALYZE] UPDATE ...`) — `FOR UPDATE` / `FOR NO KEY UPDATE` lock clauses are not
 *   writes, nor MySQL's string function `INSERT(...)`;
 * - `INTO`: PostgreSQL `SELECT ... INTO t` creates a table; MySQL `INTO OUTFILE` /
 *   `INTO DUMPFILE` write a server file (MySQL `SELECT ... INTO @var` is a read);
 * - in EXPLAIN / DESCRIBE: CREATE and REPLACE (`EXPLAIN ANALYZE CREATE TABLE ... AS`);
 * - MySQL SET of server-wide or account state: `SET GLOBAL` / `PERSIST` / `PERSIST_ONLY` /
 *   `@@global.` / `@@persist.`, `SET PASSWORD`, `SET DEFAULT ROLE`, `SET RESOURCE GROUP`;
 *   MariaDB `SET STATEMENT ... FOR stmt` is classified by `stmt`; `BEGIN NOT ATOMIC` (a
 *   MariaDB compound statement) and `START` other than `START TRANSACTION` are writes;
 * - calls of built-in functions that write: `nextval`, `setval` (PostgreSQL and MariaDB
 *   sequences, also `NEXT VALUE FOR`), PostgreSQL large-object writers (`lo_import`,
 *   `lo_unlink`, `lowrite`, ...), `dblink`/`dblink_exec`, `pg_notify`, server administration
 *   (`pg_terminate_backend`, `pg_reload_conf`, replication slots, `pg_stat_reset*`, ...).
 *
 * Decisions:
 * - `SELECT ... FOR UPDATE / FOR SHARE` is a read: it changes no data; its row locks end
 *   with the transaction and replaying it keeps the read load realistic.
 * - Advisory locks (`pg_advisory_lock`, MySQL `GET_LOCK`) and session settings (SET,
 *   `set_config`) are reads: they change no data.
 * - `EXECUTE name` is a read: the text of a prepared statement is classified at PREPARE, and
 *   a dropped PREPARE never reaches the target, so an EXECUTE of a write fails there ("does
 *   not exist") instead of writing. MySQL `PREPARE s FROM 'text'` classifies `text`;
 *   `PREPARE s FROM @var` cannot be read and is a write. The same holds for protocol-level
 *   prepared statements only if the module drops their Parse / COM_STMT_PREPARE.
 * - Plain `EXPLAIN` of a write (which runs nothing) counts as a write like `EXPLAIN ANALYZE`.
 * - Creating a temporary table is a write (dropped): later reads of it fail on the target.
 *
 * Not caught (documented limits): user-defined functions, procedures or triggers called from
 * a SELECT that write (`SELECT my_func()`), writes through extensions not listed here, and
 * anything the server does with a text this lexer reads differently (the lexer follows the
 * server's rules, see below, and reads a text twice when a backslash makes the server's
 * reading depend on a session setting).
 *
 * Lexing: case-insensitive keywords; comments `--` (MySQL: `-- ` followed by a space or a
 * control character), `/* *\/` (nested in PostgreSQL), `#` (MySQL); MySQL executable comments
 * `/*! ... *\/` and `/*M! ... *\/` are read as code; strings `'...'`, PostgreSQL `E'...'` and
 * `$tag$...$tag$`, quoted identifiers `"..."`, MySQL `` `...` `` and `"..."`. A backslash in a
 * string means different things under PostgreSQL's `standard_conforming_strings` and MySQL's
 * `NO_BACKSLASH_ESCAPES`, which the client may set: such a text is classified both ways and
 * is a write if either reading finds one. The caller should cut the text at a NUL byte as
 * the server does.
 *
 * Total and bounded: never throws, linear in the text length (at most four passes), no
 * allocation per token.
 *
 * @example
 * ```ts
 * isWriteStatement("SELECT * FROM t FOR UPDATE", "postgres"); // false
 * isWriteStatement("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "postgres"); // true
 * isWriteStatement("select 1; drop table t", "mysql"); // true
 * ```
 */

/** The SQL dialects the classifier knows. */
export type SqlDialect = "postgres" | "mysql";

/**
 * True when `sql` (one statement or several separated by `;`) may change data or schema in
 * `dialect`, by the rules above. An empty text (only blanks and comments) is not a write.
 */
export function isWriteStatement(sql: string, dialect: SqlDialect): boolean {
  return classify(sql, dialect === "mysql", 0);
}

/** How deep MySQL `PREPARE s FROM '...'` texts are followed (one level is all MySQL allows). */
const MAX_NESTING = 1;

function classify(sql: string, mysql: boolean, nesting: number): boolean {
  if (nesting > MAX_NESTING) return true;
  // First reading: the servers' defaults (PostgreSQL: no backslash escapes in '...';
  // MySQL: backslash escapes in '...' and "...").
  const first = new Lexer(sql, mysql, mysql);
  if (scan(first, nesting, true)) return true;
  if (!first.sawBackslash) return false;
  // Second reading, the other setting. A text that does not lex under it (an unterminated
  // string) is a syntax error for a server with that setting: it runs nothing there.
  return scan(new Lexer(sql, mysql, !mysql), nesting, false);
}

// ---------------------------------------------------------------------------------------
// Keyword tables (lowercase; matched in place, case-insensitively, without allocation)

/** Words grouped by length for in-place lookup. */
class WordSet {
  private readonly byLength: string[][] = [];
  constructor(words: readonly string[]) {
    for (const w of words) (this.byLength[w.length] ??= []).push(w);
  }
  /** The word of this set that `s[start, end)` spells (any case), or "". */
  find(s: string, start: number, end: number): string {
    const list = this.byLength[end - start];
    if (list === undefined) return "";
    for (const w of list) if (spells(s, start, end, w)) return w;
    return "";
  }
}

/** `s[start, end)` equals the lowercase `word` ignoring ASCII case. */
function spells(s: string, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  return startsWith(s, start, end, word);
}

/** `s[start, end)` begins with the lowercase `prefix` ignoring ASCII case. */
function startsWith(s: string, start: number, end: number, prefix: string): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    let c = s.charCodeAt(start + i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

/** What a statement's first keyword makes of it. */
type Start =
  | "read" // a read: scan it for nested writes
  | "explain" // EXPLAIN / DESCRIBE: also CREATE and REPLACE are writes
  | "copy" // PostgreSQL COPY: a read only as COPY ... TO STDOUT
  | "set" // SET: MySQL checks for server-wide or account changes
  | "start" // START: a read only as START TRANSACTION
  | "begin" // BEGIN: MySQL BEGIN NOT ATOMIC is a write
  | "prepare" // PREPARE: classified by the prepared text
  | "drop"; // DROP: a read only as MySQL DROP PREPARE

/** A statement's state while it is scanned: its start, or "until_for" (MariaDB SET STATEMENT). */
type Mode = Start | "until_for";

const PG_STARTS: Readonly<Record<string, Start>> = {
  select: "read",
  with: "read",
  values: "read",
  table: "read",
  show: "read",
  explain: "explain",
  set: "set",
  reset: "read",
  discard: "read",
  begin: "begin",
  start: "start",
  commit: "read",
  end: "read",
  rollback: "read",
  abort: "read",
  savepoint: "read",
  release: "read",
  prepare: "prepare",
  execute: "read",
  deallocate: "read",
  declare: "read",
  fetch: "read",
  move: "read",
  close: "read",
  listen: "read",
  unlisten: "read",
  copy: "copy",
};

const MY_STARTS: Readonly<Record<string, Start>> = {
  select: "read",
  with: "read",
  values: "read",
  table: "read",
  show: "read",
  explain: "explain",
  describe: "explain",
  desc: "explain",
  help: "read",
  use: "read",
  do: "read",
  set: "set",
  begin: "begin",
  start: "start",
  commit: "read",
  rollback: "read",
  savepoint: "read",
  release: "read",
  xa: "read",
  prepare: "prepare",
  execute: "read",
  deallocate: "read",
  drop: "drop",
  unlock: "read",
};

const PG_START_WORDS = new WordSet(Object.keys(PG_STARTS));
const MY_START_WORDS = new WordSet(Object.keys(MY_STARTS));

/** Words that make a read statement a write (with conditions, see `nestedWrite`). */
const MARKERS = new WordSet(["insert", "update", "delete", "merge", "into", "next"]);

/** More writes inside EXPLAIN / DESCRIBE. */
const EXPLAIN_MARKERS = new WordSet(["create", "replace"]);

/** MySQL SET targets that are server-wide or persistent. */
const MY_SET_MARKERS = new WordSet([
  "global",
  "persist",
  "persist_only",
  "@@global",
  "@@persist",
  "@@persist_only",
  "password",
]);

/** MySQL `SET <word>` forms that change accounts or other sessions. */
const MY_SET_SECOND = new WordSet(["password", "default", "resource"]);

/** Built-in PostgreSQL functions that write (called as `name(`). */
const PG_WRITE_FUNCTIONS = new WordSet([
  "nextval",
  "setval",
  "lo_import",
  "lo_export",
  "lo_unlink",
  "lo_create",
  "lo_creat",
  "lo_from_bytea",
  "lo_put",
  "lowrite",
  "lo_truncate",
  "lo_truncate64",
  "dblink",
  "dblink_exec",
  "dblink_send_query",
  "pg_notify",
  "pg_terminate_backend",
  "pg_cancel_backend",
  "pg_reload_conf",
  "pg_rotate_logfile",
  "pg_switch_wal",
  "pg_switch_xlog",
  "pg_create_restore_point",
  "pg_promote",
  "pg_wal_replay_pause",
  "pg_wal_replay_resume",
  "pg_backup_start",
  "pg_backup_stop",
  "pg_start_backup",
  "pg_stop_backup",
  "pg_create_physical_replication_slot",
  "pg_create_logical_replication_slot",
  "pg_drop_replication_slot",
  "pg_copy_physical_replication_slot",
  "pg_copy_logical_replication_slot",
  "pg_replication_slot_advance",
  "pg_logical_slot_get_changes",
  "pg_logical_slot_get_binary_changes",
  "pg_logical_emit_message",
  "pg_import_system_collations",
  "pg_file_write",
  "pg_file_rename",
  "pg_file_unlink",
  "pg_file_sync",
  "pg_stat_statements_reset",
]);

/** Prefixes of PostgreSQL function families that write. */
const PG_WRITE_FUNCTION_PREFIXES = ["pg_stat_reset", "pg_replication_origin_"];

/** Built-in MySQL / MariaDB functions that write (MariaDB sequences; common `sys_exec` UDFs). */
const MY_WRITE_FUNCTIONS = new WordSet(["nextval", "setval", "sys_exec", "sys_eval"]);

// ---------------------------------------------------------------------------------------
// Lexer: one token at a time, kind and bounds in fields (no allocation per token)

const T_END = 0;
const T_WORD = 1;
const T_QIDENT = 2;
const T_STR = 3;
const T_SEMI = 4;
const T_LPAREN = 5;
const T_RPAREN = 6;
const T_DOT = 7;
const T_OTHER = 8;
const T_BAD = 9;

const C_BACKSLASH = 92;
const C_NL = 10;
const C_CR = 13;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isWordStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 0x80;
}

function isWordPart(c: number): boolean {
  return isWordStart(c) || isDigit(c) || c === 36; // $ continues an identifier in both
}

class Lexer {
  /** A string contained a backslash whose meaning depends on a session setting. */
  sawBackslash = false;
  kind = T_END;
  start = 0;
  end = 0;
  private pos = 0;
  private inExecComment = false;

  /**
   * @param escapes backslash escapes in plain strings (PostgreSQL: standard_conforming_strings
   *   off; MySQL: NO_BACKSLASH_ESCAPES off)
   */
  constructor(readonly s: string, readonly mysql: boolean, readonly escapes: boolean) {}

  /** Reads the next token into the fields; returns its kind. */
  next(): number {
    const s = this.s;
    const n = s.length;
    for (;;) {
      if (this.pos >= n) return this.set(this.inExecComment ? T_BAD : T_END, n, n);
      const p = this.pos;
      const c = s.charCodeAt(p);
      if (c <= 32 || c === 0x7f) {
        this.pos++;
        continue;
      }
      const c1 = p + 1 < n ? s.charCodeAt(p + 1) : 0;
      if (c === 45 && c1 === 45 && this.isDashComment(p + 2)) { // --
        this.skipLine(p + 2);
        continue;
      }
      if (c === 35 && this.mysql) { // #
        this.skipLine(p + 1);
        continue;
      }
      if (c === 47 && c1 === 42) { // /*
        if (!this.skipBlockComment(p)) return this.set(T_BAD, p, n);
        continue;
      }
      if (c === 42 && c1 === 47 && this.inExecComment) { // */ closing /*! ... */
        this.inExecComment = false;
        this.pos = p + 2;
        continue;
      }
      switch (c) {
        case 59:
          return this.single(T_SEMI, p);
        case 40:
          return this.single(T_LPAREN, p);
        case 41:
          return this.single(T_RPAREN, p);
        case 46:
          return this.single(T_DOT, p);
        case 39: // '
          return this.quoted(p, T_STR, this.escapes, true);
        case 34: // "
          return this.mysql
            ? this.quoted(p, T_STR, this.escapes, true)
            : this.quoted(p, T_QIDENT, false, false);
        case 96: // `
          if (this.mysql) return this.quoted(p, T_QIDENT, false, false);
          break;
        case 36: // $
          if (!this.mysql) return this.dollar(p);
          break;
        case 64: // @ (MySQL variables: @v, @@global)
          if (this.mysql) return this.word(p, p + (c1 === 64 ? 2 : 1));
          break;
      }
      if (isWordStart(c)) return this.word(p, p + 1);
      if (isDigit(c)) {
        let q = p + 1;
        while (q < n && (isDigit(s.charCodeAt(q)) || s.charCodeAt(q) === 46)) q++;
        this.pos = q;
        return this.set(T_OTHER, p, q);
      }
      return this.single(T_OTHER, p);
    }
  }

  private set(kind: number, start: number, end: number): number {
    this.kind = kind;
    this.start = start;
    this.end = end;
    return kind;
  }

  private single(kind: number, p: number): number {
    this.pos = p + 1;
    return this.set(kind, p, p + 1);
  }

  /** `--` at p-2 starts a comment: always in PostgreSQL, before a blank or control in MySQL. */
  private isDashComment(after: number): boolean {
    if (!this.mysql) return true;
    if (after >= this.s.length) return true;
    const c = this.s.charCodeAt(after);
    return c <= 32 || c === 0x7f;
  }

  /** Skips to the end of the line (MySQL: LF; PostgreSQL: LF or CR). */
  private skipLine(from: number): void {
    const s = this.s;
    let q = from;
    while (q < s.length) {
      const c = s.charCodeAt(q);
      if (c === C_NL || (c === C_CR && !this.mysql)) break;
      q++;
    }
    this.pos = q;
  }

  /** Skips a block comment at p; false when it is not terminated. */
  private skipBlockComment(p: number): boolean {
    const s = this.s;
    const n = s.length;
    if (this.mysql) {
      const c2 = p + 2 < n ? s.charCodeAt(p + 2) : 0;
      const mariadb = c2 === 77 && p + 3 < n && s.charCodeAt(p + 3) === 33; // /*M!
      if (c2 === 33 || mariadb) { // /*! executable comment: its content is code
        if (this.inExecComment) return false;
        let q = p + (mariadb ? 4 : 3);
        for (let d = 0; d < 6 && q < n && isDigit(s.charCodeAt(q)); d++) q++;
        this.inExecComment = true;
        this.pos = q;
        return true;
      }
      const close = s.indexOf("*/", p + 2);
      if (close < 0) return false;
      this.pos = close + 2;
      return true;
    }
    let depth = 1;
    let q = p + 2;
    while (q < n) {
      const c = s.charCodeAt(q);
      const d = q + 1 < n ? s.charCodeAt(q + 1) : 0;
      if (c === 47 && d === 42) {
        depth++;
        q += 2;
      } else if (c === 42 && d === 47) {
        q += 2;
        if (--depth === 0) {
          this.pos = q;
          return true;
        }
      } else {
        q++;
      }
    }
    return false;
  }

  /** A quoted string or identifier at p (doubled quote = one quote). */
  private quoted(p: number, kind: number, backslash: boolean, noteBackslash: boolean): number {
    const s = this.s;
    const n = s.length;
    const q = s.charCodeAt(p);
    let i = p + 1;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === C_BACKSLASH) {
        if (noteBackslash) this.sawBackslash = true;
        i += backslash ? 2 : 1;
        continue;
      }
      if (c === q) {
        if (i + 1 < n && s.charCodeAt(i + 1) === q) {
          i += 2;
          continue;
        }
        this.pos = i + 1;
        return this.set(kind, p, i + 1);
      }
      i++;
    }
    return this.set(T_BAD, p, n);
  }

  /** PostgreSQL `$n` parameter, `$tag$...$tag$` string, or a lone `$`. */
  private dollar(p: number): number {
    const s = this.s;
    const n = s.length;
    let q = p + 1;
    if (q < n && isDigit(s.charCodeAt(q))) {
      while (q < n && isDigit(s.charCodeAt(q))) q++;
      this.pos = q;
      return this.set(T_OTHER, p, q);
    }
    while (q < n && (isWordStart(s.charCodeAt(q)) || (q > p + 1 && isDigit(s.charCodeAt(q))))) q++;
    if (q >= n || s.charCodeAt(q) !== 36) return this.single(T_OTHER, p);
    const tag = s.slice(p, q + 1);
    const close = s.indexOf(tag, q + 1);
    if (close < 0) return this.set(T_BAD, p, n);
    this.pos = close + tag.length;
    return this.set(T_STR, p, this.pos);
  }

  /** A word starting at p whose part characters start at q; PostgreSQL E'...' strings. */
  private word(p: number, q: number): number {
    const s = this.s;
    const n = s.length;
    while (q < n && isWordPart(s.charCodeAt(q))) q++;
    if (
      !this.mysql && q === p + 1 && q < n && s.charCodeAt(q) === 39 &&
      (s.charCodeAt(p) | 0x20) === 101 // E'...': backslash escapes whatever the setting
    ) {
      const kind = this.quoted(q, T_STR, true, false);
      if (kind === T_STR) this.start = p;
      return kind;
    }
    this.pos = q;
    return this.set(T_WORD, p, q);
  }
}

// ---------------------------------------------------------------------------------------
// Statement scanner: a window of three tokens (previous, current, next)

class Window {
  pk = T_END;
  ps = 0;
  pe = 0;
  ck = T_END;
  cs = 0;
  ce = 0;
  nk = T_END;
  ns = 0;
  ne = 0;
  constructor(readonly lx: Lexer) {
    this.nk = lx.next();
    this.ns = lx.start;
    this.ne = lx.end;
  }
  /** Moves one token on; returns the current token's kind. */
  advance(): number {
    this.pk = this.ck;
    this.ps = this.cs;
    this.pe = this.ce;
    this.ck = this.nk;
    this.cs = this.ns;
    this.ce = this.ne;
    if (this.ck !== T_END && this.ck !== T_BAD) {
      this.nk = this.lx.next();
      this.ns = this.lx.start;
      this.ne = this.lx.end;
    }
    return this.ck;
  }
  prevIs(word: string): boolean {
    return this.pk === T_WORD && spells(this.lx.s, this.ps, this.pe, word);
  }
  nextIs(word: string): boolean {
    return this.nk === T_WORD && spells(this.lx.s, this.ns, this.ne, word);
  }
}

/**
 * True when the text the lexer reads has a write statement; `badIsWrite`: what a text that
 * does not lex (unterminated string or comment) counts as.
 */
function scan(lx: Lexer, nesting: number, badIsWrite: boolean): boolean {
  const w = new Window(lx);
  const s = lx.s;
  const mysql = lx.mysql;
  let inStatement = false;
  let mode: Mode = "read";
  let depth = 0;
  let copyToStdout = false;
  let words = 0;
  for (;;) {
    const k = w.advance();
    if (k === T_BAD) return badIsWrite;
    if (k === T_END || k === T_SEMI) {
      if (inStatement && mode === "copy" && !copyToStdout) return true;
      if (k === T_END) return false;
      inStatement = false;
      continue;
    }
    if (!inStatement) {
      if (k === T_LPAREN) continue; // (SELECT ...) UNION ...
      if (k !== T_WORD) return true;
      const first = (mysql ? MY_START_WORDS : PG_START_WORDS).find(s, w.cs, w.ce);
      if (first === "") return true;
      const start = (mysql ? MY_STARTS : PG_STARTS)[first];
      if (startIsWrite(start, w, mysql)) return true;
      inStatement = true;
      mode = start;
      if (mode === "prepare" && !mysql && w.nextIs("transaction")) mode = "read";
      if (mode === "drop") mode = "read"; // DROP PREPARE
      depth = 0;
      copyToStdout = false;
      words = 0;
      continue;
    }
    if (k === T_LPAREN) {
      depth++;
      continue;
    }
    if (k === T_RPAREN) {
      if (depth > 0) depth--;
      continue;
    }
    if (k === T_QIDENT) {
      if (w.nk === T_LPAREN && writeFunction(s, w.cs + 1, w.ce - 1, mysql)) return true;
      continue;
    }
    if (k === T_STR && mode === "prepare" && w.pk === T_STR) return true; // 'a' 'b' concatenated
    if (k !== T_WORD) continue;
    words++;
    if (nestedWrite(w, mysql)) return true;
    switch (mode) {
      case "read":
      case "start":
      case "begin":
        break;
      case "explain":
        if (
          w.pk !== T_DOT && w.nk !== T_LPAREN && EXPLAIN_MARKERS.find(s, w.cs, w.ce) !== ""
        ) return true;
        break;
      case "copy":
        if (depth > 0) break;
        if (spells(s, w.cs, w.ce, "from")) return true;
        if (spells(s, w.cs, w.ce, "to")) {
          if (!w.nextIs("stdout")) return true;
          copyToStdout = true;
        }
        break;
      case "set":
        if (!mysql) break;
        if (words === 1 && spells(s, w.cs, w.ce, "statement")) {
          mode = "until_for"; // MariaDB SET STATEMENT ... FOR stmt: classify stmt
          break;
        }
        if (w.nk !== T_LPAREN && MY_SET_MARKERS.find(s, w.cs, w.ce) !== "") return true;
        break;
      case "prepare":
        if (depth > 0) break;
        if (!mysql) {
          if (spells(s, w.cs, w.ce, "as")) inStatement = false; // PREPARE p AS stmt: restart
          break;
        }
        if (spells(s, w.cs, w.ce, "from") && !w.prevIs("prepare")) { // PREPARE s FROM 'text'
          if (w.nk !== T_STR) return true; // PREPARE s FROM @var: the text is unknown
          if (classify(unquote(s, w.ns, w.ne, lx.escapes), true, nesting + 1)) return true;
        }
        break;
      case "until_for":
        if (depth === 0 && spells(s, w.cs, w.ce, "for")) inStatement = false; // restart
        break;
      default:
        return mode satisfies never;
    }
  }
}

/** Decides the statement from its first keyword and the word after it, when it can. */
function startIsWrite(start: Start, w: Window, mysql: boolean): boolean {
  switch (start) {
    case "start":
      return !w.nextIs("transaction");
    case "begin":
      return mysql && w.nextIs("not");
    case "drop":
      return !(mysql && w.nextIs("prepare"));
    case "set":
      return mysql && w.nk === T_WORD && MY_SET_SECOND.find(w.lx.s, w.ns, w.ne) !== "";
    case "read":
    case "explain":
    case "copy":
    case "prepare":
      return false;
    default:
      return start satisfies never;
  }
}

/** The current word makes a read statement a write (nested DML, INTO, write functions). */
function nestedWrite(w: Window, mysql: boolean): boolean {
  const s = w.lx.s;
  const qualified = w.pk === T_DOT; // t.update is a column
  switch (MARKERS.find(s, w.cs, w.ce)) {
    case "insert":
      if (!qualified && w.nk !== T_LPAREN) return true; // INSERT(...) is a MySQL function
      break;
    case "update":
      if (!qualified && !w.prevIs("for") && !w.prevIs("key")) return true; // FOR [NO KEY] UPDATE
      break;
    case "delete":
    case "merge":
      if (!qualified) return true;
      break;
    case "into":
      if (qualified) break;
      if (!mysql) return true; // SELECT ... INTO t creates a table
      if (w.nextIs("outfile") || w.nextIs("dumpfile")) return true;
      break;
    case "next":
      if (mysql && w.nextIs("value")) return true; // MariaDB NEXT VALUE FOR seq
      break;
  }
  return w.nk === T_LPAREN && writeFunction(s, w.cs, w.ce, mysql);
}

/** `s[start, end)` names a built-in function that writes. */
function writeFunction(s: string, start: number, end: number, mysql: boolean): boolean {
  if (mysql) return MY_WRITE_FUNCTIONS.find(s, start, end) !== "";
  if (PG_WRITE_FUNCTIONS.find(s, start, end) !== "") return true;
  for (const prefix of PG_WRITE_FUNCTION_PREFIXES) {
    if (startsWith(s, start, end, prefix)) return true;
  }
  return false;
}

/** The text of a MySQL string literal `s[start, end)` (quotes included). */
function unquote(s: string, start: number, end: number, escapes: boolean): string {
  const q = s.charCodeAt(start);
  let out = "";
  let from = start + 1;
  let i = from;
  const last = end - 1;
  while (i < last) {
    const c = s.charCodeAt(i);
    if (c === q && i + 1 < last && s.charCodeAt(i + 1) === q) {
      out += s.slice(from, i + 1);
      i += 2;
      from = i;
    } else if (c === C_BACKSLASH && escapes && i + 1 < last) {
      out += s.slice(from, i) + unescape(s.charCodeAt(i + 1));
      i += 2;
      from = i;
    } else {
      i++;
    }
  }
  return out + s.slice(from, last);
}

/** MySQL's meaning of `\c` in a string. */
function unescape(c: number): string {
  switch (c) {
    case 110:
      return "\n";
    case 116:
      return "\t";
    case 114:
      return "\r";
    case 48:
      return "\0";
    case 90:
      return "\x1a";
    case 98:
      return "\b";
    case 37: // \% and \_ keep their backslash
    case 95:
      return "\\" + String.fromCharCode(c);
    default:
      return String.fromCharCode(c);
  }
}
