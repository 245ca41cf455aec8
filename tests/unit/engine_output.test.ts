/**
 * The segments the engine hands to `EngineOutput.send`: one object refilled per packet (no
 * segment or options object allocated per packet), each packet's fields its own.
 */
import assert from "node:assert/strict";
import type { OutSegment } from "../../lib/engine/mod.ts";
import { ACK, addrText, RST, SYN } from "../../lib/engine/mod.ts";
import { Scenario } from "../sim/harness.ts";
import { onlineConnection } from "../sim/online.ts";
import { keepSegment } from "../helpers/out_segment.ts";

/** A keep-alive connection with timestamps, replayed; the raw objects and a copy of each. */
function replay(ipIds: boolean) {
  const raw: OutSegment[] = [];
  const seen: OutSegment[] = [];
  const sc = new Scenario({}, {}, {
    onSend: (s) => {
      raw.push(s);
      seen.push(keepSegment(s));
    },
  });
  const tr = onlineConnection({
    client: { addr: "192.0.2.10", port: 40000 },
    server: { addr: "198.51.100.1", port: 80 },
    clientIsn: 0xfffff000, // above 2^31, wraps during the connection
    serverIsn: 5000,
    start: 1000,
    exchanges: [1, 2, 3].map((id) => ({ id, responseLength: 3000 })),
  });
  if (ipIds) tr.segments.forEach((s, i) => s.ipId = 100 + i);
  sc.feed(tr.segments);
  sc.run(60_000);
  return { sc, raw, seen };
}

Deno.test("output: one segment object refilled per packet; the SYN's options are its own", () => {
  const { sc, raw, seen } = replay(false);
  assert.equal(raw.length, 10); // SYN, 3 × (ACK, request), FIN, RST
  assert.ok(raw.every((s) => s === raw[0]), "every packet in the same object");
  // The harness copied each packet as it went: each copy kept its own fields.
  assert.deepEqual(seen, sc.sent);
  const syn = seen[0];
  assert.equal(syn.flags, SYN);
  assert.equal(syn.options.mss, 1460);
  assert.ok(syn.options.timestamp !== undefined);
  assert.equal(syn.ipId, undefined);
  // After the handshake: timestamps only, never the SYN's MSS; an empty payload on pure ACKs.
  const later = seen.slice(1, -1); // the last one is the RST: no options
  assert.ok(later.every((s) => s.options.mss === undefined && s.options.timestamp !== undefined));
  assert.equal(seen.at(-1)!.flags & RST, RST);
  assert.deepEqual(seen.at(-1)!.options, {});
  assert.ok(later.some((s) => s.flags === ACK && s.payload.length === 0), "a pure ACK");
  assert.ok(later.some((s) => s.payload.length > 0), "data");
  // Timestamps never go back, even though every packet shares one options object.
  for (let i = 1; i < later.length; i++) {
    const d = (later[i].options.timestamp!.tsval - later[i - 1].options.timestamp!.tsval) | 0;
    assert.ok(d >= 0, `tsval went back at packet ${i + 1}`);
  }
  // Nothing of the last packet stays in the shared object (its payload is not kept alive).
  assert.equal(raw[0].payload.length, 0);
  assert.equal(sc.engine.stats.requests.answered, 3);
});

Deno.test("output: a packet never carries another packet's IP id", () => {
  // Two connections at once, only one of them captured with IP ids: the other's packets carry
  // none, though they go out in the same object right after the first one's.
  const sc = new Scenario({});
  const conn = (port: number, start: number) =>
    onlineConnection({
      client: { addr: "192.0.2.10", port },
      server: { addr: "198.51.100.1", port: 80 },
      clientIsn: 7000 + port,
      serverIsn: 5000,
      start,
      exchanges: [1, 2].map((id) => ({ id, responseLength: 500 })),
    }).segments;
  const withIds = conn(40001, 1000);
  withIds.forEach((s, i) => s.ipId = 100 + i);
  const segs = [...withIds, ...conn(40002, 1000.5)].sort((a, b) => a.timeMs - b.timeMs);
  sc.feed(segs);
  sc.run(60_000);
  const a = sc.sent.filter((s) => s.src.port === sc.sent[0].src.port);
  const b = sc.sent.filter((s) => s.src.port !== sc.sent[0].src.port);
  assert.ok(a.length >= 6 && b.length >= 6, `${a.length} and ${b.length} packets`);
  const ids = (x: typeof a) => x.map((s) => s.ipId);
  const [mine, other] = a[0].ipId === undefined ? [b, a] : [a, b];
  assert.ok(mine.every((s) => s.ipId !== undefined), `ids ${ids(mine)}`);
  assert.ok(other.every((s) => s.ipId === undefined), `ids ${ids(other)}`);
  assert.equal(sc.engine.stats.requests.answered, 4);
  // Each packet names its own session's client (one shared endpoint object is refilled for
  // IPv4 clients), the RST after the end included: the tuples registered with intercept.
  const tuples = new Set(sc.sent.map((s) => `+${addrText(s.src)}:${s.src.port}>10.9.0.2:8080`));
  assert.deepEqual([...tuples].sort(), sc.routes.filter((r) => r.startsWith("+")).sort());
  assert.ok(a.at(-1)!.flags & RST && b.at(-1)!.flags & RST, "both end with an RST");
});
