/**
 * The `-c, --client-ip` list: the source addresses replicated connections are rewritten to.
 *
 *   entry = ip                      one address (IPv4 or IPv6)
 *         | a.b.c.x                 a.b.c.1 .. a.b.c.254 (the C original's form)
 *         | ip "/" prefix           every host address of the network (IPv4 /8../32, IPv6 /112../128)
 *         | ipv4 "-" ipv4           an inclusive IPv4 range
 *
 * Target addresses are left out (a client must never look like the target itself) and
 * duplicates are dropped; the order of first appearance is kept.
 */
import { fail, ok, type Parsed } from "./result.ts";
import { formatIpv4, formatIpv6, parseIpAddress, parseIpv4, parseIpv6 } from "./ip.ts";

/** The most addresses one `--client-ip` list may expand to. */
export const MAX_CLIENT_IPS = 65536;

function ipv4Range(first: number, last: number, out: string[]): string | null {
  if (last < first) return "the range ends before it starts";
  if (last - first + 1 + out.length > MAX_CLIENT_IPS) {
    return `expands to more than ${MAX_CLIENT_IPS} addresses`;
  }
  for (let v = first; v <= last; v++) out.push(formatIpv4(v));
  return null;
}

function expandEntry(entry: string, out: string[]): string | null {
  if (/^[0-9.]+\.x$/i.test(entry)) {
    const base = parseIpv4(entry.slice(0, -1) + "0");
    if (base === null) return "expected a.b.c.x, e.g. 10.1.2.x";
    return ipv4Range(base + 1, base + 254, out);
  }
  const slash = entry.indexOf("/");
  if (slash >= 0) {
    const addrText = entry.slice(0, slash);
    const prefixText = entry.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(prefixText)) return `prefix '${prefixText}' is not a number`;
    const prefix = Number(prefixText);
    const v4 = parseIpv4(addrText);
    if (v4 !== null) {
      if (prefix < 8 || prefix > 32) return `IPv4 prefix /${prefix} is not in /8../32`;
      const size = 2 ** (32 - prefix);
      const network = v4 - (v4 % size);
      if (size <= 2) return ipv4Range(network, network + size - 1, out);
      return ipv4Range(network + 1, network + size - 2, out); // no network/broadcast address
    }
    const v6 = parseIpv6(addrText);
    if (v6 === null) return `'${addrText}' is not an IP address`;
    if (prefix < 112 || prefix > 128) return `IPv6 prefix /${prefix} is not in /112../128`;
    const size = 2 ** (128 - prefix);
    if (out.length + size > MAX_CLIENT_IPS) {
      return `expands to more than ${MAX_CLIENT_IPS} addresses`;
    }
    const start = v6[7] - (v6[7] % size);
    for (let i = 0; i < size; i++) {
      const groups = [...v6];
      groups[7] = start + i;
      if (groups.every((g) => g === 0)) continue; // :: is not a host address
      out.push(formatIpv6(groups));
    }
    return null;
  }
  const dash = entry.indexOf("-");
  if (dash >= 0) {
    const first = parseIpv4(entry.slice(0, dash));
    const last = parseIpv4(entry.slice(dash + 1));
    if (first === null || last === null) return "expected an IPv4 range like 10.1.2.10-10.1.2.20";
    return ipv4Range(first, last, out);
  }
  const ip = parseIpAddress(entry);
  if (ip === null) return "not an IP address, a.b.c.x, CIDR or a-b range";
  out.push(ip.text);
  return null;
}

/** Expands a `--client-ip` list, leaving out the given target addresses. */
export function parseClientIps(
  list: readonly string[],
  exclude: ReadonlySet<string>,
): Parsed<string[]> {
  const expanded: string[] = [];
  for (const item of list.flatMap((s) => s.split(","))) {
    const entry = item.trim();
    if (entry === "") return fail("empty entry in the list");
    const problem = expandEntry(entry, expanded);
    if (problem !== null) return fail(`'${entry}': ${problem}`);
  }
  const seen = new Set<string>();
  const out = expanded.filter((ip) => {
    if (exclude.has(ip) || seen.has(ip)) return false;
    seen.add(ip);
    return true;
  });
  if (out.length === 0) return fail("no usable address left after removing the target addresses");
  return ok(out);
}
