/**
 * tcpcopy -> intercept messages (the "client" messages of the tunnel).
 *
 * C v6 layout (`msg_clt_t`, 14 bytes, packed; addresses and ports raw in network order,
 * only `type` is converted with htons):
 *
 *   off 0  u32 clt_ip      off 4  u16 clt_port   off 6  u16 type (BE)
 *   off 8  u32 target_ip   off 12 u16 target_port
 *
 * Types: HELLO (all zero except type = INTERNAL_VERSION 6), CLIENT_ADD = 1, CLIENT_DEL = 2.
 * Our extensions (sent only after the peer acknowledged the extension hello, see
 * negotiation.ts; EXT_HELLO itself is a 14-byte message a C intercept logs and ignores):
 *
 *   EXT_HELLO  type 0x5458: clt_ip = magic "TCPX", clt_port = extension version,
 *              target_ip = requested capability bits, target_port = requested prefix bytes.
 *   HEARTBEAT  type 0x5448: all other fields zero.
 *   ADD6/DEL6  type 0x5436/0x5437: 46 bytes = the 14-byte message (IPv4 fields zero, ports
 *              set) followed by the 16-byte client address and the 16-byte target address.
 *   AUTH       type 0x5441: 94 bytes = the 14-byte message (other fields zero), then the
 *              16-byte instance id, the 32-byte client nonce and the 32-byte proof (auth.ts);
 *              only accepted right after intercept sent its challenge.
 *   COMPARE    type 0x5443: asks for answer summaries (Cap.ANSWERS, issue 15), once, right
 *              after the EXT_ACK granted it: clt_ip = first bytes N per answer (u32,
 *              MIN_COMPARE_BYTES..MAX_COMPARE_BYTES), clt_port = digest mode (0 auto, 1 http,
 *              2 pg, 3 bytes), target_ip and target_port zero.
 */
import { type DigestMode, MAX_COMPARE_BYTES, MIN_COMPARE_BYTES } from "../compare/answer.ts";
import { sameFamily } from "../wire/addr.ts";

/** The C tunnel's internal version, sent as the hello's type. */
export const INTERNAL_VERSION = 6;
/** Size of every C v6 client message. */
export const CLIENT_MSG_SIZE = 14;
/** Size of an IPv6 route message (extension). */
export const CLIENT_MSG6_SIZE = 46;
/** Size of the AUTH message (extension). */
export const AUTH_MSG_SIZE = 94;

/**
 * Message type codes (the big-endian u16 at offset 6). To add a message type, see "Where to
 * add a tunnel message type" in README.md: the decoder's switch does not compile until it
 * handles every code here.
 */
export const MsgType = {
  CLIENT_ADD: 1,
  CLIENT_DEL: 2,
  HELLO: INTERNAL_VERSION,
  EXT_HELLO: 0x5458,
  HEARTBEAT: 0x5448,
  CLIENT_ADD6: 0x5436,
  CLIENT_DEL6: 0x5437,
  AUTH: 0x5441,
  COMPARE: 0x5443,
} as const;
/** One of the {@link MsgType} codes. */
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

const MSG_TYPES: ReadonlySet<number> = new Set(Object.values(MsgType));

/** The u16 read from the wire is a known message type. */
export function isMsgType(type: number): type is MsgType {
  return MSG_TYPES.has(type);
}

/** Magic carried in the clt_ip field of EXT_HELLO ("TCPX"). */
export const EXT_MAGIC = 0x54435058;

/** One end of a route: raw address bytes (4 or 16) and a host-order port. */
export interface Endpoint {
  addr: Uint8Array;
  port: number;
}

/** What a route message does. */
export type RouteOp = "add" | "del";

/** A decoded client message (the server's `#onBytes` switch handles every kind). */
export type ClientMessage =
  | { kind: "hello"; version: number }
  | { kind: RouteOp; client: Endpoint; target: Endpoint }
  | { kind: "ext-hello"; extVersion: number; caps: number; prefix: number }
  | { kind: "heartbeat" }
  | { kind: "auth"; instanceId: Uint8Array; clientNonce: Uint8Array; proof: Uint8Array }
  | { kind: "compare"; bytes: number; mode: DigestMode };
/** The kinds of {@link ClientMessage}. */
export type ClientMessageKind = ClientMessage["kind"];

function header(type: number): Uint8Array {
  const b = new Uint8Array(CLIENT_MSG_SIZE);
  new DataView(b.buffer).setUint16(6, type);
  return b;
}

/** The v6 hello: all zero except type = 6. */
export function encodeHello(version = INTERNAL_VERSION): Uint8Array {
  return header(version);
}

/** CLIENT_ADD / CLIENT_DEL, IPv4 (14 bytes) or IPv6 (46 bytes, extension). */
export function encodeRoute(kind: RouteOp, client: Endpoint, target: Endpoint): Uint8Array {
  const b = new Uint8Array(routeSize(client));
  encodeRouteInto(b, 0, kind, client, target);
  return b;
}

/** Bytes of the route message for `client` (IPv4 14, IPv6 46). */
export function routeSize(client: Endpoint): number {
  return client.addr.length === 16 ? CLIENT_MSG6_SIZE : CLIENT_MSG_SIZE;
}

/**
 * Writes the CLIENT_ADD / CLIENT_DEL message of {@link encodeRoute} into `out` at `at` (room
 * for {@link routeSize} bytes), byte by byte: no array, view or buffer is made (tcpcopy's tunnel
 * client writes two per connection into its output buffer; a fresh typed array costs ~1 µs).
 * Returns the bytes written.
 */
export function encodeRouteInto(
  out: Uint8Array,
  at: number,
  kind: RouteOp,
  client: Endpoint,
  target: Endpoint,
): number {
  if (!sameFamily(client.addr, target.addr)) {
    throw new RangeError("route endpoints must both be IPv4 or both IPv6");
  }
  const v6 = client.addr.length === 16;
  const type = v6
    ? (kind === "add" ? MsgType.CLIENT_ADD6 : MsgType.CLIENT_DEL6)
    : (kind === "add" ? MsgType.CLIENT_ADD : MsgType.CLIENT_DEL);
  out[at + 4] = client.port >>> 8, out[at + 5] = client.port & 255;
  out[at + 6] = type >>> 8, out[at + 7] = type & 255;
  out[at + 12] = target.port >>> 8, out[at + 13] = target.port & 255;
  const c = client.addr, t = target.addr;
  if (v6) { // the IPv4 address fields are zero, the addresses follow the header
    for (let i = 0; i < 4; i++) out[at + i] = 0, out[at + 8 + i] = 0;
    for (let i = 0; i < 16; i++) out[at + 14 + i] = c[i], out[at + 30 + i] = t[i];
    return CLIENT_MSG6_SIZE;
  }
  out[at] = c[0], out[at + 1] = c[1], out[at + 2] = c[2], out[at + 3] = c[3];
  out[at + 8] = t[0], out[at + 9] = t[1], out[at + 10] = t[2], out[at + 11] = t[3];
  return CLIENT_MSG_SIZE;
}

/** EXT_HELLO: asks an intercept of ours for extensions (a C intercept logs and ignores it). */
export function encodeExtHello(extVersion: number, caps: number, prefix: number): Uint8Array {
  const b = header(MsgType.EXT_HELLO);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, EXT_MAGIC);
  dv.setUint16(4, extVersion);
  dv.setUint32(8, caps >>> 0);
  dv.setUint16(12, prefix);
  return b;
}

/** AUTH (extension): instance id (16), client nonce (32), proof (32). */
export function encodeAuth(
  instanceId: Uint8Array,
  clientNonce: Uint8Array,
  proof: Uint8Array,
): Uint8Array {
  if (instanceId.length !== 16 || clientNonce.length !== 32 || proof.length !== 32) {
    throw new RangeError("auth message: id 16, nonce 32 and proof 32 bytes");
  }
  const b = new Uint8Array(AUTH_MSG_SIZE);
  new DataView(b.buffer).setUint16(6, MsgType.AUTH);
  b.set(instanceId, 14);
  b.set(clientNonce, 30);
  b.set(proof, 62);
  return b;
}

/** Digest modes in the COMPARE message, by their wire code (the index). */
export const DIGEST_MODE_CODES: readonly DigestMode[] = ["auto", "http", "pg", "bytes"];

/**
 * COMPARE (extension, Cap.ANSWERS): the first bytes kept per answer and the digest mode.
 * Throws a RangeError for an N outside MIN_COMPARE_BYTES..MAX_COMPARE_BYTES.
 */
export function encodeCompare(bytes: number, mode: DigestMode): Uint8Array {
  if (!Number.isInteger(bytes) || bytes < MIN_COMPARE_BYTES || bytes > MAX_COMPARE_BYTES) {
    throw new RangeError(
      `compare bytes must be ${MIN_COMPARE_BYTES}..${MAX_COMPARE_BYTES}, got ${bytes}`,
    );
  }
  const b = header(MsgType.COMPARE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, bytes);
  dv.setUint16(4, DIGEST_MODE_CODES.indexOf(mode));
  return b;
}

/** HEARTBEAT (extension). */
export function encodeHeartbeat(): Uint8Array {
  return header(MsgType.HEARTBEAT);
}

/** Result of feeding bytes to a decoder: messages, then possibly a fatal error reason. */
export interface DecodeResult<T> {
  items: T[];
  error?: string;
}

/**
 * Route messages pooled per decoder by {@link ClientMessageDecoder.decode}: more in one chunk
 * are decoded into fresh objects (a hostile peer's 64 KiB of CLIENT_ADDs keeps no pool of 4,681).
 */
export const POOLED_ROUTES = 64;

/** A reusable route message: its own 46 bytes, address views made once (see `decode`). */
interface RouteSlot {
  msg: { kind: RouteOp; client: Endpoint; target: Endpoint };
  bytes: Uint8Array;
  c4: Uint8Array;
  t4: Uint8Array;
  c6: Uint8Array;
  t6: Uint8Array;
}

function newRouteSlot(): RouteSlot {
  const bytes = new Uint8Array(CLIENT_MSG6_SIZE);
  const c4 = bytes.subarray(0, 4), t4 = bytes.subarray(8, 12);
  return {
    msg: { kind: "add", client: { addr: c4, port: 0 }, target: { addr: t4, port: 0 } },
    bytes,
    c4,
    t4,
    c6: bytes.subarray(14, 30),
    t6: bytes.subarray(30, 46),
  };
}

/**
 * Incremental decoder of the client message stream (intercept side). Bytes may arrive in
 * any chunking. The first message must be a v6 hello; IPv6 route messages are only accepted
 * once `extensions` was set (after the server acknowledged EXT_HELLO). After an error the
 * decoder stays failed: the connection must be closed.
 */
export class ClientMessageDecoder {
  #buf = new Uint8Array(AUTH_MSG_SIZE);
  #dv = new DataView(this.#buf.buffer);
  #have = 0;
  #need = CLIENT_MSG_SIZE;
  #sawHello = false;
  #error: string | undefined;
  #messages: ClientMessage[] = [];
  #slots: RouteSlot[] = [];
  #slotsUsed = 0;
  #pooled = false;
  /** Set by the server once extensions are negotiated for this connection. */
  extensions = false;
  /** Set by the server while it waits for the AUTH message (after its challenge). */
  authExpected = false;

  /** Feeds a chunk; returns every complete message and the first fatal error, if any. */
  push(chunk: Uint8Array): DecodeResult<ClientMessage> {
    const items: ClientMessage[] = [];
    this.#pooled = false;
    this.#run(chunk, items);
    return this.#error ? { items, error: this.#error } : { items };
  }

  /**
   * {@link push} without allocating per route message (the server's path: two per replayed
   * connection): feeds a chunk and returns how many messages it completed, in
   * {@link messages}[0..n). Up to {@link POOLED_ROUTES} CLIENT_ADD / CLIENT_DEL of a chunk are
   * decoder-owned records (their address bytes too) that the next `decode` overwrites: use
   * them at once, keep nothing of them (copy what must stay, e.g. build the route key).
   * Other messages are fresh, as from `push`. Then {@link error} tells a fatal error.
   */
  decode(chunk: Uint8Array): number {
    this.#pooled = true;
    this.#slotsUsed = 0;
    return this.#run(chunk, this.#messages);
  }

  /** The messages of the last {@link decode} (entries past its count are stale). */
  get messages(): readonly ClientMessage[] {
    return this.#messages;
  }

  /** The fatal error that failed this decoder, if any (it stays failed). */
  get error(): string | undefined {
    return this.#error;
  }

  /** Decodes into `out` from index 0; returns the count (stops at the first error). */
  #run(chunk: Uint8Array, out: ClientMessage[]): number {
    let n = 0;
    if (this.#error) return n;
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(this.#need - this.#have, chunk.length - off);
      for (let i = 0; i < take; i++) this.#buf[this.#have + i] = chunk[off + i];
      this.#have += take;
      off += take;
      if (this.#have < this.#need) break;
      const dv = this.#dv;
      const type = dv.getUint16(6);
      if (this.#need === CLIENT_MSG_SIZE && isMsgType(type)) {
        const size = this.#sizeOf(type);
        if (typeof size === "string") return this.#fail(n, size);
        if (size !== CLIENT_MSG_SIZE) {
          this.#need = size; // the rest follows
          continue;
        }
      }
      const msg = this.#decodeOne(dv, type);
      this.#have = 0;
      this.#need = CLIENT_MSG_SIZE;
      if (typeof msg === "string") return this.#fail(n, msg);
      out[n++] = msg;
    }
    return n;
  }

  /**
   * Whole size of a message of this type, known from its first 14 bytes, or why it may not
   * come now (a longer message is only accepted in the state that allows it).
   */
  #sizeOf(type: MsgType): number | string {
    switch (type) {
      case MsgType.HELLO:
      case MsgType.CLIENT_ADD:
      case MsgType.CLIENT_DEL:
      case MsgType.EXT_HELLO:
      case MsgType.HEARTBEAT:
      case MsgType.COMPARE:
        return CLIENT_MSG_SIZE;
      case MsgType.CLIENT_ADD6:
      case MsgType.CLIENT_DEL6:
        return this.extensions ? CLIENT_MSG6_SIZE : "IPv6 route message before extensions";
      case MsgType.AUTH:
        if (!this.authExpected) return "unexpected auth message";
        this.authExpected = false;
        return AUTH_MSG_SIZE;
      default: {
        const never: never = type;
        return `unknown message type ${never}`;
      }
    }
  }

  #fail(n: number, reason: string): number {
    this.#error = reason;
    return n;
  }

  /**
   * The route message in the buffer: a pooled record while `decode` runs (the first
   * {@link POOLED_ROUTES} of a chunk), else fresh objects over one copy of the message.
   */
  #route(kind: RouteOp, v6: boolean): ClientMessage {
    const dv = this.#dv, cPort = dv.getUint16(4), tPort = dv.getUint16(12);
    const size = v6 ? CLIENT_MSG6_SIZE : CLIENT_MSG_SIZE, cAt = v6 ? 14 : 0, tAt = v6 ? 30 : 8;
    const len = v6 ? 16 : 4;
    if (!this.#pooled || this.#slotsUsed >= POOLED_ROUTES) {
      const b = this.#buf.slice(0, size); // one copy; addresses are views
      return {
        kind,
        client: { addr: b.subarray(cAt, cAt + len), port: cPort },
        target: { addr: b.subarray(tAt, tAt + len), port: tPort },
      };
    }
    const slot = this.#slots[this.#slotsUsed] ??= newRouteSlot();
    this.#slotsUsed++;
    const buf = this.#buf, bytes = slot.bytes, msg = slot.msg;
    for (let i = 0; i < len; i++) bytes[cAt + i] = buf[cAt + i], bytes[tAt + i] = buf[tAt + i];
    msg.kind = kind;
    msg.client.addr = v6 ? slot.c6 : slot.c4;
    msg.client.port = cPort;
    msg.target.addr = v6 ? slot.t6 : slot.t4;
    msg.target.port = tPort;
    return msg;
  }

  #decodeOne(dv: DataView, type: number): ClientMessage | string {
    if (!this.#sawHello) {
      if (dv.getUint32(0) !== 0 || dv.getUint16(4) !== 0) {
        return "client too old: first message is not a hello (pre-0.9 8-byte records?)";
      }
      if (type !== INTERNAL_VERSION) {
        return `unsupported internal version ${type} (expected ${INTERNAL_VERSION})`;
      }
      this.#sawHello = true;
      return { kind: "hello", version: type };
    }
    if (!isMsgType(type)) return `unknown message type ${type}`;
    switch (type) {
      case MsgType.CLIENT_ADD:
      case MsgType.CLIENT_DEL:
        return this.#route(type === MsgType.CLIENT_ADD ? "add" : "del", false);
      case MsgType.CLIENT_ADD6:
      case MsgType.CLIENT_DEL6:
        return this.#route(type === MsgType.CLIENT_ADD6 ? "add" : "del", true);
      case MsgType.EXT_HELLO:
        if (dv.getUint32(0) !== EXT_MAGIC) return "extension hello with a bad magic";
        return {
          kind: "ext-hello",
          extVersion: dv.getUint16(4),
          caps: dv.getUint32(8),
          prefix: dv.getUint16(12),
        };
      case MsgType.AUTH: {
        const b = this.#buf.slice(0, AUTH_MSG_SIZE);
        return {
          kind: "auth",
          instanceId: b.subarray(14, 30),
          clientNonce: b.subarray(30, 62),
          proof: b.subarray(62, 94),
        };
      }
      case MsgType.HEARTBEAT:
        if (!this.extensions) return "heartbeat before extensions";
        return { kind: "heartbeat" };
      case MsgType.COMPARE: {
        if (!this.extensions) return "compare message before extensions";
        const bytes = dv.getUint32(0);
        const mode = DIGEST_MODE_CODES[dv.getUint16(4)];
        if (bytes < MIN_COMPARE_BYTES || bytes > MAX_COMPARE_BYTES) {
          return `compare message with ${bytes} first bytes (${MIN_COMPARE_BYTES}..${MAX_COMPARE_BYTES})`;
        }
        if (mode === undefined) return `compare message with digest mode ${dv.getUint16(4)}`;
        return { kind: "compare", bytes, mode };
      }
      case MsgType.HELLO:
        return "second hello on one connection";
      default: {
        const never: never = type;
        return `unknown message type ${never}`;
      }
    }
  }
}
