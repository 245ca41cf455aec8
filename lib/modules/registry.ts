/**
 * The protocol modules built into this tcpcopy (`--module NAME`, `-x ...@NAME`).
 *
 * To add one: write lib/modules/NAME.ts exporting a {@link ProtocolModule}, add NAME to
 * `ModuleName` (module.ts) and one import and one line below (README.md in this folder).
 */
import type { ModuleName, ProtocolModule } from "./module.ts";
import { mysqlModule } from "./mysql.ts";
import { redisModule } from "./redis.ts";

/** Every built-in module by name (one line each). */
export const MODULES: Partial<Record<ModuleName, ProtocolModule>> = {
  mysql: mysqlModule,
  redis: redisModule,
};

/** Names of the built-in modules, sorted (for help and error lines). */
export function builtInModules(): string[] {
  return Object.keys(MODULES).sort();
}

/** The module called `name`, or a one-line error naming what is built in. */
export function lookupModule(
  name: string,
): { ok: true; module: ProtocolModule } | { ok: false; error: string } {
  const m = Object.hasOwn(MODULES, name) ? MODULES[name as ModuleName] : undefined;
  if (m !== undefined) return { ok: true, module: m };
  const known = builtInModules();
  return {
    ok: false,
    error: `unknown module '${name}'; built in: ${known.length > 0 ? known.join(", ") : "none"}`,
  };
}

/** Bytes of reply payload to ask intercept for: the largest prefix the modules need. */
export function replyPrefixOf(modules: readonly (ProtocolModule | undefined)[]): number {
  let n = 0;
  for (const m of modules) if (m !== undefined && m.replyPrefix > n) n = m.replyPrefix;
  return n;
}
