/**
 * `--secret-file` at start, the same for both programs: read and checked (lib/tunnel/
 * secret_file.ts), imported as an HMAC key, the bytes wiped. A bad file is a refused value:
 * one line on stderr, exit code 2.
 */
import { readSecretFile } from "../tunnel/secret_file.ts";
import { importSecret } from "../tunnel/auth.ts";
import { EXIT_USAGE } from "./exit.ts";

/** The key (undefined without a file), or the exit code after printing why not. */
export async function loadSecret(
  program: string,
  path: string | null | undefined,
): Promise<{ key: CryptoKey | undefined } | number> {
  if (path === null || path === undefined) return { key: undefined };
  const r = readSecretFile(path);
  if (!r.ok) {
    console.error(`${program}: ${r.error}`);
    return EXIT_USAGE;
  }
  const key = await importSecret(r.secret);
  r.secret.fill(0);
  return { key };
}
