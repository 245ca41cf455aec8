/**
 * Who may open a tunnel connection: the `--allow CIDR[,CIDR...]` list of intercept, checked
 * on the peer's address right after accept(), before anything is allocated for it. Pure.
 */
import { parseIp } from "../wire/addr.ts";

/** One network: address bytes (4 or 16) and prefix length. */
export interface Cidr {
  bytes: Uint8Array;
  bits: number;
}

/** Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (/32, /128); a string is an error. */
export function parseCidr(text: string): Cidr | string {
  const t = text.trim();
  const slash = t.indexOf("/");
  const addr = slash < 0 ? t : t.slice(0, slash);
  const a = parseIp(addr);
  if (typeof a === "string") return `${JSON.stringify(t)} is not an IPv4 or IPv6 address`;
  const max = a.bytes.length * 8;
  let bits = max;
  if (slash >= 0) {
    const b = t.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b) || Number(b) > max) {
      return `${JSON.stringify(t)} has a bad prefix length (0..${max})`;
    }
    bits = Number(b);
  }
  return { bytes: a.bytes, bits };
}

/** An allow-list of networks; empty = no list (every address may connect). */
export class AllowList {
  readonly cidrs: readonly Cidr[];

  constructor(cidrs: readonly Cidr[]) {
    this.cidrs = cidrs;
  }

  /** Parses a comma-separated list; returns the list or a one-line error. */
  static parse(texts: readonly string[]): AllowList | string {
    const out: Cidr[] = [];
    for (const t of texts.flatMap((s) => s.split(","))) {
      if (t.trim() === "") return "empty entry";
      const c = parseCidr(t);
      if (typeof c === "string") return c;
      out.push(c);
    }
    return new AllowList(out);
  }

  /** No list was given. */
  get empty(): boolean {
    return this.cidrs.length === 0;
  }

  /** Whether the address text (as accept() reports it) is in one of the networks. */
  has(hostname: string): boolean {
    const a = parseIp(unmapped(hostname));
    if (typeof a === "string") return false;
    for (const c of this.cidrs) if (inCidr(a.bytes, c)) return true;
    return false;
  }
}

/** "::ffff:10.0.0.1" (an IPv4 peer on a dual-stack socket) -> "10.0.0.1". */
function unmapped(host: string): string {
  return host.toLowerCase().startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host;
}

function inCidr(a: Uint8Array, c: Cidr): boolean {
  if (a.length !== c.bytes.length) return false;
  const full = c.bits >> 3, rest = c.bits & 7;
  for (let i = 0; i < full; i++) if (a[i] !== c.bytes[i]) return false;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[full] & mask) === (c.bytes[full] & mask);
}
