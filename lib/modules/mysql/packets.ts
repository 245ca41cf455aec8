/**
 * MySQL wire packets the module reads and writes: the framing (3-byte length + sequence id),
 * the server greeting (HandshakeV10, MySQL and MariaDB), the client's HandshakeResponse41,
 * COM_CHANGE_USER, ERR and AuthSwitchRequest. Parsers return undefined (or a reason string)
 * on malformed input and never read past the payload.
 *
 * @module
 */
import { concat } from "../../wire/bytes.ts";

/** Capability flags the module looks at. */
export const CAP = {
  CONNECT_WITH_DB: 0x8,
  COMPRESS: 0x20,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  SECURE_CONNECTION: 0x8000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
  ZSTD_COMPRESSION: 0x4000000,
  QUERY_ATTRIBUTES: 0x8000000,
} as const;

/** Largest payload of one packet (longer commands continue in the next packets). */
export const MAX_PAYLOAD = 0xffffff;

const DEC = new TextDecoder("utf-8", { fatal: false });
const ENC = new TextEncoder();

/** A packet: 4-byte header for `payload` with sequence id `seq`. */
export function packet(payload: Uint8Array, seq: number): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  out[0] = payload.length & 0xff;
  out[1] = (payload.length >> 8) & 0xff;
  out[2] = (payload.length >> 16) & 0xff;
  out[3] = seq & 0xff;
  out.set(payload, 4);
  return out;
}

/** Payload length from a header at `at`. */
export function payloadLength(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
}

/** A bounds-checked reader over one payload; `ok` turns false on the first overrun. */
export class Reader {
  pos: number;
  ok = true;
  constructor(readonly b: Uint8Array, pos = 0) {
    this.pos = pos;
  }
  get left(): number {
    return this.b.length - this.pos;
  }
  u8(): number {
    if (this.pos + 1 > this.b.length) return this.fail();
    return this.b[this.pos++];
  }
  u16(): number {
    if (this.pos + 2 > this.b.length) return this.fail();
    const v = this.b[this.pos] | (this.b[this.pos + 1] << 8);
    this.pos += 2;
    return v;
  }
  u32(): number {
    if (this.pos + 4 > this.b.length) return this.fail();
    const v = (this.b[this.pos] | (this.b[this.pos + 1] << 8) | (this.b[this.pos + 2] << 16) |
      (this.b[this.pos + 3] << 24)) >>> 0;
    this.pos += 4;
    return v;
  }
  bytes(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.b.length) {
      this.fail();
      return new Uint8Array(0);
    }
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** Bytes up to a NUL (consumed); `toEnd` accepts a missing NUL at the end of the payload. */
  nul(toEnd = false): Uint8Array {
    const z = this.b.indexOf(0, this.pos);
    if (z < 0) {
      if (!toEnd) {
        this.fail();
        return new Uint8Array(0);
      }
      return this.bytes(this.left);
    }
    const v = this.b.subarray(this.pos, z);
    this.pos = z + 1;
    return v;
  }
  /** A length-encoded integer (values above 2^53 are refused). */
  lenenc(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) {
      const lo = this.u16();
      return lo | (this.u8() << 16);
    }
    if (first === 0xfe) {
      const lo = this.u32();
      const hi = this.u32();
      if (hi > 0x1fffff) return this.fail();
      return hi * 0x100000000 + lo;
    }
    return this.fail();
  }
  private fail(): number {
    this.ok = false;
    this.pos = this.b.length;
    return 0;
  }
}

/** A length-encoded integer as bytes. */
export function lenenc(n: number): Uint8Array {
  if (n < 0xfb) return Uint8Array.of(n);
  if (n <= 0xffff) return Uint8Array.of(0xfc, n & 0xff, n >> 8);
  if (n <= 0xffffff) return Uint8Array.of(0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16);
  throw new RangeError("lenenc: value too large for an auth response");
}

/** Text of wire bytes (lossy UTF-8). */
export function text(b: Uint8Array): string {
  return DEC.decode(b);
}

/** NUL-terminated bytes of a string. */
export function cstr(s: string | Uint8Array): Uint8Array {
  const b = typeof s === "string" ? ENC.encode(s) : s;
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** The server greeting (HandshakeV10). */
export interface Greeting {
  serverVersion: string;
  capabilities: number;
  /** The 20-byte challenge (part 1 + part 2, without the trailing NUL). */
  scramble: Uint8Array;
  /** Default auth plugin ("" when the server names none). */
  plugin: string;
}

/** Parses a greeting payload; a string is the reason it is not one. */
export function parseGreeting(p: Uint8Array): Greeting | string {
  const r = new Reader(p);
  const version = r.u8();
  if (version !== 10) return `protocol version ${version} (expected 10)`;
  const serverVersion = text(r.nul());
  r.u32(); // connection id
  const part1 = r.bytes(8);
  r.u8(); // filler
  let capabilities = r.u16();
  let authLen = 0;
  let part2: Uint8Array = new Uint8Array(0);
  let plugin = "";
  if (r.ok && r.left > 0) {
    r.u8(); // character set
    r.u16(); // status flags
    capabilities |= r.u16() << 16;
    capabilities >>>= 0;
    authLen = r.u8();
    r.bytes(10); // reserved (MariaDB: 6 filler + 4 extended capabilities)
    if (capabilities & CAP.SECURE_CONNECTION) {
      part2 = r.bytes(Math.min(Math.max(13, authLen - 8), r.left));
      if (part2.length > 0 && part2[part2.length - 1] === 0) part2 = part2.subarray(0, -1);
    }
    if (capabilities & CAP.PLUGIN_AUTH) plugin = text(r.nul(true));
  }
  if (!r.ok) return "greeting shorter than its fields";
  const scramble = concat([part1, part2]);
  if (scramble.length < 20) return `scramble of ${scramble.length} bytes (expected 20)`;
  return { serverVersion, capabilities, scramble: scramble.slice(0, 20), plugin };
}

/** The client's HandshakeResponse41, split so that the auth response can be replaced. */
export interface HandshakeResponse {
  capabilities: number;
  /** The first 32 bytes (capabilities, max packet, charset, filler) as captured. */
  fixed: Uint8Array;
  user: Uint8Array;
  auth: Uint8Array;
  database: Uint8Array | undefined;
  plugin: string | undefined;
  /** Everything after the plugin name (connect attributes, zstd level), as captured. */
  tail: Uint8Array;
}

/** What a first client packet is when it is not a login: a reason code and a detail. */
export interface NotALogin {
  reason: "tls" | "compression" | "no_login" | "malformed";
  detail: string;
}

/** Capabilities of a handshake response payload (0 when it is too short). */
export function responseCapabilities(p: Uint8Array): number {
  return p.length >= 4 ? (p[0] | (p[1] << 8) | (p[2] << 16) | (p[3] << 24)) >>> 0 : 0;
}

/** Parses a HandshakeResponse41 payload. */
export function parseHandshakeResponse(p: Uint8Array): HandshakeResponse | NotALogin {
  const capabilities = responseCapabilities(p);
  if (p.length < 32 || !(capabilities & CAP.PROTOCOL_41)) {
    return { reason: "no_login", detail: `first client packet is not a HandshakeResponse41` };
  }
  if (capabilities & CAP.SSL) return { reason: "tls", detail: "client asked for TLS (SSLRequest)" };
  if (capabilities & (CAP.COMPRESS | CAP.ZSTD_COMPRESSION)) {
    return { reason: "compression", detail: "client asked for protocol compression" };
  }
  const r = new Reader(p, 32);
  const user = r.nul();
  let auth: Uint8Array;
  if (capabilities & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) auth = r.bytes(r.lenenc());
  else if (capabilities & CAP.SECURE_CONNECTION) auth = r.bytes(r.u8());
  else auth = r.nul();
  const database = capabilities & CAP.CONNECT_WITH_DB ? r.nul(true) : undefined;
  const plugin = capabilities & CAP.PLUGIN_AUTH ? text(r.nul(true)) : undefined;
  if (!r.ok) return { reason: "malformed", detail: "HandshakeResponse41 shorter than its fields" };
  return {
    capabilities,
    fixed: p.subarray(0, 32),
    user,
    auth,
    database,
    plugin,
    tail: p.subarray(r.pos),
  };
}

function authField(capabilities: number, auth: Uint8Array): Uint8Array {
  if (capabilities & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) return concat([lenenc(auth.length), auth]);
  if (capabilities & CAP.SECURE_CONNECTION) return concat([Uint8Array.of(auth.length), auth]);
  return cstr(auth);
}

/** The payload of `h` with another auth response and plugin name. */
export function buildHandshakeResponse(
  h: HandshakeResponse,
  auth: Uint8Array,
  plugin: string,
): Uint8Array {
  const parts = [h.fixed, cstr(h.user), authField(h.capabilities, auth)];
  if (h.database !== undefined) parts.push(cstr(h.database));
  if (h.plugin !== undefined) parts.push(cstr(plugin));
  parts.push(h.tail);
  return concat(parts);
}

/** COM_CHANGE_USER, split so that the auth response can be replaced. */
export interface ChangeUser {
  user: Uint8Array;
  auth: Uint8Array;
  database: Uint8Array;
  /** Character set (2 bytes) when present. */
  charset: Uint8Array | undefined;
  plugin: string | undefined;
  tail: Uint8Array;
}

/** Parses a COM_CHANGE_USER payload (first byte 0x11) for the session's capabilities. */
export function parseChangeUser(p: Uint8Array, capabilities: number): ChangeUser | undefined {
  const r = new Reader(p, 1);
  const user = r.nul();
  const auth = capabilities & CAP.SECURE_CONNECTION ? r.bytes(r.u8()) : r.nul();
  const database = r.nul(true);
  let charset: Uint8Array | undefined;
  let plugin: string | undefined;
  if (r.left >= 2) {
    charset = r.bytes(2);
    if (capabilities & CAP.PLUGIN_AUTH) plugin = text(r.nul(true));
  }
  if (!r.ok) return undefined;
  return { user, auth, database, charset, plugin, tail: p.subarray(r.pos) };
}

/** The COM_CHANGE_USER payload of `c` with another auth response. */
export function buildChangeUser(c: ChangeUser, capabilities: number, auth: Uint8Array): Uint8Array {
  const a = capabilities & CAP.SECURE_CONNECTION
    ? concat([Uint8Array.of(auth.length), auth])
    : cstr(auth);
  const parts = [Uint8Array.of(0x11), cstr(c.user), a, cstr(c.database)];
  if (c.charset) parts.push(c.charset);
  if (c.plugin !== undefined) parts.push(cstr(c.plugin));
  parts.push(c.tail);
  return concat(parts);
}

/** An ERR packet's code and message (best effort on a truncated packet). */
export function parseError(p: Uint8Array): { code: number; message: string } {
  const code = p.length >= 3 ? p[1] | (p[2] << 8) : 0;
  let at = 3;
  if (p.length > at && p[at] === 0x23) at += 6; // '#' + SQLSTATE
  return { code, message: text(p.subarray(Math.min(at, p.length), Math.min(p.length, at + 200))) };
}

/** An AuthSwitchRequest's plugin and data (without the trailing NUL), or undefined. */
export function parseAuthSwitch(p: Uint8Array): { plugin: string; data: Uint8Array } | undefined {
  if (p.length < 2) return undefined; // 0xFE alone: the old-password switch
  const r = new Reader(p, 1);
  const plugin = text(r.nul());
  if (!r.ok) return undefined;
  let data = r.bytes(r.left);
  if (data.length > 0 && data[data.length - 1] === 0) data = data.subarray(0, -1);
  return { plugin, data };
}
