/**
 * The `-x, --transfer` list: which captured traffic is replicated to which target.
 *
 *   transfer   = online "-" target ["@" module]
 *   online     = [ip ":"] port ["@" sourceMac]      ip: IPv4 or "[" IPv6 "]"
 *   target     = ip ":" port ["@" nextHopMac]
 *   module     = a protocol module's name (lowercase letters, digits, '_'; never a ':', so
 *                it cannot be taken for a MAC address)
 *
 * Examples: `80-10.0.0.2:8080`, `10.0.0.1:80-10.0.0.2:80`, `[2001:db8::1]:80-[2001:db8::2]:80`,
 * `80@02:00:00:00:00:01-10.0.0.2:80@02:00:00:00:00:02` (link-layer send, C 1.x syntax),
 * `5432-10.0.0.2:5432@postgres` (this transfer through the postgres module).
 */
import { fail, ok, type Parsed } from "./result.ts";
import { parseHostPort, parsePort } from "./endpoint.ts";
import { parseMac } from "./mac.ts";

/** One replication rule: traffic to the online endpoint is replayed to the target endpoint. */
export interface Transfer {
  /** Online (captured) destination address; null = any local address. */
  onlineIp: string | null;
  onlinePort: number;
  targetIp: string;
  targetFamily: 4 | 6;
  targetPort: number;
  /** Source MAC for link-layer send (`@mac` on the online side), if given. */
  sourceMac: string | null;
  /** Next-hop MAC for link-layer send (`@mac` on the target side), if given. */
  nextHopMac: string | null;
  /** Protocol module (`@NAME` at the end, or `--module`); null = replayed as captured. */
  module: string | null;
}

/** The syntax shown in error messages. */
export const TRANSFER_SYNTAX = "[onlineIP:]onlinePort-targetIP:targetPort (e.g. 80-10.0.0.2:8080)";

function splitMac(text: string): { addr: string; mac: string | null; bad: string | null } {
  const at = text.indexOf("@");
  if (at < 0) return { addr: text, mac: null, bad: null };
  const macText = text.slice(at + 1);
  const mac = parseMac(macText);
  return { addr: text.slice(0, at), mac, bad: mac === null ? macText : null };
}

const MODULE_SUFFIX = /@([a-z][a-z0-9_]*)$/;

/** Parses one transfer rule. */
export function parseTransfer(text: string): Parsed<Transfer> {
  const m = MODULE_SUFFIX.exec(text);
  const module = m ? m[1] : null;
  if (m) text = text.slice(0, m.index);
  const dash = text.indexOf("-");
  if (dash < 0) return fail(`'${text}' has no '-' between the online and the target side`);
  const online = splitMac(text.slice(0, dash));
  const target = splitMac(text.slice(dash + 1));
  for (const side of [online, target]) {
    if (side.bad !== null) return fail(`'${side.bad}' is not a MAC address like 02:00:00:00:00:01`);
  }
  let onlineIp: string | null = null;
  let onlinePort: number | null;
  let onlineFamily: 4 | 6 | null = null;
  if (/^[0-9]+$/.test(online.addr)) {
    onlinePort = parsePort(online.addr);
    if (onlinePort === null) return fail(`online port '${online.addr}' is not in 1..65535`);
  } else {
    const hp = parseHostPort(online.addr, null, false);
    if (!hp.ok) return fail(`online side: ${hp.error}`);
    onlineIp = hp.value.host;
    onlineFamily = hp.value.family;
    onlinePort = hp.value.port;
  }
  const t = parseHostPort(target.addr, null, false);
  if (!t.ok) return fail(`target side: ${t.error}`);
  const targetFamily = t.value.family as 4 | 6;
  if (onlineFamily !== null && onlineFamily !== targetFamily) {
    return fail(`online ${onlineIp} and target ${t.value.host} are of different IP families`);
  }
  if (onlineIp === t.value.host && onlinePort === t.value.port) {
    return fail(`online and target are the same endpoint; tcpcopy would replay its own output`);
  }
  return ok({
    onlineIp,
    onlinePort,
    targetIp: t.value.host,
    targetFamily,
    targetPort: t.value.port,
    sourceMac: online.mac,
    nextHopMac: target.mac,
    module,
  });
}

/** Parses a comma-separated transfer list (several `-x` flags are joined before this). */
export function parseTransfers(list: readonly string[]): Parsed<Transfer[]> {
  const out: Transfer[] = [];
  const seen = new Set<string>();
  for (const item of list.flatMap((s) => s.split(","))) {
    const text = item.trim();
    if (text === "") return fail(`empty entry in the list`);
    const parsed = parseTransfer(text);
    if (!parsed.ok) return fail(`'${text}': ${parsed.error}`);
    const v = parsed.value;
    const key = `${v.onlineIp ?? "*"}|${v.onlinePort}|${v.targetIp}|${v.targetPort}`;
    if (seen.has(key)) return fail(`'${text}': the same transfer is given twice`);
    seen.add(key);
    out.push(parsed.value);
  }
  if (out.length === 0) return fail(`no transfer given`);
  return ok(out);
}
