/**
 * The protocol-module contract: how a module sees one replayed session and changes what is
 * sent to the target.
 *
 * Without a module the engine replays the captured client bytes as they are. A module sits
 * between the captured client stream and the bytes sent to the target:
 *
 *   captured client bytes (in order) ──▶ module.client() ──▶ out.send() ──▶ replayed stream
 *   target reply bytes (in order)    ──▶ module.target()     (may send what it held)
 *   production's reply bytes (order) ──▶ module.online()     (production's verdict on a login)
 *
 * - The engine reassembles both directions before calling the module: `client()` gets the
 *   captured client payload in sequence order, without duplicates; `target()` gets the
 *   target's reply payload in order (from the tunnel's payload extension). A reply packet
 *   whose payload was longer than the prefix intercept sends arrives as its known bytes
 *   followed by `targetGap(n)` for the `n` bytes that were cut off.
 * - What the module passes to `out.send()` is what the target gets, in a sequence space of
 *   its own: the engine numbers the replayed stream, so a proof of another length, a
 *   dropped statement or an injected message never leaves a hole or an overlap.
 * - A module may hold client bytes (send nothing) until a reply arrives, and send them (or
 *   other bytes) from `target()`. Bytes sent with `{ now: true }` are released at once
 *   (the module did the waiting); other bytes follow the engine's usual pacing by turns.
 * - `out.pass()` hands the rest of the session to the engine: from then on the module is
 *   not called and client bytes are replayed unchanged (the fast path after a login).
 * - `out.fail(reason, detail)` ends the session (the target connection is reset; the session
 *   counts in `modules.<name>.failed` and `modules.<name>.<reason>`, its requests already
 *   replayed and not answered in `lost.module`; the connection is not picked up again) and
 *   logs `detail` once (rate-limited). A module that throws fails with `module_error`.
 * - A module session is never reconnected to the target (a new connection would need a new
 *   login): a target reset or early close ends it (`target_reset`).
 *
 * Modules are pure: no I/O, no clock, no randomness except through {@link ModuleContext}
 * (`random` for nonces). They are plain TS files under lib/modules/; to add a protocol, copy
 * one, add its name to {@link ModuleName} and to the registry (registry.ts).
 *
 * @example A module that replays everything unchanged
 * ```ts
 * const passthrough: ProtocolModule = {
 *   name: "redis",
 *   counters: [],
 *   replyPrefix: 0,
 *   open: (_ctx, out) => ({
 *     client(data) { out.send(data); },
 *     target() {},
 *     targetGap() {},
 *   }),
 * };
 * ```
 */

/** The protocol modules this build knows (`--module NAME`). */
export type ModuleName = "postgres" | "mysql" | "redis";

/** Passwords from `--auth-file` (lines `user:password`). */
export interface Credentials {
  /** The password for `user`, or undefined when the file has no line for it. */
  password(user: string): string | undefined;
}

/** What a module session may use besides its input. */
export interface ModuleContext {
  /** Passwords for recomputing login proofs. */
  readonly credentials: Credentials;
  /** `--read-only`: drop statements that change data (never send them). */
  readonly readOnly: boolean;
  /**
   * `--module-trust-logins`: replay what follows a login without production's verdict on it
   * (`online()` may never be called). False by default: a module that re-proves a login holds
   * everything after it until production accepted that login (see `ModuleSession.online`).
   */
  readonly trustLogins: boolean;
  /** Fills `bytes` with random bytes (client nonces); deterministic in tests. */
  random(bytes: Uint8Array): void;
  /** Adds `n` (default 1) to the module's counter `name` (one of `ProtocolModule.counters`). */
  count(name: string, n?: number): void;
  /** A log line for the operator (rate-limited by the engine), e.g. a wrong password. */
  log(line: string): void;
}

/** Options of {@link ModuleOutput.send}. */
export interface SendOptions {
  /** Release at once, without waiting for the turn pacing (the module already waited). */
  now?: boolean;
  /** Start a new turn with these bytes even if the client's ACK did not change. */
  newTurn?: boolean;
}

/** Where a module session's decisions go. */
export interface ModuleOutput {
  /** Queue `bytes` for the target (the engine copies them). */
  send(bytes: Uint8Array, opts?: SendOptions): void;
  /** The module is done with this session: replay the rest unchanged, stop calling it. */
  pass(): void;
  /**
   * End the session: `reason` is a short snake_case code (e.g. `no_login`, `auth_failed`,
   * `unsupported_auth`), `detail` one line for the log.
   */
  fail(reason: string, detail: string): void;
}

/** One replayed session as the module sees it. */
export interface ModuleSession {
  /** Captured client payload, in order. `data` is only valid during the call. */
  client(data: Uint8Array): void;
  /** Target reply payload, in order. `data` is only valid during the call. */
  target(data: Uint8Array): void;
  /** `n` reply bytes that intercept did not send (longer than the granted prefix). */
  targetGap(n: number): void;
  /**
   * Optional: the captured client closed (FIN or RST); flush or drop what is held. Return
   * true to keep the replayed stream open while the module still waits for the target (a
   * login whose commands it holds): the engine then sends the FIN/RST when the module calls
   * `out.pass()`, after what it sent (or never, when it calls `out.fail()`).
   */
  clientClosed?(): boolean | void;
  /**
   * Optional: the online (production) server's payload to the captured client, in order, from
   * the start of the connection (captured, like the client's bytes), until the module passes
   * or fails. A module that re-proves a login reads production's verdict on it here and sends
   * nothing after the login before production accepted it: a client whose login production
   * refused must never get its next commands run on the target with the auth file's password.
   * `data` is only valid during the call. Return true when no more of production's stream is
   * needed (the verdict is known): the engine stops reassembling it for this session.
   */
  online?(data: Uint8Array): boolean | void;
  /** Optional: `n` bytes of production's stream that the capture missed; true as for `online`. */
  onlineGap?(n: number): boolean | void;
}

/** A protocol module: its name, its counters and a factory of per-session state. */
export interface ProtocolModule {
  readonly name: ModuleName;
  /**
   * Counter names the module may increment (snake_case), reported in stats as
   * `modules.<name>.<counter>` and in Prometheus as `tcpcopy_module_<counter>_total`.
   */
  readonly counters: readonly string[];
  /**
   * Reply payload bytes per packet the module needs from intercept (the prefix tcpcopy
   * requests in the tunnel's EXT_HELLO; intercept grants at most its own limit).
   */
  readonly replyPrefix: number;
  /** New state for one replayed session. */
  open(ctx: ModuleContext, out: ModuleOutput): ModuleSession;
}
