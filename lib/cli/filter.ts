/**
 * The default BPF capture filter, generated from the transfer list (the C original's
 * `construct_filter`), plus a guard that keeps tcpcopy from capturing its own output when an
 * online rule would also match a target endpoint.
 */
import type { Transfer } from "./transfer.ts";

/**
 * The online server's packets `--compare` has no use for, left out in the kernel: IPv4 ones
 * without payload and without SYN, FIN or RST (ACKs: on a short connection the server ACKs the
 * request before it answers, one packet in four). The comparison reads SYN-ACKs, answer bytes,
 * FIN and RST only (lib/tcpcopy/compare_flow.ts `onServer`); IPv6 ACKs, whose payload length a
 * portable filter cannot compute, still come and are ignored there.
 */
export const NO_SERVER_ACKS =
  "not (ip and tcp[13] & 7 = 0 and ip[2:2] = ((ip[0] & 0xf) << 2) + ((tcp[12] & 0xf0) >> 2))";

/**
 * Builds `tcp and ((dst port P and dst host H) or ...) [and not (...targets...)]`. With
 * `answers` (`--compare`) the online server's packets to its clients are captured too:
 * `(src port P and src host H and NO_SERVER_ACKS)` for each transfer; with `moduleAnswers` for
 * each transfer with a protocol module (production's verdict on logins, unless
 * `--module-trust-logins`; all of its packets).
 */
export function buildCaptureFilter(
  transfers: readonly Transfer[],
  answers = false,
  moduleAnswers = false,
): string {
  const terms = transfers.map((t) =>
    t.onlineIp === null
      ? `(dst port ${t.onlinePort})`
      : `(dst port ${t.onlinePort} and dst host ${t.onlineIp})`
  );
  if (answers || moduleAnswers) {
    for (const t of transfers) {
      if (!answers && t.module === null) continue;
      const acks = moduleAnswers && t.module !== null ? "" : ` and ${NO_SERVER_ACKS}`;
      terms.push(
        t.onlineIp === null
          ? `(src port ${t.onlinePort}${acks})`
          : `(src port ${t.onlinePort} and src host ${t.onlineIp}${acks})`,
      );
    }
  }
  // A target endpoint that some online rule also matches would loop our sends back in.
  const loops = new Set<string>();
  for (const target of transfers) {
    for (const rule of transfers) {
      const portMatches = rule.onlinePort === target.targetPort;
      const hostMatches = rule.onlineIp === null || rule.onlineIp === target.targetIp;
      if (portMatches && hostMatches) {
        loops.add(`(dst port ${target.targetPort} and dst host ${target.targetIp})`);
      }
    }
  }
  let filter = `tcp and (${terms.join(" or ")})`;
  if (loops.size > 0) filter += ` and not (${[...loops].join(" or ")})`;
  return filter;
}
