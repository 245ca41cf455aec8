/**
 * The PostgreSQL module inside the engine's module bridge (lib/engine/module_bridge.ts): a
 * captured session that ends (FIN) before the target has logged in keeps its replayed stream
 * open until the module has sent the held queries, then closes after them; and nothing after
 * the login goes before production's own replies (captured server→client) accepted it.
 */
import assert from "node:assert/strict";
import { ModuleBridge, ModuleHost, NO_MODULE_OPTIONS } from "../../lib/engine/module_bridge.ts";
import { ClientStream } from "../../lib/engine/stream.ts";
import { postgresModule } from "../../lib/modules/postgres.ts";
import { concat } from "../helpers/bytes.ts";

const enc = new TextEncoder();
const be32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const cstr = (s: string) => [...enc.encode(s), 0];
const msg = (
  type: string,
  body: number[],
) => [type.charCodeAt(0), ...be32(body.length + 4), ...body];

function startup(user: string): Uint8Array {
  const body = [...be32(196608), ...cstr("user"), ...cstr(user), 0];
  return Uint8Array.from([...be32(body.length + 4), ...body]);
}

Deno.test("postgres in the bridge: the captured FIN waits for the login, then follows the held queries", () => {
  const host = new ModuleHost(postgresModule, NO_MODULE_OPTIONS, {}, () => {});
  const out = new ClientStream(0);
  const b = new ModuleBridge(host, out, () => "s", 0);
  b.start(1000);
  const q = Uint8Array.from([...msg("Q", cstr("SELECT 1")), ...msg("X", [])]);
  const client = concat(startup("bob"), q);
  b.add({ seq: 1000, data: client, ack: 1 });
  b.fin(1000 + client.length, 1);
  assert.equal(out.finSeq, undefined, "no FIN while the module waits for the target");
  assert.equal(out.end, 1000 + startup("bob").length, "only the startup replayed so far");
  b.targetStart(5000);
  const reply = Uint8Array.from([...msg("R", be32(0)), ...msg("Z", [0x49])]);
  b.target(5000, reply.length, reply);
  assert.equal(host.stats.passed, 0, "the target logged in; production's verdict is missing");
  assert.equal(out.end, 1000 + startup("bob").length, "nothing after the login yet");
  // production's replies: its SYN-ACK (ISN 700), then the same login reply cut in two, the
  // second segment first (reassembled in production's order)
  b.online(700, 0x12, new Uint8Array(0));
  b.online(701 + 5, 0x18, reply.subarray(5));
  assert.equal(host.stats.passed, 0);
  b.online(701, 0x18, reply.subarray(0, 5));
  assert.equal(host.stats.passed, 1);
  assert.equal(out.end, 1000 + client.length, "the held query and Terminate follow");
  assert.equal(out.finSeq, 1000 + client.length, "then the FIN");
});

Deno.test("postgres in the bridge: a FIN after the login closes at once", () => {
  const host = new ModuleHost(postgresModule, NO_MODULE_OPTIONS, {}, () => {});
  const out = new ClientStream(0);
  const b = new ModuleBridge(host, out, () => "s", 0);
  b.start(1);
  b.targetStart(5000);
  const s = startup("bob");
  b.add({ seq: 1, data: s, ack: 1 });
  const reply = Uint8Array.from([...msg("R", be32(0)), ...msg("Z", [0x49])]);
  b.online(700, 0x12, new Uint8Array(0));
  b.online(701, 0x18, reply);
  b.target(5000, reply.length, reply);
  const q = Uint8Array.from(msg("Q", cstr("SELECT 1")));
  b.add({ seq: 1 + s.length, data: q, ack: 2 });
  assert.equal(host.stats.passed, 1);
  b.fin(1 + s.length + q.length, 2);
  assert.equal(out.finSeq, 1 + s.length + q.length);
});

Deno.test("postgres in the bridge: production refuses the login: the pipelined query never reaches the replayed stream", () => {
  const host = new ModuleHost(
    postgresModule,
    {
      credentials: { password: () => "target-pw" },
      readOnly: false,
    },
    {},
    () => {},
  );
  const out = new ClientStream(0);
  const b = new ModuleBridge(host, out, () => "s", 0);
  b.start(1);
  b.targetStart(5000);
  const s = startup("postgres");
  const proof = Uint8Array.from(msg("p", cstr("wrong")));
  const evil = Uint8Array.from(msg("Q", cstr("COPY (SELECT 1) TO PROGRAM 'id'")));
  b.add({ seq: 1, data: concat(s, proof, evil), ack: 1 });
  b.online(700, 0x12, new Uint8Array(0));
  const challenge = Uint8Array.from(msg("R", [...be32(3)]));
  b.online(701, 0x18, challenge);
  b.target(5000, challenge.length, challenge);
  const ok = Uint8Array.from([...msg("R", be32(0)), ...msg("Z", [0x49])]);
  b.target(5000 + challenge.length, ok.length, ok);
  const refused = Uint8Array.from(msg("E", [...enc.encode("C"), ...cstr("28P01"), 0]));
  b.online(701 + challenge.length, 0x18, refused);
  assert.equal(b.failure?.reason, "online_login_failed");
  assert.equal(host.stats.online_login_failed, 1);
  const sent = concat(...out.chunks.slice(out.head).map((c) => c.data));
  assert.ok(!new TextDecoder().decode(sent).includes("PROGRAM"), "the query was never queued");
  assert.equal(host.stats.passed, 0);
});
