/**
 * `tcpcopy doctor --module NAME` (or `-x ...@NAME`): what the protocol modules of a run need,
 * as pure verdicts from facts (gathered by module_facts.ts).
 *
 * - the auth file: exists, owner-only, parses, holds at least one user (its passwords are
 *   never read into a verdict: only the number of users is shown);
 * - `--secret-file` when a module reads the target's replies (intercept sends reply payload
 *   only to an authenticated tcpcopy; the run refuses to start without it);
 * - the reply payload prefix each reachable intercept grants against the largest one the
 *   modules ask for (intercept's `--max-prefix`).
 *
 * @module
 */
import type { Verdict } from "./checks.ts";

/** A module of the run: its name and the reply prefix it asks intercept for. */
export interface ModuleNeed {
  name: string;
  replyPrefix: number;
}

/** What the module checks judge. */
export interface ModuleFacts {
  modules: ModuleNeed[];
  /** `--auth-file` as given; undefined when none. */
  authFile?: string;
  /** The auth file's one-line error (never a password), or its number of users. */
  auth?: { error: string } | { users: number };
  /** `--secret-file` was given. */
  secretFile: boolean;
  /** `--module-trust-logins` was given (absent: false). */
  trustLogins?: boolean;
  /**
   * Per intercept ("host:port") the reply prefix it granted an authenticated tunnel connection
   * asking for the modules' prefix, or the reason none could be asked (a string). Absent when
   * not asked (no -s, no secret, no module that reads replies, intercept not reachable).
   */
  grants: Record<string, number | string>;
}

/** The largest reply prefix the modules ask for, and the module asking it. */
export function largestPrefix(modules: readonly ModuleNeed[]): ModuleNeed | undefined {
  let best: ModuleNeed | undefined;
  for (const m of modules) {
    if (m.replyPrefix > 0 && m.replyPrefix > (best?.replyPrefix ?? 0)) best = m;
  }
  return best;
}

/** The verdicts for the modules of a run; none without a module. */
export function checkModules(f: ModuleFacts): Verdict[] {
  if (f.modules.length === 0) return [];
  const names = f.modules.map((m) => m.name).join(", ");
  return [checkAuthFile(f, names), checkLogins(f, names), ...checkSecret(f), ...checkGrants(f)];
}

/** Whether a login production refused can be followed on the target (`--module-trust-logins`). */
function checkLogins(f: ModuleFacts, names: string): Verdict {
  const id = "module:logins";
  if (f.trustLogins === true) {
    return {
      id,
      status: "warn",
      summary: `--module-trust-logins: module ${names} replays what follows a login without ` +
        "production's verdict: a client whose login production refused gets its commands run " +
        "on the target as the auth file's user",
      fix: "drop --module-trust-logins where the capture can see the online server's replies " +
        "(the default captures both directions on the online port)",
    };
  }
  return {
    id,
    status: "pass",
    summary: `module ${names}: nothing after a login is replayed before production accepted ` +
      "it (the capture takes the online server's replies too)",
  };
}

function checkAuthFile(f: ModuleFacts, names: string): Verdict {
  const id = "module:auth-file";
  if (f.authFile === undefined) {
    return {
      id,
      status: "warn",
      summary: `no --auth-file for module ${names}: only logins without a password replay ` +
        "(PostgreSQL trust; MySQL logins fail with no_credentials, Redis AUTH is sent unchanged)",
      fix: "give --auth-file FILE: one user:password per line, chmod 600, owned by the user " +
        "tcpcopy runs as",
    };
  }
  const auth = f.auth;
  if (auth === undefined || "error" in auth) {
    return {
      id,
      status: "fail",
      summary: auth?.error ?? `--auth-file ${JSON.stringify(f.authFile)}: not read`,
      fix: "a regular file (not a symlink) readable by its owner only (chmod 600), one " +
        "user:password per line ('#' comments), at least one user",
    };
  }
  return {
    id,
    status: "pass",
    summary: `--auth-file ${JSON.stringify(f.authFile)}: owner-only, ${auth.users} user${
      auth.users === 1 ? "" : "s"
    } (passwords not shown)`,
  };
}

function checkSecret(f: ModuleFacts): Verdict[] {
  const reader = largestPrefix(f.modules);
  if (reader === undefined) return []; // e.g. redis: no reply bytes needed
  if (f.secretFile) {
    return [{
      id: "module:secret-file",
      status: "pass",
      summary: `module ${reader.name} reads the target's replies: --secret-file given`,
    }];
  }
  return [{
    id: "module:secret-file",
    status: "fail",
    summary: `module ${reader.name} reads the target's replies, which intercept sends only to ` +
      "a tcpcopy that authenticates: no --secret-file (the run refuses to start)",
    fix: "give --secret-file FILE here and the same file to intercept (--secret-file FILE)",
  }];
}

function checkGrants(f: ModuleFacts): Verdict[] {
  const reader = largestPrefix(f.modules);
  if (reader === undefined) return [];
  const want = reader.replyPrefix;
  return Object.entries(f.grants).map(([addr, g]): Verdict => {
    const id = `module:prefix:${addr}`;
    if (typeof g === "string") {
      return {
        id,
        status: "fail",
        summary: `intercept ${addr}: no authenticated tunnel to ask for reply payload: ${g}`,
        fix: "start intercept with the same --secret-file FILE as this tcpcopy",
      };
    }
    if (g >= want) {
      return {
        id,
        status: "pass",
        summary: `intercept ${addr} grants ${g} bytes of reply payload; module ${reader.name} ` +
          `asks ${want}`,
      };
    }
    return {
      id,
      status: "warn",
      summary: `intercept ${addr} grants ${g} bytes of reply payload, module ${reader.name} ` +
        `asks ${want}: module sessions see the rest of each reply as gaps (logins whose ` +
        "replies are cut fail)",
      fix: `start intercept with --max-prefix ${want}`,
    };
  });
}
