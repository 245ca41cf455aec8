/**
 * One replayed Redis session: a streaming parser of the client's commands (RESP arrays of
 * bulk strings, or inline lines) that keeps, drops or rewrites each command.
 *
 * - A command's bytes are held only until it is decided: after its name (and, for container
 *   commands such as `CONFIG GET`, its subcommand), or at its end for `AUTH` / `HELLO`, which
 *   are rewritten. Everything after the decision streams through (sent or dropped) without
 *   being copied, so a large value costs no buffering.
 * - `AUTH [user] password` and `HELLO v AUTH user password`: the password is replaced by the
 *   auth file's password for the user (`default` when AUTH names none): `auth_rewritten`;
 *   a user without a line in the file is replayed unchanged (`auth_unchanged`, logged).
 * - Without `--read-only`, the first command that is neither AUTH nor HELLO hands the
 *   session to the engine (`out.pass()`): the rest is replayed unchanged at no cost, and a
 *   stream that does not parse is passed as it is.
 * - With `--read-only`, commands outside the read allow-list (commands.ts) are dropped and
 *   counted (`statements_dropped`); kept inline commands are sent as RESP arrays of the
 *   arguments this parser read, so the target runs exactly what was classified. A stream
 *   that does not parse the way Redis would parse it ends the session (`malformed`).
 *
 * - What one captured chunk yields is sent as one piece (one turn). With `--read-only` it is
 *   sent with `{ now: true }`: the target's answers differ in length from production's (a GET
 *   of a key whose SET was dropped answers nil), so pacing by reply bytes would wait for bytes
 *   that never come; commands go out as captured, which keeps the online client's pace.
 *
 * - Production's verdict: an AUTH / HELLO re-proved with the auth file's password is sent,
 *   and everything after it is held until production's reply to it (the online stream) says
 *   `+OK` (or a HELLO map): a refusal ends the session (`online_login_failed`), a reply that
 *   cannot be read (`online_login_unknown`) too. Only the login commands that lead a session
 *   are re-proved (their replies are the first ones); a later AUTH is replayed unchanged
 *   (unless `--module-trust-logins`).
 *
 * Bounds: inline lines 64 KiB, header lines 32 bytes, 1,048,576 arguments, bulk strings
 * 512 MiB (Redis's own limits); names and subcommands are read up to 64 bytes (longer is an
 * unknown command), AUTH / HELLO arguments up to 4 KiB each (longer: replayed unchanged).
 *
 * @module
 */

import type { ModuleContext, ModuleOutput, ModuleSession, SendOptions } from "../module.ts";
import { isContainer, isReadCommand } from "./commands.ts";
import { encodeCommand, lowerAscii, parseHeaderNumber, splitInline } from "./resp.ts";
import { MAX_LOGIN_REPLIES, RedisOnlineReplies } from "./online.ts";

/** Client bytes held while production's reply to a re-proved AUTH is awaited, at most. */
export const MAX_GATED = 4 << 20;

/** Longest inline command line (Redis PROTO_INLINE_MAX_SIZE). */
export const MAX_INLINE = 64 * 1024;
/** Longest `*N` / `$L` header line, CR LF included. */
export const MAX_HEADER = 32;
/** Most arguments of one command. */
export const MAX_ARGS = 1024 * 1024;
/** Longest bulk string (Redis proto-max-bulk-len). */
export const MAX_BULK = 512 * 1024 * 1024;
/** Longest command name or subcommand read. */
export const MAX_NAME = 64;
/** Longest AUTH / HELLO argument read for a rewrite. */
export const MAX_AUTH_ARG = 4096;
/** Most arguments of an AUTH / HELLO that is rewritten. */
const MAX_AUTH_ARGS = 8;

/** Parser states. */
type State = "command" | "inline" | "count" | "bulk_header" | "bulk" | "bulk_end";
/** What happens to the current command's bytes. */
type Decision = "undecided" | "keep" | "drop";

/** A growable byte buffer for a command's held bytes (reused between commands). */
class Held {
  buf = new Uint8Array(256);
  length = 0;
  push(data: Uint8Array): void {
    if (this.length + data.length > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.length + data.length) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    this.buf.set(data, this.length);
    this.length += data.length;
  }
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** The per-session state of the Redis module (see the module doc). */
export class RedisSession implements ModuleSession {
  readonly #ctx: ModuleContext;
  readonly #out: ModuleOutput;
  #finished = false;
  #state: State = "command";
  #decision: Decision = "undecided";
  readonly #held = new Held();
  /** The current header or inline line (without what was already parsed). */
  readonly #line = new Held();
  #argc = 0;
  #argi = 0;
  #bulkLeft = 0;
  #endLeft = 0;
  /** Arguments captured while undecided, and how many to capture. */
  #args: Uint8Array[] = [];
  #want = 1;
  #capture: Uint8Array | null = null;
  #captureAt = 0;
  #name = "";
  /** The command is a container (`CONFIG GET`): its subcommand decides. */
  #container = false;
  #inline = false;
  /** Current client chunk and the start of the kept run in it (-1: none). */
  #data: Uint8Array = new Uint8Array(0);
  #run = -1;
  /** What this call sends, sent as one piece at its end (one turn per captured chunk). */
  #pending: Uint8Array[] = [];
  readonly #joined = new Held();
  readonly #sendOptions: SendOptions | undefined;
  // -- production's verdict on re-proved logins
  readonly #online = new RedisOnlineReplies();
  /** Only login commands so far (their replies are production's first ones). */
  #leading = true;
  /** Commands ended while leading (the index of the next one's reply). */
  #leadCount = 0;
  /** Reply indexes of re-proved logins, and how many of them production accepted. */
  readonly #verify: number[] = [];
  #verified = 0;
  /** Bytes waiting for production's verdict (null: nothing waits). */
  #gate: Held | null = null;
  /** The session was handed over while gated: pass once released. */
  #passAfter = false;
  #closed = false;

  constructor(ctx: ModuleContext, out: ModuleOutput) {
    this.#ctx = ctx;
    this.#out = out;
    // --read-only: the target's answers differ from production's (a GET of a key whose SET was
    // dropped answers nil), so the engine's pacing by reply bytes would wait for bytes that
    // never come; commands go out as they were captured, and Redis queues pipelined commands.
    this.#sendOptions = ctx.readOnly ? { now: true } : undefined;
  }

  client(data: Uint8Array): void {
    if (this.#passAfter) return this.#toGate(data);
    if (this.#finished) return;
    this.#data = data;
    this.#run = -1;
    let i = 0;
    while (i < data.length && !this.#finished) i = this.#step(data, i);
    if (!this.#finished) {
      this.#flushRun(data.length);
      this.#sendPending();
    }
    this.#pending.length = 0;
    this.#data = new Uint8Array(0);
  }

  target(_data: Uint8Array): void {}

  targetGap(_n: number): void {}

  /** A partial command is never sent; true while bytes wait for production's verdict. */
  clientClosed(): boolean {
    this.#closed = true;
    const waiting = this.#gate !== null && !this.#failed;
    if (!this.#passAfter) this.#finished = true;
    return waiting;
  }
  #failed = false;

  /** Production's replies: its verdict on each re-proved login. */
  online(data: Uint8Array): boolean {
    if (this.#failed) return true;
    this.#online.feed(data);
    return this.#checkOnline();
  }

  onlineGap(n: number): boolean {
    if (this.#failed) return true;
    if (this.#online.lost === "") this.#online.lost = `${n} bytes were not captured`;
    return this.#checkOnline();
  }

  /** Settles the re-proved logins production answered; true when no more replies are needed. */
  #checkOnline(): boolean {
    const types = this.#online.types;
    while (this.#verified < this.#verify.length && !this.#failed) {
      const at = this.#verify[this.#verified];
      if (at >= types.length) {
        if (this.#online.lost === "" && types.length < MAX_LOGIN_REPLIES) return false;
        this.#end(
          "online_login_unknown",
          `redis: production's reply to a re-proved login is unknown (${
            this.#online.lost || "too many replies"
          }): nothing after it is replayed`,
        );
        return true;
      }
      const t = types[at];
      if (t === 0x2d) { // -ERR / -WRONGPASS
        this.#end(
          "online_login_failed",
          "redis: production refused a re-proved login: nothing after it is replayed",
        );
        return true;
      }
      if (t !== 0x2b && t !== 0x25 && t !== 0x2a) {
        this.#end("online_login_unknown", `redis: production answered a login with type ${t}`);
        return true;
      }
      this.#verified++;
    }
    if (this.#gate !== null && !this.#failed) this.#release();
    return this.#failed || (!this.#leading && this.#verified === this.#verify.length);
  }

  /** Production accepted every re-proved login: what waited goes now. */
  #release(): void {
    const g = this.#gate!;
    this.#gate = null;
    if (g.length > 0) this.#out.send(g.view().slice(), { now: true });
    if (this.#passAfter || this.#closed) {
      this.#finished = true;
      this.#out.pass();
    }
  }

  #toGate(data: Uint8Array): void {
    if (this.#failed) return;
    const g = this.#gate;
    if (g === null) return; // released and passed: the engine has the session
    if (g.length + data.length > MAX_GATED) {
      return this.#end(
        "hold_limit",
        `redis: more than ${MAX_GATED} bytes waiting for production's reply to a login`,
      );
    }
    g.push(data);
  }

  #end(reason: string, detail: string): void {
    this.#failed = true;
    this.#finished = true;
    this.#gate = null;
    this.#out.fail(reason, detail);
  }

  /** Parses from `i`; returns the next position. */
  #step(data: Uint8Array, i: number): number {
    switch (this.#state) {
      case "command":
        this.#startCommand(data[i] !== 42);
        return i;
      case "inline":
        return this.#inlineBytes(data, i);
      case "count":
      case "bulk_header":
        return this.#headerBytes(data, i);
      case "bulk":
        return this.#bulkBytes(data, i);
      case "bulk_end":
        return this.#bulkEndBytes(data, i);
      default:
        return this.#state satisfies never;
    }
  }

  #startCommand(inline: boolean): void {
    this.#inline = inline;
    this.#state = inline ? "inline" : "count";
    this.#decision = "undecided";
    this.#held.length = 0;
    this.#line.length = 0;
    this.#args = [];
    this.#want = 1;
    this.#argc = 0;
    this.#argi = 0;
    this.#name = "";
    this.#container = false;
  }

  // ---- byte routing: held while undecided, then a kept run of the chunk or dropped

  #route(from: number, to: number): void {
    if (to <= from) return;
    switch (this.#decision) {
      case "undecided":
        this.#flushRun(from);
        this.#held.push(this.#data.subarray(from, to));
        return;
      case "keep":
        if (this.#run < 0) this.#run = from;
        return;
      case "drop":
        this.#flushRun(from);
        return;
      default:
        return this.#decision satisfies never;
    }
  }

  #flushRun(at: number): void {
    if (this.#run >= 0 && at > this.#run) this.#pending.push(this.#data.subarray(this.#run, at));
    this.#run = -1;
  }

  /** Sends what this call decided to send, as one piece (or to the gate while it is closed). */
  #sendPending(): void {
    const parts = this.#pending;
    if (this.#gate !== null) {
      for (const p of parts) this.#toGate(p);
      parts.length = 0;
      return;
    }
    if (parts.length === 1) {
      this.#out.send(parts[0], this.#sendOptions);
    } else if (parts.length > 1) {
      const joined = this.#joined;
      joined.length = 0;
      for (const p of parts) joined.push(p);
      this.#out.send(joined.view(), this.#sendOptions);
    }
    parts.length = 0;
  }

  // ---- parsing

  #inlineBytes(data: Uint8Array, i: number): number {
    const nl = data.indexOf(10, i);
    const end = nl < 0 ? data.length : nl + 1;
    if (this.#line.length + (end - i) > MAX_INLINE + 2) {
      return this.#malformed(data, i, `inline command longer than ${MAX_INLINE} bytes`);
    }
    this.#line.push(data.subarray(i, end));
    this.#route(i, end);
    if (nl < 0) return end;
    const line = this.#line.view();
    let stop = line.length - 1;
    if (stop > 0 && line[stop - 1] === 13) stop--;
    const args = splitInline(line.subarray(0, stop));
    if (typeof args === "string") return this.#malformed(data, end, args);
    this.#state = "command";
    if (args.length === 0) { // an empty line: Redis ignores it
      this.#decision = this.#ctx.readOnly ? "drop" : "keep";
      this.#endUndecided();
      return end;
    }
    this.#args = args;
    this.#argc = args.length;
    this.#argi = args.length;
    this.#decideOnName(end);
    if (this.#finished) return end;
    if (this.#decision === "undecided") this.#decideSub();
    this.#endCommand();
    return end;
  }

  #headerBytes(data: Uint8Array, i: number): number {
    const nl = data.indexOf(10, i);
    const end = nl < 0 ? data.length : nl + 1;
    if (this.#line.length + (end - i) > MAX_HEADER) {
      return this.#malformed(data, i, `header line longer than ${MAX_HEADER} bytes`);
    }
    this.#line.push(data.subarray(i, end));
    this.#route(i, end);
    if (nl < 0) return end;
    const line = this.#line.view();
    this.#line.length = 0;
    const n = line.length;
    const first = this.#state === "count" ? 42 : 36; // * or $
    if (n < 3 || line[0] !== first || line[n - 2] !== 13) {
      return this.#malformed(data, end, `bad header ${JSON.stringify(printable(line))}`);
    }
    const value = parseHeaderNumber(line, 1, n - 2);
    if (value === undefined) {
      return this.#malformed(data, end, `bad number in ${JSON.stringify(printable(line))}`);
    }
    if (this.#state === "count") {
      if (value > MAX_ARGS) return this.#malformed(data, end, `${value} arguments`);
      if (value <= 0) { // *0 / *-1: Redis ignores it
        this.#state = "command";
        this.#decision = this.#ctx.readOnly ? "drop" : "keep";
        this.#endUndecided();
        return end;
      }
      this.#argc = value;
      this.#state = "bulk_header";
      return end;
    }
    if (value < 0 || value > MAX_BULK) return this.#malformed(data, end, `bulk of ${value} bytes`);
    this.#bulkLeft = value;
    this.#state = "bulk";
    this.#capture = null;
    if (this.#decision === "undecided" && this.#argi < this.#want) {
      const cap = this.#argi === 0 || this.#container ? MAX_NAME : MAX_AUTH_ARG;
      if (value <= cap) {
        this.#capture = new Uint8Array(value);
        this.#captureAt = 0;
      } else {
        this.#oversized(end);
        if (this.#finished) return end;
      }
    }
    if (value === 0) {
      this.#state = "bulk_end";
      this.#endLeft = 2;
    }
    return end;
  }

  #bulkBytes(data: Uint8Array, i: number): number {
    const take = Math.min(this.#bulkLeft, data.length - i);
    if (this.#capture !== null) {
      this.#capture.set(data.subarray(i, i + take), this.#captureAt);
      this.#captureAt += take;
    }
    this.#route(i, i + take);
    this.#bulkLeft -= take;
    if (this.#bulkLeft === 0) {
      this.#state = "bulk_end";
      this.#endLeft = 2;
    }
    return i + take;
  }

  #bulkEndBytes(data: Uint8Array, i: number): number {
    const expected = this.#endLeft === 2 ? 13 : 10;
    if (data[i] !== expected) return this.#malformed(data, i, "bulk string not followed by CR LF");
    this.#route(i, i + 1);
    const next = i + 1;
    if (--this.#endLeft > 0) return next;
    this.#argi++;
    if (this.#capture !== null) {
      this.#args.push(this.#capture);
      this.#capture = null;
      if (this.#argi === 1) this.#decideOnName(next);
      else if (this.#argi === 2 && this.#container) this.#decideSub();
      if (this.#finished) return next;
    }
    if (this.#argi < this.#argc) {
      this.#state = "bulk_header";
      return next;
    }
    this.#state = "command";
    this.#endCommand();
    return next;
  }

  // ---- decisions

  /** The name is known (`#args[0]`): decide, or say what more to read. */
  #decideOnName(at: number): void {
    const name = lowerAscii(this.#args[0]);
    this.#name = name;
    const login = name === "auth" || name === "hello";
    if (!login) this.#leading = false;
    if (!this.#ctx.readOnly) {
      if (!login) return this.#passNow(at);
      this.#want = this.#argc <= MAX_AUTH_ARGS ? this.#argc : 0;
      if (this.#want === 0) this.#decide("keep");
      return;
    }
    if (login) {
      this.#want = this.#argc <= MAX_AUTH_ARGS ? this.#argc : 0;
      if (this.#want === 0) this.#decide("keep");
    } else if (isContainer(name) && this.#argc >= 2) {
      this.#container = true;
      this.#want = 2;
    } else {
      this.#decide(isReadCommand(name, "") ? "keep" : "drop");
    }
  }

  /** A container command's subcommand is known (`#args[1]`). */
  #decideSub(): void {
    if (!this.#container || this.#args.length < 2) return;
    const sub = lowerAscii(this.#args[1]);
    this.#decide(isReadCommand(this.#name, sub) ? "keep" : "drop");
  }

  /** A name, subcommand or login argument too long to read. */
  #oversized(at: number): void {
    if (this.#argi === 0) { // the name: an unknown command
      if (!this.#ctx.readOnly) return this.#passNow(at);
      return this.#decide("drop");
    }
    if (this.#container) return this.#decide("drop"); // an unknown subcommand
    this.#ctx.count("auth_unchanged");
    this.#decide("keep"); // a login argument: replayed unchanged
  }

  /** Settles the current command: sends what was held (keep) or forgets it (drop). */
  #decide(decision: "keep" | "drop"): void {
    this.#decision = decision;
    if (decision === "drop") {
      this.#ctx.count("statements_dropped");
    } else if (this.#inline && this.#ctx.readOnly) {
      this.#pending.push(encodeCommand(this.#args)); // what was classified, as RESP
    } else if (!this.#inline || this.#argi === this.#argc) {
      // An inline command is decided once whole; an array's held prefix goes now.
      this.#pending.push(this.#held.view().slice());
    }
    this.#held.length = 0;
  }

  /** The command ended: an undecided one is a login to rewrite (or a short container). */
  #endCommand(): void {
    const index = this.#leadCount;
    if (this.#leading) this.#leadCount++;
    if (this.#decision !== "undecided") return;
    if (this.#name === "auth" || this.#name === "hello") {
      const verifiable = this.#ctx.trustLogins ||
        (this.#leading && index < MAX_LOGIN_REPLIES);
      const rewritten = verifiable ? this.#rewriteLogin() : null;
      if (!verifiable) {
        this.#ctx.count("auth_unchanged");
        this.#ctx.log(
          "redis: a login after other commands is replayed unchanged (production's verdict on it is not read)",
        );
      }
      if (rewritten !== null) {
        this.#decision = "keep";
        this.#held.length = 0;
        this.#pending.push(encodeCommand(rewritten));
        if (!this.#ctx.trustLogins) {
          // the login goes now; what follows waits for production's verdict on it
          this.#sendPending();
          this.#verify.push(index);
          this.#gate ??= new Held();
          this.#checkOnline();
        }
        return;
      }
      return this.#decide("keep");
    }
    this.#decide(isReadCommand(this.#name, "") ? "keep" : "drop");
  }

  /** An ignored empty command (decision set by the caller): send or forget its bytes. */
  #endUndecided(): void {
    if (this.#decision === "keep") this.#pending.push(this.#held.view().slice());
    this.#held.length = 0;
  }

  /** The login command with the auth file's password, or null to replay it unchanged. */
  #rewriteLogin(): Uint8Array[] | null {
    const args = this.#args;
    if (this.#name === "auth") {
      if (args.length === 2) return this.#withPassword(args, "default", 1);
      if (args.length === 3) return this.#withPassword(args, decode(args[1]), 2);
      return null;
    }
    // HELLO [protover [AUTH user pass] [SETNAME name]]
    let j = 2;
    while (j < args.length) {
      const opt = lowerAscii(args[j]);
      if (opt === "auth" && j + 2 < args.length) {
        return this.#withPassword(args, decode(args[j + 1]), j + 2);
      }
      if (opt === "setname" && j + 1 < args.length) j += 2;
      else return null;
    }
    return null;
  }

  #withPassword(args: Uint8Array[], user: string, at: number): Uint8Array[] | null {
    const password = this.#ctx.credentials.password(user);
    if (password === undefined) {
      this.#ctx.count("auth_unchanged");
      this.#ctx.log(
        `redis: no password for user ${
          JSON.stringify(user)
        } in the auth file; AUTH replayed unchanged`,
      );
      return null;
    }
    this.#ctx.count("auth_rewritten");
    const out = args.slice();
    out[at] = new TextEncoder().encode(password);
    return out;
  }

  /** Without --read-only: send what is held and the rest of the chunk, hand over the session. */
  #passNow(at: number): void {
    this.#flushRun(at);
    if (this.#held.length > 0) this.#pending.push(this.#held.view().slice());
    this.#held.length = 0;
    if (at < this.#data.length) this.#pending.push(this.#data.subarray(at));
    this.#sendPending();
    this.#finished = true;
    if (this.#gate !== null) {
      this.#passAfter = true; // the rest of the stream waits with it
      return;
    }
    this.#out.pass();
  }

  /** A stream Redis would not parse this way: passed (not read-only) or the session ends. */
  #malformed(data: Uint8Array, at: number, detail: string): number {
    if (!this.#ctx.readOnly) {
      this.#passNow(at);
      return data.length;
    }
    this.#end("malformed", `redis: ${detail}`);
    return data.length;
  }
}

const decoder = new TextDecoder();

function decode(b: Uint8Array): string {
  return decoder.decode(b);
}

/** A short printable rendering of header bytes for a log line. */
function printable(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length && i < 32; i++) {
    const c = b[i];
    s += c >= 32 && c < 127 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, "0")}`;
  }
  return s;
}
