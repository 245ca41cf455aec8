import assert from "node:assert/strict";
import { AnswerAccumulator, type AnswerSummary, summarize } from "../../lib/compare/answer.ts";
import { compareTurn, compareWith } from "../../lib/compare/compare.ts";
import { requestHead, requestKey } from "../../lib/compare/head.ts";
import { HttpResponseParser, MAX_HEAD_LINES } from "../../lib/compare/http_stream.ts";
import { PgDigestFeeder } from "../../lib/compare/pg_messages.ts";
import type { Proto } from "../../lib/compare/sniff.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const PROTOS: Proto[] = ["http", "resp", "pg", "bytes"];

function parse(text: string | Uint8Array) {
  let body = 0;
  const p = new HttpResponseParser({
    status() {},
    header() {},
    body(_b, from, to) {
      body += to - from;
    },
  });
  p.push(typeof text === "string" ? enc(text) : text);
  return { p, body };
}

Deno.test("hostile HTTP: bad framing turns the rest raw, never throws", () => {
  const absurd = parse(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nxyz",
  );
  assert.ok(absurd.p.malformed);
  assert.equal(absurd.body, 3);
  const junkSize = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc");
  assert.ok(junkSize.p.malformed);
  const twoLengths = parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
  assert.ok(twoLengths.p.malformed);
  const longLength = parse("HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456\r\n\r\nab");
  assert.ok(longLength.p.malformed);
  const notHttp = parse("\x00\x01\x02\r\nrest");
  assert.ok(notHttp.p.malformed);
  assert.equal(notHttp.body, 4);
  const truncated = parse("HTTP/1.1 200 OK\r\nContent-Ty");
  assert.ok(!truncated.p.malformed && truncated.p.inHead);
  const badChunkEnd = parse(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY\r\n0\r\n\r\n",
  );
  assert.ok(badChunkEnd.p.malformed);
});

Deno.test("hostile HTTP: a huge header count or line is cut at the head limits", () => {
  const many = "HTTP/1.1 200 OK\r\n" + "X-A: b\r\n".repeat(200000) + "\r\nbody";
  const t0 = performance.now();
  const r = parse(many);
  assert.ok(r.p.malformed);
  assert.equal(r.p.messages, 0);
  const longLine = "HTTP/1.1 200 OK\r\nX: " + "y".repeat(2_000_000) + "\r\n\r\n";
  assert.ok(parse(longLine).p.malformed);
  const ms = performance.now() - t0;
  assert.ok(ms < 20000, `took ${ms} ms`);
  const limit = "HTTP/1.1 200 OK\r\n" + "X-A: b\r\n".repeat(MAX_HEAD_LINES - 3) +
    "Content-Length: 2\r\n\r\nok";
  const ok = parse(limit);
  assert.ok(!ok.p.malformed, "a head just under the line limit is fine");
  assert.equal(ok.body, 2);
  // Comparing such answers stays bounded too (first bytes only).
  const a = summarize(enc(many), { firstBytes: 4096 }),
    b = summarize(enc(many + "x"), { firstBytes: 4096 });
  const v = compareWith("http", a, b);
  assert.ok(!v.match && v.reason === "length");
});

Deno.test("hostile pg: impossible lengths turn the rest raw", () => {
  let n = 0;
  const f = new PgDigestFeeder({
    update: (_b, from, to) => void (n += to - from),
    updateByte: () => void n++,
  });
  f.push(new Uint8Array([0x44, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  assert.ok(f.malformed);
  assert.equal(n, 8);
  const s = summarize(new Uint8Array([0x44, 0, 0, 0, 2, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]), {
    mode: "pg",
  });
  assert.equal(s.kind, "pg");
  assert.equal(typeof s.digest, "bigint");
});

/** A mutated copy of `b`: a few bytes changed, cut or repeated. */
function mutate(b: Uint8Array, int: (n: number) => number): Uint8Array {
  const out = Array.from(b);
  for (let k = 0; k < 1 + int(4); k++) {
    const at = int(out.length + 1);
    switch (int(3)) {
      case 0:
        out[at] = int(256);
        break;
      case 1:
        out.splice(at, 1 + int(8));
        break;
      default:
        out.splice(at, 0, ...out.slice(at, at + int(16)));
    }
  }
  return new Uint8Array(out.filter((x) => x !== undefined));
}

const SEEDS = [
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 N\r\n\r\n",
  "*3\r\n$3\r\nfoo\r\n:12\r\n-ERR x\r\n",
  "T\x00\x00\x00\x06\x00\x00D\x00\x00\x00\x0a\x00\x01\x00\x00\x00\x00C\x00\x00\x00\x0dSELECT 1\x00Z\x00\x00\x00\x05I",
  "E\x00\x00\x00\x10SERROR\x00C23505\x00\x00Z\x00\x00\x00\x05I",
];

Deno.test("fuzz: mutated answers never throw, summaries do not depend on packet splits", () => {
  const int = randomInt(mulberry32(1515));
  const latin1 = (s: string) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
  for (let round = 0; round < 1500; round++) {
    const seed = latin1(SEEDS[int(SEEDS.length)]);
    const a = mutate(seed, int), b = mutate(seed, int);
    const firstBytes = 16 + int(64);
    const whole = summarize(a, { firstBytes });
    const acc = new AnswerAccumulator({ firstBytes });
    acc.reset();
    for (let i = 0; i < a.length;) {
      const end = Math.min(a.length, i + 1 + int(7));
      acc.push(a, NaN, i, end);
      i = end;
    }
    assert.deepEqual(acc.finish(), whole, `round ${round}`);
    const other: AnswerSummary = summarize(b, { firstBytes });
    for (const proto of PROTOS) {
      const r = compareWith(proto, whole, other);
      assert.equal(typeof r.match, "boolean");
      if (!r.match) {
        assert.ok(r.hint.online.length <= 4 * 64 + 3 && r.hint.target.length <= 4 * 64 + 3);
      }
      assert.ok(
        compareWith(proto, whole, whole).match,
        `${proto} round ${round}: an answer equals itself`,
      );
    }
    compareTurn({ request: b, online: whole, target: other });
    requestHead(a);
    requestKey(a);
  }
});

Deno.test("request heads and keys are printable and bounded", () => {
  assert.equal(requestHead(enc("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n")), "GET /a?b=1 HTTP/1.1");
  assert.equal(requestKey(enc("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n")), "GET /a");
  assert.equal(requestHead(enc("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n")), "SET k v1");
  assert.equal(requestKey(enc("*2\r\n$3\r\nget\r\n$1\r\nk\r\n")), "GET");
  assert.equal(requestHead(new Uint8Array([0x51, 0, 0, 0, 13, ...enc("SELECT 1"), 0])), "SELECT 1");
  assert.equal(requestHead(new Uint8Array([1, 2, 0x0d])), "\\x01\\x02");
  assert.ok(requestHead(enc("GET /" + "a".repeat(100000) + " HTTP/1.1\r\n")).length <= 200);
  assert.ok(requestKey(enc("POST /" + "\x00".repeat(100000))).length <= 4 * 96);
  assert.equal(requestHead(enc("*2\r\n$99999999\r\nx")), "x"); // the known prefix of a cut word
});
