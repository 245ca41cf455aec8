/**
 * PostgreSQL wire messages (protocol 3.0) that the module reads and writes: the untyped startup
 * packets of the client, the typed backend messages of the login, and the client's password /
 * SASL messages it builds. Every input is hostile: decoders return a reason string instead of
 * throwing, and lengths are checked against the message.
 *
 * @module
 */

/** Startup packet codes (the Int32 after the length). */
export const SSL_REQUEST = 80877103;
/** GSSAPI encryption request. */
export const GSSENC_REQUEST = 80877104;
/** Cancel request: `length 16, code, backend pid, secret key`. */
export const CANCEL_REQUEST = 80877102;
/** Protocol 3.0 (`3 << 16`); the minor version may be higher. */
export const PROTOCOL_3 = 3 << 16;
/** The server's limit on a startup packet (src/include/libpq/pqcomm.h). */
export const MAX_STARTUP_LENGTH = 10_000;

/** Authentication request codes (Int32 after the 'R' header). */
export type AuthCode =
  | 0 // AuthenticationOk
  | 2 // KerberosV5
  | 3 // CleartextPassword
  | 5 // MD5Password (+ 4-byte salt)
  | 6 // SCMCredential
  | 7 // GSS
  | 8 // GSSContinue
  | 9 // SSPI
  | 10 // SASL (mechanism list)
  | 11 // SASLContinue (server-first-message)
  | 12; // SASLFinal (server-final-message)

/** What the first 8 bytes of a client stream say it is. */
export type StartupKind = "ssl" | "gssenc" | "cancel" | "startup" | "old_protocol" | "invalid";

/** Classifies a startup packet by its length and code (the first 8 bytes). */
export function startupKind(length: number, code: number): StartupKind {
  if (length < 8 || length > MAX_STARTUP_LENGTH) return "invalid";
  if (code === SSL_REQUEST) return length === 8 ? "ssl" : "invalid";
  if (code === GSSENC_REQUEST) return length === 8 ? "gssenc" : "invalid";
  if (code === CANCEL_REQUEST) return length === 16 ? "cancel" : "invalid";
  const major = code >>> 16;
  if (major === 3) return "startup";
  if (major === 1 || major === 2) return "old_protocol";
  return "invalid";
}

const decoder = new TextDecoder();
const utf8 = new TextEncoder();

/** Reads the NUL-terminated string at `at` of `b`; `end` is -1 when there is no NUL. */
export function cstring(b: Uint8Array, at: number): { text: string; end: number } {
  const nul = b.indexOf(0, at);
  if (nul < 0) return { text: "", end: -1 };
  return { text: decoder.decode(b.subarray(at, nul)), end: nul + 1 };
}

/** The parameters of a StartupMessage (`body`: the bytes after length and code). */
export function startupParams(body: Uint8Array): Map<string, string> | string {
  const params = new Map<string, string>();
  let at = 0;
  while (at < body.length) {
    if (body[at] === 0) return at === body.length - 1 ? params : "bytes after the parameter list";
    const k = cstring(body, at);
    if (k.end < 0) return "unterminated parameter name";
    const v = cstring(body, k.end);
    if (v.end < 0) return `unterminated value of parameter ${JSON.stringify(k.text)}`;
    params.set(k.text, v.text);
    at = v.end;
  }
  return "parameter list without its final NUL";
}

/** A decoded authentication request ('R' message). */
export type AuthRequest =
  | { code: 0 | 3 | 2 | 6 | 7 | 8 | 9 }
  | { code: 5; salt: Uint8Array }
  | { code: 10; mechanisms: string[] }
  | { code: 11 | 12; data: string };

/** Decodes the body of an 'R' message (after type and length). */
export function authRequest(body: Uint8Array): AuthRequest | string {
  if (body.length < 4) return "authentication request shorter than its code";
  const code = ((body[0] << 24) | (body[1] << 16) | (body[2] << 8) | body[3]) >>> 0;
  const rest = body.subarray(4);
  switch (code) {
    case 0:
    case 2:
    case 3:
    case 6:
    case 7:
    case 8:
    case 9:
      return { code };
    case 5:
      if (rest.length !== 4) return `MD5 request with a ${rest.length}-byte salt (expected 4)`;
      return { code, salt: rest.slice() };
    case 10: {
      const mechanisms: string[] = [];
      let at = 0;
      while (at < rest.length && rest[at] !== 0) {
        const m = cstring(rest, at);
        if (m.end < 0) return "unterminated SASL mechanism name";
        mechanisms.push(m.text);
        at = m.end;
      }
      return { code, mechanisms };
    }
    case 11:
    case 12:
      return { code, data: decoder.decode(rest) };
    default:
      return `unknown authentication request code ${code}`;
  }
}

/** The fields of an ErrorResponse/NoticeResponse body: field type character → value. */
export function errorFields(body: Uint8Array): Map<string, string> {
  const fields = new Map<string, string>();
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const type = String.fromCharCode(body[at]);
    const v = cstring(body, at + 1);
    if (v.end < 0) break;
    fields.set(type, v.text);
    at = v.end;
  }
  return fields;
}

/** A typed frontend message: `type`, Int32 length (self-inclusive), `body`. */
export function message(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setUint32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

/** A PasswordMessage carrying `text` (cleartext or md5 hash), NUL-terminated. */
export function passwordMessage(text: string): Uint8Array {
  const t = utf8.encode(text);
  const body = new Uint8Array(t.length + 1);
  body.set(t);
  return message("p", body);
}

/** A SASLInitialResponse: mechanism name, Int32 length of the data, the data. */
export function saslInitialResponse(mechanism: string, data: string): Uint8Array {
  const m = utf8.encode(mechanism), d = utf8.encode(data);
  const body = new Uint8Array(m.length + 1 + 4 + d.length);
  body.set(m);
  new DataView(body.buffer).setUint32(m.length + 1, d.length);
  body.set(d, m.length + 5);
  return message("p", body);
}

/** A SASLResponse: the data as the whole body. */
export function saslResponse(data: string): Uint8Array {
  return message("p", utf8.encode(data));
}
