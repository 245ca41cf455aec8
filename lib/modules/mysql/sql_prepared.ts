/**
 * SQL-level prepared statements (`PREPARE name FROM '...'`, `EXECUTE name`,
 * `DEALLOCATE PREPARE name`): which name a text query prepares or runs, and the statement text
 * it prepares, so that --read-only can judge the prepared text and drop the executions of a
 * dropped PREPARE.
 *
 * @module
 */

/** What a text query does with a named prepared statement, if anything. */
export type SqlPrepared =
  /** `body` is the prepared text, undefined when it comes from a variable (`FROM @v`). */
  | { kind: "prepare"; name: string; body: string | undefined }
  | { kind: "execute" | "deallocate"; name: string }
  | undefined;

const NAME = "`?([A-Za-z0-9_$]+)`?";
const PREPARE = new RegExp(`^\\s*prepare\\s+${NAME}\\s+from\\s+`, "i");
const EXECUTE = new RegExp(`^\\s*execute\\s+${NAME}`, "i");
const DEALLOCATE = new RegExp(`^\\s*(?:deallocate|drop)\\s+prepare\\s+${NAME}`, "i");

/** Parses the prepared-statement verbs of a text query. */
export function sqlPrepared(sql: string): SqlPrepared {
  let m = PREPARE.exec(sql);
  if (m) {
    return { kind: "prepare", name: m[1].toLowerCase(), body: literal(sql.slice(m[0].length)) };
  }
  m = EXECUTE.exec(sql);
  if (m) return { kind: "execute", name: m[1].toLowerCase() };
  m = DEALLOCATE.exec(sql);
  if (m) return { kind: "deallocate", name: m[1].toLowerCase() };
  return undefined;
}

/** The text of a leading quoted string literal ('...' or "..."), or undefined. */
function literal(s: string): string | undefined {
  const q = s[0];
  if (q !== "'" && q !== '"') return undefined;
  let out = "";
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (c === "\\" && i + 1 < s.length) out += s[++i];
    else if (c === q && s[i + 1] === q) out += s[i++];
    else if (c === q) return out;
    else out += c;
  }
  return undefined;
}
