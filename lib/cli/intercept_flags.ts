/**
 * The intercept flag table: the single source for `parseArgs` options and the `--help` text
 * (the same shape as tcpcopy's tcpcopy_flags.ts). Each flag's help lines are kept as they are shown,
 * example included: the help text is a contract, compared line by line with its earlier form.
 */
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_PEER_ROUTES,
  DEFAULT_MAX_PER_IP,
  DEFAULT_TUNNEL_PORT,
} from "../tunnel/defaults.ts";

/** Default --drain-seconds in NFQUEUE mode. */
export const DEFAULT_DRAIN_SECONDS = 5;

/** Default NFQUEUE number (the tunnel port, so it rarely meets another user of queue 0). */
export const DEFAULT_QUEUE_NUM = DEFAULT_TUNNEL_PORT;

/** The help section a flag is listed under. */
export type InterceptSection = "nfqueue" | "pcap" | "tunnel" | "output";

/** One intercept flag with its help. */
export interface InterceptFlag {
  long: string;
  short?: string;
  /** Argument name shown in help; absent for switches. */
  arg?: string;
  /** Given several times (or comma-separated), the values are joined. */
  multiple?: boolean;
  section: InterceptSection;
  /** Help lines as shown: the first beside the flag, the others below it (example included). */
  help: readonly string[];
}

/** A help line holding only an example, in the examples' column. */
const ex = (example: string) => " ".repeat(43) + example;

/** Every intercept flag of a run, in help order. */
export const INTERCEPT_FLAGS: readonly InterceptFlag[] = [
  {
    long: "port",
    arg: "PORTS",
    multiple: true,
    section: "nfqueue",
    help: ["target ports whose replies are taken       --port 8080,8443"],
  },
  {
    long: "pass",
    short: "x",
    arg: "IPS",
    multiple: true,
    section: "nfqueue",
    help: ["reply destinations let through (real users) -x 192.0.2.10,2001:db8::7"],
  },
  {
    long: "queue-num",
    arg: "N",
    section: "nfqueue",
    help: [`NFQUEUE number 0..65535 (default ${DEFAULT_QUEUE_NUM})   --queue-num 7`],
  },
  {
    long: "queue-maxlen",
    arg: "N",
    section: "nfqueue",
    help: ["queue length (default: 64 MiB of replies)  --queue-maxlen 65536"],
  },
  {
    long: "coalesce-ms",
    arg: "N",
    section: "nfqueue",
    help: [
      "under load (a read of 12+ replies) sleep N ms before the next read",
      "instead of polling: less CPU, up to N ms more delay, 0..10; a lone",
      "reply is never held (default 1, 0 with -x)  --coalesce-ms 0",
    ],
  },
  {
    long: "fail-open",
    section: "nfqueue",
    help: [
      "rules with --queue-bypass: while no intercept reads the queue",
      "(crash, kill -9, stopped), replies reach the real clients instead",
      "of being dropped. Default: fail-closed (the port's replies are",
      `dropped until intercept runs again or "intercept cleanup")`,
      ex("--fail-open"),
    ],
  },
  {
    long: "drain-seconds",
    arg: "N",
    section: "nfqueue",
    help: [
      "on SIGTERM/SIGINT: stop accepting tcpcopy peers, keep dropping",
      "replies N s while tcpcopy resets its sessions, then remove the",
      `rules; a second signal ends the drain (0..3600, default ${DEFAULT_DRAIN_SECONDS},`,
      "0 in pcap mode)                             --drain-seconds 10",
    ],
  },
  {
    long: "device",
    short: "i",
    arg: "DEV",
    section: "pcap",
    help: ["capture device (default any)               -i eth0"],
  },
  {
    long: "filter",
    short: "F",
    arg: "FILTER",
    section: "pcap",
    help: ["BPF filter for the replies (required)      -F 'tcp and src port 8080'"],
  },
  {
    long: "tunnel-port",
    short: "p",
    arg: "N",
    section: "tunnel",
    help: [`listen port for tcpcopy (default ${DEFAULT_TUNNEL_PORT})      -p 36524`],
  },
  {
    long: "bind",
    short: "b",
    arg: "ADDR",
    section: "tunnel",
    help: ["listen address (default 0.0.0.0 = every address)  -b 10.0.0.9"],
  },
  {
    long: "allow",
    arg: "CIDRS",
    multiple: true,
    section: "tunnel",
    help: [
      "only these networks may connect (checked at accept); with",
      "--secret-file they may connect without authenticating (C tcpcopy)",
      ex("--allow 10.0.0.5/32,10.1.0.0/24"),
    ],
  },
  {
    long: "secret-file",
    arg: "FILE",
    section: "tunnel",
    help: [
      "shared secret (mode 0600, not a symlink; the same file on tcpcopy):",
      "peers not on --allow must pass a challenge-response (HMAC-SHA256)",
      ex("--secret-file /etc/tcpcopy/secret"),
      "With neither --allow nor --secret-file anyone who reaches the port may",
      "register routes and read reply headers: intercept warns at start.",
    ],
  },
  {
    long: "max-conns-per-ip",
    arg: "N",
    section: "tunnel",
    help: [
      `tunnel connections at once from one address (default ${DEFAULT_MAX_PER_IP})`,
      ex("--max-conns-per-ip 16"),
    ],
  },
  {
    long: "max-peer-routes",
    arg: "N",
    section: "tunnel",
    help: [
      "routes one tcpcopy may hold; over it its own oldest route goes",
      `(default ${DEFAULT_MAX_PEER_ROUTES})`,
      ex("--max-peer-routes 100000"),
    ],
  },
  {
    long: "idle-timeout",
    arg: "S",
    section: "tunnel",
    help: [
      "close a connection without hello/authentication after S s, or a",
      `heartbeat peer silent for S s (2..3 heartbeats; default ${DEFAULT_IDLE_TIMEOUT_MS / 1000})`,
      ex("--idle-timeout 5"),
    ],
  },
  {
    long: "batch",
    short: "n",
    arg: "N",
    section: "tunnel",
    help: ["replies per tunnel write 1..16 (default 16) -n 8"],
  },
  {
    long: "max-prefix",
    arg: "N",
    section: "tunnel",
    help: [
      "reply payload bytes per packet granted to an authenticated tcpcopy that asks",
      "(tcpcopy --module), 0..1460; also sizes the NFQUEUE copy range and pcap snaplen",
      "(default 128; 0 for every unauthenticated peer)  --max-prefix 512",
    ],
  },
  {
    long: "compare",
    section: "tunnel",
    help: [
      "send answer summaries (first bytes, lengths, digest of each target",
      "answer) to authenticated tcpcopy peers that ask (tcpcopy --compare);",
      "needs --secret-file; the capture then keeps whole reply packets",
      "(NFQUEUE copy range / pcap snaplen 65535)  --compare",
    ],
  },
  {
    long: "route-ttl",
    arg: "S",
    section: "tunnel",
    help: ["idle route expiry in seconds (default 660) --route-ttl 120"],
  },
  {
    long: "log",
    short: "l",
    arg: "FILE",
    section: "output",
    help: [
      "log file instead of stderr, created 0640; a symlink is refused;",
      "SIGHUP reopens it (logrotate)              -l /var/log/intercept.log",
    ],
  },
  {
    long: "stats-interval",
    arg: "S",
    section: "output",
    help: [
      "JSON stats line on stdout every S s (default 5, 0 = only at exit)",
      ex("--stats-interval 30"),
    ],
  },
  {
    long: "metrics",
    arg: "[HOST:]PORT",
    section: "output",
    help: [
      "Prometheus text on http://HOST:PORT/metrics (host default",
      "127.0.0.1)                                  --metrics 9121",
    ],
  },
  {
    long: "version",
    short: "v",
    section: "output",
    help: ["print the version                          -v"],
  },
  {
    long: "help",
    short: "h",
    section: "output",
    help: ["this text                                  -h"],
  },
];

/** The heading printed before the first flag of each section. */
const SECTION_HEADINGS: Record<InterceptSection, string> = {
  nfqueue: "Capture, NFQUEUE mode (installs and removes its own iptables/ip6tables rules):",
  pcap: "Capture, pcap mode:",
  tunnel: "Tunnel:",
  output: "Output:",
};

/** The lines above the flags: what intercept is, its modes and subcommands. */
const USAGE =
  `intercept: capture the target's replies, drop them, and send their headers to tcpcopy.

Usage (pick one capture mode):
  intercept --port 8080[,8081] [-x IP,...]   on the target: NFQUEUE on the OUTPUT chain
  intercept -i DEV -F FILTER                 on an assistant host: libpcap capture
  intercept doctor [--json] [--port P] [-i DEV -F FILTER] [--allow CIDRS] [--secret-file FILE]
                                             check this host's set-up
  intercept cleanup [--all]   remove the NFQUEUE rules left by intercepts that are gone (all
                              tagged rules with --all), in iptables and ip6tables; prints each
                              one; exit 0 also when there was none (systemd ExecStopPost=)
`;

/** Width of the flag-name column (help text starts after it). */
const NAME_COLUMN = 22;

/** Renders intercept's --help text from {@link INTERCEPT_FLAGS}. */
export function renderInterceptHelp(): string {
  const lines = [USAGE];
  let section: InterceptSection | undefined;
  for (const f of INTERCEPT_FLAGS) {
    if (f.section !== section) {
      section = f.section;
      lines.push(SECTION_HEADINGS[section]);
    }
    const names = `${f.short ? `-${f.short}, ` : ""}--${f.long}${f.arg ? ` ${f.arg}` : ""}`;
    const [first, ...rest] = f.help;
    lines.push(`  ${names.padEnd(NAME_COLUMN - 1)} ${first}`);
    for (const line of rest) lines.push(`${" ".repeat(NAME_COLUMN + 2)}${line}`);
  }
  return lines.join("\n") + "\n";
}

/** `parseArgs` options for a run, from {@link INTERCEPT_FLAGS}. */
export function interceptParseOptions(): Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
> {
  const out: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> =
    {};
  for (const f of INTERCEPT_FLAGS) {
    out[f.long] = {
      type: f.arg ? "string" : "boolean",
      ...(f.short ? { short: f.short } : {}),
      ...(f.multiple ? { multiple: true } : {}),
    };
  }
  return out;
}
