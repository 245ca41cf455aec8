import assert from "node:assert/strict";
import { summarize } from "../../lib/compare/answer.ts";
import { answerStatus, compareTurn } from "../../lib/compare/compare.ts";
import type { MismatchReason } from "../../lib/compare/result.ts";
import type { CompareProto } from "../../lib/compare/sniff.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function verdict(
  online: Uint8Array,
  target: Uint8Array,
  proto: CompareProto,
  request: Uint8Array | null = null,
  firstBytes = 1024,
) {
  return compareTurn({
    request,
    online: summarize(online, { firstBytes }),
    target: summarize(target, { firstBytes }),
  }, { proto });
}

const outcome = (v: ReturnType<typeof verdict>) => v.result.match ? "match" : v.result.reason;

// ---- RESP ----

const GET_KEY = enc("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");

const respCases: [string, string, string, "match" | MismatchReason][] = [
  ["same simple string", "+OK\r\n", "+OK\r\n", "match"],
  ["same bulk string", "$5\r\nhello\r\n", "$5\r\nhello\r\n", "match"],
  ["bulk vs nil bulk", "$5\r\nhello\r\n", "$-1\r\n", "length"],
  ["bulk vs error", "$5\r\nhello\r\n", "-WRONGTYPE Operation against a key\r\n", "type"],
  ["bulk same length, other value", "$5\r\nhello\r\n", "$5\r\nHELLO\r\n", "body"],
  ["integers differ", ":1\r\n", ":2\r\n", "body"],
  ["errors differ", "-ERR unknown\r\n", "-ERR syntax\r\n", "body"],
  ["array counts differ", "*2\r\n:1\r\n:2\r\n", "*3\r\n:1\r\n:2\r\n:3\r\n", "length"],
  ["array element differs", "*2\r\n:1\r\n:2\r\n", "*2\r\n:1\r\n:3\r\n", "body"],
  ["RESP3 null vs string", "_\r\n", "+x\r\n", "type"],
];

for (const [name, a, b, want] of respCases) {
  Deno.test(`resp: ${name} -> ${want}`, () => {
    const v = verdict(enc(a), enc(b), "auto", GET_KEY);
    assert.equal(v.proto, "resp");
    assert.equal(outcome(v), want, JSON.stringify(v.result));
  });
}

Deno.test("resp: a long bulk string is compared by length and digest beyond the first bytes", () => {
  const bulk = (last: string) => enc(`$100\r\n${"v".repeat(99)}${last}\r\n`);
  assert.equal(outcome(verdict(bulk("a"), bulk("a"), "resp", null, 32)), "match");
  const v = verdict(bulk("a"), bulk("b"), "resp", null, 32);
  assert.ok(!v.result.match && v.result.reason === "body" && v.result.hint.what === "digest");
  assert.equal(answerStatus("resp", summarize(enc("-ERR no\r\n"))), "-ERR no");
});

// ---- PostgreSQL ----

function be32(n: number): number[] {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}
function cstr(s: string): number[] {
  return [...enc(s), 0];
}
function msg(type: string, payload: number[]): number[] {
  return [type.charCodeAt(0), ...be32(payload.length + 4), ...payload];
}
const rowDesc = (names: string[], tableOid: number) =>
  msg("T", [
    0,
    names.length,
    ...names.flatMap((
      n,
      i,
    ) => [...cstr(n), ...be32(tableOid), 0, i + 1, ...be32(23), 0, 4, ...be32(-1), 0, 0]),
  ]);
const dataRow = (values: string[]) =>
  msg("D", [0, values.length, ...values.flatMap((v) => [...be32(v.length), ...enc(v)])]);
const complete = (tag: string) => msg("C", cstr(tag));
const ready = msg("Z", [0x49]); // 'I'
const error = (code: string, text: string, line: string) =>
  msg("E", [
    ...[0x53, ...cstr("ERROR")],
    ...[0x43, ...cstr(code)],
    ...[0x4d, ...cstr(text)],
    ...[0x4c, ...cstr(line)],
    0,
  ]);
const notice = (text: string) => msg("N", [0x4d, ...cstr(text), 0]);

const select = (rows: string[][], tag: string, oid = 16384) =>
  new Uint8Array([
    ...rowDesc(["aid", "abalance"], oid),
    ...rows.flatMap(dataRow),
    ...complete(tag),
    ...ready,
  ]);

const QUERY = new Uint8Array(msg("Q", cstr("SELECT aid, abalance FROM pgbench_accounts LIMIT 2")));

Deno.test("pg: a recorded answer written byte by byte is sniffed and parsed", () => {
  // CommandComplete "BEGIN" then ReadyForQuery in a transaction ('T').
  const bytes = new Uint8Array([
    0x43,
    0x00,
    0x00,
    0x00,
    0x0a,
    0x42,
    0x45,
    0x47,
    0x49,
    0x4e,
    0x00, // C len=10 "BEGIN\0"
    0x5a,
    0x00,
    0x00,
    0x00,
    0x05,
    0x54, //                                Z len=5 'T'
  ]);
  const s = summarize(bytes);
  assert.equal(s.kind, "pg");
  assert.equal(answerStatus("pg", s), "BEGIN");
  assert.equal(outcome(verdict(bytes, bytes, "auto")), "match");
  assert.equal(verdict(bytes, bytes, "auto").proto, "pg");
});

const pgCases: [string, Uint8Array, Uint8Array, "match" | MismatchReason, string?][] = [
  [
    "same data from two servers (table OIDs, notices differ)",
    select([["1", "0"], ["2", "0"]], "SELECT 2", 16384),
    new Uint8Array([...notice("hello"), ...select([["1", "0"], ["2", "0"]], "SELECT 2", 24576)]),
    "match",
  ],
  [
    "a changed value",
    select([["1", "0"], ["2", "0"]], "SELECT 2"),
    select([["1", "0"], ["2", "7"]], "SELECT 2"),
    "body",
    "D",
  ],
  [
    "another CommandComplete tag",
    new Uint8Array([...complete("UPDATE 1"), ...ready]),
    new Uint8Array([...complete("UPDATE 0"), ...ready]),
    "status",
    "tag",
  ],
  [
    "same SQLSTATE, other text and source line",
    new Uint8Array([...error("23505", "duplicate key", "660"), ...ready]),
    new Uint8Array([...error("23505", "duplicate key value violates", "672"), ...ready]),
    "match",
  ],
  [
    "another SQLSTATE",
    new Uint8Array([...error("23505", "duplicate key", "660"), ...ready]),
    new Uint8Array([...error("42P01", "no such table", "1384"), ...ready]),
    "status",
    "sqlstate",
  ],
  [
    "an error instead of rows",
    select([["1", "0"]], "SELECT 1"),
    new Uint8Array([...error("42P01", "no such table", "1384"), ...ready]),
    "type",
  ],
  [
    "other column names",
    select([["1", "0"]], "SELECT 1"),
    new Uint8Array([
      ...rowDesc(["aid", "bal"], 16384),
      ...dataRow(["1", "0"]),
      ...complete("SELECT 1"),
      ...ready,
    ]),
    "header",
  ],
  [
    "one row more",
    select([["1", "0"]], "SELECT 1"),
    select([["1", "0"], ["2", "0"]], "SELECT 1"),
    "type",
  ],
];

for (const [name, a, b, want, what] of pgCases) {
  Deno.test(`pg: ${name} -> ${want}`, () => {
    const v = verdict(a, b, "auto", QUERY);
    assert.equal(v.proto, "pg");
    assert.equal(outcome(v), want, JSON.stringify(v.result));
    if (what && !v.result.match) assert.equal(v.result.hint.what, what);
  });
}

Deno.test("pg: rows beyond the first bytes are compared by the digest (without per-server parts)", () => {
  const rows = (last: string) =>
    Array.from({ length: 50 }, (_, i) => [String(i), i === 49 ? last : "0"]);
  const a = new Uint8Array([
    ...msg("K", [...be32(1234), ...be32(99)]),
    ...select(rows("0"), "SELECT 50", 1),
  ]);
  const same = new Uint8Array([
    ...msg("K", [...be32(777), ...be32(5)]),
    ...select(rows("0"), "SELECT 50", 2),
  ]);
  const other = new Uint8Array([
    ...msg("K", [...be32(777), ...be32(5)]),
    ...select(rows("9"), "SELECT 50", 2),
  ]);
  assert.equal(summarize(a, { firstBytes: 64 }).kind, "pg");
  assert.equal(outcome(verdict(a, same, "pg", null, 64)), "match");
  const v = verdict(a, other, "pg", null, 64);
  assert.ok(!v.result.match && v.result.reason === "body" && v.result.hint.what === "digest");
});
