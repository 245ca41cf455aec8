import assert from "node:assert/strict";
import { summarize } from "../../lib/compare/answer.ts";
import { compareTurn } from "../../lib/compare/compare.ts";
import type { MismatchReason } from "../../lib/compare/result.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** A response with CRLF line ends: head lines, then the body. */
function resp(status: string, headers: string[], body: string): string {
  return [`HTTP/1.1 ${status}`, ...headers, "", body].join("\r\n");
}

const OK = resp("200 OK", [
  "Date: Mon, 01 Jan 2024 00:00:00 GMT",
  "Server: nginx/1.24.0",
  "Content-Type: text/html",
  "Content-Length: 13",
  "Connection: keep-alive",
  'ETag: "65a1-d"',
], "<p>hello</p>\n");

const OK_CHUNKED = resp("200 OK", [
  "Server: nginx/1.25.3",
  "Date: Wed, 03 Jan 2024 09:08:07 GMT",
  "Content-Type: text/html",
  "Transfer-Encoding: chunked",
  "Connection: keep-alive",
], "3\r\n<p>\r\na\r\nhello</p>\n\r\n0\r\n\r\n");

const GET = enc("GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n");

interface Case {
  name: string;
  online: string;
  target: string;
  ignore?: string[];
  firstBytes?: number;
  want: "match" | MismatchReason;
  what?: string;
}

const cases: Case[] = [
  { name: "identical", online: OK, target: OK, want: "match" },
  { name: "chunked vs Content-Length, same body", online: OK, target: OK_CHUNKED, want: "match" },
  {
    name: "only Date and Server differ",
    online: OK,
    target: OK.replace("Mon, 01 Jan 2024 00:00:00", "Fri, 05 Jul 2024 12:00:01")
      .replace("1.24.0", "1.27.1"),
    want: "match",
  },
  {
    name: "header names differ in case only",
    online: OK,
    target: OK.replace("Content-Type:", "content-type:"),
    want: "match",
  },
  {
    name: "header order differs",
    online: resp("200 OK", ["A: 1", "B: 2", "Content-Length: 0"], ""),
    target: resp("200 OK", ["B: 2", "A: 1", "Content-Length: 0"], ""),
    want: "match",
  },
  {
    name: "status differs",
    online: OK,
    target: resp("500 Internal Server Error", ["Content-Length: 13"], "<p>hello</p>\n"),
    want: "status",
    what: "status",
  },
  {
    name: "a header value differs",
    online: OK,
    target: OK.replace("text/html", "text/plain"),
    want: "header",
    what: "content-type",
  },
  {
    name: "a header is missing on the target",
    online: OK,
    target: OK.replace("Connection: keep-alive\r\n", ""),
    want: "header",
    what: "connection",
  },
  {
    name: "an extra ignore-list header",
    online: OK.replace("Connection: keep-alive", "X-Trace: aaa"),
    target: OK.replace("Connection: keep-alive", "X-Trace: bbb"),
    ignore: ["x-TRACE"],
    want: "match",
  },
  {
    name: "the same without the extra ignore entry",
    online: OK.replace("Connection: keep-alive", "X-Trace: aaa"),
    target: OK.replace("Connection: keep-alive", "X-Trace: bbb"),
    want: "header",
    what: "x-trace",
  },
  {
    name: "body length differs",
    online: OK,
    target: OK.replace("Content-Length: 13", "Content-Length: 14").replace("</p>", "</p> "),
    want: "length",
  },
  {
    name: "body differs, same length",
    online: OK,
    target: OK.replace("hello", "HELLO"),
    want: "body",
    what: "body",
  },
  {
    name: "body differs beyond the first bytes: found by the digest",
    online: resp("200 OK", ["Content-Length: 300"], "x".repeat(299) + "a"),
    target: resp("200 OK", ["Content-Length: 300"], "x".repeat(299) + "b"),
    firstBytes: 64,
    want: "body",
    what: "digest",
  },
  {
    name: "keep-alive: second response's status differs",
    online: OK + resp("200 OK", ["Content-Length: 2"], "ok"),
    target: OK + resp("404 Not Found", ["Content-Length: 2"], "ok"),
    want: "status",
  },
  {
    name: "keep-alive: second body differs",
    online: OK + resp("200 OK", ["Content-Length: 2"], "ok"),
    target: OK_CHUNKED + resp("200 OK", ["Content-Length: 2"], "no"),
    want: "body",
  },
  {
    name: "HTTP online, something else on the target",
    online: OK,
    target: "garbage\r\n",
    want: "type",
  },
];

for (const c of cases) {
  Deno.test(`http: ${c.name} -> ${c.want}`, () => {
    const opts = { firstBytes: c.firstBytes ?? 1024 };
    const online = summarize(enc(c.online), opts), target = summarize(enc(c.target), opts);
    const v = compareTurn({ request: GET, online, target }, {
      proto: "auto",
      ignoreHeaders: c.ignore,
    });
    assert.equal(v.proto, "http");
    const got = v.result.match ? "match" : v.result.reason;
    assert.equal(got, c.want, JSON.stringify(v.result));
    if (c.what && !v.result.match) assert.equal(v.result.hint.what, c.what);
  });
}

Deno.test("http hints: status lines, header lines, body offset in the decoded body", () => {
  const online = summarize(enc(OK));
  const status = compareTurn({
    online,
    target: summarize(enc(OK.replace("200 OK", "503 Busy"))),
  }, { proto: "http" }).result;
  assert.ok(!status.match);
  assert.equal(status.hint.online, "HTTP/1.1 200 OK");
  assert.equal(status.hint.target, "HTTP/1.1 503 Busy");
  const header = compareTurn({ online, target: summarize(enc(OK.replace("text/html", "x/y"))) }, {
    proto: "http",
  }).result;
  assert.ok(!header.match);
  assert.equal(header.hint.online, "Content-Type: text/html");
  assert.equal(header.hint.target, "Content-Type: x/y");
  assert.equal(header.hint.offset, OK.indexOf("Content-Type"));
  const body = compareTurn({
    online: summarize(enc(OK_CHUNKED)),
    target: summarize(enc(OK.replace("hello", "hellO"))),
  }, { proto: "http" }).result;
  assert.ok(!body.match);
  assert.equal(body.reason, "body");
  assert.equal(body.hint.offset, 7); // "<p>hell" then the difference
  assert.equal(body.hint.online, "<p>hello</p>\\n");
  assert.equal(body.hint.target, "<p>hellO</p>\\n");
});

Deno.test("http: a head longer than the first bytes compares the headers both sides show", () => {
  const long = (v: string) =>
    resp("200 OK", ["A: 1", `B: ${v}`, "C: " + "c".repeat(200), "Content-Length: 2"], "ok");
  const opts = { firstBytes: 64 };
  const same = compareTurn({
    online: summarize(enc(long("x")), opts),
    target: summarize(enc(long("x")), opts),
  }, { proto: "http" }).result;
  assert.deepEqual(same, { match: true, partial: false });
  const diff = compareTurn({
    online: summarize(enc(long("x")), opts),
    target: summarize(enc(long("y")), opts),
  }, { proto: "http" }).result;
  assert.ok(!diff.match && diff.reason === "header" && diff.hint.what === "b");
});
