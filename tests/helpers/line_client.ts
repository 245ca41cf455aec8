/**
 * Client of the line protocol in line_server.ts: waits for the greeting, then sends
 * `REQ <prefix>-<i>` lines one at a time, each after the previous answer.
 *
 * Usage: deno run -A line_client.ts ADDR PORT CONNECTIONS REQUESTS_PER_CONNECTION PREFIX
 * Prints the number of answered requests.
 *
 * @module
 */
const [hostname, port, conns, perConn, prefix] = Deno.args;
const enc = new TextEncoder(), dec = new TextDecoder();

async function readLine(conn: Deno.Conn, state: { pending: string }): Promise<string | null> {
  const buf = new Uint8Array(4096);
  for (;;) {
    const at = state.pending.indexOf("\n");
    if (at >= 0) {
      const line = state.pending.slice(0, at).replace(/\r$/, "");
      state.pending = state.pending.slice(at + 1);
      return line;
    }
    const n = await conn.read(buf);
    if (n === null) return null;
    state.pending += dec.decode(buf.subarray(0, n));
  }
}

async function session(c: number): Promise<number> {
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const state = { pending: "" };
  let answered = 0;
  try {
    if ((await readLine(conn, state)) !== "HELLO") return 0;
    for (let i = 0; i < Number(perConn); i++) {
      await conn.write(enc.encode(`REQ ${prefix}-${c}-${i}\r\n`));
      if ((await readLine(conn, state))?.startsWith("OK ")) answered++;
    }
    await conn.write(enc.encode("QUIT\r\n"));
  } finally {
    conn.close();
  }
  return answered;
}

const timer = setTimeout(() => {
  console.error("line_client: timed out");
  Deno.exit(1);
}, 60_000);
const results = await Promise.all(Array.from({ length: Number(conns) }, (_, c) => session(c)));
clearTimeout(timer);
console.log(results.reduce((a, b) => a + b, 0));
