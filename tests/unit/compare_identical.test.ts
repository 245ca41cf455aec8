// identicalAnswers (lib/compare/compare.ts): whenever it says two summaries are the same answer,
// compareTurn gives a full (not partial) match for every --compare-proto and request sniffing,
// so tcpcopy may count the match without a comparator; and it says so for the common case.
import assert from "node:assert/strict";
import { type AnswerSummary, summarize } from "../../lib/compare/answer.ts";
import { compareTurn, identicalAnswers } from "../../lib/compare/compare.ts";
import type { Proto } from "../../lib/compare/sniff.ts";

const te = new TextEncoder();

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pgMsg(type: string, payload: number[]): number[] {
  const n = payload.length + 4;
  return [type.charCodeAt(0), n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255, ...payload];
}

/** An answer of one of the shapes the comparators read (HTTP, chunked, RESP, pg, bytes). */
function randomAnswer(r: () => number): Uint8Array {
  const body = "x".repeat(Math.floor(r() * 300));
  switch (Math.floor(r() * 6)) {
    case 0:
      return te.encode(
        `HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2026\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
    case 1:
      return te.encode(
        `HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      );
    case 2:
      return te.encode(`$${body.length}\r\n${body}\r\n`);
    case 3:
      return te.encode("+OK\r\n");
    case 4: {
      const tag = [...te.encode("SELECT 1"), 0];
      return new Uint8Array([...pgMsg("C", tag), ...pgMsg("Z", [0x49])]);
    }
    default:
      return te.encode(`raw ${body}`);
  }
}

/** `s` with one field changed (or none), its first bytes shared or a copy. */
function variant(s: AnswerSummary, r: () => number): AnswerSummary {
  const t: AnswerSummary = { ...s };
  switch (Math.floor(r() * 10)) {
    case 0:
      t.digest = (s.digest ?? 0n) + 1n;
      break;
    case 1:
      t.bodyLength = (s.bodyLength ?? 0) + 1;
      break;
    case 2:
      t.totalLength = s.totalLength + 1;
      break;
    case 3:
      t.kind = s.kind === "bytes" ? "http" : "bytes";
      break;
    case 4:
      t.complete = false;
      t.timedOut = true;
      break;
    case 5:
      t.complete = false;
      t.gapBytes = 5;
      t.digest = null;
      t.bodyLength = null;
      break;
    case 6:
      t.firstBytes = s.firstBytes.slice(); // equal bytes, not shared
      break;
    default:
      break; // the same answer
  }
  return t;
}

const PROTOS = ["auto", "http", "resp", "pg", "bytes"] as const;
const REQUEST_PROTOS: (Proto | null | undefined)[] = [
  undefined,
  null,
  "http",
  "resp",
  "pg",
  "bytes",
];

Deno.test("identicalAnswers: compareTurn gives a full match for every proto whenever it is true", () => {
  const r = rng(15);
  let identical = 0, other = 0;
  for (let i = 0; i < 3000; i++) {
    const bytes = randomAnswer(r);
    const firstBytes = 64 + Math.floor(r() * 400);
    const s = summarize(bytes, { firstBytes: Math.max(16, firstBytes) });
    const t = variant(s, r);
    const same = identicalAnswers(s, t);
    if (same) identical++;
    else other++;
    for (const proto of PROTOS) {
      for (const requestProto of REQUEST_PROTOS) {
        const v = compareTurn({ online: s, target: t, requestProto }, { proto });
        if (same) {
          assert.deepEqual(v.result, { match: true, partial: false }, `${proto}: ${i}`);
        }
      }
    }
  }
  // the common case is taken, and the changed fields are not
  assert.ok(identical > 800, `${identical} identical`);
  assert.ok(other > 1500, `${other} not`);
});

Deno.test("identicalAnswers: a shared view of one whole answer on both sides is identical", () => {
  const s = summarize(te.encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  assert.equal(identicalAnswers(s, { ...s }), true);
  assert.equal(identicalAnswers(s, { ...s, firstBytes: s.firstBytes.slice() }), false);
  assert.equal(identicalAnswers(s, { ...s, digest: null }), false);
  assert.equal(identicalAnswers({ ...s, complete: false }, { ...s }), false);
});
