/**
 * A server-speaks-first line protocol for end-to-end tests (think SMTP/FTP banners, MySQL
 * greetings): on connect the server sends `HELLO\r\n`; each request line `REQ <id>` is logged
 * to the log file and answered with `OK <id>\r\n`; `QUIT` closes the connection.
 *
 * Usage: deno run -A line_server.ts ADDR PORT LOGFILE
 *
 * @module
 */
const [hostname, port, logPath] = Deno.args;
const log = await Deno.open(logPath, { create: true, append: true });
const enc = new TextEncoder();

async function serve(conn: Deno.Conn) {
  try {
    await conn.write(enc.encode("HELLO\r\n"));
    const buf = new Uint8Array(64 * 1024);
    let pending = "";
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return;
      pending += new TextDecoder().decode(buf.subarray(0, n));
      let at: number;
      while ((at = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, at).replace(/\r$/, "");
        pending = pending.slice(at + 1);
        if (line === "QUIT") return;
        await log.write(enc.encode(line + "\n"));
        const id = line.startsWith("REQ ") ? line.slice(4) : "?";
        await conn.write(enc.encode(`OK ${id}\r\n`));
      }
    }
  } catch {
    // peer reset: nothing to do
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

const listener = Deno.listen({ hostname, port: Number(port) });
for await (const conn of listener) serve(conn);
