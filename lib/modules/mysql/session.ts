/**
 * One replayed MySQL session: the login replayed against the target's own scramble, then the
 * commands (COM_CHANGE_USER re-proved, writes dropped under --read-only).
 *
 * Phases: `login` (the captured HandshakeResponse41 is held until the target's greeting, then
 * sent with a proof for the target's scramble) → `auth` (the target's auth switch / more-data
 * / OK / ERR packets are answered) → `commands`. COM_CHANGE_USER goes through `auth` again.
 * While a login or change-user runs, the production client's own auth packets (sequence id
 * not 0) are dropped and its next commands are held, then released at once on the target's OK.
 *
 * @module
 */
import type { ModuleContext, ModuleOutput, ModuleSession } from "../module.ts";
import { type AuthPlugin, authPlugin, authResponse, rsaPassword } from "./auth.ts";
import { CAPTURE, TargetFramer } from "./frames.ts";
import { sqlPrepared } from "./sql_prepared.ts";
import { MyOnlineLogin } from "./online.ts";
import {
  buildChangeUser,
  buildHandshakeResponse,
  CAP,
  type HandshakeResponse,
  packet,
  parseAuthSwitch,
  parseChangeUser,
  parseError,
  parseGreeting,
  parseHandshakeResponse,
  Reader,
  text,
} from "./packets.ts";

/** Decides whether an SQL text changes data (see lib/modules/sql_write.ts). */
export type WriteTest = (sql: string) => boolean;

/** Client bytes held while a login runs (more fails the session: `hold_overflow`). */
export const MAX_HELD = 4 << 20;
/** Largest login or COM_CHANGE_USER packet accepted. */
export const MAX_LOGIN_PACKET = 64 << 10;
/** SQL bytes of a query looked at by --read-only (longer queries: their first MiB). */
export const MAX_SQL = 1 << 20;
/** Statements dropped by --read-only that the session remembers (prepared statement ids). */
export const MAX_DROPPED_STMTS = 65536;
/** First size of a session's packet buffer (bytes); it grows with what arrives. */
const ACC_INITIAL = 128;
/** A packet buffer larger than this is given back once its packet is decided. */
const ACC_KEEP = 4096;

type Phase = "login" | "auth" | "commands" | "change_user" | "failed";
type Action = "forward" | "drop";

const COM = {
  QUIT: 0x01,
  QUERY: 0x03,
  CHANGE_USER: 0x11,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  STMT_FETCH: 0x1c,
  STMT_BULK_EXECUTE: 0xfa,
} as const;

const DEC = new TextDecoder("utf-8", { fatal: false });

function isStmtCommand(cmd: number): boolean {
  return cmd === COM.STMT_EXECUTE || cmd === COM.STMT_SEND_LONG_DATA || cmd === COM.STMT_CLOSE ||
    cmd === COM.STMT_RESET || cmd === COM.STMT_FETCH || cmd === COM.STMT_BULK_EXECUTE;
}

/** Commands the server answers nothing to. */
function noResponse(cmd: number): boolean {
  return cmd === COM.QUIT || cmd === COM.STMT_CLOSE || cmd === COM.STMT_SEND_LONG_DATA;
}

/** First keyword of an SQL text is PREPARE (a server-side statement id is used). */
function startsWithPrepare(sql: string): boolean {
  return /^\s*prepare\s/i.test(sql);
}

/** The module's per-session state machine. */
export class MysqlSession implements ModuleSession {
  private phase: Phase = "login";
  private readonly framer = new TargetFramer((seq, p, cut) => this.onTargetPacket(seq, p, cut));
  // -- login state
  private greetingSeen = false;
  private serverCaps = 0;
  private response: HandshakeResponse | undefined;
  private responseSeq = 1;
  private capabilities = 0;
  private user = "";
  private password = "";
  private plugin: AuthPlugin = "mysql_native_password";
  private scramble: Uint8Array = new Uint8Array(20);
  private awaitingKey = false;
  private inLoginExchange = false;
  // -- client stream parser
  /**
   * The packet being collected (header and the payload bytes a decision needs). It grows with
   * the bytes that arrived, never ahead of them: a header claiming a 1 MiB packet costs nothing
   * until the bytes come (every session of a connection flood would hold it otherwise).
   */
  private acc = new Uint8Array(ACC_INITIAL);
  private accLen = 0;
  private need = 4; // bytes of header + payload wanted before the next decision
  private stage: "head" | "more" | "body" = "head";
  private pktLen = 0;
  private pktSeq = 0;
  private bodyLeft = 0;
  private action: Action = "forward";
  private lastAction: Action = "forward";
  private pktStart = -1;
  private fwdFrom = -1;
  private chunk: Uint8Array = new Uint8Array(0);
  private sendNow = false;
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private holding = false;
  private firstPacket = true;
  // -- command tracking
  private outstanding = 0;
  private skipResponses = 0;
  private lastTargetSeq = -1;
  private prodStmts = 0;
  private readonly droppedStmts: number[] = [];

  constructor(
    private readonly ctx: ModuleContext,
    private readonly out: ModuleOutput,
    private readonly isWrite: WriteTest,
  ) {}

  client(data: Uint8Array): void {
    if (this.phase === "failed" || data.length === 0) return;
    if (this.holding) return this.hold(data);
    this.feedClient(data, false);
  }

  target(data: Uint8Array): void {
    if (this.phase === "failed") return;
    this.framer.feed(data);
  }

  /**
   * Production's packets: its verdict on the login gates every command after it (true once
   * the verdict is known: no more of production's stream is needed).
   */
  online(data: Uint8Array): boolean {
    if (this.phase === "failed") return true;
    this.onlineLogin.feed(data);
    return this.onlineVerdict();
  }

  onlineGap(n: number): boolean {
    if (this.phase === "failed") return true;
    this.onlineLogin.gap(n);
    return this.onlineVerdict();
  }

  private readonly onlineLogin = new MyOnlineLogin();
  /** The target logged in; the commands wait for production's verdict. */
  private awaitingOnline = false;

  private verified(): boolean {
    return this.ctx.trustLogins || this.onlineLogin.verdict === "accepted";
  }

  private onlineVerdict(): boolean {
    const o = this.onlineLogin;
    if (this.ctx.trustLogins) return true;
    switch (o.verdict) {
      case "pending":
        return false;
      case "accepted":
        if (this.awaitingOnline) {
          this.awaitingOnline = false;
          this.release();
        }
        return true;
      case "refused":
        this.fail(
          "online_login_failed",
          `mysql: ${o.detail} of user "${this.user}": nothing after the login is replayed`,
        );
        return true;
      case "unknown":
        this.fail(
          "online_login_unknown",
          `mysql: production's verdict on the login of user "${this.user}" is unknown (${o.detail}): not replayed`,
        );
        return true;
      default:
        return o.verdict satisfies never;
    }
  }

  targetGap(n: number): void {
    if (this.phase === "failed") return;
    this.framer.gap(n);
    if (this.framer.lost && this.phase !== "commands") {
      this.fail("reply_truncated", `a target reply during the login was cut (${n} bytes missing)`);
    }
  }

  /** Keeps the replayed stream open while a login (or change-user) holds the client's bytes. */
  clientClosed(): boolean {
    if (this.phase === "failed") return false;
    this.closed = this.phase !== "commands" || this.holding;
    return this.closed;
  }
  private closed = false;

  // ---------------------------------------------------------------- client side

  private hold(data: Uint8Array): void {
    this.heldBytes += data.length;
    if (this.heldBytes > MAX_HELD) {
      return this.fail("hold_overflow", `more than ${MAX_HELD} client bytes waiting for the login`);
    }
    this.held.push(data.slice());
  }

  /** Releases the held client bytes through the command parser. */
  private release(): void {
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    this.holding = false;
    for (const h of held) {
      if (this.phase === "failed") return;
      // A second COM_CHANGE_USER among the held bytes holds the rest again.
      if (this.holding) this.hold(h);
      else this.feedClient(h, true);
    }
    // The captured client is gone: everything is sent, the engine may close the stream.
    if (this.closed && this.phase === "commands" && !this.holding) this.out.pass();
  }

  private feedClient(data: Uint8Array, now: boolean): void {
    this.chunk = data;
    this.sendNow = now;
    this.fwdFrom = -1;
    this.pktStart = this.stage === "head" && this.accLen === 0 ? 0 : -1;
    let i = 0;
    while (i < data.length && this.phase !== "failed" && !this.holding) {
      if (this.stage === "body") {
        const take = Math.min(this.bodyLeft, data.length - i);
        if (this.action === "drop") this.flush(i);
        else if (this.fwdFrom < 0 && take > 0) this.fwdFrom = i;
        i += take;
        this.bodyLeft -= take;
        if (this.bodyLeft === 0) this.endPacket(i);
        continue;
      }
      if (this.accLen === 0) this.pktStart = i;
      const take = Math.min(this.need - this.accLen, data.length - i);
      this.collect(data.subarray(i, i + take));
      i += take;
      if (this.accLen < this.need) break;
      this.decide(i);
      if (this.holding) {
        // Everything from this packet on waits for the target's OK.
        this.flush(this.pktStart >= 0 ? this.pktStart : i);
        const rest = data.subarray(i);
        const joined = new Uint8Array(this.accLen + rest.length);
        joined.set(this.acc.subarray(0, this.accLen));
        joined.set(rest, this.accLen);
        this.resetPacket();
        this.hold(joined);
        return;
      }
    }
    if (this.phase !== "failed") this.flush(data.length);
  }

  private collect(b: Uint8Array): void {
    const end = this.accLen + b.length;
    if (end > this.acc.length) {
      const next = new Uint8Array(Math.max(end, Math.min(this.acc.length * 2, this.need)));
      next.set(this.acc.subarray(0, this.accLen));
      this.acc = next;
    }
    this.acc.set(b, this.accLen);
    this.accLen = end;
  }

  private collected(): Uint8Array {
    return this.acc.subarray(0, this.accLen);
  }

  /** Bytes of packet buffer this session holds (tests: it follows the bytes that arrived). */
  get bufferBytes(): number {
    return this.acc.length;
  }

  /** Sends the forwarded range of the current chunk that ends at `end`. */
  private flush(end: number): void {
    if (this.fwdFrom >= 0 && end > this.fwdFrom) this.send(this.chunk.subarray(this.fwdFrom, end));
    this.fwdFrom = -1;
  }

  private send(b: Uint8Array, now = this.sendNow): void {
    this.out.send(b, now ? { now: true } : undefined);
  }

  private resetPacket(): void {
    this.stage = "head";
    this.need = 4;
    this.accLen = 0;
    if (this.acc.length > ACC_KEEP) this.acc = new Uint8Array(ACC_INITIAL);
  }

  private endPacket(at: number): void {
    this.resetPacket();
    this.pktStart = at;
  }

  /** Header and first bytes collected: choose what to do with the packet. */
  private decide(i: number): void {
    this.at = i;
    if (this.stage === "head") {
      const p = this.collected();
      this.pktLen = p[0] | (p[1] << 8) | (p[2] << 16);
      this.pktSeq = p[3];
    }
    const want = this.wanted();
    if (want === undefined) return; // failed
    if (4 + want > this.accLen) {
      this.stage = "more";
      this.need = 4 + want;
      return;
    }
    this.decidePacket(i, this.collected());
  }
  private at = 0;

  /** Payload bytes needed before deciding about the packet whose header was just read. */
  private wanted(): number | undefined {
    const len = this.pktLen;
    if (this.phase === "login" && this.firstPacket) {
      if (this.pktSeq !== 1 || len < 32 || len > MAX_LOGIN_PACKET) {
        this.fail(
          "no_login",
          "session picked up without its login (first bytes are not a HandshakeResponse41)",
        );
        return undefined;
      }
      return len;
    }
    if (this.pktSeq !== 0 || len === 0) return 0;
    if (this.accLen < 5) return 1;
    const cmd = this.acc[4];
    if (this.phase !== "commands") return 0; // held from here on
    if (cmd === COM.CHANGE_USER) {
      if (len > MAX_LOGIN_PACKET) {
        this.fail("malformed", `COM_CHANGE_USER of ${len} bytes`);
        return undefined;
      }
      return len;
    }
    if (!this.ctx.readOnly) return 0;
    if (cmd === COM.QUERY || cmd === COM.STMT_PREPARE) return Math.min(len, MAX_SQL);
    if (isStmtCommand(cmd)) return Math.min(len, 5);
    return 0;
  }

  private decidePacket(i: number, p: Uint8Array): void {
    this.stage = "body";
    this.bodyLeft = 4 + this.pktLen - p.length;
    if (this.phase === "login" && this.firstPacket) {
      this.firstPacket = false;
      this.loginPacket(p);
      return this.endPacket(i);
    }
    let act: Action;
    if (this.pktSeq !== 0) {
      // A continuation: the production client's own auth packets while a login runs,
      // otherwise more of the previous command (LOAD DATA LOCAL content, >16 MiB packets).
      act = this.phase === "commands" ? this.lastAction : "drop";
    } else if (this.phase !== "commands") {
      this.holding = true;
      return;
    } else {
      const rewritten = this.command(p);
      if (rewritten === "done") return;
      act = rewritten;
    }
    this.lastAction = act;
    this.apply(i, act, p);
  }

  /** Forward or drop the collected start of a packet and the rest of its body. */
  private apply(i: number, act: Action, p: Uint8Array, replacement?: Uint8Array): void {
    this.action = act;
    const inChunk = this.pktStart >= 0 && i - this.pktStart === p.length;
    if (act === "forward" && replacement === undefined && inChunk) {
      if (this.fwdFrom < 0) this.fwdFrom = this.pktStart;
    } else {
      this.flush(inChunk ? this.pktStart : i);
      if (act === "forward") this.send(replacement ?? p);
    }
    if (this.bodyLeft === 0) this.endPacket(i);
  }

  /** A command (sequence id 0) in the commands phase: its action, or "done" when handled. */
  private command(p: Uint8Array): Action | "done" {
    if (p.length < 5) return "forward";
    const cmd = p[4];
    if (cmd === COM.CHANGE_USER) return this.changeUser(p);
    if (cmd === COM.QUERY || cmd === COM.STMT_PREPARE) {
      const sql = cmd === COM.QUERY ? this.querySql(p) : DEC.decode(p.subarray(5));
      const prepares = cmd === COM.STMT_PREPARE || (sql !== undefined && startsWithPrepare(sql));
      if (prepares) this.prodStmts++;
      if (this.ctx.readOnly && this.writes(cmd, sql)) {
        this.ctx.count("statements_dropped");
        if (prepares) this.dropStmt(this.prodStmts);
        return "drop";
      }
      this.outstanding++;
      return "forward";
    }
    if (isStmtCommand(cmd) && this.droppedStmts.length > 0 && p.length >= 9) {
      const id = (p[5] | (p[6] << 8) | (p[7] << 16) | (p[8] << 24)) >>> 0;
      const target = this.stmtOnTarget(id);
      if (target === undefined) {
        this.ctx.count("statements_dropped");
        return "drop";
      }
      if (!noResponse(cmd)) this.outstanding++;
      if (target === id) return "forward";
      const q = p.slice();
      q[5] = target & 0xff;
      q[6] = (target >>> 8) & 0xff;
      q[7] = (target >>> 16) & 0xff;
      q[8] = (target >>> 24) & 0xff;
      this.lastAction = "forward";
      this.apply(this.at, "forward", p, q);
      return "done";
    }
    if (!noResponse(cmd)) this.outstanding++;
    return "forward";
  }

  /**
   * --read-only: does the statement change data? Unparsed queries count as writes; an SQL-level
   * PREPARE is judged by the text it prepares, and EXECUTE / DEALLOCATE of a dropped PREPARE
   * are dropped too.
   */
  private writes(cmd: number, sql: string | undefined): boolean {
    if (sql === undefined) return true;
    const sp = cmd === COM.QUERY ? sqlPrepared(sql) : undefined;
    if (sp === undefined) return this.isWrite(sql);
    if (sp.kind === "prepare") {
      const write = sp.body === undefined || this.isWrite(sp.body) || this.isWrite(sql);
      if (!write) this.droppedNames.delete(sp.name);
      else if (this.droppedNames.size < MAX_DROPPED_STMTS) this.droppedNames.add(sp.name);
      else {this.fail(
          "too_many_dropped_statements",
          `more than ${MAX_DROPPED_STMTS} write statements prepared`,
        );}
      return write;
    }
    if (this.droppedNames.has(sp.name)) {
      if (sp.kind === "deallocate") this.droppedNames.delete(sp.name);
      return true;
    }
    return this.isWrite(sql);
  }
  private readonly droppedNames = new Set<string>();

  /** The SQL text of a COM_QUERY (after query attributes, when negotiated), or undefined. */
  private querySql(p: Uint8Array): string | undefined {
    let at = 5;
    if (this.capabilities & this.serverCaps & CAP.QUERY_ATTRIBUTES) {
      const r = new Reader(p, 5);
      const params = r.lenenc();
      r.lenenc();
      if (!r.ok || params !== 0) return undefined; // parameters: not parsed, counted as a write
      at = r.pos;
    }
    return DEC.decode(p.subarray(at));
  }

  private dropStmt(id: number): void {
    if (this.droppedStmts.length >= MAX_DROPPED_STMTS) {
      return this.fail(
        "too_many_dropped_statements",
        `more than ${MAX_DROPPED_STMTS} write statements prepared`,
      );
    }
    this.droppedStmts.push(id);
  }

  /** The target's id for a production statement id, or undefined when it was dropped. */
  private stmtOnTarget(id: number): number | undefined {
    let before = 0;
    for (const d of this.droppedStmts) {
      if (d === id) return undefined;
      if (d < id) before++;
    }
    return id - before;
  }

  // ---------------------------------------------------------------- login

  private loginPacket(p: Uint8Array): void {
    const h = parseHandshakeResponse(p.subarray(4));
    if ("reason" in h) return this.fail(h.reason, h.detail);
    this.response = h;
    this.responseSeq = p[3];
    this.capabilities = h.capabilities;
    this.user = text(h.user);
    const pw = this.ctx.credentials.password(this.user);
    if (pw === undefined && h.auth.length > 0) {
      return this.fail("no_credentials", `mysql: user "${this.user}" has no line in --auth-file`);
    }
    this.password = pw ?? "";
    this.response = { ...h, fixed: h.fixed.slice(), user: h.user.slice(), tail: h.tail.slice() };
    if (h.database) this.response.database = h.database.slice();
    if (this.greetingSeen) this.sendLogin(false);
  }

  private sendLogin(now: boolean): void {
    const h = this.response!;
    const named = authPlugin(this.loginPluginName());
    if (!named) {
      return this.fail(
        "unsupported_auth",
        `mysql: auth plugin "${this.loginPluginName()}" is not supported`,
      );
    }
    this.plugin = named;
    const auth = authResponse(named, this.password, this.scramble);
    this.phase = "auth";
    this.inLoginExchange = true;
    this.out.send(
      packet(buildHandshakeResponse(h, auth, named), this.responseSeq),
      now ? { now: true } : undefined,
    );
  }

  /** The plugin of the first proof: the target's default, else the client's, else native. */
  private loginPluginName(): string {
    if (!(this.capabilities & CAP.PLUGIN_AUTH)) return "mysql_native_password";
    if (this.greetingPlugin && authPlugin(this.greetingPlugin)) return this.greetingPlugin;
    return this.response?.plugin || this.greetingPlugin || "mysql_native_password";
  }
  private greetingPlugin = "";

  private onTargetPacket(seq: number, p: Uint8Array, cut: boolean): void {
    if (this.phase === "failed") return;
    if (!this.greetingSeen) return this.greeting(p, cut);
    if (this.phase === "auth") return this.authReply(seq, p, cut);
    // commands / change_user: count responses (a response starts with sequence id 1; a 1
    // right after a 0 is the id wrapping around inside a long response).
    const starts = seq === 1 && this.lastTargetSeq !== 0;
    this.lastTargetSeq = seq;
    if (!starts) return;
    if (this.phase === "change_user") {
      if (this.skipResponses > 0) {
        this.skipResponses--;
        this.outstanding = Math.max(0, this.outstanding - 1);
        return;
      }
      this.phase = "auth";
      return this.authReply(seq, p, cut);
    }
    this.outstanding = Math.max(0, this.outstanding - 1);
  }

  private greeting(p: Uint8Array, cut: boolean): void {
    if (p.length > 0 && p[0] === 0xff) {
      const e = parseError(p);
      return this.fail(
        "target_refused",
        `mysql: target refused the connection: error ${e.code} (${e.message})`,
      );
    }
    if (cut) {
      return this.fail("reply_truncated", "mysql: target greeting longer than the reply prefix");
    }
    const g = parseGreeting(p);
    if (typeof g === "string") return this.fail("malformed", `mysql: target greeting: ${g}`);
    this.greetingSeen = true;
    this.serverCaps = g.capabilities;
    this.scramble = g.scramble;
    this.greetingPlugin = g.plugin;
    if (this.response && this.phase === "login") this.sendLogin(true);
  }

  private authReply(seq: number, p: Uint8Array, cut: boolean): void {
    this.lastTargetSeq = seq;
    const kind = p.length > 0 ? p[0] : -1;
    if (kind === 0x00) return this.authDone();
    if (kind === 0xff) {
      const e = parseError(p);
      // Counted by the engine under the reason (modules.mysql.auth_failed).
      const what = this.inLoginExchange ? "login" : "COM_CHANGE_USER";
      return this.fail(
        "auth_failed",
        `mysql: ${what} of user "${this.user}" refused by the target: error ${e.code} (${e.message})`,
      );
    }
    if (cut) {
      return this.fail(
        "reply_truncated",
        `mysql: auth packet 0x${kind.toString(16)} longer than the reply prefix`,
      );
    }
    if (kind === 0xfe) return this.authSwitch(seq, p);
    if (kind === 0x01) return this.moreData(seq, p);
    this.fail("malformed", `mysql: unexpected packet 0x${kind.toString(16)} during the login`);
  }

  private authSwitch(seq: number, p: Uint8Array): void {
    const sw = parseAuthSwitch(p);
    const plugin = sw ? authPlugin(sw.plugin) : undefined;
    if (!sw || !plugin) {
      return this.fail(
        "unsupported_auth",
        `mysql: target switched to auth plugin "${sw?.plugin ?? "old password"}"`,
      );
    }
    this.ctx.count("auth_switches");
    this.plugin = plugin;
    if (sw.data.length >= 20) this.scramble = sw.data.slice(0, 20);
    this.awaitingKey = false;
    this.out.send(packet(authResponse(plugin, this.password, this.scramble), seq + 1), {
      now: true,
    });
  }

  private moreData(seq: number, p: Uint8Array): void {
    if (this.plugin !== "caching_sha2_password") {
      return this.fail("unsupported_auth", `mysql: more auth data for plugin ${this.plugin}`);
    }
    if (this.awaitingKey) {
      let enc: Uint8Array;
      try {
        enc = rsaPassword(this.password, this.scramble, text(p.subarray(1)));
      } catch {
        return this.fail("malformed", "mysql: the target's RSA public key does not parse");
      }
      this.awaitingKey = false;
      this.out.send(packet(enc, seq + 1), { now: true });
      return;
    }
    if (p.length === 2 && p[1] === 0x03) return; // fast auth succeeded: OK follows
    if (p.length === 2 && p[1] === 0x04) {
      this.ctx.count("full_auth");
      this.awaitingKey = true;
      this.out.send(packet(Uint8Array.of(0x02), seq + 1), { now: true });
      return;
    }
    this.fail("malformed", "mysql: unexpected caching_sha2_password data");
  }

  private authDone(): void {
    const login = this.inLoginExchange;
    this.ctx.count(login ? "logins" : "change_users");
    this.inLoginExchange = false;
    this.outstanding = 0;
    this.phase = "commands";
    this.lastTargetSeq = -1;
    this.framer.capture = 0;
    if (login && !this.verified()) {
      // production's verdict is not known yet: every command waits for it
      this.holding = true;
      this.awaitingOnline = true;
      return;
    }
    this.release();
  }

  // ---------------------------------------------------------------- change user

  private changeUser(p: Uint8Array): Action | "done" {
    if (!this.ctx.trustLogins) {
      // production's verdict on a COM_CHANGE_USER is not read (yet): never re-prove it
      this.fail(
        "change_user_unverified",
        "mysql: COM_CHANGE_USER is replayed only with --module-trust-logins",
      );
      return "done";
    }
    if (this.framer.lost) {
      this.fail(
        "change_user_unsynced",
        "mysql: COM_CHANGE_USER after a reply whose framing was lost",
      );
      return "done";
    }
    const c = parseChangeUser(p.subarray(4), this.capabilities);
    if (!c) {
      this.fail("malformed", "mysql: COM_CHANGE_USER shorter than its fields");
      return "done";
    }
    this.user = text(c.user);
    const pw = this.ctx.credentials.password(this.user);
    if (pw === undefined && c.auth.length > 0) {
      this.fail("no_credentials", `mysql: user "${this.user}" has no line in --auth-file`);
      return "done";
    }
    this.password = pw ?? "";
    const named = c.plugin !== undefined && c.plugin !== "" ? authPlugin(c.plugin) : this.plugin;
    if (!named) {
      this.fail("unsupported_auth", `mysql: COM_CHANGE_USER with auth plugin "${c.plugin}"`);
      return "done";
    }
    this.plugin = named;
    const q = packet(
      buildChangeUser(c, this.capabilities, authResponse(named, this.password, this.scramble)),
      0,
    );
    this.skipResponses = this.outstanding;
    this.phase = "change_user";
    this.framer.capture = CAPTURE;
    this.lastAction = "drop"; // its continuation packets are the production client's auth
    this.apply(this.at, "forward", p, q);
    return "done";
  }

  private fail(reason: string, detail: string): void {
    if (this.phase === "failed") return;
    this.phase = "failed";
    this.held = [];
    this.out.fail(reason, detail);
  }
}
