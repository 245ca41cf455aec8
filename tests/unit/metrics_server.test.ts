import assert from "node:assert/strict";
import { parseMetricsAddress, serveMetrics } from "../../lib/metrics/server.ts";

Deno.test("metrics address: port, host:port, [v6]:port, and clear errors", () => {
  assert.deepEqual(parseMetricsAddress("9100"), { hostname: "127.0.0.1", port: 9100 });
  assert.deepEqual(parseMetricsAddress("0.0.0.0:9100"), { hostname: "0.0.0.0", port: 9100 });
  assert.deepEqual(parseMetricsAddress("[::1]:9100"), { hostname: "::1", port: 9100 });
  const bad = parseMetricsAddress("70000");
  assert.ok("error" in bad);
  assert.match(bad.error, /^--metrics "70000": expected \[host:\]port/);
  assert.ok("error" in parseMetricsAddress("host:"));
});

Deno.test("metrics server: /metrics serves the rendered text, other paths 404", async () => {
  let scrapes = 0;
  const server = serveMetrics({ hostname: "127.0.0.1", port: 0 }, () => {
    scrapes++;
    return `# HELP x_total A counter.\n# TYPE x_total counter\nx_total ${scrapes}\n`;
  });
  try {
    const r1 = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(r1.status, 200);
    assert.match(r1.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    assert.match(await r1.text(), /^x_total 1$/m);
    const r2 = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.match(await r2.text(), /^x_total 2$/m);
    const r3 = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(r3.status, 404);
    await r3.body?.cancel();
  } finally {
    await server.close();
  }
});
