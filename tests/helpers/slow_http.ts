/**
 * A tiny HTTP/1.x backend for the --compare e2e test: answers every request on `ip:port` with
 * `ok GET /slow\n` after `delayMs`, then closes (nginx proxies to it: another target latency
 * with the same answer). Usage: deno run -A slow_http.ts IP PORT DELAY_MS
 */
const [ip, port, delay] = Deno.args;
const body = "ok GET /slow\n";
const answer = new TextEncoder().encode(
  `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n` +
    `Connection: close\r\n\r\n${body}`,
);
const listener = Deno.listen({ hostname: ip, port: Number(port) });
for await (const conn of listener) {
  (async () => {
    const buf = new Uint8Array(8192);
    let seen = "";
    try {
      while (!seen.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        seen += new TextDecoder().decode(buf.subarray(0, n));
      }
      await new Promise((r) => setTimeout(r, Number(delay)));
      await conn.write(answer);
    } catch {
      /* client gone */
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  })();
}
