/**
 * Running a command as the unprivileged user nobody (uid/gid 65534) with `setpriv`, for the
 * tests of what an unprivileged caller may do (tests/e2e/setcap.test.ts,
 * tests/build/launcher.test.ts).
 *
 * @module
 */

/** uid and gid of user nobody. */
export const NOBODY = 65534;

/** What nobody keeps of the caller's capabilities. */
export type NobodyCaps =
  /** setpriv's default: no capability flag on its command line. */
  | "default"
  /** `--inh-caps=-all`: nothing inheritable, so nothing survives the exec. */
  | "none"
  /** CAP_NET_RAW and CAP_NET_ADMIN inheritable and ambient (systemd's AmbientCapabilities=). */
  | "ambient-net";

/** The `setpriv` command line that runs what follows it as nobody, with no supplementary groups. */
export function asNobody(caps: NobodyCaps): string[] {
  // an `argv = [...]` array, the form tests/unit/setup_packages.test.ts finds programs in
  const argv = ["setpriv", ...setprivArgs(caps)];
  return argv;
}

/** {@link asNobody} without the program name: `setpriv`'s arguments. */
export function setprivArgs(caps: NobodyCaps): string[] {
  const args = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];
  switch (caps) {
    case "default":
      return args;
    case "none":
      return [...args, "--inh-caps=-all"];
    case "ambient-net":
      return [...args, "--inh-caps=+net_raw,+net_admin", "--ambient-caps=+net_raw,+net_admin"];
    default: {
      const never: never = caps;
      throw new Error(`unknown caps ${never}`);
    }
  }
}
