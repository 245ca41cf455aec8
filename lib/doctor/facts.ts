/**
 * Reads the host facts the doctor checks judge (see checks.ts): /proc and /sys files, library
 * loading and programs on PATH (the list in lib/setup/packages.ts), `ethtool -k`, `iptables -S OUTPUT`, TCP connects to intercept. Nothing is changed.
 *
 * @module
 */
import { libraryPath } from "../io/library.ts";
import { librarySpec, packageAdvice, requirementsFor } from "../setup/packages.ts";
import { findProgram, libraryError } from "../setup/probe.ts";
import { type HostFacts, type Role, rolePurposes } from "./checks.ts";
import { localAddresses, selfTargets } from "../tcpcopy/self_target.ts";
import { classifyTagged, readOwnerFacts } from "../intercept/rules.ts";

/** What the doctor was asked to look at. */
export interface DoctorTargets {
  devices: string[];
  ports: number[];
  /** "host:port" of intercept servers (tcpcopy). */
  intercepts: { host: string; port: number }[];
  /** Targets to send a probe SYN to (tcpcopy, with intercepts given). */
  probeTargets?: { addr: string; port: number }[];
  /** The tunnel's shared secret (tcpcopy doctor --secret-file), for the probe. */
  secret?: CryptoKey;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return undefined;
  }
}

async function command(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}

/** Advice when `soname`'s override is refused (raised privileges), else undefined. */
function overrideFix(soname: string): string | undefined {
  const spec = librarySpec(soname);
  try {
    libraryPath(spec);
    return undefined;
  } catch {
    return `unset ${spec.envVar}, or install the library root-owned and not group/other-writable`;
  }
}

async function connectError(host: string, port: number): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const conn = await Promise.race([
      Deno.connect({ hostname: host, port }),
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error("timed out after 2 s")), 2000)
      ),
    ]);
    conn.close();
    return "";
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    clearTimeout(timer);
  }
}

/** Gathers the facts for `role` about `targets`. */
export async function gatherFacts(role: Role, targets: DoctorTargets): Promise<HostFacts> {
  const status = await readText("/proc/self/status") ?? "";
  const capHex = /CapEff:\s+([0-9a-f]+)/.exec(status)?.[1];
  // Both of intercept's modes: the checks keep what the mode asked about needs.
  const needed = requirementsFor([...rolePurposes(role, false), ...rolePurposes(role, true)]);
  const facts: HostFacts = {
    uid: Deno.uid() ?? -1,
    capEff: capHex === undefined ? undefined : BigInt(`0x${capHex}`),
    libraries: {},
    libraryPackages: {},
    programs: {},
    devices: {},
    ipForward: await readText("/proc/sys/net/ipv4/ip_forward"),
    rpFilter: {},
    gro: {},
    mtu: {},
    ports: targets.ports,
    intercepts: {},
  };
  for (const r of needed) {
    if (r.kind === "library") {
      facts.libraries[r.name] = libraryError(r.name);
      facts.libraryPackages[r.name] = packageAdvice(r.name);
      const fix = overrideFix(r.name);
      if (fix !== undefined) (facts.libraryFixes ??= {})[r.name] = fix;
    } else {
      facts.programs[r.name] = findProgram(r.name) !== undefined;
    }
  }
  const devices = targets.devices.filter((d) => d !== "any");
  for (const dev of devices) {
    facts.devices[dev] = (await readText(`/sys/class/net/${dev}/ifindex`)) !== undefined;
  }
  for (const name of ["all", "default", ...devices]) {
    const v = await readText(`/proc/sys/net/ipv4/conf/${name}/rp_filter`);
    if (v !== undefined) facts.rpFilter[name] = v;
  }
  for (const dev of devices.filter((d) => facts.devices[d])) {
    const mtu = Number(await readText(`/sys/class/net/${dev}/mtu`));
    if (mtu > 0) facts.mtu[dev] = mtu;
    const k = await command("ethtool", ["-k", dev]);
    const gro = k && /generic-receive-offload:\s+(on|off)/.exec(k)?.[1];
    if (gro) facts.gro[dev] = gro;
  }
  if (role === "intercept") {
    const rules = await command("iptables", ["-w", "-S", "OUTPUT"]);
    facts.iptablesOutput = rules === undefined ? undefined : rules.split("\n").filter(Boolean);
    if (rules !== undefined) {
      facts.staleRules = {};
      for (const r of classifyTagged(rules, readOwnerFacts, Deno.pid).stale) {
        facts.staleRules[r.line] = r.why;
      }
    }
  }
  if (role === "tcpcopy" && targets.probeTargets !== undefined) {
    facts.selfTargets = selfTargets(targets.probeTargets.map((t) => t.addr), localAddresses());
  }
  for (const { host, port } of targets.intercepts) {
    facts.intercepts[`${host}:${port}`] = await connectError(host, port);
  }
  return facts;
}
