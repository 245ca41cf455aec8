/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it: no channel
 * binding (`n,,`), the user name left empty (the server takes the startup packet's), the password
 * prepared like PostgreSQL's `pg_saslprep` (ASCII passwords as they are).
 *
 * Synchronous (node:crypto): module callbacks cannot await. SaltedPassword (PBKDF2, thousands of
 * HMAC rounds) is cached per (password, salt, iterations) in a small bounded cache, so a
 * benchmark opening thousands of connections pays it once per role.
 *
 * @module
 */

import { nodeCrypto } from "../node_crypto.ts";

/** The mechanism this client implements (PostgreSQL's -PLUS variant needs TLS). */
export const SCRAM_SHA_256 = "SCRAM-SHA-256";
/** GS2 header without channel binding, and its base64 (the `c=` attribute). */
const GS2_HEADER = "n,,";
const GS2_B64 = "biws";
/** Iteration counts above this are refused (PBKDF2 runs on the replay thread). */
export const MAX_ITERATIONS = 1_000_000;
/** Entries kept in the SaltedPassword cache. */
export const CACHE_ENTRIES = 64;

const enc = new TextEncoder();

/** The parts of a server-first-message. */
export interface ServerFirst {
  /** Client nonce + server nonce. */
  nonce: string;
  salt: Uint8Array;
  iterations: number;
}

/** A SCRAM exchange in progress: what the client sent first. */
export interface ScramStart {
  /** client-first-message (with the GS2 header), the SASLInitialResponse data. */
  message: string;
  /** client-first-message-bare, part of the AuthMessage. */
  bare: string;
  /** The client nonce. */
  nonce: string;
}

/** The client's final message and the server signature the server must answer with. */
export interface ScramFinal {
  /** client-final-message, the SASLResponse data. */
  message: string;
  /** The base64 ClientProof inside `message`. */
  proof: string;
  /** The expected ServerSignature (base64). */
  serverSignature: string;
  /** SaltedPassword came from the cache (no PBKDF2 run). */
  cached: boolean;
}

/** Base64 of bytes (standard alphabet, padded). */
export function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** Decodes standard base64, or undefined when `s` is not base64. */
export function unb64(s: string): Uint8Array | undefined {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  try {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}

/** A client nonce: base64 of `random` bytes (printable, no comma), as libpq makes it. */
export function makeNonce(random: Uint8Array): string {
  return b64(random);
}

/** The client-first-message for `user` ("" as PostgreSQL clients send) and `nonce`. */
export function clientFirst(user: string, nonce: string): ScramStart {
  const bare = `n=${user.replaceAll("=", "=3D").replaceAll(",", "=2C")},r=${nonce}`;
  return { message: GS2_HEADER + bare, bare, nonce };
}

/** Parses a server-first-message and checks it extends `clientNonce`. */
export function parseServerFirst(s: string, clientNonce: string): ServerFirst | string {
  const parts = s.split(",");
  if (parts.length < 3) return "server-first-message has fewer than 3 attributes";
  const [r, salt, i] = parts;
  if (r.startsWith("m=")) return "server-first-message asks for an unsupported extension";
  if (!r.startsWith("r=") || !salt.startsWith("s=") || !i.startsWith("i=")) {
    return "server-first-message is not r=…,s=…,i=…";
  }
  const nonce = r.slice(2);
  if (!nonce.startsWith(clientNonce) || nonce.length === clientNonce.length) {
    return "server nonce does not extend the client nonce";
  }
  if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(nonce)) return "server nonce has unprintable characters";
  const saltBytes = unb64(salt.slice(2));
  if (!saltBytes || saltBytes.length === 0) return "salt is not base64";
  if (!/^[0-9]{1,7}$/.test(i.slice(2))) return `bad iteration count ${JSON.stringify(i)}`;
  const iterations = Number(i.slice(2));
  if (iterations < 1 || iterations > MAX_ITERATIONS) {
    return `iteration count ${iterations} out of 1..${MAX_ITERATIONS}`;
  }
  return { nonce, salt: saltBytes, iterations };
}

function hmac(key: Uint8Array, data: Uint8Array | string): Uint8Array {
  return new Uint8Array(nodeCrypto().createHmac("sha256", key).update(data).digest());
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(nodeCrypto().createHash("sha256").update(data).digest());
}

const cache = new Map<string, Uint8Array>();

/**
 * SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, iterations), from the cache
 * when the same (password, salt, iterations) was seen. The key holds a hash of the password,
 * not the password.
 */
export function saltedPassword(
  password: string,
  salt: Uint8Array,
  iterations: number,
): { key: Uint8Array; cached: boolean } {
  const pw = enc.encode(saslPrep(password));
  const key = `${b64(sha256(pw))}:${b64(salt)}:${iterations}`;
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key); // most recently used last
    cache.set(key, hit);
    return { key: hit, cached: true };
  }
  const salted = new Uint8Array(nodeCrypto().pbkdf2Sync(pw, salt, iterations, 32, "sha256"));
  if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
  cache.set(key, salted);
  return { key: salted, cached: false };
}

/** Computes the client-final-message for `serverFirst` (raw text) and the expected signature. */
export function clientFinal(
  password: string,
  start: ScramStart,
  serverFirstText: string,
  server: ServerFirst,
): ScramFinal {
  const { key: salted, cached } = saltedPassword(password, server.salt, server.iterations);
  const withoutProof = `c=${GS2_B64},r=${server.nonce}`;
  const authMessage = `${start.bare},${serverFirstText},${withoutProof}`;
  const clientKey = hmac(salted, "Client Key");
  const signature = hmac(sha256(clientKey), authMessage);
  const proof = new Uint8Array(32);
  for (let i = 0; i < 32; i++) proof[i] = clientKey[i] ^ signature[i];
  const serverSig = hmac(hmac(salted, "Server Key"), authMessage);
  const p = b64(proof);
  return { message: `${withoutProof},p=${p}`, proof: p, serverSignature: b64(serverSig), cached };
}

/** Checks a server-final-message: undefined when it carries `expected`, else why not. */
export function checkServerFinal(s: string, expected: string): string | undefined {
  const first = s.split(",")[0];
  if (first.startsWith("e=")) {
    return `server reported SCRAM error ${JSON.stringify(first.slice(2))}`;
  }
  if (!first.startsWith("v=")) return "server-final-message without v=";
  return first.slice(2) === expected ? undefined : "server signature does not match";
}

/** Non-ASCII spaces (RFC 3454 C.1.2), mapped to U+0020. */
const SPACES = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
/** Characters commonly mapped to nothing (RFC 3454 B.1). */
const NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;
/** Prohibited output (RFC 4013 section 2.3), without the unassigned-code-point table. */
const PROHIBITED =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001F\u007F-\u009F\u0340\u0341\u06DD\u070F\u180E\u200C-\u200F\u2028-\u202E\u2060-\u2063\u206A-\u206F\u2FF0-\u2FFB\uD800-\uDFFF\uE000-\uF8FF\uFDD0-\uFDEF\uFFF9-\uFFFF\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}\u{F0000}-\u{10FFFF}]/u;

/**
 * SASLprep (RFC 4013) as PostgreSQL's `pg_saslprep` uses it: ASCII passwords are used as they
 * are; others are mapped, NFKC-normalized, and used raw when the result has prohibited
 * characters (PostgreSQL does the same). Not checked: unassigned code points and the bidi rule.
 */
export function saslPrep(password: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  const mapped = password.replace(SPACES, " ").replace(NOTHING, "").normalize("NFKC");
  return mapped.length === 0 || PROHIBITED.test(mapped) ? password : mapped;
}
