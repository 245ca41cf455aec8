// The MySQL module inside the engine's module bridge (lib/engine/module_bridge.ts): a captured
// client that logs in, queries and quits before the target's greeting arrives (a short session
// replayed over a slower path) keeps its replayed stream open until the module has sent the
// held commands; the FIN follows them.
import assert from "node:assert/strict";
import { ModuleHost } from "../../lib/engine/module_bridge.ts";
import { ClientStream } from "../../lib/engine/stream.ts";
import { mysqlModule } from "../../lib/modules/mysql.ts";
import { CAP } from "../../lib/modules/mysql/packets.ts";

const enc = new TextEncoder();
const cat = (...parts: (number[] | Uint8Array | string)[]) => {
  const out: number[] = [];
  for (const p of parts) out.push(...(typeof p === "string" ? enc.encode(p) : p));
  return Uint8Array.from(out);
};
const le32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
const pkt = (payload: Uint8Array, seq: number) =>
  cat([payload.length & 0xff, (payload.length >> 8) & 0xff, payload.length >> 16, seq], payload);

const SCRAMBLE = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
const GREETING = cat(
  [10],
  "5.5.5-10.11.18-MariaDB\0",
  le32(7),
  SCRAMBLE.subarray(0, 8),
  [0, 0xfe, 0xf7, 0x2d, 2, 0, 0xff, 0x81, 21],
  new Array(10).fill(0),
  SCRAMBLE.subarray(8),
  [0],
  "mysql_native_password\0",
);
const CAPS = CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.CONNECT_WITH_DB;
const RESPONSE = cat(
  le32(CAPS),
  le32(1 << 24),
  [0x21],
  new Array(23).fill(0),
  "app\0",
  [20],
  new Array(20).fill(0xaa),
  "shop\0mysql_native_password\0",
);
const QUERY = pkt(cat([3], "SELECT 1"), 0);
const QUIT = pkt(cat([1]), 0);

function bridge() {
  const stats: Record<string, number> = {};
  const host = new ModuleHost(
    mysqlModule,
    {
      credentials: { password: (u) => (u === "app" ? "secret" : undefined) },
      readOnly: false,
    },
    stats,
    () => {},
  );
  const out = new ClientStream(0);
  const b = host.open(out, () => "s", 0);
  b.start(1000);
  b.targetStart(5000);
  // production's side (captured server→client): its SYN-ACK, greeting and OK to the login
  b.online(8999, 0x12, new Uint8Array(0));
  const online = cat(pkt(GREETING, 0), pkt(cat([0, 0, 0, 2, 0, 0, 0]), 2));
  b.online(9000, 0x18, online);
  return { b, out, stats };
}

/** The replayed stream's bytes so far. */
function sent(out: ClientStream): Uint8Array {
  return cat(...out.chunks.slice(out.head).map((c) => c.data));
}

Deno.test("mysql in the engine: a client that quit before the greeting gets its commands, then the FIN", () => {
  const { b, out, stats } = bridge();
  const client = cat(pkt(RESPONSE, 1), QUERY, QUIT);
  b.add({ seq: 1000, data: client, ack: 1 });
  b.fin(1000 + client.length, 1);
  assert.equal(out.finSeq, undefined, "held: no FIN yet");
  const greeting = pkt(GREETING, 0);
  b.target(5000, greeting.length, greeting);
  assert.equal(out.finSeq, undefined);
  const login = sent(out);
  assert.equal(login[3], 1, "the login goes out with sequence id 1");
  const ok = pkt(cat([0, 0, 0, 2, 0, 0, 0]), 2);
  b.target(5000 + greeting.length, ok.length, ok);
  assert.deepEqual(sent(out).subarray(login.length), cat(QUERY, QUIT));
  assert.equal(
    out.finSeq,
    1000 + login.length + QUERY.length + QUIT.length,
    "FIN after the commands",
  );
  assert.equal(b.passed, true);
  assert.equal(stats.logins, 1);
  assert.equal(stats.failed, 0);
});

Deno.test("mysql in the engine: a client that quits after the login is closed at once", () => {
  const { b, out } = bridge();
  const greeting = pkt(GREETING, 0);
  b.target(5000, greeting.length, greeting);
  b.add({ seq: 1000, data: pkt(RESPONSE, 1), ack: 1 });
  const login = sent(out);
  const ok = pkt(cat([0, 0, 0, 2, 0, 0, 0]), 2);
  b.target(5000 + greeting.length, ok.length, ok);
  const rest = cat(QUERY, QUIT);
  b.add({
    seq: 1000 + login.length - (login.length - pkt(RESPONSE, 1).length),
    data: rest,
    ack: 1,
  });
  b.fin(1000 + pkt(RESPONSE, 1).length + rest.length, 1);
  assert.deepEqual(sent(out).subarray(login.length), rest);
  assert.equal(out.finSeq, 1000 + login.length + rest.length);
});
