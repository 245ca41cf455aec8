import assert from "node:assert/strict";
import { summarize } from "../../lib/compare/answer.ts";
import { compareTurn } from "../../lib/compare/compare.ts";
import { excerpt, printable } from "../../lib/compare/printable.ts";
import { EXCERPT_MAX } from "../../lib/compare/result.ts";
import {
  answerProto,
  digestKindOf,
  isHttpAnswer,
  requestProto,
  sniffProto,
} from "../../lib/compare/sniff.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const bytes = (...b: number[]) => new Uint8Array(b);

Deno.test("bytes: first bytes, then total length, then digest", () => {
  const cmp = (a: string, b: string, firstBytes = 1024) =>
    compareTurn({
      online: summarize(enc(a), { firstBytes }),
      target: summarize(enc(b), { firstBytes }),
    }, { proto: "bytes" }).result;
  assert.deepEqual(cmp("same", "same"), { match: true, partial: false });
  const body = cmp("abcdef", "abXdef");
  assert.ok(!body.match && body.reason === "body");
  assert.equal(body.hint.offset, 2);
  assert.equal(body.hint.online, "abcdef");
  assert.equal(body.hint.target, "abXdef");
  const length = cmp("abc", "abcd");
  assert.ok(!length.match && length.reason === "length");
  assert.equal(length.hint.offset, 3);
  const digest = cmp("a".repeat(40) + "1", "a".repeat(40) + "2", 16);
  assert.ok(!digest.match && digest.reason === "body" && digest.hint.what === "digest");
});

Deno.test("presence: missing, timeout, extra, both silent", () => {
  const s = summarize(enc("+OK\r\n"));
  const reason = (r: ReturnType<typeof compareTurn>["result"]) => r.match ? "match" : r.reason;
  assert.equal(reason(compareTurn({ online: s, target: null }).result), "missing");
  assert.equal(
    reason(compareTurn({ online: s, target: null, targetTimedOut: true }).result),
    "timeout",
  );
  assert.equal(reason(compareTurn({ online: null, target: s }).result), "extra");
  assert.equal(reason(compareTurn({ online: null, target: null }).result), "match");
  const cut = { ...s, timedOut: true, complete: false };
  assert.equal(reason(compareTurn({ online: s, target: cut }).result), "timeout");
  const gaps = { ...s, gapBytes: 3, digest: null, bodyLength: null, complete: false };
  assert.deepEqual(compareTurn({ online: gaps, target: s }, { proto: "bytes" }).result, {
    match: true,
    partial: true,
  });
});

Deno.test("diff hints are bounded and escape non-printable bytes", () => {
  assert.equal(
    printable(bytes(0x41, 0x0d, 0x0a, 0x09, 0x5c, 0x00, 0xff, 0x7f)),
    "A\\r\\n\\t\\\\\\x00\\xff\\x7f",
  );
  const big = new Uint8Array(10000).fill(0);
  const e = excerpt(big, 5000);
  assert.equal(e, "\\x00".repeat(EXCERPT_MAX));
  const a = new Uint8Array(5000).fill(0xfe), b = a.slice();
  b[4000] = 1;
  const r = compareTurn({
    online: summarize(a, { firstBytes: 4096 }),
    target: summarize(b, { firstBytes: 4096 }),
  }, {
    proto: "bytes",
  }).result;
  assert.ok(!r.match);
  assert.equal(r.hint.offset, 4000);
  assert.ok(r.hint.online.length <= 4 * EXCERPT_MAX && r.hint.target.length <= 4 * EXCERPT_MAX);
  assert.ok(r.hint.target.includes("\\x01"));
});

Deno.test("auto sniffing from the request, else from the answer", () => {
  const cases: [Uint8Array | null, Uint8Array | null, string][] = [
    [enc("GET / HTTP/1.1\r\n"), null, "http"],
    [enc("PROPFIND /dav HTTP/1.1\r\n"), null, "http"],
    [enc("*1\r\n$4\r\nPING\r\n"), null, "resp"],
    [bytes(0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f), null, "pg"], // SSLRequest
    [bytes(0, 0, 0, 9, 0, 3, 0, 0, 0x75), null, "pg"], // StartupMessage 3.0
    [bytes(0x51, 0, 0, 0, 9, 0x53, 0x45, 0x4c, 0), null, "pg"], // Query "SEL"
    [enc("PING\r\n"), enc("+PONG\r\n"), "resp"], // inline command: the answer decides
    [null, enc("HTTP/1.0 200 OK\r\n"), "http"],
    [null, bytes(0x5a, 0, 0, 0, 5, 0x49), "pg"],
    [enc("hello"), enc("world"), "bytes"],
    [enc("get / HTTP/1.1"), null, "bytes"],
    [null, null, "bytes"],
  ];
  for (const [req, ans, want] of cases) {
    assert.equal(sniffProto(req, ans), want, `${req} ${ans}`);
    // tcpcopy sniffs the request once (requestProto) and passes it to compareTurn: the same
    assert.equal(requestProto(req) ?? answerProto(ans), want, `halves: ${req} ${ans}`);
    const online = ans === null ? null : summarize(ans);
    const turn = { request: req, online, target: online };
    assert.equal(
      compareTurn({ ...turn, requestProto: requestProto(req) }).proto,
      compareTurn(turn).proto,
      `compareTurn: ${req} ${ans}`,
    );
  }
  assert.equal(digestKindOf(enc("HTTP/1.1 200 OK\r\n")), "http");
  assert.equal(digestKindOf(enc("HTTP/2 200")), "bytes");
  assert.equal(digestKindOf(bytes(0x43, 0, 0, 0, 0x0a)), "pg");
  assert.equal(digestKindOf(enc("Some text here")), "bytes");
  assert.equal(digestKindOf(bytes(0x53, 0, 0, 0, 2)), "bytes"); // impossible length
});

Deno.test("sniff: an HTTP answer is exactly one starting with 'HTTP/1.' (byte checks vs text)", () => {
  const te = new TextEncoder();
  const cases = [
    "HTTP/1.1 200 OK\r\n",
    "HTTP/1.",
    "HTTP/1",
    "HTTP/2 200",
    "http/1.1 200",
    "XHTTP/1.1",
    "",
  ];
  for (let cut = 0; cut <= 8; cut++) cases.push("HTTP/1.0 204".slice(0, cut));
  for (const c of cases) {
    const b = te.encode(c);
    assert.equal(isHttpAnswer(b), c.startsWith("HTTP/1."), JSON.stringify(c));
    assert.equal(digestKindOf(b) === "http", c.startsWith("HTTP/1."), JSON.stringify(c));
  }
  // every single-byte change of the prefix is caught
  const ok = te.encode("HTTP/1.1 200 OK\r\n\r\n");
  for (let i = 0; i < 7; i++) {
    const b = ok.slice();
    b[i] ^= 0x20;
    assert.equal(isHttpAnswer(b), false, `byte ${i}`);
  }
  assert.equal(isHttpAnswer(ok.subarray(3)), false);
});
