/**
 * The first replies of production to a Redis client, read from the online server's stream:
 * the type byte of each of the first {@link MAX_LOGIN_REPLIES} top-level replies (`+` OK,
 * `-` error, `%`/`*` a HELLO map), so the module learns production's verdict on each AUTH /
 * HELLO it re-proved. A streaming RESP2/RESP3 skipper: nothing is buffered besides a header
 * line of at most 32 bytes; values nest at most {@link MAX_DEPTH} deep.
 *
 * @module
 */

/** Top-level replies whose type is kept (the login commands that lead a session). */
export const MAX_LOGIN_REPLIES = 16;
/** Deepest nesting of aggregates followed. */
export const MAX_DEPTH = 32;
const MAX_NUMBER_LINE = 32;

const LF = 10;

/** See the module comment. */
export class RedisOnlineReplies {
  /** Type bytes of the complete top-level replies so far (at most MAX_LOGIN_REPLIES). */
  readonly types: number[] = [];
  /** Set when production's stream cannot be followed (a gap, a bad header, too deep). */
  lost = "";
  /** Elements still expected per open aggregate (innermost last); -1 marks an attribute. */
  readonly #stack: number[] = [];
  #attr: boolean[] = [];
  #topType = 0;
  /** The current header: type byte (0: none yet), number digits. */
  #type = 0;
  #num = "";
  #lineSkip = false;
  #bulkLeft = 0;

  /** Production's bytes, in order. */
  feed(data: Uint8Array): void {
    let i = 0;
    while (i < data.length && this.lost === "" && this.types.length < MAX_LOGIN_REPLIES) {
      if (this.#bulkLeft > 0) {
        const n = Math.min(this.#bulkLeft, data.length - i);
        this.#bulkLeft -= n;
        i += n;
        if (this.#bulkLeft === 0) this.#valueDone();
        continue;
      }
      const b = data[i++];
      if (this.#type === 0) {
        this.#type = b;
        this.#num = "";
        this.#lineSkip = isLineType(b);
        if (this.#stack.length === 0) this.#topType = b;
        if (!this.#lineSkip && !isSized(b)) return this.#lose(`reply type 0x${b.toString(16)}`);
        continue;
      }
      if (b !== LF) {
        if (!this.#lineSkip) {
          if (this.#num.length >= MAX_NUMBER_LINE) return this.#lose("reply header too long");
          this.#num += String.fromCharCode(b);
        }
        continue;
      }
      this.#header();
    }
  }

  /** A header line ended (LF read). */
  #header(): void {
    const t = this.#type;
    this.#type = 0;
    if (this.#lineSkip) return this.#valueDone();
    const text = this.#num.endsWith("\r") ? this.#num.slice(0, -1) : this.#num;
    const n = /^-?\d{1,12}$/.test(text) ? Number(text) : NaN;
    if (!Number.isFinite(n) || n < -1) return this.#lose("bad reply length");
    if (n === -1) return this.#valueDone(); // a null
    if (t === 0x24 || t === 0x21 || t === 0x3d) { // $ ! =
      this.#bulkLeft = n + 2;
      return;
    }
    const count = t === 0x25 || t === 0x7c ? 2 * n : n; // % | : pairs
    if (count === 0) return this.#valueDone();
    if (this.#stack.length >= MAX_DEPTH) return this.#lose("replies nested too deep");
    this.#stack.push(count);
    this.#attr.push(t === 0x7c);
  }

  /** A value completed: count it in its aggregate, or as a top-level reply. */
  #valueDone(): void {
    const st = this.#stack;
    while (st.length > 0) {
      if (--st[st.length - 1] > 0) return;
      st.pop();
      if (this.#attr.pop()) return; // an attribute precedes the value it annotates
    }
    if (this.#topType === 0x7c || this.#topType === 0x3e) return; // attribute / push
    this.types.push(this.#topType);
  }

  #lose(why: string): void {
    this.lost = why;
  }
}

/** `+ - : _ # , (`: the value is its header line. */
function isLineType(b: number): boolean {
  return b === 0x2b || b === 0x2d || b === 0x3a || b === 0x5f || b === 0x23 || b === 0x2c ||
    b === 0x28;
}

/** `$ ! = * ~ > % |`: a length or count follows. */
function isSized(b: number): boolean {
  return b === 0x24 || b === 0x21 || b === 0x3d || b === 0x2a || b === 0x7e || b === 0x3e ||
    b === 0x25 || b === 0x7c;
}
