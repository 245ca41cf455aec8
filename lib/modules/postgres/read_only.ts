/**
 * `--read-only` for PostgreSQL: filters the client's messages after the login so that statements
 * that change data never reach the target, while the target stays in step with the protocol.
 *
 * - Simple query ('Q'): dropped when its text is a write (the whole message: a multi-statement
 *   string with one write in it is dropped whole).
 * - Extended query: a Parse ('P') of a write is dropped and its statement name remembered; a Bind
 *   ('B') of such a statement is dropped and its portal remembered; Describe ('D'), Execute ('E')
 *   and Close ('C') of those statements/portals are dropped too. Sync ('S') and Flush ('H') are
 *   always kept, so the target answers every round the client started.
 * - COPY data ('d', 'c', 'f') right after a dropped statement is dropped with it; FunctionCall
 *   ('F', a function by OID, which cannot be classified) is dropped.
 * - Everything else is forwarded unchanged, streamed without buffering when the type decides.
 *
 * `statements_dropped` counts each dropped simple query and each dropped Execute.
 *
 * @module
 */

import { ByteQueue } from "./bytes.ts";
import { cstring } from "./messages.ts";

/** Largest message whose body is inspected (query text, Bind); bigger ones fail the session. */
export const MAX_INSPECTED = 16 << 20;
/** Most remembered write statements + portals per session. */
export const MAX_NAMES = 10_000;

/** Says whether a SQL text changes data. */
export type WriteClassifier = (sql: string) => boolean;

const Q = 0x51, P = 0x50, B = 0x42, D = 0x44, E = 0x45, C = 0x43, F = 0x46;
const COPY_DATA = 0x64, COPY_DONE = 0x63, COPY_FAIL = 0x66;

/** The read-only filter of one session's post-login client stream. */
export class ReadOnlyFilter {
  readonly #isWrite: WriteClassifier;
  readonly #dropped: () => void;
  readonly #in = new ByteQueue(1024);
  readonly #out = new ByteQueue(1024);
  /** Statement names whose Parse was a write. */
  readonly #statements = new Set<string>();
  /** Portals bound to such statements. */
  readonly #portals = new Set<string>();
  /** Bytes left of a message being streamed (forwarded or dropped without buffering). */
  #stream = 0;
  #streamKeep = false;
  /** The last statement-bearing message was dropped (its COPY data goes too). */
  #lastDropped = false;

  /** `isWrite` classifies SQL; `dropped` is called once per dropped statement. */
  constructor(isWrite: WriteClassifier, dropped: () => void) {
    this.#isWrite = isWrite;
    this.#dropped = dropped;
  }

  /**
   * Filters `data` (the next client bytes): returns the bytes to send (a view valid until the
   * next call, possibly empty) or why the stream cannot be filtered.
   */
  feed(data: Uint8Array): Uint8Array | string {
    this.#out.clear();
    const q = this.#in;
    q.push(data);
    while (q.length > 0) {
      if (this.#stream > 0) {
        const n = Math.min(this.#stream, q.length);
        if (this.#streamKeep) this.#out.push(q.view(0, n));
        q.consume(n);
        this.#stream -= n;
        continue;
      }
      if (q.length < 5) break;
      const type = q.u8(0), len = q.u32(1);
      if (len < 4) return `message ${typeName(type)} with length ${len}`;
      if (!inspected(type)) {
        this.#stream = 1 + len;
        this.#streamKeep = this.#keepByType(type);
        continue;
      }
      if (len > MAX_INSPECTED) {
        return `message ${typeName(type)} of ${len} bytes (limit ${MAX_INSPECTED})`;
      }
      if (q.length < 1 + len) break;
      const body = q.view(5, len - 4);
      const keep = this.#decide(type, body);
      if (typeof keep === "string") return keep;
      if (keep) this.#out.push(q.view(0, 1 + len));
      q.consume(1 + len);
    }
    return this.#out.view(0, this.#out.length);
  }

  #keepByType(type: number): boolean {
    if (type === COPY_DATA || type === COPY_DONE || type === COPY_FAIL) return !this.#lastDropped;
    if (type === F) {
      this.#dropped();
      return false;
    }
    return true;
  }

  #decide(type: number, body: Uint8Array): boolean | string {
    const first = cstring(body, 0);
    if (first.end < 0 && type !== D && type !== C) return `unterminated ${typeName(type)} message`;
    switch (type) {
      case Q:
        return this.#statement(this.#isWrite(first.text));
      case P: {
        const sql = cstring(body, first.end);
        if (sql.end < 0) return "unterminated query in Parse";
        const write = this.#isWrite(sql.text);
        return this.#remember(this.#statements, first.text, write) ?? !write;
      }
      case B: {
        const stmt = cstring(body, first.end);
        if (stmt.end < 0) return "unterminated statement name in Bind";
        const write = this.#statements.has(stmt.text);
        return this.#remember(this.#portals, first.text, write) ?? !write;
      }
      case E:
        return this.#statement(this.#portals.has(first.text));
      case D:
      case C: {
        if (body.length < 2) return `short ${typeName(type)} message`;
        const name = cstring(body, 1);
        if (name.end < 0) return `unterminated name in ${typeName(type)}`;
        const set = body[0] === 0x53 ? this.#statements : body[0] === 0x50 ? this.#portals : null;
        if (!set) return `${typeName(type)} of kind ${body[0]}`;
        const write = set.has(name.text);
        if (type === C) set.delete(name.text);
        return !write;
      }
      default:
        return true;
    }
  }

  /** A statement-bearing message: dropped (and counted) when `write`. */
  #statement(write: boolean): boolean {
    this.#lastDropped = write;
    if (write) this.#dropped();
    return !write;
  }

  #remember(set: Set<string>, name: string, write: boolean): string | undefined {
    if (!write) {
      set.delete(name);
      return undefined;
    }
    if (!set.has(name) && this.#statements.size + this.#portals.size >= MAX_NAMES) {
      return `more than ${MAX_NAMES} prepared write statements and portals`;
    }
    set.add(name);
    return undefined;
  }
}

function inspected(type: number): boolean {
  return type === Q || type === P || type === B || type === D || type === E || type === C;
}

function typeName(type: number): string {
  return type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}'` : `0x${type.toString(16)}`;
}
