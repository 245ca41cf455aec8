/**
 * The one list of system packages the project needs: every library the programs load and every
 * external program that the programs, `doctor`, the tests, the demo and the benchmarks run, with
 * the Debian/Ubuntu and RPM packages that provide it and what it is needed for.
 *
 * Everything reads this list: `build.sh` (through `tools/setup.ts`) installs what `demo` and
 * `test` need, `.ci/run` goes through `build.sh`, `doctor` reports what its program lacks, the
 * library loaders name the package to install, and the tests' command runner refuses a program
 * that is not listed here (`tests/unit/setup_packages.test.ts` also scans the sources for one).
 * Adding a program to a test means adding a line here.
 *
 * @module
 */

/** What a requirement is needed for. */
export type Purpose =
  /** tcpcopy on the online host (live capture, offline replay). */
  | "tcpcopy"
  /** intercept in NFQUEUE mode on the target. */
  | "intercept"
  /** intercept in pcap mode on an assistant host. */
  | "intercept-pcap"
  /** `./build.sh test` without root: the unit tests. */
  | "unit-tests"
  /** `./build.sh test` as root: the end-to-end tests in network namespaces. */
  | "e2e-tests"
  /** `./build.sh demo`. */
  | "demo"
  /** the end-to-end benchmark scripts in `bench/` (not installed by build.sh). */
  | "bench";

/** One library or program and the packages that provide it. */
export interface Requirement {
  kind: "program" | "library";
  /** Program name as looked up on PATH, or library soname. */
  name: string;
  /** Debian/Ubuntu package names, the first one the archive has wins (releases rename some). */
  apt: readonly string[];
  /** RPM (dnf/yum) package name. */
  rpm: string;
  /** What it is used for, a few words (shown when it is installed or missing). */
  why: string;
  /** Who needs it. */
  needs: readonly Purpose[];
  /** The program works without it, with less to go on (`doctor` warns instead of failing). */
  optional?: boolean;
  /** Libraries: the environment variable that overrides the path (see lib/io/library.ts). */
  envVar?: string;
}

const TESTS_AND_DEMO = ["e2e-tests", "demo"] as const;

/** The list. Keep it sorted by kind, then by who needs it most. */
export const REQUIREMENTS: readonly Requirement[] = [
  {
    kind: "library",
    name: "libc.so.6",
    envVar: "TCPCOPY_LIBC",
    apt: ["libc6"],
    rpm: "glibc",
    why: "sockets, poll, raw send",
    needs: ["tcpcopy", "intercept", "intercept-pcap", "unit-tests", ...TESTS_AND_DEMO],
  },
  {
    kind: "library",
    name: "libpcap.so.0.8",
    envVar: "TCPCOPY_LIBPCAP",
    apt: ["libpcap0.8", "libpcap0.8t64"],
    rpm: "libpcap",
    why: "capture filters, offline files, pcap capture",
    needs: ["tcpcopy", "intercept-pcap", "unit-tests", ...TESTS_AND_DEMO],
  },
  {
    kind: "library",
    name: "libnetfilter_queue.so.1",
    envVar: "TCPCOPY_LIBNFQ",
    apt: ["libnetfilter-queue1"],
    rpm: "libnetfilter_queue",
    why: "intercept's NFQUEUE mode",
    needs: ["intercept", ...TESTS_AND_DEMO],
  },
  {
    kind: "program",
    name: "iptables",
    apt: ["iptables"],
    rpm: "iptables",
    why: "intercept's NFQUEUE rules",
    needs: ["intercept", ...TESTS_AND_DEMO],
  },
  {
    kind: "program",
    name: "ip6tables",
    apt: ["iptables"],
    rpm: "iptables",
    why: "intercept's NFQUEUE rules for IPv6",
    needs: ["intercept", ...TESTS_AND_DEMO],
  },
  {
    kind: "program",
    name: "nft",
    apt: ["nftables"],
    rpm: "nftables",
    why: "intercept's check for native nft rules on its ports",
    needs: ["intercept", "e2e-tests"],
    optional: true,
  },
  {
    kind: "program",
    name: "ethtool",
    apt: ["ethtool"],
    rpm: "ethtool",
    why: "doctor's GRO check of capture devices",
    needs: ["tcpcopy", "e2e-tests"],
    optional: true,
  },
  {
    kind: "program",
    name: "ip",
    apt: ["iproute2"],
    rpm: "iproute",
    why: "network namespaces and veth pairs",
    needs: TESTS_AND_DEMO,
  },
  {
    kind: "program",
    name: "sysctl",
    apt: ["procps"],
    rpm: "procps-ng",
    why: "namespace settings",
    needs: TESTS_AND_DEMO,
  },
  {
    kind: "program",
    name: "nginx",
    apt: ["nginx-light", "nginx"],
    rpm: "nginx",
    why: "the online and target web servers",
    needs: TESTS_AND_DEMO,
  },
  {
    kind: "program",
    name: "ab",
    apt: ["apache2-utils"],
    rpm: "httpd-tools",
    why: "HTTP load",
    needs: TESTS_AND_DEMO,
  },
  {
    kind: "program",
    name: "curl",
    apt: ["curl"],
    rpm: "curl",
    why: "HTTP requests and POSTs",
    needs: TESTS_AND_DEMO,
  },
  {
    kind: "program",
    name: "bash",
    apt: ["bash"],
    rpm: "bash",
    why: "test scripts",
    needs: TESTS_AND_DEMO,
  },
  {
    kind: "program",
    name: "cat",
    apt: ["coreutils"],
    rpm: "coreutils",
    why: "test scripts",
    needs: TESTS_AND_DEMO,
  },
  {
    kind: "program",
    name: "sleep",
    apt: ["coreutils"],
    rpm: "coreutils",
    why: "test scripts",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "sh",
    apt: ["dash"],
    rpm: "bash",
    why: "test scripts, the self-extracting launcher",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "tar",
    apt: ["tar"],
    rpm: "tar",
    why: "the launcher test (the launcher unpacks itself with it)",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "timeout",
    apt: ["coreutils"],
    rpm: "coreutils",
    why: "test scripts",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "head",
    apt: ["coreutils"],
    rpm: "coreutils",
    why: "test scripts",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "tr",
    apt: ["coreutils"],
    rpm: "coreutils",
    why: "test scripts",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "awk",
    apt: ["mawk", "gawk"],
    rpm: "gawk",
    why: "test scripts",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "setpriv",
    apt: ["util-linux"],
    rpm: "util-linux",
    why: "the setcap test (runs as an unprivileged user)",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "tcpdump",
    apt: ["tcpdump"],
    rpm: "tcpdump",
    why: "recording captures for the offline tests",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "redis-server",
    apt: ["redis-server"],
    rpm: "redis",
    why: "the Redis servers of the --module redis tests",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "redis-cli",
    apt: ["redis-tools"],
    rpm: "redis",
    why: "the Redis client of the --module redis tests",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "redis-benchmark",
    apt: ["redis-tools"],
    rpm: "redis",
    why: "Redis load for the --module redis tests",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "setcap",
    apt: ["libcap2-bin"],
    rpm: "libcap",
    why: "the setcap test",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "mariadbd",
    apt: ["mariadb-server"],
    rpm: "mariadb-server",
    why: "the MySQL module's end-to-end test (online and target database servers)",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "mariadb-install-db",
    apt: ["mariadb-server"],
    rpm: "mariadb-server",
    why: "the MySQL module's end-to-end test (fresh data directories)",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "mariadb",
    apt: ["mariadb-client"],
    rpm: "mariadb",
    why: "the MySQL module's end-to-end test (users, tables, row checks)",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "mariadb-slap",
    apt: ["mariadb-client"],
    rpm: "mariadb",
    why: "the MySQL module's end-to-end test (load through tcpcopy)",
    needs: ["e2e-tests"],
  },
  {
    kind: "program",
    name: "taskset",
    apt: ["util-linux"],
    rpm: "util-linux",
    why: "pinning benchmark processes to a core",
    needs: ["bench"],
  },
  {
    kind: "program",
    name: "perf",
    apt: ["linux-perf"],
    rpm: "perf",
    why: "bench --perf-of profiles",
    needs: ["bench"],
  },
  {
    kind: "program",
    name: "h2load",
    apt: ["nghttp2-client"],
    rpm: "nghttp2",
    why: "HTTP/2 and paced keep-alive load in bench/e2e_replication.ts",
    needs: ["bench"],
  },
  {
    kind: "program",
    name: "ss",
    apt: ["iproute2"],
    rpm: "iproute",
    why: "bench/e2e_replication.ts: is the C tcpcopy connected to its intercept",
    needs: ["bench"],
  },
  {
    kind: "program",
    name: "cc",
    apt: ["gcc"],
    rpm: "gcc",
    why: "the C baselines of the I/O benchmarks",
    needs: ["bench"],
  },
];

/** The requirement called `name` (program or soname), if listed. */
export function requirement(name: string): Requirement | undefined {
  return REQUIREMENTS.find((r) => r.name === name);
}

/** The requirements any of `purposes` needs, in list order. */
export function requirementsFor(purposes: readonly Purpose[]): Requirement[] {
  return REQUIREMENTS.filter((r) => r.needs.some((n) => purposes.includes(n)));
}

/**
 * How to get `name`, for error lines: "libpcap0.8 (Debian/Ubuntu) / libpcap (RPM)".
 *
 * @example
 * ```ts
 * packageAdvice("ab"); // "apache2-utils (Debian/Ubuntu) / httpd-tools (RPM)"
 * ```
 */
export function packageAdvice(name: string): string {
  const r = requirement(name);
  if (!r) return `the package that provides ${name}`;
  return `${r.apt.join(" or ")} (Debian/Ubuntu) / ${r.rpm} (RPM)`;
}

/**
 * The loader's view of a listed library: soname, override variable and install advice, for
 * `openLibrary` (lib/io/library.ts).
 */
export function librarySpec(soname: string): { soname: string; envVar: string; packages: string } {
  const r = requirement(soname);
  if (r?.kind !== "library" || !r.envVar) throw new Error(`${soname} is not a listed library`);
  return { soname, envVar: r.envVar, packages: packageAdvice(soname) };
}

/** Package managers build.sh knows how to drive. */
export type PackageManager = "apt" | "dnf" | "yum";

/** The package names to install for `missing` with `manager` (deduplicated, list order). */
export function packagesFor(
  missing: readonly Requirement[],
  manager: PackageManager,
  aptHas: (pkg: string) => boolean = () => true,
): string[] {
  const out: string[] = [];
  for (const r of missing) {
    const pkg = manager === "apt" ? (r.apt.find(aptHas) ?? r.apt[0]) : r.rpm;
    if (!out.includes(pkg)) out.push(pkg);
  }
  return out;
}

/** The command that installs `packages` with `manager`, as an operator would type it. */
export function installCommand(manager: PackageManager, packages: readonly string[]): string {
  const list = packages.join(" ");
  switch (manager) {
    case "apt":
      return `sudo apt-get install -y --no-install-recommends ${list}`;
    case "dnf":
      return `sudo dnf install -y ${list}`;
    case "yum":
      return `sudo yum install -y ${list}`;
    default: {
      const never: never = manager;
      return never;
    }
  }
}

/** "nginx (the online and target web servers), ab (HTTP load)" for a status line. */
export function describe(missing: readonly Requirement[]): string {
  return missing.map((r) => `${r.name} (${r.why})`).join(", ");
}
