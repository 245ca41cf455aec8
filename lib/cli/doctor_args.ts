/**
 * `tcpcopy doctor [--json] [-x ...] [-s ...] [-i ...] [--secret-file FILE]`: the same transfer, intercept and
 * device flags as a run, all optional, so the doctor checks exactly what a run would use.
 */
import { parseArgs } from "node:util";
import { DEFAULT_TUNNEL_PORT } from "../tunnel/defaults.ts";
import { parseTransfers } from "./transfer.ts";
import { parseHostPort } from "./endpoint.ts";

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
}

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
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    const first = String((e as Error).message).split("\n")[0];
    return { error: `tcpcopy doctor: ${first} (accepted: --json, -x, -s, -i, --secret-file)` };
  }
  const list = (k: string) =>
    ((values[k] as string[] | undefined) ?? []).flatMap((s) => s.split(","));
  const ports: number[] = [];
  const probeTargets: { addr: string; port: number }[] = [];
  if (list("transfer").length > 0) {
    const t = parseTransfers(list("transfer"));
    if (!t.ok) return { error: `tcpcopy doctor: -x/--transfer: ${t.error}` };
    for (const x of t.value) {
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
  return {
    json: values.json === true,
    devices,
    ports,
    intercepts,
    probeTargets,
    ...(secretFile !== undefined ? { secretFile } : {}),
  };
}
