/**
 * Does this process run with privileges its caller does not have (a setcap or setuid/setgid
 * executable)? Then the environment belongs to someone less trusted than the process, and
 * path overrides such as TCPCOPY_LIBPCAP must not be believed blindly.
 *
 * The decision ({@link judgePrivilege}) is pure; {@link readPrivilegeFacts} reads /proc.
 * A process counts as raised when any of these holds:
 *
 * 1. `AT_SECURE` (auxv type 23) is non-zero in /proc/self/auxv: the kernel's own flag, the one
 *    glibc uses to ignore LD_PRELOAD (setuid/setgid, file capabilities, LSM transitions);
 * 2. /proc/self/status: real uid ≠ effective uid, or real gid ≠ effective gid (setuid/setgid);
 * 3. /proc/self/status: uid ≠ 0 and CapPrm holds a capability CapAmb does not: it came from
 *    the file's capabilities, which is the kernel's own rule for AT_SECURE. Ambient capabilities
 *    (systemd `AmbientCapabilities=` with `User=`) belong to the caller and do not count, nor
 *    does root's full set when the real uid is 0;
 * 4. a /proc file cannot be read: unknown counts as raised. In practice /proc/self/auxv is
 *    unreadable exactly in case 3: a privilege-raising exec makes the process non-dumpable, and
 *    the /proc files of a non-dumpable process are owned by root (auxv is 0400).
 *
 * Rules 2 and 3 alone reproduce the kernel's condition; rule 1 adds LSM transitions where auxv is
 * readable; rule 4 keeps the answer safe when /proc is missing or hidden.
 *
 * @module
 */

/** auxv entry type of AT_SECURE (elf.h). */
export const AT_SECURE = 23;

/** The ids and capability sets from /proc/self/status. */
export interface ProcStatus {
  /** real and effective uid */
  uid: number;
  euid: number;
  /** real and effective gid */
  gid: number;
  egid: number;
  capPrm: bigint;
  capAmb: bigint;
}

/** What {@link judgePrivilege} looks at: each is an error text when it could not be read. */
export interface PrivilegeFacts {
  /** AT_SECURE from /proc/self/auxv (0 when absent), or why it could not be read. */
  atSecure: number | { error: string };
  /** /proc/self/status parsed, or why it could not be read. */
  status: ProcStatus | { error: string };
}

/** The verdict: `raised` with the reason, for messages. */
export interface Privilege {
  raised: boolean;
  /** e.g. "AT_SECURE=1" or "CapPrm 0x3000 beyond CapAmb 0x0 for uid 65534 (file capabilities)" */
  why: string;
}

/** Parses the Uid:, Gid:, CapPrm: and CapAmb: lines of /proc/self/status; undefined if absent. */
export function parseProcStatus(text: string): ProcStatus | undefined {
  const ids = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+(\\d+)`, "m").exec(text);
    return m ? [Number(m[1]), Number(m[2])] : undefined;
  };
  const cap = (name: string) => {
    const m = new RegExp(`^${name}:\\s+([0-9a-fA-F]+)\\s*$`, "m").exec(text);
    return m ? BigInt(`0x${m[1]}`) : undefined;
  };
  const u = ids("Uid"), g = ids("Gid"), capPrm = cap("CapPrm"), capAmb = cap("CapAmb");
  if (!u || !g || capPrm === undefined || capAmb === undefined) return undefined;
  return { uid: u[0], euid: u[1], gid: g[0], egid: g[1], capPrm, capAmb };
}

/**
 * AT_SECURE from the raw bytes of /proc/self/auxv (pairs of little-endian 64-bit words, LP64),
 * 0 when the entry is missing; undefined when the bytes are not whole pairs.
 */
export function parseAuxvSecure(bytes: Uint8Array): number | undefined {
  if (bytes.length % 16 !== 0) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let off = 0; off < bytes.length; off += 16) {
    const type = view.getBigUint64(off, true);
    if (type === 0n) break; // AT_NULL
    if (type === BigInt(AT_SECURE)) return Number(view.getBigUint64(off + 8, true));
  }
  return 0;
}

/** Decides whether the process runs with raised privileges (see the module comment). */
export function judgePrivilege(facts: PrivilegeFacts): Privilege {
  const { atSecure, status } = facts;
  if (typeof atSecure === "number" && atSecure !== 0) {
    return { raised: true, why: `AT_SECURE=${atSecure}` };
  }
  if ("error" in status) {
    return { raised: true, why: `cannot read /proc/self/status (${status.error})` };
  }
  if (status.uid !== status.euid) {
    return { raised: true, why: `effective uid ${status.euid} ≠ real uid ${status.uid} (setuid)` };
  }
  if (status.gid !== status.egid) {
    return { raised: true, why: `effective gid ${status.egid} ≠ real gid ${status.gid} (setgid)` };
  }
  const gained = status.capPrm & ~status.capAmb;
  if (status.uid !== 0 && gained !== 0n) {
    return {
      raised: true,
      why: `CapPrm 0x${status.capPrm.toString(16)} beyond CapAmb 0x${
        status.capAmb.toString(16)
      } for uid ${status.uid} (file capabilities)`,
    };
  }
  if (typeof atSecure !== "number") {
    return { raised: true, why: `cannot read /proc/self/auxv (${atSecure.error})` };
  }
  return { raised: false, why: "AT_SECURE=0, real = effective ids, no capabilities from the file" };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Reads /proc/self/auxv and /proc/self/status (the edge of {@link judgePrivilege}). */
export function readPrivilegeFacts(): PrivilegeFacts {
  let atSecure: PrivilegeFacts["atSecure"];
  try {
    atSecure = parseAuxvSecure(Deno.readFileSync("/proc/self/auxv")) ??
      { error: "not whole 16-byte entries" };
  } catch (e) {
    atSecure = { error: errorText(e) };
  }
  let status: PrivilegeFacts["status"];
  try {
    status = parseProcStatus(Deno.readTextFileSync("/proc/self/status")) ??
      { error: "no Uid/Gid/CapPrm/CapAmb lines" };
  } catch (e) {
    status = { error: errorText(e) };
  }
  return { atSecure, status };
}
