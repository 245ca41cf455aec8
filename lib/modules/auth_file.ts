/**
 * `--auth-file FILE`: the passwords protocol modules recompute logins with.
 *
 * The file has the safety rules of the tunnel secret (lib/tunnel/secret_file.ts): a regular
 * file, not a symlink, readable by its owner only (mode 0600 or 0400), at most 1 MiB. One
 * `user:password` per line; the user ends at the first ':', the password is the rest of the
 * line as it is (it may hold ':' and spaces; a trailing '\r' is dropped). Blank lines and
 * lines starting with '#' (after white space) are comments. A bad line is refused with one
 * line naming the line number, never its password.
 *
 * @example
 * ```
 * # user:password
 * app:s3cret:with:colons
 * report:another one
 * ```
 */
import type { Credentials } from "./module.ts";
import { readPrivateFile } from "../tunnel/secret_file.ts";

/** Either the credentials or a one-line error. */
export type AuthFileResult = { ok: true; credentials: AuthCredentials } | {
  ok: false;
  error: string;
};

/** Passwords by user (see {@link Credentials}), with the number of users for logs. */
export class AuthCredentials implements Credentials {
  readonly #byUser: ReadonlyMap<string, string>;

  constructor(byUser: ReadonlyMap<string, string>) {
    this.#byUser = byUser;
  }

  /** The password for `user`, or undefined. */
  password(user: string): string | undefined {
    return this.#byUser.get(user);
  }

  /** Users in the file. */
  get size(): number {
    return this.#byUser.size;
  }
}

/** Longest user name shown in an error. */
const SHOWN_USER = 64;

/** Parses the text of an auth file; errors are `line N: ...` (no password in them). */
export function parseAuthText(text: string): { ok: true; users: Map<string, string> } | {
  ok: false;
  error: string;
} {
  const users = new Map<string, string>();
  const firstLine = new Map<string, number>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    let line = lines[i];
    if (line.endsWith("\r")) line = line.slice(0, -1);
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon < 0) {
      return { ok: false, error: `line ${n}: expected user:password (no ':' on the line)` };
    }
    const user = line.slice(0, colon).trim();
    if (user === "") return { ok: false, error: `line ${n}: the user name before ':' is empty` };
    if (users.has(user)) {
      const shown = JSON.stringify(user.slice(0, SHOWN_USER));
      return {
        ok: false,
        error: `line ${n}: user ${shown} is given twice (first on line ${firstLine.get(user)})`,
      };
    }
    users.set(user, line.slice(colon + 1));
    firstLine.set(user, n);
  }
  return { ok: true, users };
}

/** Reads and checks `--auth-file FILE`. */
export function readAuthFile(path: string, flag = "--auth-file"): AuthFileResult {
  const r = readPrivateFile(path, flag, "user:password lines");
  if (!r.ok) return r;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(r.bytes);
  } catch {
    return { ok: false, error: `${flag} ${JSON.stringify(path)}: is not UTF-8 text` };
  } finally {
    r.bytes.fill(0);
  }
  const parsed = parseAuthText(text);
  if (!parsed.ok) return { ok: false, error: `${flag} ${JSON.stringify(path)}: ${parsed.error}` };
  if (parsed.users.size === 0) {
    return {
      ok: false,
      error: `${flag} ${JSON.stringify(path)}: holds no user:password line`,
    };
  }
  return { ok: true, credentials: new AuthCredentials(parsed.users) };
}
