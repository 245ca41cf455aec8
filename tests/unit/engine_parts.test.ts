import assert from "node:assert/strict";
import { TupleAllocator, tupleKey, wrapPort } from "../../lib/engine/allocator.ts";
import { hash32, unit } from "../../lib/engine/hash.ts";
import { ClientStream, CLOSE_FIN, DATA, DUPLICATE, OUT_OF_ORDER } from "../../lib/engine/stream.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("allocator: preferred tuple, deterministic probing, quarantine", () => {
  const a = new TupleAllocator(1000);
  assert.equal(a.take("10.0.0.1", 5000, "t", 80, 0), 5000);
  assert.equal(a.take("10.0.0.1", 5000, "t", 80, 0), 5001);
  assert.equal(a.take("10.0.0.1", 5000, "t2", 80, 0), 5000); // other target: no conflict
  a.release(tupleKey("10.0.0.1", 5000, "t", 80), 10);
  assert.equal(a.take("10.0.0.1", 5000, "t", 80, 500), 5002); // still quarantined
  assert.equal(a.take("10.0.0.1", 5000, "t", 80, 1010), 5000);
  assert.equal(wrapPort(65536), 1024);
  assert.equal(wrapPort(65535), 65535);
});

Deno.test("hash: deterministic, seed-dependent, roughly uniform", () => {
  assert.equal(hash32("a|1|b|2", 7), hash32("a|1|b|2", 7));
  assert.notEqual(hash32("a|1|b|2", 7), hash32("a|1|b|2", 8));
  let below = 0;
  for (let i = 0; i < 10000; i++) if (unit(hash32(`c${i}`, 1), 2) < 0.5) below++;
  assert.ok(below > 4700 && below < 5300, `${below}`);
});

Deno.test("stream: turns by online ACK, trimming, reordering, FIN turn", () => {
  const s = new ClientStream(101);
  assert.equal(s.add({ seq: 101, data: bytes("GET /a\n"), ack: 9 }), 0);
  assert.equal(s.add({ seq: 108, data: bytes("GET /b\n"), ack: 9 }), 0); // pipelined, same turn
  assert.equal(s.add({ seq: 101, data: bytes("GET"), ack: 9 }), DUPLICATE);
  assert.equal(s.add({ seq: 121, data: bytes("\n"), ack: 50 }), OUT_OF_ORDER);
  assert.equal(s.add({ seq: 112, data: bytes("/b\nGET /c"), ack: 50 }), 0); // overlap trimmed
  s.fin(122, 60);
  assert.equal(s.end, 122);
  const kinds = s.turns.map((t) => [t.kind, t.start, t.end, t.ack]);
  assert.deepEqual(kinds, [[DATA, 101, 115, 9], [DATA, 115, 122, 50], [CLOSE_FIN, 122, 122, 60]]);
  const text = new TextDecoder().decode(
    new Uint8Array(s.chunks.flatMap((c) => [...c.data])),
  );
  assert.equal(text, "GET /a\nGET /b\nGET /c\n");
  assert.equal(s.requests, 2);
});
