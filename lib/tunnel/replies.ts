/**
 * intercept -> tcpcopy reply records and their framing.
 *
 * C v6 ("combined", the default build):
 *   frame  = u16 BE count N (1..16), then N records of 64 bytes
 *   record = IPv4 header (20 bytes) + TCP header incl. options (doff*4, cut at 44 bytes),
 *            zero padded to 64. tot_len keeps the original value, so the receiver learns the
 *            payload length without the payload. If the reply had IP options, the copied
 *            header gets ihl = 5 and tot_len reduced by the options' length, so a C tcpcopy
 *            (which looks for TCP at ihl*4) parses it right.
 *
 * Extension frames (only after the EXT_ACK, see negotiation.ts):
 *   frame  = u8 kind, u8 0, u16 BE body length, body
 *   kind 0xE1 REPLIES:   body = records, each u16 BE length + bytes from the IP header
 *                        (IPv4 header with options, or the 40-byte IPv6 header) through the
 *                        TCP header, then the first min(prefix, payload) payload bytes.
 *   kind 0xE2 HEARTBEAT: empty body.
 *   kind 0xE3 EXT_ACK:   u16 extension version, u32 granted caps, u16 granted prefix bytes,
 *                        then the 32-byte server proof when Cap.AUTH was granted (auth.ts).
 *   kind 0xE4 CHALLENGE: the 32-byte server nonce (sent instead of the EXT_ACK to a peer that
 *                        asked for Cap.AUTH; the EXT_ACK follows its AUTH message).
 *   kind 0xE5 ANSWER:    one target answer's summary (Cap.ANSWERS, after the peer's COMPARE
 *                        message), layout in answer_frame.ts; this kind uses byte 1 as the
 *                        high byte of a 24-bit body length (a body may exceed 65535 bytes).
 * A first byte >= 0xE1 can never start a v6 frame (its count is at most 16), so a client
 * that asked for extensions tells an EXT_ACK from a v6 frame by its first two bytes.
 */
import type { ReplyInfo } from "./reply_packet.ts";
import type { DecodeResult } from "./messages.ts";
import {
  ANSWER_FRAME_KIND,
  AnswerDecoder,
  decodeAnswerBody,
  MAX_ANSWER_BODY,
  type TunnelAnswer,
} from "./answer_frame.ts";
import { MAX_COMPARE_BYTES } from "../compare/answer.ts";

/** Size of one C v6 reply record. */
export const RECORD_SIZE = 64;
/** Most records in one combined frame (COMB_MAX_NUM). */
export const MAX_BATCH = 16;
/** Most TCP header bytes a v6 record carries. */
export const MAX_TCP_IN_RECORD = 44;

/**
 * Extension frame kinds (the first byte). The decoder's switch does not compile until it
 * handles every kind here (see "Where to add a tunnel message type" in README.md).
 */
export const FrameKind = {
  REPLIES: 0xe1,
  HEARTBEAT: 0xe2,
  EXT_ACK: 0xe3,
  CHALLENGE: 0xe4,
  ANSWER: ANSWER_FRAME_KIND,
} as const;
/** One of the {@link FrameKind} codes. */
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const FRAME_KINDS: ReadonlySet<number> = new Set(Object.values(FrameKind));

/** The byte read from the wire is a known extension frame kind. */
export function isFrameKind(kind: number): kind is FrameKind {
  return FRAME_KINDS.has(kind);
}
/** Size of an extension frame header. */
export const EXT_HEADER_SIZE = 4;
/** Largest body of one extension frame. */
export const MAX_EXT_BODY = 0xffff;

/**
 * Writes the v6 record of an IPv4 reply at `dst[at..at+64)` (zero padded).
 * `info` must come from inspectReply on `pkt` with family 4.
 */
export function writeRecordV6(dst: Uint8Array, at: number, pkt: Uint8Array, info: ReplyInfo): void {
  for (let i = 0; i < 20; i++) dst[at + i] = pkt[i];
  if (info.l4 > 20) {
    dst[at] = 0x45;
    const totLen = ((pkt[2] << 8) | pkt[3]) - (info.l4 - 20);
    dst[at + 2] = totLen >> 8;
    dst[at + 3] = totLen & 0xff;
  }
  const tcp = Math.min(info.tcpLen, MAX_TCP_IN_RECORD);
  const l4 = info.l4, to = at + 20;
  for (let i = 0; i < tcp; i++) dst[to + i] = pkt[l4 + i];
  for (let i = 20 + tcp; i < RECORD_SIZE; i++) dst[at + i] = 0;
}

/** Bytes an extension record of this reply takes (without its u16 length). */
export function extRecordLength(info: ReplyInfo, prefix: number): number {
  return info.l4 + info.tcpLen + Math.min(prefix, info.capturedPayload);
}

/** Writes an extension record (u16 length + bytes) at `at`; returns the bytes written. */
export function writeRecordExt(
  dst: Uint8Array,
  at: number,
  pkt: Uint8Array,
  info: ReplyInfo,
  prefix: number,
): number {
  const len = extRecordLength(info, prefix);
  dst[at] = len >> 8;
  dst[at + 1] = len & 0xff;
  dst.set(pkt.subarray(0, len), at + 2);
  return len + 2;
}

/** A combined v6 frame from whole 64-byte records. */
export function encodeCombined(records: Uint8Array[]): Uint8Array {
  if (records.length < 1 || records.length > MAX_BATCH) throw new RangeError("1..16 records");
  const out = new Uint8Array(2 + records.length * RECORD_SIZE);
  out[0] = records.length >> 8;
  out[1] = records.length & 0xff;
  records.forEach((r, i) => out.set(r.subarray(0, RECORD_SIZE), 2 + i * RECORD_SIZE));
  return out;
}

/** An extension frame of the given kind and body. */
export function encodeExtFrame(kind: FrameKind, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (body.length > MAX_EXT_BODY) throw new RangeError("extension frame body too long");
  const out = new Uint8Array(EXT_HEADER_SIZE + body.length);
  out[0] = kind;
  out[2] = body.length >> 8;
  out[3] = body.length & 0xff;
  out.set(body, EXT_HEADER_SIZE);
  return out;
}

/** EXT_ACK frame (with the server proof after the 8 bytes when authenticated). */
export function encodeExtAck(
  extVersion: number,
  caps: number,
  prefix: number,
  proof?: Uint8Array,
): Uint8Array {
  const body = new Uint8Array(8 + (proof?.length ?? 0));
  const dv = new DataView(body.buffer);
  dv.setUint16(0, extVersion);
  dv.setUint32(2, caps >>> 0);
  dv.setUint16(6, prefix);
  if (proof) body.set(proof, 8);
  return encodeExtFrame(FrameKind.EXT_ACK, body);
}

/** CHALLENGE frame: the server nonce. */
export function encodeChallenge(nonce: Uint8Array): Uint8Array {
  return encodeExtFrame(FrameKind.CHALLENGE, nonce);
}

/** A decoded intercept -> tcpcopy item other than a reply (the client's control switch). */
export type ControlItem =
  | { kind: "ext-ack"; extVersion: number; caps: number; prefix: number; proof?: Uint8Array }
  | { kind: "challenge"; nonce: Uint8Array }
  | { kind: "heartbeat" }
  | { kind: "answer"; answer: TunnelAnswer }
  /**
   * An ANSWER frame `answerWanted` turned down by its header (feed() only): well formed, its
   * summary not decoded (the predicate has done whatever such an answer needs).
   */
  | { kind: "answer-unwanted" }
  /** An ANSWER frame whose body is malformed (counted and skipped; the stream goes on). */
  | { kind: "answer-malformed"; reason: string };
/** The one `answer-unwanted` item (it carries nothing). */
const UNWANTED_ITEM: ControlItem = { kind: "answer-unwanted" };

/** A decoded intercept -> tcpcopy item. `bytes` start at the IP header. */
export type ServerItem = { kind: "reply"; bytes: Uint8Array } | ControlItem;

/**
 * Incremental decoder of the intercept -> tcpcopy stream (client side). Starts in v6 mode;
 * with `expectAck` set (we sent EXT_HELLO) an EXT_ACK switches it to extension frames.
 * Impossible input (count 0 or > 16, unknown frame kind, bad record length) is a fatal error
 * value; the decoder then stays failed and the connection must be closed.
 */
export class ServerStreamDecoder {
  #buf = new Uint8Array(4096);
  #len = 0;
  #ext = false;
  #error: string | undefined;
  #challenged = false;
  /** True when an EXT_ACK may arrive (we sent EXT_HELLO on this connection). */
  expectAck = false;
  /**
   * First bytes per answer asked for in our COMPARE message; 0 = no ANSWER frame may come
   * (one is then a fatal error).
   */
  answerBytes = 0;
  /**
   * feed() only: asked with each well-formed ANSWER frame's answer as far as its header goes
   * (endpoints, ack, seq, part, end: {@link AnswerDecoder.decodeHead}); false delivers an
   * `answer-unwanted` item instead of the decoded answer (tcpcopy: an answer whose turn is not
   * pending, most of them when a lagging replay sheds turns, costs no summary decode). Null:
   * every answer is decoded.
   */
  answerWanted: ((head: TunnelAnswer) => boolean) | null = null;

  /** True once extension framing is in use. */
  get extensions(): boolean {
    return this.#ext;
  }

  /** Feeds a chunk; returns every complete item and the first fatal error, if any. */
  push(chunk: Uint8Array): DecodeResult<ServerItem> {
    const items: ServerItem[] = [];
    // the items outlive the call: reply records are views into a copy of their frame
    const error = this.#decode(
      chunk,
      (bytes) => items.push({ kind: "reply", bytes }),
      (item) => items.push(item),
      true,
    );
    return error === undefined ? { items } : { items, error };
  }

  /**
   * Feeds a chunk and hands each reply record to `onReply` as it is decoded, as a view into
   * the decoder's buffer that is valid only during the call (no copy: the hot path), and
   * every other item to `onControl`. An answer item, its answer and that answer's summary and
   * endpoints are reused for the next answer (keep a copy: `ownAnswer`). Returns the first
   * fatal error, if any.
   */
  feed(
    chunk: Uint8Array,
    onReply: (bytes: Uint8Array) => void,
    onControl: (item: ControlItem) => void,
  ): string | undefined {
    return this.#decode(chunk, onReply, onControl, false);
  }

  /** Where the decode in progress delivers (set by push/feed for the length of one call). */
  #onReply: (bytes: Uint8Array) => void = () => {};
  #onControl: (item: ControlItem) => void = () => {};
  /** Records outlive the call (push): each frame is copied before its records are cut. */
  #copy = false;
  /** feed()'s answers: decoded into one reused object, delivered in one reused item. */
  readonly #answers = new AnswerDecoder();
  readonly #answerItem: { kind: "answer"; answer: TunnelAnswer } = {
    kind: "answer",
    answer: undefined as unknown as TunnelAnswer, // (set before each delivery)
  };

  #decode(
    chunk: Uint8Array,
    onReply: (bytes: Uint8Array) => void,
    onControl: (item: ControlItem) => void,
    copy: boolean,
  ): string | undefined {
    if (this.#error) return this.#error;
    this.#onReply = onReply;
    this.#onControl = onControl;
    this.#copy = copy;
    this.#append(chunk);
    let off = 0;
    for (;;) {
      const used = this.#ext ? this.#extFrame(off) : this.#v6Frame(off);
      if (typeof used === "string") {
        this.#error = used;
        return used;
      }
      if (used === 0) break;
      off += used;
    }
    this.#buf.copyWithin(0, off, this.#len);
    this.#len -= off;
    return undefined;
  }

  #append(chunk: Uint8Array): void {
    if (this.#len + chunk.length > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + chunk.length));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
  }

  /** Parses one v6 frame at `off`; returns bytes used, 0 if incomplete, or an error. */
  #v6Frame(off: number): number | string {
    const b = this.#buf;
    const avail = this.#len - off;
    if (avail < 2) return 0;
    if (this.expectAck && b[off] === FrameKind.EXT_ACK && b[off + 1] === 0) {
      const used = this.#extFrame(off);
      if (typeof used === "number" && used > 0) this.#ext = true;
      return used;
    }
    if (this.expectAck && b[off] === FrameKind.CHALLENGE && b[off + 1] === 0) {
      return this.#extFrame(off);
    }
    const n = (b[off] << 8) | b[off + 1];
    if (n < 1 || n > MAX_BATCH) return `reply count ${n} out of range 1..${MAX_BATCH}`;
    const size = 2 + n * RECORD_SIZE;
    if (avail < size) return 0;
    // records are views: into a copy of the frame, or into the buffer during the call
    const frame = this.#copy ? b.slice(off + 2, off + size) : b.subarray(off + 2, off + size);
    for (let i = 0; i < n; i++) {
      const r = i * RECORD_SIZE;
      if (frame[r] >> 4 !== 4) return `v6 record with IP version ${frame[r] >> 4}`;
      const tcpLen = Math.min((frame[r + 32] >> 4) * 4, MAX_TCP_IN_RECORD);
      if (tcpLen < 20) return "v6 record with a TCP data offset below 5";
    }
    for (let i = 0; i < n; i++) {
      const r = i * RECORD_SIZE;
      const tcpLen = Math.min((frame[r + 32] >> 4) * 4, MAX_TCP_IN_RECORD);
      this.#onReply(frame.subarray(r, r + 20 + tcpLen));
    }
    return size;
  }

  /** Parses one extension frame at `off`. */
  #extFrame(off: number): number | string {
    const b = this.#buf;
    const avail = this.#len - off;
    if (avail < EXT_HEADER_SIZE) return 0;
    const kind = b[off];
    let bodyLen = (b[off + 2] << 8) | b[off + 3];
    if (kind === FrameKind.ANSWER) {
      // checked before waiting for the body: a hostile length must not grow the buffer
      if (this.answerBytes === 0) return "answer frame not negotiated";
      bodyLen += b[off + 1] << 16;
      if (bodyLen > MAX_ANSWER_BODY) return `answer frame of ${bodyLen} bytes`;
    } else if (b[off + 1] !== 0) return `extension frame with reserved byte ${b[off + 1]}`;
    if (avail < EXT_HEADER_SIZE + bodyLen) return 0;
    const body = off + EXT_HEADER_SIZE;
    if (!isFrameKind(kind)) return `unknown frame kind 0x${kind.toString(16)}`;
    switch (kind) {
      case FrameKind.EXT_ACK: {
        if (this.#ext) return "second extension ack";
        if (bodyLen !== 8 && bodyLen !== 40) return `extension ack of ${bodyLen} bytes`;
        const dv = new DataView(b.buffer, b.byteOffset + body, 8);
        this.#onControl({
          kind: "ext-ack",
          extVersion: dv.getUint16(0),
          caps: dv.getUint32(2),
          prefix: dv.getUint16(6),
          ...(bodyLen === 40 ? { proof: b.slice(body + 8, body + 40) } : {}),
        });
        break;
      }
      case FrameKind.CHALLENGE: {
        if (this.#ext || this.#challenged) return "unexpected challenge";
        if (bodyLen !== 32) return `challenge of ${bodyLen} bytes`;
        this.#challenged = true;
        this.#onControl({ kind: "challenge", nonce: b.slice(body, body + 32) });
        break;
      }
      case FrameKind.HEARTBEAT:
        if (bodyLen !== 0) return `heartbeat of ${bodyLen} bytes`;
        this.#onControl({ kind: "heartbeat" });
        break;
      case FrameKind.ANSWER: {
        const max = Math.min(this.answerBytes, MAX_COMPARE_BYTES);
        if (!this.#copy) {
          // feed(): one reused answer and item, its first bytes a view into the buffer
          // (valid during the call): nothing allocated per answer but that view; an answer
          // turned down by its header is not decoded further
          const a = this.#answers.decodeHead(b, body, bodyLen, max);
          if (typeof a === "string") this.#onControl({ kind: "answer-malformed", reason: a });
          else if (this.answerWanted !== null && !this.answerWanted(a)) {
            this.#onControl(UNWANTED_ITEM);
          } else {
            this.#answerItem.answer = this.#answers.decodeSummary(b, body, bodyLen);
            this.#onControl(this.#answerItem);
          }
          break;
        }
        const a = decodeAnswerBody(b.subarray(body, body + bodyLen), max, true);
        this.#onControl(
          typeof a === "string"
            ? { kind: "answer-malformed", reason: a }
            : { kind: "answer", answer: a },
        );
        break;
      }
      case FrameKind.REPLIES: {
        if (bodyLen === 0) return "empty reply frame";
        const f = this.#copy ? b.slice(body, body + bodyLen) : b.subarray(body, body + bodyLen);
        // the whole frame is checked first: a bad frame delivers none of its records
        for (let at = 0; at < bodyLen;) {
          if (at + 2 > bodyLen) return "reply record length cut by the frame end";
          const len = (f[at] << 8) | f[at + 1];
          if (len < 40 || at + 2 + len > bodyLen) return `reply record of ${len} bytes`;
          at += 2 + len;
        }
        for (let at = 0; at < bodyLen;) {
          const len = (f[at] << 8) | f[at + 1];
          this.#onReply(f.subarray(at + 2, at + 2 + len));
          at += 2 + len;
        }
        break;
      }
      default: {
        const never: never = kind;
        return `unknown frame kind 0x${(never as number).toString(16)}`;
      }
    }
    return EXT_HEADER_SIZE + bodyLen;
  }
}
