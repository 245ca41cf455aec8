// The answer digest's HTTP fast path (lib/compare/http_whole.ts) against the streaming parser
// (http_stream.ts), and the accumulator's summaries with and without it.
import assert from "node:assert/strict";
import { wholeResponse } from "../../lib/compare/http_whole.ts";
import { HttpResponseParser } from "../../lib/compare/http_stream.ts";
import { AnswerAccumulator, type AnswerSummary } from "../../lib/compare/answer.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";

const te = new TextEncoder();

/** What the streaming parser (the digest's configuration) finds in `b`: body bytes, framing. */
function parsed(b: Uint8Array): { body: number[]; messages: number; end: boolean; bad: boolean } {
  const body: number[] = [];
  const p = new HttpResponseParser(
    {
      status: () => {},
      header: () => {},
      body: (x, from, to) => body.push(...x.subarray(from, to)),
    },
    undefined,
    false,
  );
  p.push(b);
  return { body, messages: p.messages, end: p.atMessageEnd, bad: p.malformed };
}

/** Random responses: mostly plausible, with the odd cases the fast path must leave alone. */
function randomResponse(ri: (n: number) => number): string {
  const odd = ri(2) === 0; // else a plain one (ok: the fast path must take it)
  const pick = <T>(xs: readonly T[]): T => odd ? xs[ri(xs.length)] : xs[0];
  const nl = () => pick(["\r\n", "\r\n", "\r\n", "\n"]);
  const body = "b".repeat([0, 1, 3, 20, 300][ri(5)]);
  const code = odd
    ? pick(["200", "404", "204", "304", "100", "101", "199", "099", "2x0"])
    : ["200", "404", "500"][ri(3)];
  let s = pick(["", "", "", "\r\n", "\n"]) +
    pick(["HTTP/1.1 ", "HTTP/1.0 ", "HTTP/2 ", "HTTP/1.1  "]) +
    code + pick([" OK", "", " ", "x"]) + nl();
  const lines = odd ? ri(6) : 1 + ri(6);
  let cl = false;
  for (let k = 0; k < lines; k++) {
    s += (odd ? pick : (xs: string[]) => xs[ri(5)])([
      "Server: nginx",
      "Date: Mon, 01 Jan 2024 00:00:00 GMT",
      "Connection: keep-alive",
      "Content-Type: text/plain",
      "content-type:text/plain",
      "Cache-Control: " + "c".repeat(pick([1, 250, 300])),
      "Transfer-Encoding: chunked",
      "transfer-encoding: gzip",
      "X-Thing: 1",
      "Content-Length : 3",
      "Content-Length: x",
      "Content-Length: 1234567890123456",
      "Content-Length: " + " ".repeat(pick([1, 250, 260])) + body.length,
      "Content-Length: 99",
    ]) + nl();
    if (!cl && (ri(2) === 0 || (!odd && k === lines - 1))) {
      cl = true;
      s += pick(["Content-Length: ", "content-length:", "CONTENT-LENGTH:\t"]) + body.length +
        pick(["", " ", "\t", "x"]) + nl();
    }
  }
  s += nl() + body;
  s += pick(["", "", "", "x", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]);
  return s;
}

Deno.test("http whole: accepted only where the streaming parser finds one response ending there, with the same body", () => {
  const ri = randomInt(mulberry32(1515));
  let accepted = 0;
  for (let round = 0; round < 5000; round++) {
    const text = randomResponse(ri);
    const b = te.encode(text);
    // also cut short: a head or body still coming
    const n = ri(4) === 0 ? ri(b.length + 1) : b.length;
    const at = wholeResponse(b, n);
    if (at < 0) continue;
    accepted++;
    const ref = parsed(b.subarray(0, n));
    const why = JSON.stringify(text.slice(0, n));
    assert.ok(ref.end && ref.messages === 1 && !ref.bad, why);
    assert.deepEqual(ref.body, [...b.subarray(at, n)], why);
  }
  assert.ok(accepted > 500, `only ${accepted} accepted`);
});

Deno.test("http whole: the usual answers are taken, the rest left to the parser", () => {
  const ok = (s: string) => wholeResponse(te.encode(s), te.encode(s).length);
  assert.equal(ok("HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 3\r\n\r\nok\n"), 49);
  assert.equal(ok("HTTP/1.1 204 No Content\r\n\r\n"), 27);
  assert.equal(ok("HTTP/1.1 200 OK\nContent-Length: 0\n\n"), 35);
  for (
    const s of [
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok", // body cut
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\nH", // bytes after it
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n", // head cut
      "HTTP/1.1 200 OK\r\n\r\nall of it", // until the end of the stream
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
      "\r\nHTTP/1.1 204 No Content\r\n\r\n", // an empty line first
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nok\n",
    ]
  ) assert.equal(ok(s), -1, JSON.stringify(s));
});

/** The summary of `b` pushed in `pieces` (cut points) into a fresh accumulator. */
function summary(b: Uint8Array, cuts: number[], firstBytes: number): AnswerSummary {
  const acc = new AnswerAccumulator({ firstBytes });
  acc.reset();
  let at = 0;
  for (const c of [...cuts, b.length]) {
    const to = Math.min(b.length, Math.max(at, c));
    acc.push(b, NaN, at, to);
    at = to;
  }
  return acc.finish();
}

Deno.test("answer: summaries through the whole-response fast path equal the parser's, more bytes after it included", () => {
  const ri = randomInt(mulberry32(77));
  let fast = 0;
  for (let round = 0; round < 3000; round++) {
    const b = te.encode(randomResponse(ri));
    const firstBytes = [16, 64, 1024][ri(3)];
    const all = summary(b, [], firstBytes);
    // reference: the first 16 bytes alone make the fast path see a cut head (parser from there)
    const ref = summary(b, [16], firstBytes);
    const why = JSON.stringify(new TextDecoder().decode(b));
    assert.deepEqual(all, ref, why);
    if (b.length > 16 && b.length <= firstBytes && wholeResponse(b, b.length) >= 0) fast++;
    // a whole response first, then more bytes (a pipelined one) in a later push
    const cut = ri(b.length + 1);
    assert.deepEqual(summary(b, [cut], firstBytes), ref, `${why} cut at ${cut}`);
  }
  assert.ok(fast > 300, `fast path taken ${fast} times`);
});

Deno.test("answer: atMessageEnd through the fast path, and after more bytes and a gap", () => {
  const one = te.encode("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
  const acc = new AnswerAccumulator();
  acc.reset();
  acc.push(one);
  assert.ok(acc.atMessageEnd);
  acc.push(one, NaN, 0, 20); // a second response, cut
  assert.ok(!acc.atMessageEnd);
  acc.push(one, NaN, 20);
  assert.ok(acc.atMessageEnd);
  const s = acc.finish();
  assert.equal(s.bodyLength, 6);
  acc.reset();
  acc.push(one);
  acc.gap(5);
  assert.ok(!acc.atMessageEnd);
  assert.equal(acc.finish().digest, null);
});
