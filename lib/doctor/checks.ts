/**
 * `tcpcopy doctor` / `intercept doctor`: the checks, as pure functions from host facts to
 * verdicts. Each verdict says what was found and, when it fails, the exact fix.
 *
 * Most reports against the C tcpcopy are "the target receives nothing" (routing, rp_filter,
 * ip_forward, iptables) or "traffic is missing" (GRO super-packets, small buffers): the checks
 * below cover those causes.
 *
 * @module
 */

import { findConflict, RULE_TAG_PREFIX } from "../intercept/rules.ts";
import { packageAdvice, type Purpose, requirement, requirementsFor } from "../setup/packages.ts";

/** Outcome of one check. */
export interface Verdict {
  id: string;
  status: "pass" | "warn" | "fail";
  /** What was found, one line. */
  summary: string;
  /** The exact fix when status is not pass. */
  fix?: string;
}

/** Which program the checks are for. */
export type Role = "tcpcopy" | "intercept";

/** Facts read from the host (see facts.ts); undefined = could not be read. */
export interface HostFacts {
  uid: number;
  /** Effective capability mask (CapEff of /proc/self/status). */
  capEff?: bigint;
  /** Library name -> load error ("" when it loads). */
  libraries: Record<string, string>;
  /** Install advice per library name. */
  libraryPackages: Record<string, string>;
  /** Program name -> found on PATH (the programs of lib/setup/packages.ts the role runs). */
  programs: Record<string, boolean>;
  /** Advice that replaces the install advice, e.g. for an override refused under setcap. */
  libraryFixes?: Record<string, string>;
  /** Devices asked for (-i), with whether they exist. */
  devices: Record<string, boolean>;
  ipForward?: string;
  /** rp_filter per interface name ("all", "default", devices). */
  rpFilter: Record<string, string>;
  /** GRO state per device ("on"/"off"), when ethtool is available. */
  gro: Record<string, string>;
  /** MTU per device. */
  mtu: Record<string, number>;
  /** `iptables -S OUTPUT` lines (intercept), undefined when iptables is missing. */
  iptablesOutput?: string[];
  /** intercept's tagged lines whose owner is gone -> why (see judgeOwner in rules.ts). */
  staleRules?: Record<string, string>;
  /** Ports intercept protects (--port), to look for the NFQUEUE rules. */
  ports: number[];
  /** tcpcopy: the -x targets that are addresses of this host (replay would hit production). */
  selfTargets?: string[];
  /** intercept endpoints tcpcopy must reach (-s), with the connect error ("" = reachable). */
  intercepts: Record<string, string>;
}

const CAP_NET_ADMIN = 12n, CAP_NET_RAW = 13n;

function hasCap(facts: HostFacts, cap: bigint): boolean {
  return facts.uid === 0 || ((facts.capEff ?? 0n) >> cap & 1n) === 1n;
}

/** Privileges: root, or the capabilities each program needs. */
export function checkPrivileges(role: Role, facts: HostFacts): Verdict {
  const raw = hasCap(facts, CAP_NET_RAW), admin = hasCap(facts, CAP_NET_ADMIN);
  const need = role === "intercept" ? raw && admin : raw;
  if (need) {
    return {
      id: "privileges",
      status: "pass",
      summary: facts.uid === 0 ? "running as root" : "capabilities present",
    };
  }
  return {
    id: "privileges",
    status: "fail",
    summary: `uid ${facts.uid} without ${role === "intercept" ? "CAP_NET_ADMIN/" : ""}CAP_NET_RAW`,
    fix: `run as root (sudo), or: sudo setcap cap_net_raw,cap_net_admin+ep ./${role} ` +
      "(a deno compile build, never the deno runtime), or systemd AmbientCapabilities=",
  };
}

/** What `role` needs from lib/setup/packages.ts (intercept: NFQUEUE mode, or pcap mode). */
export function rolePurposes(role: Role, assistant: boolean): Purpose[] {
  if (role === "tcpcopy") return ["tcpcopy"];
  return assistant ? ["intercept-pcap"] : ["intercept"];
}

function neededBy(role: Role, assistant: boolean): Set<string> {
  return new Set(requirementsFor(rolePurposes(role, assistant)).map((r) => r.name));
}

/** Every library the program loads in this mode is present. */
export function checkLibraries(role: Role, facts: HostFacts, assistant = false): Verdict[] {
  const needed = neededBy(role, assistant);
  const libraries = Object.entries(facts.libraries).filter(([name]) => needed.has(name));
  return libraries.map(([name, error]) =>
    error === "" ? { id: `library:${name}`, status: "pass", summary: `${name} loads` } : {
      id: `library:${name}`,
      status: "fail",
      summary: `${name} does not load: ${error}`,
      fix: facts.libraryFixes?.[name] ?? `install ${facts.libraryPackages[name] ?? name}`,
    }
  );
}

/**
 * Every program the role runs in this mode is on PATH: missing ones fail, or warn when the
 * program does without them (e.g. ethtool for the GRO check).
 */
export function checkPrograms(role: Role, facts: HostFacts, assistant = false): Verdict[] {
  const needed = neededBy(role, assistant);
  const programs = Object.entries(facts.programs).filter(([name]) => needed.has(name));
  return programs.map(([name, found]): Verdict => {
    const r = requirement(name);
    if (found) return { id: `program:${name}`, status: "pass", summary: `${name} found` };
    return {
      id: `program:${name}`,
      status: r?.optional ? "warn" : "fail",
      summary: `${name} is not installed (${r?.why ?? "needed"})`,
      fix: `install ${packageAdvice(name)}`,
    };
  });
}

/** Capture devices given with -i exist. */
export function checkDevices(facts: HostFacts): Verdict[] {
  return Object.entries(facts.devices).map(([dev, exists]) =>
    exists ? { id: `device:${dev}`, status: "pass", summary: `device ${dev} exists` } : {
      id: `device:${dev}`,
      status: "fail",
      summary: `device ${dev} does not exist`,
      fix: "pick one from `ip -br link` (or use -i any)",
    }
  );
}

/**
 * Reverse-path filtering. On the target, strict rp_filter (1) drops replicated packets whose
 * client address is not routed back through the interface they arrive on.
 */
export function checkRpFilter(role: Role, facts: HostFacts): Verdict {
  const strict = Object.entries(facts.rpFilter).filter(([, v]) => v === "1").map(([k]) => k);
  if (role === "tcpcopy" || strict.length === 0) {
    return { id: "rp_filter", status: "pass", summary: "rp_filter is not strict" };
  }
  return {
    id: "rp_filter",
    status: "warn",
    summary: `strict rp_filter on ${strict.join(", ")}: replicated packets from client ` +
      "addresses that are not routed back through the same interface are dropped",
    fix: `sysctl -w ${strict.map((i) => `net.ipv4.conf.${i}.rp_filter=2`).join(" ")} ` +
      "(loose), or route the client range (-c) back through the online host",
  };
}

/** IP forwarding: an assistant host running intercept in pcap mode must not forward replies. */
export function checkIpForward(role: Role, facts: HostFacts, assistant: boolean): Verdict {
  if (role === "intercept" && assistant && facts.ipForward === "1") {
    return {
      id: "ip_forward",
      status: "fail",
      summary: "ip_forward=1 on the assistant host: the target's replies are forwarded to " +
        "real clients, which answer them with RST",
      fix: "sysctl -w net.ipv4.ip_forward=0",
    };
  }
  return { id: "ip_forward", status: "pass", summary: `ip_forward=${facts.ipForward ?? "?"}` };
}

/** GRO/LRO make captured packets larger than the MTU; tcpcopy re-segments, but warns. */
export function checkOffload(role: Role, facts: HostFacts): Verdict[] {
  if (role !== "tcpcopy") return [];
  return Object.entries(facts.gro).map(([dev, state]) =>
    state === "on"
      ? {
        id: `gro:${dev}`,
        status: "warn",
        summary: `generic-receive-offload is on for ${dev}: captured packets can be larger ` +
          `than the MTU (${facts.mtu[dev] ?? "?"}), tcpcopy re-segments them to the target MSS`,
        fix: `ethtool -K ${dev} gro off (optional; removes the re-segmentation work)`,
      }
      : { id: `gro:${dev}`, status: "pass", summary: `GRO off on ${dev}` }
  );
}

/**
 * NFQUEUE rules: intercept installs its own, tagged ones at start and refuses to start when
 * another rule already handles replies from its port (the same test as intercept's own, see
 * lib/intercept/rules.ts).
 */
export function checkQueueRules(facts: HostFacts): Verdict[] {
  if (facts.iptablesOutput === undefined) {
    return [{
      id: "iptables",
      status: "fail",
      summary: "iptables is not available",
      fix: `install ${packageAdvice("iptables")} (intercept installs its NFQUEUE rules with it)`,
    }];
  }
  const own = facts.iptablesOutput.filter((l) => l.includes(RULE_TAG_PREFIX));
  const foreign = facts.iptablesOutput.filter((l) => !l.includes(RULE_TAG_PREFIX)).join("\n");
  return facts.ports.map((port) => {
    const conflict = findConflict(foreign, [port], -1);
    if (conflict !== undefined) {
      return {
        id: `nfqueue:${port}`,
        status: "fail",
        summary: `a rule not made by intercept already handles replies from port ${port}: ` +
          conflict,
        fix: `remove it: iptables ${conflict.replace(/^-A /, "-D ")}`,
      };
    }
    const mine = own.filter((l) => findConflict(l, [port], -1) !== undefined);
    const stale = mine.find((l) => facts.staleRules?.[l] !== undefined);
    if (stale !== undefined) {
      return {
        id: `nfqueue:${port}`,
        status: "warn",
        summary: `a stale intercept rule blocks replies from port ${port} ` +
          `(${facts.staleRules![stale]}; fail-closed): ${stale}`,
        fix: "intercept cleanup (or start intercept again: it replaces the stale rule)",
      };
    }
    if (mine.some((l) => /\s--queue-bypass\b/.test(l))) {
      return {
        id: `nfqueue:${port}`,
        status: "warn",
        summary: `intercept runs FAIL-OPEN for port ${port} (--fail-open, --queue-bypass): ` +
          `if it stops, the target's replies reach the real clients`,
        fix: "restart intercept without --fail-open to fail closed (replies dropped while " +
          "it is gone)",
      };
    }
    return {
      id: `nfqueue:${port}`,
      status: "pass",
      summary: mine.length > 0
        ? `intercept's NFQUEUE rule for port ${port} is installed (intercept is running, ` +
          `fail-closed)`
        : `no conflicting rule for port ${port} (intercept installs its own at start)`,
    };
  });
}

/** No -x target is this host: tcpcopy refuses that at start (replay would hit production). */
export function checkSelfTargets(facts: HostFacts): Verdict[] {
  if (facts.selfTargets === undefined) return [];
  if (facts.selfTargets.length === 0) {
    return [{ id: "self_target", status: "pass", summary: "no target is an address of this host" }];
  }
  return [{
    id: "self_target",
    status: "fail",
    summary: `target ${facts.selfTargets.join(", ")} is an address of this host: replay would ` +
      "hit production (tcpcopy refuses to start)",
    fix:
      "give the test server's address in -x; --allow-self-target only if this host is a test host",
  }];
}

/** The intercept servers given with -s accept TCP connections. */
export function checkIntercepts(facts: HostFacts): Verdict[] {
  return Object.entries(facts.intercepts).map(([addr, error]) =>
    error === ""
      ? {
        id: `intercept:${addr}`,
        status: "pass",
        summary: `intercept ${addr} accepts connections`,
      }
      : {
        id: `intercept:${addr}`,
        status: "fail",
        summary: `intercept ${addr} is not reachable: ${error}`,
        fix: "start intercept there (intercept --port PORT), open TCP port 36524 in its " +
          "firewall, and check the route from this host",
      }
  );
}

/**
 * intercept's tunnel protection (`intercept doctor --allow ... --secret-file ...`, the same
 * flags as the run): warn when neither is given (anyone who reaches the port may register
 * routes and read reply headers), fail when the secret file would be refused at start.
 */
export function checkTunnelSecurity(
  t: { allow: number; secretFile?: string; secretError?: string },
): Verdict {
  if (t.secretError) {
    return {
      id: "tunnel:security",
      status: "fail",
      summary: t.secretError,
      fix: "chmod 600 the secret file (a regular file, not a symlink) with at least 16 bytes",
    };
  }
  if (t.secretFile === undefined && t.allow === 0) {
    return {
      id: "tunnel:security",
      status: "warn",
      summary: "no --allow and no --secret-file: any host that reaches the tunnel port may " +
        "register routes and read the target's reply headers",
      fix: "run intercept with --allow TCPCOPY_HOST/32 and/or --secret-file FILE (the same " +
        'file on tcpcopy); see README "Security model"',
    };
  }
  const parts = [
    t.secretFile !== undefined ? "shared secret" : "",
    t.allow ? `allow-list of ${t.allow}` : "",
  ].filter((x) => x !== "");
  return {
    id: "tunnel:security",
    status: "pass",
    summary: `tunnel protected: ${parts.join(" + ")}`,
  };
}

/** All checks for `role`, in the order a person would fix them. */
export function runChecks(role: Role, facts: HostFacts, assistant = false): Verdict[] {
  return [
    checkPrivileges(role, facts),
    ...checkLibraries(role, facts, assistant),
    ...checkPrograms(role, facts, assistant),
    ...checkDevices(facts),
    checkIpForward(role, facts, assistant),
    checkRpFilter(role, facts),
    ...checkOffload(role, facts),
    ...(role === "intercept" && !assistant ? checkQueueRules(facts) : []),
    ...(role === "tcpcopy" ? checkSelfTargets(facts) : []),
    ...(role === "tcpcopy" ? checkIntercepts(facts) : []),
  ];
}

/** Text report: one line per check, the fix indented below failures and warnings. */
export function formatReport(verdicts: Verdict[]): string {
  const mark = { pass: "ok  ", warn: "WARN", fail: "FAIL" } as const;
  const lines: string[] = [];
  for (const v of verdicts) {
    lines.push(`${mark[v.status]}  ${v.id}: ${v.summary}`);
    if (v.fix && v.status !== "pass") lines.push(`      fix: ${v.fix}`);
  }
  const failed = verdicts.filter((v) => v.status === "fail").length;
  const warned = verdicts.filter((v) => v.status === "warn").length;
  lines.push(`${verdicts.length} checks: ${failed} failed, ${warned} warnings`);
  return lines.join("\n");
}
