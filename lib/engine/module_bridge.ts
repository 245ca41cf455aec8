/**
 * Protocol modules inside the engine (`--module`, lib/modules/module.ts): the state a session
 * of a transfer with a module carries, between the captured client stream and the stream the
 * session transmits. Sessions of transfers without a module have none of it.
 *
 *   captured segments ──▶ `cap` (ClientStream, client sequence space: reassembly only)
 *                          │ each newly in-order byte range
 *                          ▼
 *                        module.client() ──▶ out.send() ──▶ replayed stream (Session.stream)
 *   reply payload prefixes ──▶ reassembly in target order ──▶ module.target() / targetGap()
 *   production's captured replies ──▶ reassembly (from its SYN-ACK) ──▶ module.online() /
 *                                      onlineGap(), until the module passes/fails or says done
 *
 * - The replayed stream starts where the captured one does (the client's ISN + 1, or the
 *   first byte of a mid-stream pick-up) and is numbered by what the module sends, so a
 *   rewrite of another length never leaves a hole or an overlap; retransmission, windows,
 *   turns and the client's FIN/RST all work on it unchanged.
 * - Bytes sent carry the online ACK (and timestamp) of the latest captured chunk given to
 *   the module, so they form turns like captured bytes do; `newTurn` starts a turn anyway,
 *   `now` starts one that is released without waiting for the target (Turn.now).
 * - The captured client's FIN/RST: `clientClosed()`, then the FIN/RST of the replayed stream
 *   after everything the module sent.
 * - `pass()`: the module is not called any more; in-order captured chunks are appended to
 *   the replayed stream as they are (the same slab copy: no copy, no parse), which is a
 *   constant sequence offset from then on. The first chunk appended so tells the session's
 *   `onReplayed` (if any) where that starts and the offset (`--compare` follows the session
 *   from there: engine event `pass`). Requests the module held during a login and sent with
 *   its pass (one turn, sent at once) are answered before that chunk is released: their
 *   turn's online ACK becomes where production's stream stood when the module stopped reading
 *   it (its verdict on the login, so where the client's first held request was sent), and the
 *   pacing waits for the target to answer as many bytes as production did to all of them
 *   (else the first requests after the pass reach the target while it still answers the held
 *   ones, and their answers run together).
 * - `fail(reason, detail)`: the session ends (`lost.module` for its replayed requests not
 *   answered), the module's `failed` and `<reason>` counters go up, `detail` is logged
 *   (rate-limited, see line_limit.ts).
 * - Reply payload: the prefixes intercept sends are put in target sequence order;
 *   retransmitted bytes are skipped, segments beyond a hole wait (at most
 *   {@link MAX_PENDING_SEGMENTS} segments / {@link MAX_PENDING_BYTES} bytes; then the hole
 *   is given to the module as a gap: the engine has already acknowledged those bytes, the
 *   target will not send them again). Bytes a packet had beyond its prefix are a gap.
 * - Memory: the captured bytes not yet given to the module, the replayed stream and the
 *   waiting reply bytes are the session's queued bytes (the engine's budget). What a module
 *   keeps itself (held client bytes) is its own business and should stay small.
 * - A module that throws fails the session (`module_error`) instead of the process.
 */

import type {
  Credentials,
  ModuleContext,
  ModuleOutput,
  ModuleSession,
  ProtocolModule,
  SendOptions,
} from "../modules/module.ts";
import type { ModuleStats } from "./stats.ts";
import { ADDED, type Chunk, ClientStream, CLOSE_RST, DATA, type StreamAdd } from "./stream.ts";
import { seqLt } from "../wire/seq.ts";
import { ReplyOrder } from "./reply_order.ts";
import { LineLimiter } from "./line_limit.ts";

/** Module settings shared by every session of an engine (`EngineConfig.modules`). */
export interface ModuleOptions {
  /** `--auth-file` passwords. */
  credentials: Credentials;
  /** `--read-only`. */
  readOnly: boolean;
  /** Random bytes for nonces (default `crypto.getRandomValues`); tests inject their own. */
  random?: (bytes: Uint8Array) => void;
  /**
   * `--module-trust-logins`: do not wait for production's verdict on a login before replaying
   * what follows it (for captures without the online server's packets). Default false.
   */
  trustLogins?: boolean;
}

/** No module settings (no passwords, not read-only). */
export const NO_MODULE_OPTIONS: ModuleOptions = {
  credentials: { password: () => undefined },
  readOnly: false,
};

export { MAX_PENDING_BYTES, MAX_PENDING_SEGMENTS } from "./reply_order.ts";
/** Distinct failure reasons counted per module; more go to `other`. */
export const MAX_REASONS = 32;

/** Counter keys of every module besides its own ({@link ProtocolModule.counters}). */
export const BUILTIN_COUNTERS = ["sessions", "passed", "failed", "reply_gap_bytes"] as const;

const REASON_RE = /^[a-z][a-z0-9_]{0,39}$/;

function defaultRandom(bytes: Uint8Array): void {
  crypto.getRandomValues(bytes);
}

/** One module as configured in an engine: its counters, settings and log. */
export class ModuleHost {
  readonly stats: ModuleStats;
  readonly random: (bytes: Uint8Array) => void;
  readonly #declared: ReadonlySet<string>;
  #reasons = 0;
  readonly #limiter = new LineLimiter();

  constructor(
    readonly module: ProtocolModule,
    readonly opts: ModuleOptions,
    stats: ModuleStats,
    private readonly sink: (line: string) => void,
  ) {
    this.stats = stats;
    for (const k of BUILTIN_COUNTERS) stats[k] ??= 0;
    for (const c of module.counters) {
      if ((BUILTIN_COUNTERS as readonly string[]).includes(c) || !REASON_RE.test(c)) {
        throw new Error(`module ${module.name}: bad counter name ${JSON.stringify(c)}`);
      }
      stats[c] ??= 0;
    }
    this.#declared = new Set(module.counters);
    this.random = opts.random ?? defaultRandom;
  }

  /**
   * State for a new session that transmits from `out`; `label` names it in log lines;
   * `onReplayed`: see {@link ReplayedAt}.
   */
  open(
    out: ClientStream,
    label: () => string,
    now: number,
    onReplayed?: ReplayedAt,
  ): ModuleBridge {
    this.stats.sessions++;
    return new ModuleBridge(this, out, label, now, onReplayed);
  }

  /** A module counter (undeclared names are ignored). */
  count(name: string, n: number): void {
    if (this.#declared.has(name) && Number.isFinite(n)) this.stats[name] += n;
  }

  /** A session failed with `reason` (already checked). */
  failed(reason: string): void {
    const st = this.stats;
    st.failed++;
    if (st[reason] === undefined) {
      if (this.#reasons >= MAX_REASONS) reason = "other";
      else this.#reasons++;
    }
    st[reason] = (st[reason] ?? 0) + 1;
  }

  /** A log line (rate-limited on the engine's clock). */
  log(line: string, now: number): void {
    const out = this.#limiter.take(`module ${this.module.name}: ${line}`, now);
    if (out !== undefined) this.sink(out);
  }

  /** A failure reason as counted: snake_case, else `invalid_reason`. */
  static reasonOf(reason: string): string {
    return REASON_RE.test(reason) ? reason : "invalid_reason";
  }
}

/**
 * After `pass()`, the first captured byte appended to the replayed stream unchanged is `seq`
 * (client sequence space) and every captured byte from there on is replayed at its own
 * sequence number + `offset` (mod 2^32). Called once per session, and never for a session
 * whose module does not pass or passes with nothing left to replay.
 */
export type ReplayedAt = (seq: number, offset: number) => void;

const ACTIVE = 0, PASSED = 1, FAILED = 2;
type BridgeState = typeof ACTIVE | typeof PASSED | typeof FAILED;

const EMPTY = new Uint8Array(0);

/** The module state of one session; see the module comment. */
export class ModuleBridge implements ModuleOutput {
  /** Captured client bytes (reassembly), in the client's sequence space. */
  readonly cap = new ClientStream(0);
  /** Set by `fail()`: the session ends with it. */
  failure: { reason: string; detail: string } | undefined;
  /** Engine time of the current call (for log rate limiting). */
  now: number;
  #state: BridgeState = ACTIVE;
  /** A captured chunk was replayed as it is after `pass()` ({@link #firstAppend}). */
  #appended = false;
  #session: ModuleSession | undefined;
  /** Online ACK and timestamp of the latest captured chunk given to the module. */
  #ack = 0;
  #tsval: number | undefined;
  #closeSeen = false;
  /** The captured client closed while the module kept the replayed stream open. */
  #closeLater: { rst: boolean; ack: number } | undefined;
  /** Target reply payload in target order. */
  readonly #replies = new ReplyOrder({
    data: (d) => this.#call(TARGET, d),
    gap: (n) => {
      this.host.stats.reply_gap_bytes += n;
      this.#call(GAP, EMPTY, n);
    },
    open: () => this.#state === ACTIVE,
  });
  /** The online server's captured payload in its order (production's replies). */
  readonly #online = new ReplyOrder({
    data: (d) => this.#call(ONLINE, d),
    gap: (n) => this.#call(ONLINE_GAP, EMPTY, n),
    open: () => this.#state === ACTIVE && !this.#onlineOff,
  });
  #onlineOff = false;
  /**
   * Where production's stream stood when the module stopped reading it (its next byte), or
   * undefined: never read.
   */
  #onlineEnd: number | undefined;

  constructor(
    readonly host: ModuleHost,
    /** The replayed stream (what the session transmits). */
    readonly out: ClientStream,
    readonly label: () => string,
    now: number,
    /** Told where the unchanged replay starts after `pass()` ({@link ReplayedAt}). */
    private onReplayed?: ReplayedAt,
  ) {
    this.now = now;
    const ctx: ModuleContext = {
      credentials: host.opts.credentials,
      readOnly: host.opts.readOnly,
      trustLogins: host.opts.trustLogins === true,
      random: host.random,
      count: (name, n = 1) => host.count(name, n),
      log: (line) => host.log(`${label()}: ${line}`, this.now),
    };
    try {
      this.#session = host.module.open(ctx, this);
    } catch (e) {
      this.#threw(e);
    }
  }

  /** The module still sees the session (neither passed nor failed). */
  get active(): boolean {
    return this.#state === ACTIVE;
  }

  /** The module handed the session over (`pass()`). */
  get passed(): boolean {
    return this.#state === PASSED;
  }

  /** Bytes this session holds for the module path (captured, replayed, waiting replies). */
  get bytes(): number {
    return this.cap.bytes + this.out.bytes + this.#replies.bytes + this.#online.bytes;
  }

  /** Both streams start at `seq` (the first client byte: ISN + 1, or a pick-up's first byte). */
  start(seq: number): void {
    this.cap.end = seq;
    this.out.end = seq;
  }

  // ---------------------------------------------------------------------------------------
  // Captured client side (same calls as ClientStream's)

  /** A captured payload chunk (the engine's copy). */
  add(c: Chunk): StreamAdd {
    const r = this.cap.add(c);
    if (r === ADDED) this.#drain();
    return r;
  }

  /** The captured client's FIN at `seq`. */
  fin(seq: number, ack: number): void {
    this.cap.fin(seq, ack);
    this.#drain();
  }

  /** The captured client's RST at `seq`. */
  rst(seq: number, ack: number): void {
    this.cap.rst(seq, ack);
    this.#drain();
  }

  /** Give the new in-order captured chunks to the module (or to the replayed stream). */
  #drain(): void {
    const cap = this.cap;
    const cs = cap.chunks;
    for (let i = cap.head; i < cs.length && this.#state !== FAILED; i++) {
      const c = cs[i];
      this.#ack = c.ack;
      this.#tsval = c.tsval;
      if (this.#state === ACTIVE) this.#call(CLIENT, c.data);
      else if (!this.#outClosed()) {
        if (!this.#appended) this.#firstAppend(c);
        this.out.add({ ...c, seq: this.out.end, ipId: undefined });
      }
    }
    cap.releaseBefore(cap.end);
    cap.dropTurns(cap.turns.length - 1);
    cap.compactTurns();
    if (cap.closed && !this.#closeSeen && this.#state !== FAILED) {
      this.#closeSeen = true;
      const last = cap.turns[cap.turns.length - 1];
      if (this.#state === ACTIVE && this.#callClosed()) {
        // The module still waits for the target (a login it holds bytes for): the
        // replayed stream ends when it passes.
        this.#closeLater = { rst: last.kind === CLOSE_RST, ack: last.ack };
        return;
      }
      if (this.failure !== undefined || this.#outClosed()) return;
      if (last.kind === CLOSE_RST) this.out.rst(this.out.end, last.ack);
      else this.out.fin(this.out.end, last.ack);
    }
  }

  /** The first captured chunk `c` replayed as it is after `pass()`; see the module comment. */
  #firstAppend(c: Chunk): void {
    this.#appended = true;
    const out = this.out, ts = out.turns, at = this.#onlineEnd;
    const last = ts.length > out.turnHead ? ts[ts.length - 1] : undefined;
    if (at !== undefined && last !== undefined && last.kind === DATA && seqLt(at, last.ack)) {
      last.ack = at;
    }
    const tell = this.onReplayed;
    this.onReplayed = undefined;
    // (whatever the module sent on its way out is before `c`)
    tell?.(c.seq, (out.end - c.seq) >>> 0);
  }

  #outClosed(): boolean {
    return this.out.finSeq !== undefined || this.out.rstSeq !== undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Target side

  /** The target's first payload byte is `seq` (its ISN + 1). */
  targetStart(seq: number): void {
    this.#replies.start(seq);
  }

  /** A reply segment with `len` payload bytes at `seq`, `prefix` of them known. */
  target(seq: number, len: number, prefix: Uint8Array | undefined): void {
    if (this.host.module.replyPrefix === 0) return; // the module never reads replies
    this.#replies.add(seq, len, prefix);
  }

  // ---------------------------------------------------------------------------------------
  // Online server side (production's replies to the captured client)

  /**
   * A captured server→client segment of this connection: its SYN gives the start, its
   * payload goes to `online()` in order until the module passes or fails (a payload cut by the
   * snap length is a gap). Segments before the SYN-ACK was seen are ignored.
   */
  online(seq: number, flags: number, payload: Uint8Array, len = payload.length): void {
    if (this.#state !== ACTIVE || this.#onlineOff) return;
    if (this.#session?.online === undefined) return void this.#onlineDone();
    if (flags & SYN_FLAG) {
      if (!this.#online.started) this.#online.start(seq + 1 >>> 0);
      return;
    }
    this.#online.add(seq, len, payload);
  }

  /** The module needs no more of production's stream. */
  #onlineDone(): void {
    this.#onlineOff = true;
    this.#onlineStop();
  }

  /** Production's stream is read no more: where it stood is kept ({@link #firstAppend}). */
  #onlineStop(): void {
    const o = this.#online;
    if (o.started && this.#onlineEnd === undefined) this.#onlineEnd = o.next;
    o.clear();
  }

  // ---------------------------------------------------------------------------------------
  // ModuleOutput

  /** See {@link ModuleOutput.send}. */
  send(bytes: Uint8Array, opts?: SendOptions): void {
    if (this.#state === FAILED || bytes.length === 0 || this.#outClosed()) return;
    const c: Chunk = { seq: this.out.end, data: bytes.slice(), ack: this.#ack };
    if (this.#tsval !== undefined) c.tsval = this.#tsval;
    this.out.push(c, opts?.newTurn === true, opts?.now === true);
  }

  /** See {@link ModuleOutput.pass}. */
  pass(): void {
    if (this.#state !== ACTIVE) return;
    this.#state = PASSED;
    this.host.stats.passed++;
    this.#replies.clear();
    this.#onlineStop();
    const close = this.#closeLater;
    this.#closeLater = undefined;
    if (close === undefined || this.#outClosed()) return;
    if (close.rst) this.out.rst(this.out.end, close.ack);
    else this.out.fin(this.out.end, close.ack);
  }

  /** `clientClosed()`; true when the module keeps the replayed stream open. */
  #callClosed(): boolean {
    const s = this.#session;
    if (s === undefined || s.clientClosed === undefined) return false;
    try {
      return s.clientClosed() === true;
    } catch (e) {
      this.#threw(e);
      return false;
    }
  }

  /** See {@link ModuleOutput.fail}. */
  fail(reason: string, detail: string): void {
    if (this.#state === FAILED) return;
    this.#state = FAILED;
    const r = ModuleHost.reasonOf(reason);
    this.failure = { reason: r, detail };
    this.host.failed(r);
    this.host.log(`${this.label()}: ${r}: ${detail}`, this.now);
    this.#replies.clear();
    this.#online.clear();
  }

  /** Calls into the module; an exception fails the session instead of the process. */
  #call(what: Call, data: Uint8Array, n = 0): void {
    const s = this.#session;
    if (s === undefined) return;
    try {
      switch (what) {
        case CLIENT:
          s.client(data);
          return;
        case TARGET:
          s.target(data);
          return;
        case GAP:
          s.targetGap(n);
          return;
        case CLOSED:
          s.clientClosed?.();
          return;
        case ONLINE:
          if (s.online?.(data) === true) this.#onlineDone();
          return;
        case ONLINE_GAP:
          if (s.onlineGap?.(n) === true) this.#onlineDone();
          return;
        default: {
          const never: never = what;
          throw new Error(`unknown call ${never}`);
        }
      }
    } catch (e) {
      this.#threw(e);
    }
  }

  #threw(e: unknown): void {
    const text = e instanceof Error ? e.message : String(e);
    this.fail("module_error", `the module threw: ${text.split("\n")[0]}`);
  }
}

const CLIENT = 0, TARGET = 1, GAP = 2, CLOSED = 3, ONLINE = 4, ONLINE_GAP = 5;
type Call =
  | typeof CLIENT
  | typeof TARGET
  | typeof GAP
  | typeof CLOSED
  | typeof ONLINE
  | typeof ONLINE_GAP;
/** TCP SYN flag. */
const SYN_FLAG = 0x02;
