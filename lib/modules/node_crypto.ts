/**
 * Node's crypto module for the database modules' authentication (mysql, postgres), loaded on
 * first use instead of by a static `import ... from "node:crypto"`: a static import loads it in
 * every tcpcopy process, also in those that replicate no database. Measured with `deno run
 * --no-code-cache --v8-flags=--expose-gc,--max-semi-space-size=2` on a script that, like
 * tcpcopy, already imports node:v8 and node:util: loading node:crypto added 1.3 MiB of V8 heap
 * in use after full collections (3.33 → 4.63 MiB), 1.5 MiB reserved and 1.7 MiB of anonymous
 * RSS. The type import below is erased; `process.getBuiltinModule` loads the built-in module
 * synchronously (Deno 2, Node 22), as the callers' synchronous state machines need.
 *
 * @module
 */

import type * as NodeCrypto from "node:crypto";

let crypto: typeof NodeCrypto | undefined;

/** node:crypto, loaded on the first call. */
export function nodeCrypto(): typeof NodeCrypto {
  crypto ??= process.getBuiltinModule("node:crypto");
  return crypto;
}
