/**
 * MySQL login proofs: what a client sends for an auth plugin, given the password and the
 * server's 20-byte scramble. Pure and synchronous (node:crypto hashes and RSA).
 *
 * - `mysql_native_password`: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)))
 * - `caching_sha2_password`: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble)
 * - `mysql_clear_password`: pw + NUL
 * - full authentication (caching_sha2 over a plain connection): RSA-OAEP(SHA-1) of
 *   (pw + NUL) XOR scramble (repeated), with the server's public key.
 *
 * @module
 */
import { nodeCrypto } from "../node_crypto.ts";

/** The auth plugins this module can answer. */
export type AuthPlugin = "mysql_native_password" | "caching_sha2_password" | "mysql_clear_password";

const ENC = new TextEncoder();

/** The plugin for a name from the wire, or undefined when it is not supported. */
export function authPlugin(name: string): AuthPlugin | undefined {
  switch (name) {
    case "mysql_native_password":
    case "caching_sha2_password":
    case "mysql_clear_password":
      return name;
    default:
      return undefined;
  }
}

function hash(alg: "sha1" | "sha256", ...parts: Uint8Array[]): Uint8Array {
  const h = nodeCrypto().createHash(alg);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** `mysql_native_password` proof (20 bytes; empty for an empty password). */
export function nativeProof(password: string, scramble: Uint8Array): Uint8Array {
  if (password === "") return new Uint8Array(0);
  const s1 = hash("sha1", ENC.encode(password));
  return xor(s1, hash("sha1", scramble.subarray(0, 20), hash("sha1", s1)));
}

/** `caching_sha2_password` fast-auth proof (32 bytes; empty for an empty password). */
export function cachingSha2Proof(password: string, scramble: Uint8Array): Uint8Array {
  if (password === "") return new Uint8Array(0);
  const s1 = hash("sha256", ENC.encode(password));
  const s2 = hash("sha256", s1);
  return xor(s1, hash("sha256", s2, scramble.subarray(0, 20)));
}

/** The auth response for `plugin` (the first answer of a login or of an auth switch). */
export function authResponse(
  plugin: AuthPlugin,
  password: string,
  scramble: Uint8Array,
): Uint8Array {
  switch (plugin) {
    case "mysql_native_password":
      return nativeProof(password, scramble);
    case "caching_sha2_password":
      return cachingSha2Proof(password, scramble);
    case "mysql_clear_password": {
      const pw = ENC.encode(password);
      const out = new Uint8Array(pw.length + 1);
      out.set(pw);
      return out;
    }
    default: {
      const never: never = plugin;
      return never;
    }
  }
}

/**
 * Full authentication over a plain connection: (pw + NUL) XOR scramble, encrypted with the
 * server's RSA public key (PEM) with OAEP padding. Throws on a key that is not a PEM key.
 */
export function rsaPassword(password: string, scramble: Uint8Array, pem: string): Uint8Array {
  const pw = ENC.encode(password);
  const plain = new Uint8Array(pw.length + 1);
  plain.set(pw);
  const s = scramble.subarray(0, 20);
  if (s.length > 0) { for (let i = 0; i < plain.length; i++) plain[i] ^= s[i % s.length]; }
  const c = nodeCrypto();
  return new Uint8Array(
    c.publicEncrypt({ key: pem, padding: c.constants.RSA_PKCS1_OAEP_PADDING }, plain),
  );
}
