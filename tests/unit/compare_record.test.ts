import assert from "node:assert/strict";
import { AnswerAccumulator } from "../../lib/compare/answer.ts";
import { compareTurn } from "../../lib/compare/compare.ts";
import { compareRecord } from "../../lib/compare/record.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function answer(text: string, requestMs: number, atMs: number[]) {
  const acc = new AnswerAccumulator();
  acc.reset(requestMs);
  const b = enc(text);
  const step = Math.ceil(b.length / atMs.length);
  atMs.forEach((t, i) => acc.push(b, t, i * step, Math.min(b.length, (i + 1) * step)));
  return acc.finish();
}

Deno.test("a mismatch record carries both sides, the reason and the diff hint as plain JSON", () => {
  const request = enc("GET /slow?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
  const online = answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1000, [1003, 1004]);
  const target = answer("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno", 2000, [2210.5]);
  const { proto, result } = compareTurn({ request, online, target });
  const rec = compareRecord({
    client: "192.0.2.7:41234",
    session: 17,
    turn: 3,
    proto,
    request,
    online,
    target,
    result,
    atMs: Date.UTC(2025, 0, 2, 3, 4, 5),
    tunnelRttMs: 0.4,
  });
  const back = JSON.parse(JSON.stringify(rec));
  assert.deepEqual(back, {
    type: "compare",
    time: "2025-01-02T03:04:05.000Z",
    client: "192.0.2.7:41234",
    session: 17,
    turn: 3,
    proto: "http",
    request: "GET /slow?x=1 HTTP/1.1",
    match: false,
    reason: "status",
    online: { status: 200, length: 40, bodyLength: 2, latencyMs: 3, lastMs: 4 },
    target: { status: 404, length: 47, bodyLength: 2, latencyMs: 210.5, lastMs: 210.5 },
    tunnelRttMs: 0.4,
    diff: {
      offset: 0,
      what: "status",
      online: "HTTP/1.1 200 OK",
      target: "HTTP/1.1 404 Not Found",
    },
  });
});

Deno.test("a missing target answer and a match (with --compare-all) make records too", () => {
  const online = answer("+OK\r\n", 0, [1]);
  const missing = compareTurn({ online, target: null });
  const input = {
    client: "c",
    session: "s1",
    turn: 1,
    proto: missing.proto,
    request: null,
    online,
    target: null,
    result: missing.result,
  };
  const rec = compareRecord(input);
  assert.equal(rec.reason, "missing");
  assert.deepEqual(rec.target, {
    status: null,
    length: null,
    bodyLength: null,
    latencyMs: null,
    lastMs: null,
  });
  assert.equal(rec.online.status, "+OK");
  const same = compareTurn({ online, target: online });
  const ok = compareRecord({ ...input, result: same.result, target: online, proto: same.proto });
  assert.equal(ok.match, true);
  assert.equal(ok.reason, null);
  assert.equal(ok.diff, undefined);
});

Deno.test("a record names its session's target and copy when given (after client and session)", () => {
  const online = answer("+OK\r\n", 0, [1]);
  const { proto, result } = compareTurn({ online, target: online });
  const base = { client: "192.0.2.7:1", session: 2, turn: 1, proto, request: null, online };
  const rec = compareRecord({
    ...base,
    target: online,
    result,
    targetAddr: "10.0.0.3:80",
    copy: 1,
  });
  assert.deepEqual(Object.keys(rec).slice(0, 6), [
    "type",
    "client",
    "session",
    "targetAddr",
    "copy",
    "turn",
  ]);
  assert.equal(rec.targetAddr, "10.0.0.3:80");
  assert.equal(rec.copy, 1);
  assert.equal(rec.target.length, 5, "the target side stays the answer's");
  const plain = compareRecord({ ...base, target: online, result });
  assert.ok(!("targetAddr" in plain) && !("copy" in plain));
});
