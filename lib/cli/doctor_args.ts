/**
 * `tcpcopy doctor [--json] [-x ...] [-s ...] [-i ...] [--secret-file FILE] [--module NAME]
 * [--auth-file FILE] [--read-only]`: the same transfer, intercept, device and module flags as a
 * run, all optional, so the doctor checks exactly what a run would use.
 */
import { parseArgs } from "node:util";
import { DEFAULT_TUNNEL_PORT } from "../tunnel/defaults.ts";
import { parseTransfers } from "./transfer.ts";
import { parseHostPort } from "./endpoint.ts";
import { lookupModule } from "../modules/registry.ts";
import type { ModuleNeed } from "../doctor/module_checks.ts";

/** What the doctor should look at. */
export interface DoctorRequest {
  json: boolean;
  devices: string[];
  ports: number[];
  intercepts: { host: string; port: number }[];
  /** Targets of -x, for the send-path probe (when -s is given too). */
  probeTargets: { addr: string; port: number }[];
  /** --secret-file: the probe authenticates to intercept as a run would. */
  secretFile?: string;
  /** The protocol modules of the transfers (--module, -x ...@NAME), each once. */
  modules: ModuleNeed[];
  /** --auth-file, checked as the run reads it. */
  authFile?: string;
  /** --module-trust-logins. */
  trustLogins: boolean;
}

const ACCEPTED = "accepted: --json, -x, -s, -i, --secret-file, --module, --auth-file, " +
  "--read-only, --module-trust-logins";

/** Parses the doctor's arguments; an error is one line, as for a run. */
export function parseDoctorArgs(args: readonly string[]): DoctorRequest | { error: string } {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args: [...args],
      options: {
        json: { type: "boolean" },
        transfer: { type: "string", short: "x", multiple: true },
        intercept: { type: "string", short: "s", multiple: true },
        interface: { type: "string", short: "i", multiple: true },
        "secret-file": { type: "string" },
        module: { type: "string" },
        "auth-file": { type: "string" },
        "read-only": { type: "boolean" },
        "module-trust-logins": { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    const first = String((e as Error).message).split("\n")[0];
    return { error: `tcpcopy doctor: ${first} (${ACCEPTED})` };
  }
  const list = (k: string) =>
    ((values[k] as string[] | undefined) ?? []).flatMap((s) => s.split(","));
  const ports: number[] = [];
  const probeTargets: { addr: string; port: number }[] = [];
  const all = values.module as string | undefined;
  const names: string[] = all === undefined ? [] : [all];
  if (list("transfer").length > 0) {
    const t = parseTransfers(list("transfer"));
    if (!t.ok) return { error: `tcpcopy doctor: -x/--transfer: ${t.error}` };
    for (const x of t.value) {
      const name = x.module ?? all;
      if (name !== undefined && !names.includes(name)) names.push(name);
      if (!ports.includes(x.onlinePort)) ports.push(x.onlinePort);
      if (!probeTargets.some((p) => p.addr === x.targetIp && p.port === x.targetPort)) {
        probeTargets.push({ addr: x.targetIp, port: x.targetPort });
      }
    }
  }
  const intercepts: { host: string; port: number }[] = [];
  for (const text of list("intercept")) {
    const hp = parseHostPort(text.trim(), DEFAULT_TUNNEL_PORT, true);
    if (!hp.ok) return { error: `tcpcopy doctor: -s/--intercept '${text}': ${hp.error}` };
    intercepts.push({ host: hp.value.host, port: hp.value.port });
  }
  const devices = list("interface").map((s) => s.trim()).filter((s) => s !== "");
  const secretFile = values["secret-file"] as string | undefined;
  const modules: ModuleNeed[] = [];
  for (const name of names) {
    const found = lookupModule(name);
    if (!found.ok) return { error: `tcpcopy doctor: --module '${name}': ${found.error}` };
    modules.push({ name, replyPrefix: found.module.replyPrefix });
  }
  const authFile = values["auth-file"] as string | undefined;
  if (authFile !== undefined && modules.length === 0) {
    return {
      error:
        `tcpcopy doctor: --auth-file '${authFile}': only used with --module NAME (or -x ...@NAME)`,
    };
  }
  if (values["read-only"] === true && modules.length === 0) {
    return { error: "tcpcopy doctor: --read-only: only used with --module NAME (or -x ...@NAME)" };
  }
  const trustLogins = values["module-trust-logins"] === true;
  if (trustLogins && modules.length === 0) {
    return {
      error: "tcpcopy doctor: --module-trust-logins: only used with --module NAME (or -x ...@NAME)",
    };
  }
  return {
    json: values.json === true,
    devices,
    ports,
    intercepts,
    probeTargets,
    ...(secretFile !== undefined ? { secretFile } : {}),
    modules,
    ...(authFile !== undefined ? { authFile } : {}),
    trustLogins,
  };
}
