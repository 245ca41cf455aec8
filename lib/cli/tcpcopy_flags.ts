/**
 * The tcpcopy flag table: the single source for `parseArgs` options and the `--help` text
 * (rendered here too, as intercept's in intercept_flags.ts).
 * Flag names are a contract (issue 6); short letters follow the C tcpcopy 1.x where they exist.
 */

/** One command-line flag with its help. */
export interface FlagSpec {
  long: string;
  short?: string;
  /** Argument name shown in help; absent for switches. */
  arg?: string;
  help: string;
  example?: string;
  /** Given several times, the values are joined (lists). */
  multiple?: boolean;
  /** Reserved for a later release: accepted by the parser, then refused with a clear line. */
  reserved?: string;
}

/** Every tcpcopy flag, in help order. */
export const FLAGS: readonly FlagSpec[] = [
  {
    long: "transfer",
    short: "x",
    arg: "[onlineIP:]onlinePort-targetIP:targetPort[@module][,...]",
    help: "Required. Replicate traffic to the online port (of any local address, or of onlineIP) " +
      "to the target. Several entries and several targets are allowed; IPv6 goes in brackets.",
    example: "-x 80-10.0.0.2:8080,10.0.0.1:443-[2001:db8::2]:8443",
    multiple: true,
  },
  {
    long: "intercept",
    short: "s",
    arg: "host[:port][,...]",
    help: "Required. intercept server(s) that send back the target's reply headers " +
      "(default port 36524).",
    example: "-s 10.0.0.3 or -s 10.0.0.3:36524,10.0.0.4",
    multiple: true,
  },
  {
    long: "connections",
    short: "C",
    arg: "N",
    help: "Tunnel connections to each intercept server (default 2).",
    example: "-C 4",
  },
  {
    long: "secret-file",
    arg: "FILE",
    help: "Shared secret for the tunnel, the same file as intercept's --secret-file (a " +
      "regular file readable by its owner only, mode 0600; at least 16 bytes). Every " +
      "connection then proves it knows the secret and checks that intercept does; an " +
      "intercept that does not authenticate (a C intercept, no secret there) is not used.",
    example: "--secret-file /etc/tcpcopy/secret",
  },
  {
    long: "module",
    arg: "NAME",
    help: "Replay every transfer through this protocol module (postgres, mysql, redis, " +
      "as built in; one transfer only: NAME after '@' at the end of its -x entry). A module " +
      "recomputes database logins against the target and needs the target's reply payload, " +
      "which intercept only sends to an authenticated tcpcopy: --secret-file is required.",
    example: "--module postgres  or  -x 5432-10.0.0.2:5432@postgres",
  },
  {
    long: "auth-file",
    arg: "FILE",
    help: "Passwords for --module logins: one user:password per line ('#' comments), a " +
      "regular file readable by its owner only (mode 0600), like --secret-file.",
    example: "--auth-file /etc/tcpcopy/db-users",
  },
  {
    long: "read-only",
    help: "With --module: drop the statements that change data (writes, DDL) instead of " +
      "replaying them; the target answers only reads.",
    example: "--read-only",
  },
  {
    long: "module-trust-logins",
    help: "With --module: replay what follows a re-proved login without waiting for " +
      "production's verdict on it (for captures without the online server's packets). " +
      "UNSAFE: a client whose login production refused then gets its commands run on the " +
      "target as the auth file's user. Default: off (the capture takes the online server's " +
      "replies too and a login production refused is never followed).",
    example: "--module-trust-logins",
  },
  {
    long: "interface",
    short: "i",
    arg: "DEV[,DEV]",
    help: "Capture device(s) (default any = all devices).",
    example: "-i eth0",
    multiple: true,
  },
  {
    long: "filter",
    short: "F",
    arg: "BPF",
    help: "Capture filter instead of the one generated from -x, e.g. " +
      "'tcp and ((dst port 80 and dst host 10.0.0.1))'.",
    example: "-F 'tcp and dst port 80 and not src net 10.9.0.0/16'",
  },
  {
    long: "buffer",
    short: "B",
    arg: "MiB",
    help: "Largest kernel capture ring in MiB (default 64): the ring starts at 12 MiB (or this, " +
      "when smaller); when it fills up (three quarters, or half when filling fast) a ring as " +
      "large takes over while the old one is read (twice as large on drops or fast fills).",
    example: "-B 128",
  },
  {
    long: "snaplen",
    short: "S",
    arg: "BYTES",
    help: "Capture snapshot length in bytes (default 65535; whole packets are needed).",
    example: "-S 65535",
  },
  {
    long: "client-ip",
    short: "c",
    arg: "LIST",
    help: "Rewrite client source addresses into this pool: addresses, a.b.c.x (= .1-.254), " +
      "CIDR (10.1.0.0/22) or a-b ranges; target addresses are left out.",
    example: "-c 10.1.2.x",
    multiple: true,
  },
  {
    long: "copies",
    short: "n",
    arg: "N",
    help: "Replication factor, fractions allowed: 2 doubles every connection, 1.5 replays " +
      "each connection once and half of them twice (default 1).",
    example: "-n 1.5",
  },
  {
    long: "port-shift",
    short: "f",
    arg: "N",
    help: "Put rewritten source ports in lane N mod 8 so that several tcpcopy instances " +
      "sharing client addresses and a target never collide: give each a different -f (1..8 " +
      "are eight distinct lanes; 0..1023, default 0 = original ports, one instance only).",
    example: "-f 2",
  },
  {
    long: "sample",
    short: "r",
    arg: "PCT",
    help: "Replicate only this percentage of connections, 1..100 (default 100).",
    example: "-r 50",
  },
  {
    long: "gradual",
    short: "g",
    help: "Ramp up: start with 1% of the connections and add 1% per second up to -r.",
    example: "-g",
  },
  {
    long: "mtu",
    short: "M",
    arg: "BYTES",
    help: "MTU towards the target; larger captured packets (GRO/TSO) are split (default 1500).",
    example: "-M 1450",
  },
  {
    long: "mss",
    short: "D",
    arg: "BYTES",
    help: "MSS option put into synthesised SYNs (default 1460).",
    example: "-D 1400",
  },
  {
    long: "session-timeout",
    short: "t",
    arg: "S",
    help: "Drop a session whose target stayed silent this many seconds with work pending " +
      "(default 600).",
    example: "-t 120",
  },
  {
    long: "keepalive-timeout",
    short: "k",
    arg: "S",
    help: "Drop an idle session after this many seconds (default session timeout + 120).",
    example: "-k 300",
  },
  {
    long: "only-complete",
    short: "O",
    help: "Replay only connections whose SYN was captured (no mid-stream pick-up).",
    example: "-O",
  },
  {
    long: "no-wait",
    short: "W",
    help: "Send each request without waiting for the target's answer to the previous one.",
    example: "-W",
  },
  {
    long: "lonely",
    short: "L",
    help: "Keep running and reconnect while no intercept server is reachable.",
    example: "-L",
  },
  {
    long: "max-memory",
    short: "m",
    arg: "MiB",
    help: "Memory budget of the whole process (sessions, connection records, queued bytes, " +
      "runtime; the -B capture ring comes on top); the engine gets (MiB - 256) / 5 of it. " +
      "Sessions that never carried data make room first, then the largest queues are shed; " +
      "tcpcopy never exits for memory (default 2048, at least 16).",
    example: "-m 512",
  },
  {
    long: "max-sessions",
    arg: "N",
    help: "Most live sessions; beyond it a new connection replaces the oldest session that " +
      "never carried data, or is not replayed (lost.session_limit). Default from -m: " +
      "about 54.6 per MiB above 256, e.g. 97,867 for -m 2048.",
    example: "--max-sessions 50000",
  },
  {
    long: "max-flows",
    arg: "N",
    help: "Most connection records (live, left out, or remembered after their sessions " +
      "ended); the oldest remembered ones are forgotten at the cap. Default from -m: " +
      "about 91.0 per MiB above 256, e.g. 163,111 for -m 2048.",
    example: "--max-flows 200000",
  },
  {
    long: "max-pps",
    arg: "N",
    help: "Egress limit: packets per second sent to the target(s). Over it new connections " +
      "are not replayed (lost.rate_limited) and packets wait for a retransmission " +
      "(rate_limited_packets) (default 0 = no limit).",
    example: "--max-pps 20000",
  },
  {
    long: "max-mbps",
    arg: "N",
    help: "Egress limit in megabits per second, like --max-pps (default 0 = no limit).",
    example: "--max-mbps 200",
  },
  {
    long: "allow-self-target",
    help: "Accept a target address that belongs to this host (replay would hit production); " +
      "refused by default with exit code 2. Logged as a warning.",
    example: "--allow-self-target",
  },
  {
    long: "out-interface",
    short: "o",
    arg: "DEV",
    help: "Send at the link layer on DEV instead of through the raw IP socket (bypasses the " +
      "online host's routing and iptables); needs --next-hop-mac or @mac in -x.",
    example: "-o eth1 --next-hop-mac 02:00:00:00:00:02",
  },
  {
    long: "next-hop-mac",
    arg: "MAC",
    help: "Destination MAC for -o: the target's, or the router's towards it.",
    example: "--next-hop-mac 02:00:00:00:00:02",
  },
  {
    long: "log",
    short: "l",
    arg: "FILE",
    help:
      "Write the log to FILE instead of stderr (created 0640, a symlink refused; SIGHUP reopens).",
    example: "-l /var/log/tcpcopy.log",
  },
  {
    long: "stats-interval",
    arg: "S",
    help: "Print a JSON stats line on stdout every S seconds (default 5; 0 = only at exit).",
    example: "--stats-interval 1",
  },
  {
    long: "metrics",
    arg: "[host:]port",
    help: "Serve Prometheus metrics on http://host:port/metrics (host default 127.0.0.1).",
    example: "--metrics 9120",
  },
  {
    long: "compare",
    help: "Compare every replayed request's answer: the online server's (captured here, " +
      "both directions) with the target's (summarised by intercept, which sends them only " +
      "to an authenticated tcpcopy: needs --secret-file). Mismatches go to --compare-log, " +
      "counts and latencies to the stats line's compare object and /metrics.",
    example:
      "--compare --secret-file /etc/tcpcopy/secret --compare-log /var/log/tcpcopy-diff.ndjson",
  },
  {
    long: "compare-proto",
    arg: "auto|http|resp|pg|bytes",
    help: "With --compare: how answers are compared (default auto: sniffed per request).",
    example: "--compare-proto http",
  },
  {
    long: "compare-bytes",
    arg: "N",
    help: "With --compare: first answer bytes kept and compared per request, 16..65536 " +
      "(default 1024); the rest is compared by length and digest.",
    example: "--compare-bytes 4096",
  },
  {
    long: "compare-max-pending",
    arg: "N",
    help: "With --compare: most requests per connection waiting for the target's answer, " +
      "1..1000000 (default 256); a replay that lags further skips the newest (compare.skipped). " +
      "More compares keep-alive bursts whole, at their memory (within -m) and CPU.",
    example: "--compare-max-pending 4096",
  },
  {
    long: "compare-ignore-header",
    arg: "NAME",
    help: "With --compare: an HTTP header left out of the comparison, besides Date, Server, " +
      "Set-Cookie, ETag, Last-Modified, Expires, Age and X-Request-Id (repeatable).",
    example: "--compare-ignore-header X-Trace-Id",
    multiple: true,
  },
  {
    long: "compare-log",
    arg: "FILE",
    help: "With --compare: write one JSON record per mismatching request to FILE ('-' for " +
      'stdout, beside the stats lines; records have type "compare"). SIGHUP reopens it; ' +
      "records that cannot be written are counted (compare.log_errors) and logged.",
    example: "--compare-log /var/log/tcpcopy-diff.ndjson",
  },
  {
    long: "compare-all",
    help: "With --compare-log: a record for every compared request, not only mismatches.",
    example: "--compare-all",
  },
  {
    long: "compare-fail-above",
    arg: "RATIO",
    help: "With --compare: exit with code 3 when mismatched/compared requests is above " +
      "RATIO (0..1) at the end (a regression gate for --offline runs in CI).",
    example: "--compare-fail-above 0.001",
  },
  { long: "version", short: "v", help: "Print the version and exit.", example: "-v" },
  { long: "help", short: "h", help: "Print this help and exit.", example: "-h" },
  {
    long: "offline",
    arg: "FILE",
    help: "Replay a capture file (pcap or pcapng, e.g. from tcpdump -w) instead of capturing " +
      "live: client packets to the -x online ports are replayed to the target, with their " +
      "recorded timing; the program exits by itself when the file is done.",
    example: "--offline /var/tmp/prod.pcap",
  },
  {
    long: "accelerate",
    short: "a",
    arg: "N",
    help: "With --offline: replay N times faster than recorded (fractions allowed, 0.5 = half " +
      "speed; default 1).",
    example: "-a 10",
  },
  {
    long: "skip-gap",
    short: "I",
    arg: "MS",
    help: "With --offline: collapse idle gaps longer than MS milliseconds between replayed " +
      "packets (default 0 = keep every gap).",
    example: "-I 500",
  },
  {
    long: "repeat",
    short: "T",
    arg: "N",
    help: "With --offline: replay the file N times; each pass uses fresh client ports and " +
      "sequence numbers (default 1).",
    example: "-T 3",
  },
];

/** The `parseArgs` options object built from FLAGS. */
export function parseArgsOptions(): Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
> {
  const out: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> =
    {};
  for (const f of FLAGS) {
    out[f.long] = {
      type: f.arg ? "string" : "boolean",
      ...(f.short ? { short: f.short } : {}),
      ...(f.multiple ? { multiple: true } : {}),
    };
  }
  return out;
}

/** The name a user sees for a flag: `-x, --transfer` or `--metrics`. */
export function flagName(long: string): string {
  const f = FLAGS.find((x) => x.long === long);
  return f?.short ? `-${f.short}/--${long}` : `--${long}`;
}

/** Renders the help text (usage, every flag with an example, exit codes). */
export function renderHelp(): string {
  const lines = [
    "tcpcopy: replicate live TCP traffic from this (online) host to a target server.",
    "",
    "Usage: tcpcopy -x [onlineIP:]onlinePort-targetIP:targetPort -s intercept[:port] [options]",
    "       tcpcopy doctor [--json] [-x ...] [-s ...] [-i ...] [--secret-file FILE] [--module NAME --auth-file FILE]   check this host's set-up",
    "",
    "Example: replicate port 80 to 10.0.0.2:8080, intercept running on 10.0.0.2:",
    "  sudo tcpcopy -x 80-10.0.0.2:8080 -s 10.0.0.2 -c 10.1.2.x",
    "",
    "Options:",
  ];
  for (const f of FLAGS) {
    if (f.reserved) continue;
    const names = `${f.short ? `-${f.short}, ` : "    "}--${f.long}${f.arg ? ` ${f.arg}` : ""}`;
    lines.push(`  ${names}`);
    lines.push(`      ${f.help}`);
    if (f.example) lines.push(`      e.g. ${f.example}`);
  }
  lines.push(
    "",
    "Output: one JSON stats object per line on stdout (every --stats-interval seconds and at",
    "exit); log lines on stderr or --log FILE.",
    "Exit codes: 0 done (SIGINT/SIGTERM), 1 runtime problem (intercept unreachable, no",
    "privilege, missing device), 2 bad command line, 3 mismatch ratio above",
    "--compare-fail-above.",
  );
  return lines.join("\n");
}
