/**
 * What a user's own `./build.sh` sees of the network set-up, for tests that run it with a
 * cleared environment: certificate stores and proxies (`deno bundle` fetches its esbuild
 * package from the npm registry, through whatever proxy and CA the machine uses).
 *
 * @module
 */

/** The variables passed through. */
export const NETWORK_VARS: readonly string[] = [
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "DENO_CERT",
  "DENO_TLS_CA_STORE",
  "NODE_EXTRA_CA_CERTS",
  "NPM_CONFIG_REGISTRY",
  ...["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY"].flatMap((v) => [v, v.toLowerCase()]),
];

/** The variables of {@link NETWORK_VARS} set in `from` (this process's environment). */
export function networkEnv(
  from: Record<string, string> = Deno.env.toObject(),
): Record<string, string> {
  return Object.fromEntries(
    NETWORK_VARS.filter((v) => from[v] !== undefined).map((v) => [v, from[v]]),
  );
}
