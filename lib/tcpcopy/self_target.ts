/**
 * Refusing a target that is the online host itself: replay would hit production. The decision
 * is pure ({@link selfTargets}, given the host's addresses); the addresses are read from
 * /proc/net (no external program) by {@link localAddresses}, parsed by pure functions.
 */
import { canonicalIp, formatIpv6 } from "../wire/addr.ts";

/** The targets among `targets` that are addresses of this host (`local`), loopback included. */
export function selfTargets(targets: readonly string[], local: readonly string[]): string[] {
  const mine = new Set(local.map((a) => canonicalIp(a)).filter((a) => a !== null));
  const out: string[] = [];
  for (const t of targets) {
    const c = canonicalIp(t);
    if (c === null) continue;
    if (isAlwaysLocal(c) || mine.has(c)) {
      if (!out.includes(t)) out.push(t);
      continue;
    }
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(c);
    if (mapped && (isAlwaysLocal(mapped[1]) || mine.has(mapped[1]))) out.push(t);
  }
  return out;
}

/** Loopback and unspecified addresses: this host whatever its interfaces. */
function isAlwaysLocal(c: string): boolean {
  return c.startsWith("127.") || c === "0.0.0.0" || c === "::1" || c === "::";
}

/** The one-line refusal for `self` (non-empty), or null. */
export function selfTargetError(self: readonly string[]): string | null {
  if (self.length === 0) return null;
  return `tcpcopy: -x/--transfer target ${self.join(", ")} is an address of this host ` +
    `(replay would hit production); use another target or --allow-self-target`;
}

/** IPv4 addresses marked `/32 host LOCAL` in the text of /proc/net/fib_trie. */
export function parseFibTrie(text: string): string[] {
  const out = new Set<string>();
  let last: string | null = null;
  for (const line of text.split("\n")) {
    const leaf = /\|-- (\d+\.\d+\.\d+\.\d+)\s*$/.exec(line);
    if (leaf) {
      last = leaf[1];
      continue;
    }
    if (last !== null && /\/32 host LOCAL/.test(line)) out.add(last);
  }
  return [...out];
}

/** IPv6 addresses in the text of /proc/net/if_inet6 (32 hex digits first on each line). */
export function parseIfInet6(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^([0-9a-fA-F]{32})\s/.exec(line);
    if (!m) continue;
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i++) bytes[i] = parseInt(m[1].slice(2 * i, 2 * i + 2), 16);
    out.push(formatIpv6(bytes, 0));
  }
  return out;
}

/** This host's addresses (every interface, both families); files that cannot be read add none. */
export function localAddresses(
  read: (path: string) => string = (p) => Deno.readTextFileSync(p),
): string[] {
  const tryRead = (p: string) => {
    try {
      return read(p);
    } catch {
      return "";
    }
  };
  return [
    ...parseFibTrie(tryRead("/proc/net/fib_trie")),
    ...parseIfInet6(tryRead("/proc/net/if_inet6")),
  ];
}
