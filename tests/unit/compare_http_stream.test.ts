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

Deno.test("http stream: without header events (the digest's parser) the body, framing and errors are the same", () => {
  const ri = randomInt(mulberry32(1515));
  const te = new TextEncoder();
  const names = [
    "Content-Length",
    "content-length",
    "CONTENT-LENGTH",
    "Transfer-Encoding",
    "transfer-encoding",
    "Content-Type",
    "Cache-Control",
    "Trailer",
    "Date",
    "Server",
    " Content-Length",
    "X-Content-Length",
    "Tontent-Length",
  ];
  for (let round = 0; round < 400; round++) {
    let text = "";
    for (let m = 1 + ri(3); m > 0; m--) {
      const body = "z".repeat(ri(30));
      const chunked = ri(3) === 0;
      text += `HTTP/1.1 ${[200, 204, 304, 100, 404][ri(5)]} X\r\n`;
      for (let h = ri(6); h > 0; h--) {
        const n = names[ri(names.length)];
        const v = /length/i.test(n)
          ? String([body.length, body.length + 1, -1][ri(3)])
          : /transfer/i.test(n)
          ? ["chunked", "gzip, chunked", "gzip"][ri(3)]
          : "v".repeat(ri(300));
        text += `${n}: ${v}\r\n`;
      }
      text += chunked
        ? `Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`
          .replace("\r\n0\r\n\r\n", body.length ? "\r\n0\r\n\r\n" : "\r\n\r\n")
        : `Content-Length: ${body.length}\r\n\r\n${body}`;
    }
    const bytes = te.encode(text);
    const cuts: number[] = [];
    for (let at = 0; at < bytes.length;) cuts.push(at = Math.min(bytes.length, at + 1 + ri(200)));
    const run = (headerEvents: boolean) => {
      const out: string[] = [];
      const p = new HttpResponseParser(
        {
          status: (code, at) => out.push(`s${code}@${at}`),
          header: () => {},
          body: (b, from, to) => out.push(`b${new TextDecoder().decode(b.subarray(from, to))}`),
        },
        256,
        headerEvents,
      );
      let from = 0;
      for (const to of cuts) {
        p.push(bytes, from, to);
        from = to;
        out.push(`|${p.atMessageEnd}${p.inHead}${p.messages}${p.malformed}`);
      }
      return out.join(",");
    };
    assert.equal(run(false), run(true), text);
  }
});
