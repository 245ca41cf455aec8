/**
 * `--metrics`: the Prometheus endpoint of both programs (lib/metrics/server.ts) started with its
 * log line. What a failure to listen means is the program's: tcpcopy logs it and replicates
 * anyway, intercept stops (its start is all-or-nothing).
 */
import { type MetricsAddress, type MetricsServer, serveMetrics } from "../metrics/server.ts";
import type { Logger } from "../stats/logger.ts";

/** Serves `render()` on http://address/metrics and logs where; the error when it cannot. */
export function startMetrics(
  address: MetricsAddress,
  render: () => string,
  log: Logger,
): MetricsServer | Error {
  let server: MetricsServer;
  try {
    server = serveMetrics(address, render);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
  log.info(`metrics on http://${address.hostname}:${server.port}/metrics`);
  return server;
}
