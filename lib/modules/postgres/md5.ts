/**
 * PostgreSQL's MD5 password response: `"md5" + md5hex(md5hex(password + user) + salt)`, where
 * `user` is the role name of the startup packet and `salt` the 4 bytes of the target's
 * AuthenticationMD5Password.
 *
 * @module
 */

import { nodeCrypto } from "../node_crypto.ts";

const enc = new TextEncoder();

/** The PasswordMessage text answering an MD5 challenge with `salt`. */
export function md5Response(user: string, password: string, salt: Uint8Array): string {
  const { createHash } = nodeCrypto();
  const inner = createHash("md5").update(enc.encode(password + user)).digest("hex");
  const outer = createHash("md5").update(enc.encode(inner)).update(salt).digest("hex");
  return "md5" + outer;
}
