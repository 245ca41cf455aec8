/**
 * Tunnel authentication: a challenge-response over a shared secret (`--secret-file` on both
 * programs), HMAC-SHA256 through WebCrypto.
 *
 *   tcpcopy   -> intercept  HELLO, EXT_HELLO asking for Cap.AUTH
 *   intercept -> tcpcopy    CHALLENGE frame: 32-byte server nonce Ns (fresh per connection)
 *   tcpcopy   -> intercept  AUTH message: instance id (16), client nonce Nc (32),
 *                           client proof = HMAC(secret, "tcpcopy-tunnel-v1 client" | transcript)
 *   intercept -> tcpcopy    EXT_ACK with the granted caps and prefix, then the server proof
 *                           = HMAC(secret, "tcpcopy-tunnel-v1 server" | transcript | granted)
 *
 * transcript = Ns | Nc | instance id | the 14 EXT_HELLO bytes. Both nonces make every proof
 * unique to one connection (no replay); the direction label keeps a proof from being
 * reflected back as the other side's; the EXT_HELLO bytes and the granted caps/prefix bind
 * what was asked and given (no downgrade in between). Proofs are compared in constant time.
 */
import { encodeExtHello } from "./messages.ts";
import { concat } from "../wire/bytes.ts";

/** Bytes of a nonce. */
export const NONCE_SIZE = 32;
/** Bytes of an instance id. */
export const INSTANCE_ID_SIZE = 16;
/** Bytes of a proof (HMAC-SHA256). */
export const PROOF_SIZE = 32;
/** Shortest secret accepted (after trailing white space is removed). */
export const MIN_SECRET_BYTES = 16;

const LABEL_CLIENT = new TextEncoder().encode("tcpcopy-tunnel-v1 client");
const LABEL_SERVER = new TextEncoder().encode("tcpcopy-tunnel-v1 server");

/** What both proofs are computed over. */
export interface AuthTranscript {
  serverNonce: Uint8Array;
  clientNonce: Uint8Array;
  instanceId: Uint8Array;
  /** The EXT_HELLO as sent (version, requested caps and prefix). */
  request: { extVersion: number; caps: number; prefix: number };
}

/** Imports the shared secret as an HMAC-SHA256 key (sign only, not extractable). */
export function importSecret(secret: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    secret as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

/** Fresh random bytes (nonces, instance ids). */
export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function transcriptBytes(t: AuthTranscript): Uint8Array[] {
  const r = t.request;
  return [
    t.serverNonce,
    t.clientNonce,
    t.instanceId,
    encodeExtHello(r.extVersion, r.caps, r.prefix),
  ];
}

async function hmac(key: CryptoKey, parts: Uint8Array[]): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, concat(parts)));
}

/** The client's proof (sent in the AUTH message). */
export function clientProof(key: CryptoKey, t: AuthTranscript): Promise<Uint8Array> {
  return hmac(key, [LABEL_CLIENT, ...transcriptBytes(t)]);
}

/** The server's proof (sent after the EXT_ACK body), binding the granted caps and prefix. */
export function serverProof(
  key: CryptoKey,
  t: AuthTranscript,
  granted: { extVersion: number; caps: number; prefix: number },
): Promise<Uint8Array> {
  const g = new Uint8Array(8);
  const dv = new DataView(g.buffer);
  dv.setUint16(0, granted.extVersion);
  dv.setUint32(2, granted.caps >>> 0);
  dv.setUint16(6, granted.prefix);
  return hmac(key, [LABEL_SERVER, ...transcriptBytes(t), g]);
}

/** Compares two byte strings in time that depends only on their lengths. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
