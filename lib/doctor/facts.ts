/**
 * Reads the host facts the doctor checks judge (see checks.ts): /proc and /sys files, library
 * loading, `ethtool -k`, `iptables -S OUTPUT`, TCP connects to intercept. Nothing is changed.
 *
 * @module
 */
import { openLibrary } from "../io/library.ts";
import { PCAP_LIBRARY } from "../io/pcap_lib.ts";
import type { HostFacts, Role } from "./checks.ts";

const NFQ_LIBRARY = {
  soname: "libnetfilter_queue.so.1",
  envVar: "TCPCOPY_LIBNFQ",
  packages: "libnetfilter-queue1 (Debian/Ubuntu) / libnetfilter_queue (RPM)",
};
const LIBC_LIBRARY = {
  soname: "libc.so.6",
  envVar: "TCPCOPY_LIBC",
  packages: "libc6 (Debian) / glibc (RPM)",
};

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

function libraryError(spec: typeof NFQ_LIBRARY): string {
  try {
    openLibrary(spec, {}).close();
    return "";
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
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
  const libs = role === "tcpcopy"
    ? { [PCAP_LIBRARY.soname]: PCAP_LIBRARY, [LIBC_LIBRARY.soname]: LIBC_LIBRARY }
    : {
      [PCAP_LIBRARY.soname]: PCAP_LIBRARY,
      [NFQ_LIBRARY.soname]: NFQ_LIBRARY,
      [LIBC_LIBRARY.soname]: LIBC_LIBRARY,
    };
  const facts: HostFacts = {
    uid: Deno.uid() ?? -1,
    capEff: capHex === undefined ? undefined : BigInt(`0x${capHex}`),
    libraries: {},
    libraryPackages: {},
    devices: {},
    ipForward: await readText("/proc/sys/net/ipv4/ip_forward"),
    rpFilter: {},
    gro: {},
    mtu: {},
    ports: targets.ports,
    intercepts: {},
  };
  for (const [name, spec] of Object.entries(libs)) {
    facts.libraries[name] = libraryError(spec);
    facts.libraryPackages[name] = spec.packages;
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
  }
  for (const { host, port } of targets.intercepts) {
    facts.intercepts[`${host}:${port}`] = await connectError(host, port);
  }
  return facts;
}
