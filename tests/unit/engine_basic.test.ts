import assert from "node:assert/strict";
import { Scenario } from "../sim/harness.ts";
import { onlineConnection } from "../sim/online.ts";
import type { Exchange } from "../sim/online.ts";

const client = { addr: "192.0.2.10", port: 40000 };
const server = { addr: "198.51.100.1", port: 80 };

function exchanges(n: number, base = 1, len = 300): Exchange[] {
  return Array.from({ length: n }, (_, i) => ({ id: base + i, responseLength: len + i * 37 }));
}

/** Request k+1 reached the application only after answer k was complete. */
function assertTurns(sc: Scenario): void {
  const reqs = sc.target.requests;
  for (let i = 1; i < reqs.length; i++) {
    const prev = reqs[i - 1];
    if (prev.conn !== reqs[i].conn) continue;
    assert.ok(prev.answerEndAt !== undefined, `request ${prev.id} answered`);
    assert.ok(
      reqs[i].at >= prev.answerEndAt!,
      `request ${reqs[i].id} at ${reqs[i].at} before answer ${prev.id} ended ${prev.answerEndAt}`,
    );
  }
}

Deno.test("keep-alive connection: exact byte stream, turn-taking, counters", () => {
  const tr = onlineConnection({
    client,
    server,
    clientIsn: 1000,
    serverIsn: 5000,
    start: 1000,
    exchanges: exchanges(5),
  });
  const sc = new Scenario({});
  sc.feed(tr.segments);
  sc.run(60_000);
  assert.deepEqual(sc.target.streams(), [tr.bytes]);
  assertTurns(sc);
  const s = sc.engine.stats;
  assert.equal(s.requests.captured, 5);
  assert.equal(s.requests.sent, 5);
  assert.equal(s.requests.answered, 5);
  assert.equal(s.handshakes.established, 1);
  assert.equal(s.sessions.active, 0);
  assert.equal(s.sessions.closed, 1);
  assert.deepEqual(Object.values(s.lost).reduce((a, b) => a + b, 0), 0);
  assert.equal(s.queued_bytes, 0);
  assert.deepEqual(sc.routes, [
    "+192.0.2.10:40000>10.9.0.2:8080",
    "-192.0.2.10:40000>10.9.0.2:8080",
  ]);
  // The SYN went first and carried the client's options.
  const syn = sc.sent[0];
  assert.equal(syn.flags, 2);
  assert.equal(syn.seq, 1000);
  assert.equal(syn.options.wscale, 7);
  assert.ok(syn.options.timestamp);
});
