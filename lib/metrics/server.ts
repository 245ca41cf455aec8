/**
 * `--metrics [host:]port`: a tiny HTTP endpoint serving Prometheus text format on `/metrics`
 * (the same counters as the JSON stats lines). Everything else is 404.
 *
 * @module
 */

/** Where to listen: `port`, `host:port` or `[v6]:port`; default host 127.0.0.1. */
export interface MetricsAddress {
  hostname: string;
  port: number;
}

/** Parses `[host:]port`; returns an error line naming the flag on bad input. */
export function parseMetricsAddress(
  text: string,
  flag = "--metrics",
): MetricsAddress | { error: string } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]:|([^:\[\]]+):)?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    return {
      error: `${flag} ${JSON.stringify(text)}: expected [host:]port with a port in 1..65535, ` +
        "e.g. --metrics 9100 or --metrics 0.0.0.0:9100",
    };
  }
  return { hostname: m[1] ?? m[2] ?? "127.0.0.1", port };
}

/** A running metrics endpoint. */
export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `render()` on http://address/metrics until closed. */
export function serveMetrics(address: MetricsAddress, render: () => string): MetricsServer {
  const server = Deno.serve({
    hostname: address.hostname,
    port: address.port,
    onListen: () => {},
  }, (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/metrics") return new Response("not found\n", { status: 404 });
    return new Response(render(), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  });
  return {
    port: server.addr.port,
    close: async () => {
      await server.shutdown();
    },
  };
}
