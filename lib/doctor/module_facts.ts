/**
 * Reads what module_checks.ts judges: the auth file (through the run's own reader, so the
 * verdict is the run's; only the number of users is kept) and, per reachable intercept, the
 * reply prefix it grants an authenticated tunnel connection that asks for the modules' prefix.
 * Nothing is changed; the tunnel connection registers no route and is closed at once.
 *
 * @module
 */
import { readAuthFile } from "../modules/auth_file.ts";
import { TunnelClient } from "../tunnel/client.ts";
import { largestPrefix, type ModuleFacts, type ModuleNeed } from "./module_checks.ts";

/** What the module checks are asked about. */
export interface ModuleTargets {
  modules: ModuleNeed[];
  authFile?: string;
  /** `--module-trust-logins`. */
  trustLogins?: boolean;
  secret?: CryptoKey;
  /** Reachable intercepts (the doctor's connect check passed). */
  intercepts: { host: string; port: number }[];
}

/** Gathers the module facts. */
export async function gatherModuleFacts(t: ModuleTargets): Promise<ModuleFacts> {
  const facts: ModuleFacts = {
    modules: t.modules,
    secretFile: t.secret !== undefined,
    grants: {},
    trustLogins: t.trustLogins === true,
  };
  if (t.modules.length === 0) return facts;
  if (t.authFile !== undefined) {
    facts.authFile = t.authFile;
    const r = readAuthFile(t.authFile);
    facts.auth = r.ok ? { users: r.credentials.size } : { error: r.error };
  }
  const want = largestPrefix(t.modules)?.replyPrefix ?? 0;
  if (want > 0 && t.secret !== undefined) {
    for (const { host, port } of t.intercepts) {
      facts.grants[`${host}:${port}`] = await grantOf(host, port, want, t.secret);
    }
  }
  return facts;
}

/** The prefix `host:port` grants when asked for `want` bytes, or why it could not be asked. */
async function grantOf(
  host: string,
  port: number,
  want: number,
  secret: CryptoKey,
): Promise<number | string> {
  let tunnel: TunnelClient | undefined;
  try {
    tunnel = await TunnelClient.connect({
      servers: [{ hostname: host, port }],
      connections: 1,
      secret,
      prefix: want,
      onReply: () => {},
      log: () => {}, // the short grant is this check's verdict
    });
    return tunnel.connected > 0 ? tunnel.prefixOf(0) : "not authenticated";
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await tunnel?.close();
  }
}
