/**
 * The PostgreSQL protocol module (`--module postgres`): replays a captured session's login
 * against the target with credentials from `--auth-file`, answering whatever the *target* asks
 * (trust, cleartext password, MD5, SCRAM-SHA-256), then hands the session back to the engine.
 *
 * A session, as the module sees it:
 *
 * 1. `startup`: the captured client's first packet. An SSLRequest/GSSENCRequest is replayed and
 *    the target must answer 'N' (encrypted sessions are a non-goal: `tls`). A StartupMessage is
 *    replayed as it is. A CancelRequest (`cancel_request`: production's backend key means nothing
 *    to the target), an old protocol (`unsupported_protocol`) or bytes that are no startup packet
 *    (`no_login`: picked up mid-stream) end the session.
 * 2. `login`: the target's authentication requests are answered from the auth file; the captured
 *    client's own PasswordMessage/SASL messages ('p') are dropped; the client's later messages
 *    (its queries) are held.
 * 3. On the target's ReadyForQuery, once production accepted the captured login too
 *    (AuthenticationOk then ReadyForQuery on its replies, postgres/online.ts), the held bytes are
 *    sent at once and the session is passed to
 *    the engine (`out.pass()`), or, with `--read-only`, filtered message by message from then on
 *    (postgres/read_only.ts).
 *
 * Failures (`out.fail`): `no_login`, `tls`, `cancel_request`, `unsupported_protocol`,
 * `unsupported_auth`, `no_password`, `auth_failed` (the target refused the login, e.g. 28P01),
 * `login_failed` (an error after authentication, e.g. 3D000), `server_signature` (SCRAM server
 * proof mismatch), `reply_gap` (a login reply longer than the granted prefix), `malformed`,
 * `malformed_reply`, `hold_limit`, `online_login_failed` (production refused the login: nothing
 * after it is sent), `online_login_unknown` (production's verdict could not be read).
 *
 * @module
 */

import type { ModuleContext, ModuleOutput, ModuleSession, ProtocolModule } from "./module.ts";
import { ByteQueue } from "./postgres/bytes.ts";
import {
  type AuthRequest,
  authRequest,
  errorFields,
  passwordMessage,
  saslInitialResponse,
  saslResponse,
  startupKind,
  startupParams,
} from "./postgres/messages.ts";
import { md5Response } from "./postgres/md5.ts";
import {
  checkServerFinal,
  clientFinal,
  clientFirst,
  makeNonce,
  parseServerFirst,
  SCRAM_SHA_256,
  type ScramFinal,
  type ScramStart,
} from "./postgres/scram.ts";
import { ReadOnlyFilter, type WriteClassifier } from "./postgres/read_only.ts";
import { PgOnlineLogin } from "./postgres/online.ts";
import { isWriteStatement } from "./sql_write.ts";

/** Why a session ended in the module (the `reason` of `out.fail`). */
export type PgFailure =
  | "no_login"
  | "tls"
  | "cancel_request"
  | "unsupported_protocol"
  | "unsupported_auth"
  | "no_password"
  | "auth_failed"
  | "login_failed"
  | "server_signature"
  | "reply_gap"
  | "malformed"
  | "malformed_reply"
  | "hold_limit"
  | "online_login_failed"
  | "online_login_unknown";

const FAILURES: readonly PgFailure[] = [
  "no_login",
  "tls",
  "cancel_request",
  "unsupported_protocol",
  "unsupported_auth",
  "no_password",
  "auth_failed",
  "login_failed",
  "server_signature",
  "reply_gap",
  "malformed",
  "malformed_reply",
  "hold_limit",
  "online_login_failed",
  "online_login_unknown",
];

/**
 * SCRAM iteration counts the module accepts from the target (PBKDF2 runs on the replay
 * thread; PostgreSQL's default is 4096): more is `unsupported_auth`.
 */
export const MAX_SCRAM_ITERATIONS = 100_000;

/** Client bytes held while the target logs in, at most. */
export const MAX_HELD = 4 << 20;
/** Largest login reply ('R', 'E') the module buffers. */
export const MAX_LOGIN_REPLY = 64 << 10;
/** Largest client password/SASL message ('p') that is skipped. */
export const MAX_PASSWORD_MESSAGE = 1 << 20;
/** Bytes of a client nonce before base64 (libpq uses 18). */
const NONCE_BYTES = 18;

type Phase = "startup" | "encryption" | "login" | "query" | "done";

const ERROR = 0x45, AUTH = 0x52, READY = 0x5a, PASSWORD = 0x70;
const send = { now: true } as const;

/** One replayed PostgreSQL session. */
class PgSession implements ModuleSession {
  readonly #ctx: ModuleContext;
  readonly #out: ModuleOutput;
  readonly #isWrite: WriteClassifier;
  #phase: Phase = "startup";
  /** Client bytes not yet sent (the startup packet, then the held post-login messages). */
  readonly #client = new ByteQueue();
  readonly #target = new ByteQueue();
  /** Bytes left of a client 'p' message being dropped. */
  #clientSkip = 0;
  /** Bytes left of a target message being skipped. */
  #targetSkip = 0;
  /** The client sent its first post-login message: everything from there is held as it is. */
  #holding = false;
  #encryption: "ssl" | "gssenc" | undefined;
  #user = "";
  #database = "";
  #authOk = false;
  #ready = false;
  #scram: ScramStart | undefined;
  #final: ScramFinal | undefined;
  #filter: ReadOnlyFilter | undefined;
  /** The captured client closed: no more client bytes will come. */
  #closed = false;
  /** Production's verdict on the login (its replies to the captured client). */
  readonly #online = new PgOnlineLogin();

  constructor(ctx: ModuleContext, out: ModuleOutput, isWrite: WriteClassifier) {
    this.#ctx = ctx;
    this.#out = out;
    this.#isWrite = isWrite;
  }

  client(data: Uint8Array): void {
    if (this.#phase === "done") return;
    if (this.#phase === "query") return this.#filtered(data);
    this.#client.push(data);
    this.#pumpClient();
  }

  target(data: Uint8Array): void {
    if (this.#phase !== "encryption" && this.#phase !== "login") return;
    if (this.#ready) return;
    this.#target.push(data);
    this.#pumpTarget();
  }

  /** Production's replies: its verdict on the login gates what follows the login. */
  online(data: Uint8Array): boolean {
    if (this.#phase === "done" || this.#online.verdict !== "pending") return true;
    this.#online.feed(data);
    this.#onlineVerdict();
    return this.#online.verdict !== "pending";
  }

  onlineGap(n: number): boolean {
    if (this.#phase === "done" || this.#online.verdict !== "pending") return true;
    this.#online.gap(n);
    this.#onlineVerdict();
    return true;
  }

  #onlineVerdict(): void {
    const o = this.#online;
    if (this.#ctx.trustLogins) return;
    const who = `user "${clean(this.#user)}" (database "${clean(this.#database)}")`;
    switch (o.verdict) {
      case "pending":
        return;
      case "accepted":
        if (this.#phase === "login" && this.#ready) this.#loginClient();
        return;
      case "refused":
        return void this.#fail(
          "online_login_failed",
          `${o.detail} of ${who}: nothing after its login is replayed`,
        );
      case "unknown":
        return void this.#fail(
          "online_login_unknown",
          `production's verdict on the login of ${who} is unknown (${o.detail}): not replayed`,
        );
      default:
        return never(o.verdict);
    }
  }

  targetGap(n: number): void {
    if (this.#phase !== "encryption" && this.#phase !== "login") return;
    if (this.#ready) return;
    if (this.#phase === "login" && this.#target.length === 0 && this.#targetSkip >= n) {
      this.#targetSkip -= n;
      return;
    }
    if (this.#authOk) {
      // The rest of the startup replies (ParameterStatus, ReadyForQuery) was cut off: the
      // login succeeded, so the held messages can go (the server reads them when ready).
      this.#target.clear();
      this.#targetSkip = 0;
      this.#ready = true;
      return this.#loginClient();
    }
    this.#fail(
      "reply_gap",
      `a login reply of the target was cut off (${n} bytes missing): grant a longer reply prefix (intercept --max-prefix)`,
    );
  }

  /**
   * The captured client closed. During a login the replayed stream stays open (true) until the
   * target has logged in and the held bytes are sent: the module then passes.
   */
  clientClosed(): boolean {
    this.#closed = true;
    if (this.#phase === "login") {
      this.#loginClient();
      return this.#phase === "login";
    }
    return this.#phase === "encryption" && this.#client.length > 0;
  }

  // ---- client side ----

  #pumpClient(): void {
    if (this.#phase === "encryption" && this.#client.length > 0 && this.#client.u8(0) !== 0) {
      return void this.#notStartup(); // a TLS/GSS handshake: production accepted encryption
    }
    while (this.#phase === "startup" && this.#client.length > 0) {
      if (!this.#startupPacket()) return;
    }
    if (this.#phase === "login") this.#loginClient();
  }

  /** Handles the client's next startup packet; false when it must wait (or failed). */
  #startupPacket(): boolean {
    const q = this.#client;
    if (q.u8(0) !== 0) return this.#notStartup();
    if (q.length < 8) return false;
    const len = q.u32(0), code = q.u32(4);
    const kind = startupKind(len, code);
    switch (kind) {
      case "invalid":
        return this.#notStartup();
      case "old_protocol":
        return this.#fail(
          "unsupported_protocol",
          `client speaks protocol ${code >>> 16}.${code & 0xffff}`,
        );
      case "cancel":
        return this.#fail(
          "cancel_request",
          "a CancelRequest carries production's backend key, which means nothing to the target",
        );
      case "ssl":
      case "gssenc":
        this.#out.send(q.view(0, 8), send);
        q.consume(8);
        this.#online.expectEncryptionAnswer();
        this.#encryption = kind;
        this.#phase = "encryption";
        return false;
      case "startup": {
        if (q.length < len) return false;
        const params = startupParams(q.view(8, len - 8));
        if (typeof params === "string") return this.#fail("malformed", `StartupMessage: ${params}`);
        const user = params.get("user");
        if (!user) return this.#fail("malformed", "StartupMessage without a user");
        this.#user = user;
        this.#database = params.get("database") ?? user;
        this.#out.send(q.view(0, len), send);
        q.consume(len);
        this.#phase = "login";
        return true;
      }
      default:
        return never(kind);
    }
  }

  #notStartup(): false {
    if (this.#encryption) {
      return this.#fail(
        "tls",
        "the captured session is encrypted (production accepted its SSL/GSS request)",
      );
    }
    return this.#fail(
      "no_login",
      "the session was picked up after its startup (no login to replay)",
    );
  }

  /** During the login: drops the client's 'p' messages, then holds everything. */
  #loginClient(): void {
    const q = this.#client;
    while (!this.#holding && q.length > 0) {
      if (this.#clientSkip > 0) {
        const n = Math.min(this.#clientSkip, q.length);
        q.consume(n);
        this.#clientSkip -= n;
        continue;
      }
      if (q.length < 5) return;
      const len = q.u32(1);
      if (q.u8(0) !== PASSWORD) {
        this.#holding = true;
        break;
      }
      if (len < 4 || len > MAX_PASSWORD_MESSAGE) {
        return void this.#fail("malformed", `client password message with length ${len}`);
      }
      this.#clientSkip = 1 + len;
    }
    if (q.length > MAX_HELD) {
      return void this.#fail(
        "hold_limit",
        `more than ${MAX_HELD} client bytes while the target logs in`,
      );
    }
    if (this.#ready && (this.#holding || this.#closed)) this.#release();
  }

  /** Login done on both sides: sends what was held, then passes or filters. */
  #release(): void {
    // the client's own login messages may not all be here yet (unless it closed)
    if (!this.#holding && !this.#closed) return;
    // production has not accepted this login (yet): nothing after it may reach the target
    if (!this.#ctx.trustLogins && this.#online.verdict !== "accepted") return;
    this.#ctx.count("logins_replayed");
    const q = this.#client;
    // without a post-login message, what is left is a cut password message: never sent
    const held = this.#holding ? q.view(0, q.length) : q.view(0, 0);
    if (!this.#ctx.readOnly) {
      if (held.length > 0) this.#out.send(held, send);
      q.clear();
      this.#phase = "done";
      return this.#out.pass();
    }
    this.#phase = "query";
    this.#filter = new ReadOnlyFilter(this.#isWrite, () => this.#ctx.count("statements_dropped"));
    this.#filtered(held);
    q.clear();
    if (this.#closed && this.#phase === "query") {
      this.#phase = "done"; // nothing more to filter: let the engine close the stream
      this.#out.pass();
    }
  }

  /**
   * Read-only: sends what the filter keeps, at once. The engine's turn pacing waits until the
   * target has sent as many reply bytes as the online server did; once a statement is dropped
   * (its answer never comes, a kept Sync gets a shorter one) that count is off for every later
   * turn, so the kept messages follow the online client's pace instead (PostgreSQL reads
   * pipelined messages in order).
   */
  #filtered(data: Uint8Array): void {
    const r = this.#filter!.feed(data);
    if (typeof r === "string") return void this.#fail("malformed", r);
    if (r.length > 0) this.#out.send(r, send);
  }

  // ---- target side ----

  #pumpTarget(): void {
    const q = this.#target;
    if (this.#phase === "encryption") {
      if (q.length === 0) return;
      const b = q.u8(0);
      q.consume(1);
      if (b !== 0x4e) {
        const what = b === 0x53
          ? "accepted SSL"
          : b === 0x47
          ? "accepted GSS encryption"
          : `answered 0x${b.toString(16)}`;
        return void this.#fail(
          "tls",
          `the target ${what} where production answered 'N' (encrypted sessions are not replayed)`,
        );
      }
      this.#phase = "startup";
      this.#pumpClient();
      if (this.#closed && this.#phase === "startup") {
        this.#phase = "done"; // the client closed before its startup packet was complete
        return this.#out.pass();
      }
      if ((this.#phase as Phase) !== "login" || q.length === 0) return;
    }
    while (this.#phase === "login" && !this.#ready && q.length > 0) {
      if (this.#targetSkip > 0) {
        const n = Math.min(this.#targetSkip, q.length);
        q.consume(n);
        this.#targetSkip -= n;
        continue;
      }
      if (q.length < 5) return;
      const type = q.u8(0), len = q.u32(1);
      if (len < 4) return void this.#fail("malformed_reply", `reply with length ${len}`);
      if (type === READY) {
        q.clear();
        this.#ready = true;
        return this.#loginClient();
      }
      if (type !== AUTH && type !== ERROR) {
        this.#targetSkip = 1 + len; // ParameterStatus, BackendKeyData, notices...
        continue;
      }
      if (len > MAX_LOGIN_REPLY) {
        return void this.#fail("malformed_reply", `login reply of ${len} bytes`);
      }
      if (q.length < 1 + len) return;
      const body = q.view(5, len - 4);
      if (type === ERROR) return this.#loginError(body);
      const req = authRequest(body);
      q.consume(1 + len);
      if (typeof req === "string") return void this.#fail("malformed_reply", req);
      this.#auth(req);
    }
  }

  #loginError(body: Uint8Array): void {
    const f = errorFields(body);
    const code = clean(f.get("C") ?? "?????"), msg = clean(f.get("M") ?? "");
    const reason = this.#authOk ? "login_failed" : "auth_failed";
    const what = this.#authOk ? "refused the session of" : "refused the login of";
    this.#fail(
      reason,
      `the target ${what} user "${clean(this.#user)}" (database "${
        clean(this.#database)
      }"): SQLSTATE ${code} ${msg}`,
    );
  }

  #auth(req: AuthRequest): void {
    if (this.#authOk) {
      return void this.#fail("malformed_reply", "authentication request after AuthenticationOk");
    }
    switch (req.code) {
      case 0:
        this.#authOk = true;
        return;
      case 3: {
        const pw = this.#password("a cleartext password");
        if (pw !== undefined) this.#out.send(passwordMessage(pw), send);
        return;
      }
      case 5: {
        const pw = this.#password("an MD5 password");
        if (pw !== undefined) {
          this.#out.send(passwordMessage(md5Response(this.#user, pw, req.salt)), send);
        }
        return;
      }
      case 10:
        return this.#saslStart(req.mechanisms);
      case 11:
        return this.#saslContinue(req.data);
      case 12: {
        if (!this.#final) {
          return void this.#fail("malformed_reply", "SASLFinal before SASLContinue");
        }
        const bad = checkServerFinal(req.data, this.#final.serverSignature);
        if (bad) {
          return void this.#fail(
            "server_signature",
            `SCRAM with the target for user "${clean(this.#user)}": ${bad}`,
          );
        }
        return;
      }
      case 2:
      case 6:
      case 7:
      case 8:
      case 9:
        return void this.#fail(
          "unsupported_auth",
          `the target asks for authentication method ${AUTH_NAMES[req.code]}`,
        );
      default:
        return never(req);
    }
  }

  #saslStart(mechanisms: string[]): void {
    if (this.#scram) return void this.#fail("malformed_reply", "second AuthenticationSASL");
    if (!mechanisms.includes(SCRAM_SHA_256)) {
      const offered = mechanisms.map(clean).join(", ") || "none";
      return void this.#fail(
        "unsupported_auth",
        `the target offers SASL mechanisms ${offered}, not ${SCRAM_SHA_256}`,
      );
    }
    if (this.#password("SCRAM-SHA-256") === undefined) return;
    const raw = new Uint8Array(NONCE_BYTES);
    this.#ctx.random(raw);
    this.#scram = clientFirst("", makeNonce(raw));
    this.#out.send(saslInitialResponse(SCRAM_SHA_256, this.#scram.message), send);
  }

  #saslContinue(data: string): void {
    if (!this.#scram || this.#final) {
      return void this.#fail("malformed_reply", "unexpected SASLContinue");
    }
    const server = parseServerFirst(data, this.#scram.nonce);
    if (typeof server === "string") return void this.#fail("malformed_reply", `SCRAM: ${server}`);
    if (server.iterations > MAX_SCRAM_ITERATIONS) {
      return void this.#fail(
        "unsupported_auth",
        `the target asks for ${server.iterations} SCRAM iterations (at most ${MAX_SCRAM_ITERATIONS})`,
      );
    }
    this.#final = clientFinal(this.#password("SCRAM-SHA-256")!, this.#scram, data, server);
    if (this.#final.cached) this.#ctx.count("scram_cache_hits");
    this.#out.send(saslResponse(this.#final.message), send);
  }

  /** The auth-file password of the session's user, or undefined after failing `no_password`. */
  #password(what: string): string | undefined {
    const pw = this.#ctx.credentials.password(this.#user);
    if (pw === undefined) {
      this.#fail(
        "no_password",
        `the target asks for ${what} and the auth file has no line for user "${clean(this.#user)}"`,
      );
    }
    return pw;
  }

  #fail(reason: PgFailure, detail: string): false {
    if (this.#phase === "done") return false;
    this.#phase = "done";
    this.#client.clear();
    this.#target.clear();
    this.#out.fail(reason, `postgres: ${detail}`);
    return false;
  }
}

const AUTH_NAMES: Record<2 | 6 | 7 | 8 | 9, string> = {
  2: "KerberosV5",
  6: "SCM credentials",
  7: "GSSAPI",
  8: "GSSAPI",
  9: "SSPI",
};

/** A peer-supplied string made safe for one log line. */
function clean(s: string): string {
  // deno-lint-ignore no-control-regex
  const t = s.replace(/[\x00-\x1f\x7f]/g, "?");
  return t.length > 200 ? t.slice(0, 200) + "…" : t;
}

function never(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}

/** The PostgreSQL module with a given write classifier (tests); see {@link postgresModule}. */
export function makePostgresModule(isWrite: WriteClassifier): ProtocolModule {
  return {
    name: "postgres",
    counters: ["logins_replayed", "scram_cache_hits", "statements_dropped", ...FAILURES],
    replyPrefix: 512,
    open: (ctx, out) => new PgSession(ctx, out, isWrite),
  };
}

/** `--module postgres`: PostgreSQL logins (trust, password, MD5, SCRAM-SHA-256) and `--read-only`. */
export const postgresModule: ProtocolModule = makePostgresModule((sql) =>
  isWriteStatement(sql, "postgres")
);
