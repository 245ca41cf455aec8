/**
 * The default BPF capture filter, generated from the transfer list (the C original's
 * `construct_filter`), plus a guard that keeps tcpcopy from capturing its own output when an
 * online rule would also match a target endpoint.
 */
import type { Transfer } from "./transfer.ts";

/**
 * Builds `tcp and ((dst port P and dst host H) or ...) [and not (...targets...)]`. With
 * `answers` (`--compare`) the online server's packets to its clients are captured too:
 * `(src port P and src host H)` for each transfer; with `moduleAnswers` for each transfer with
 * a protocol module (production's verdict on logins, unless `--module-trust-logins`).
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
      terms.push(
        t.onlineIp === null
          ? `(src port ${t.onlinePort})`
          : `(src port ${t.onlinePort} and src host ${t.onlineIp})`,
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
