/**
 * Host and port pairs on the command line: `10.0.0.1:80`, `[2001:db8::1]:80`, `host`,
 * `host:port`. IPv6 addresses that carry a port must be written in brackets.
 */
import { fail, ok, type Parsed } from "./result.ts";
import { parseIpAddress } from "./ip.ts";

/** A host (canonical IP text, or a DNS name where allowed) and a port. */
export interface HostPort {
  host: string;
  /** Address family when the host is an IP literal; null for a DNS name. */
  family: 4 | 6 | null;
  port: number;
}

/** Parses a TCP port number 1..65535 written in decimal, or null. */
export function parsePort(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

/** Splits `host:port`, `[v6]:port`, `host` or `[v6]` into the host text and port text. */
export function splitHostPort(text: string): { host: string; port: string | null } | null {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return null;
    const host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest === "") return { host, port: null };
    if (!rest.startsWith(":")) return null;
    return { host, port: rest.slice(1) };
  }
  const colons = text.split(":").length - 1;
  if (colons === 0) return { host: text, port: null };
  if (colons === 1) {
    const i = text.indexOf(":");
    return { host: text.slice(0, i), port: text.slice(i + 1) };
  }
  return { host: text, port: null }; // a bare IPv6 address: no port possible
}

const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Parses `host[:port]` where host is an IP literal or (when `allowNames`) a DNS name.
 * Returns an error text that names the part that is wrong.
 */
export function parseHostPort(
  text: string,
  defaultPort: number | null,
  allowNames: boolean,
): Parsed<HostPort> {
  const split = splitHostPort(text);
  if (split === null) return fail(`'${text}' is not host:port (write IPv6 as [addr]:port)`);
  const ip = parseIpAddress(split.host);
  if (ip === null && !(allowNames && DNS_NAME.test(split.host) && !/^[0-9.]+$/.test(split.host))) {
    const what = allowNames ? "an IP address or host name" : "an IPv4 or IPv6 address";
    return fail(`'${split.host}' is not ${what}`);
  }
  let port = defaultPort;
  if (split.port !== null) {
    port = parsePort(split.port);
    if (port === null) return fail(`port '${split.port}' is not a number in 1..65535`);
  }
  if (port === null) return fail(`'${text}' has no port`);
  return ok({ host: ip?.text ?? split.host.toLowerCase(), family: ip?.family ?? null, port });
}
