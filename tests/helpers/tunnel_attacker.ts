/**
 * A tunnel attacker for end-to-end tests, run inside a namespace with plain sockets:
 *
 *   deno run -A tests/helpers/tunnel_attacker.ts hijack HOST PORT CLIENT_IP FIRST_PORT COUNT
 *     hello + extension hello asking for a 128-byte payload prefix (no authentication), then
 *     CLIENT_ADDs for CLIENT_IP:FIRST_PORT.. to HOST:80; reads until the server closes the
 *     connection or 3 s pass.
 *   deno run -A tests/helpers/tunnel_attacker.ts secret HOST PORT SECRET_FILE
 *     a real TunnelClient with that secret file (a wrong one).
 *
 * Prints one JSON line: {"closed":bool,"bytes":n} or {"connected":n,"error":"..."}.
 */
import { encodeExtHello, encodeHello, encodeRoute } from "../../lib/tunnel/messages.ts";
import { Cap, EXT_VERSION } from "../../lib/tunnel/negotiation.ts";
import { parseIp } from "../../lib/wire/addr.ts";
import { TunnelClient } from "../../lib/tunnel/client.ts";
import { readSecretFile } from "../../lib/tunnel/secret_file.ts";
import { importSecret } from "../../lib/tunnel/auth.ts";

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

async function hijack(host: string, port: number, client: string, first: number, count: number) {
  const c = await Deno.connect({ hostname: host, port });
  const caddr = parseIp(client), taddr = parseIp(host);
  if (typeof caddr === "string" || typeof taddr === "string") throw new Error("bad address");
  await writeAll(c, encodeHello());
  await writeAll(c, encodeExtHello(EXT_VERSION, Cap.PAYLOAD_PREFIX | Cap.ROUTE_DEL, 128));
  for (let i = 0; i < count; i++) {
    const msg = encodeRoute("add", { addr: caddr.bytes, port: first + i }, {
      addr: taddr.bytes,
      port: 80,
    });
    try {
      await writeAll(c, msg);
    } catch {
      break; // closed by the server
    }
  }
  let bytes = 0, closed = false;
  const timer = setTimeout(() => c.close(), 3000);
  try {
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await c.read(buf);
      if (n === null) {
        closed = true;
        break;
      }
      bytes += n;
    }
  } catch {
    closed = true; // reset by the server
  }
  clearTimeout(timer);
  console.log(JSON.stringify({ closed, bytes }));
}

async function wrongSecret(host: string, port: number, file: string) {
  const r = readSecretFile(file);
  if (!r.ok) throw new Error(r.error);
  try {
    const t = await TunnelClient.connect({
      servers: [{ hostname: host, port }],
      secret: await importSecret(r.secret),
      onReply: () => {},
      log: () => {},
    });
    console.log(JSON.stringify({ connected: t.connected }));
    await t.close();
  } catch (e) {
    console.log(JSON.stringify({ connected: 0, error: (e as Error).message }));
  }
}

if (import.meta.main) {
  const [mode, host, port, ...rest] = Deno.args;
  if (mode === "hijack") {
    await hijack(host, Number(port), rest[0], Number(rest[1]), Number(rest[2]));
  } else if (mode === "secret") await wrongSecret(host, Number(port), rest[0]);
  else throw new Error(`unknown mode ${mode}`);
  Deno.exit(0);
}
