// The streaming HTTP parser's line scanner (lib/compare/http_stream.ts): header lines of any
// length, cut at any point, come out as their first bytes up to the line cap and their length.
import assert from "node:assert/strict";
import { HttpResponseParser } from "../../lib/compare/http_stream.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";

Deno.test("http stream: header lines up to and past the cap, cut anywhere, are kept exactly", () => {
  const ri = randomInt(mulberry32(15));
  const between = (lo: number, hi: number) => lo + ri(hi - lo + 1);
  const te = new TextEncoder();
  for (let round = 0; round < 200; round++) {
    const cap = 256 + between(0, 64);
    const lines: string[] = [];
    for (let k = between(1, 6); k > 0; k--) {
      const n = [1, 10, cap - 8, cap - 7, cap - 6, cap, cap + 1, 2 * cap][between(0, 7)];
      lines.push(`X-H${k}: ${"v".repeat(n)}${String.fromCharCode(97 + (k % 26))}`);
    }
    const body = "b".repeat(between(0, 40));
    const text =
      `HTTP/1.1 200 OK\r\n${lines.join("\r\n")}\r\nContent-Length: ${body.length}\r\n\r\n` +
      body;
    const bytes = te.encode(text);
    const seen: string[] = [];
    const lens: number[] = [];
    let bodyBytes = 0;
    const p = new HttpResponseParser({
      status: (code) => assert.equal(code, 200),
      header: (line, len) => {
        seen.push(new TextDecoder().decode(line.subarray(0, len)));
        lens.push(len);
      },
      body: (_b, from, to) => bodyBytes += to - from,
    }, cap);
    for (let at = 0; at < bytes.length;) {
      const to = Math.min(bytes.length, at + between(1, 300));
      p.push(bytes, at, to);
      at = to;
    }
    const all = [...lines, `Content-Length: ${body.length}`];
    assert.deepEqual(seen, all.map((l) => l.slice(0, cap)));
    assert.deepEqual(lens, all.map((l) => Math.min(l.length, cap)));
    assert.equal(bodyBytes, body.length);
    assert.equal(p.atMessageEnd, true);
    assert.equal(p.malformed, false);
  }
});
