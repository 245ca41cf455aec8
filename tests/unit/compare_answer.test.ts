import assert from "node:assert/strict";
import {
  AnswerAccumulator,
  type AnswerSummary,
  completeHeld,
  summarize,
} from "../../lib/compare/answer.ts";
import { digestOf } from "../../lib/compare/digest.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";

const enc = (s: string) => new TextEncoder().encode(s);

const BODY = "hello world\n";
const PLAIN =
  "HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/plain\r\n" +
  "Content-Length: 12\r\n\r\n" + BODY;
const CHUNKED =
  "HTTP/1.1 200 OK\r\nDate: Tue, 02 Jan 2024 10:11:12 GMT\r\nContent-Type: text/plain\r\n" +
  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;name=value\r\n world\n\r\n0\r\nX-Trailer: 1\r\n\r\n";

/** Feeds `bytes` in random pieces. */
function inPieces(bytes: Uint8Array, seed: number, opts = {}): AnswerSummary {
  const int = randomInt(mulberry32(seed));
  const acc = new AnswerAccumulator(opts);
  acc.reset();
  let i = 0;
  while (i < bytes.length) {
    const end = Math.min(bytes.length, i + 1 + int(20));
    acc.push(bytes, NaN, i, end);
    i = end;
  }
  return acc.finish();
}

Deno.test("HTTP digest covers the decoded body only: Date and chunking do not change it", () => {
  const a = summarize(enc(PLAIN)), b = summarize(enc(CHUNKED));
  assert.equal(a.kind, "http");
  assert.equal(b.kind, "http");
  assert.equal(a.digest, digestOf(enc(BODY)));
  assert.equal(b.digest, a.digest);
  assert.equal(a.bodyLength, 12);
  assert.equal(b.bodyLength, 12);
  assert.equal(a.totalLength, enc(PLAIN).length);
  assert.ok(a.complete && !a.truncated && a.gapBytes === 0);
});

Deno.test("summaries do not depend on how the answer is split into packets", () => {
  for (const text of [PLAIN, CHUNKED, "+OK\r\n", "\x00\x01binary bytes, no protocol at all"]) {
    const whole = summarize(enc(text), { firstBytes: 32 });
    for (let seed = 1; seed <= 30; seed++) {
      assert.deepEqual(inPieces(enc(text), seed, { firstBytes: 32 }), whole, `seed ${seed}`);
    }
  }
});

Deno.test("first bytes are bounded, total length counts everything", () => {
  const big = new Uint8Array(100000).fill(0x61);
  const s = summarize(big, { firstBytes: 64 });
  assert.equal(s.firstBytes.length, 64);
  assert.equal(s.totalLength, 100000);
  assert.equal(s.kind, "bytes");
  assert.equal(s.digest, digestOf(big));
  assert.ok(s.truncated);
  assert.throws(() => new AnswerAccumulator({ firstBytes: 8 }), RangeError);
  assert.throws(() => new AnswerAccumulator({ firstBytes: 1.5 }), RangeError);
});

Deno.test("keep-alive: two responses in one answer digest both bodies", () => {
  const two = PLAIN + "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop";
  const s = summarize(enc(two));
  assert.equal(s.bodyLength, 15);
  assert.equal(s.digest, digestOf(enc(BODY + "nop")));
  const interim = "HTTP/1.1 100 Continue\r\n\r\n" + PLAIN;
  assert.equal(summarize(enc(interim)).digest, digestOf(enc(BODY)));
  const noBody = "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n";
  assert.equal(summarize(enc(noBody)).bodyLength, 0);
  const untilClose = "HTTP/1.0 200 OK\r\n\r\nall the rest";
  assert.equal(summarize(enc(untilClose)).digest, digestOf(enc("all the rest")));
});

Deno.test("a gap makes digest and body length unknown but keeps lengths and first bytes", () => {
  const acc = new AnswerAccumulator({ firstBytes: 16 });
  acc.reset(1000);
  acc.push(enc("0123456789"), 1002.5);
  acc.gap(100, 1003);
  acc.push(enc("tail"), 1010);
  const s = acc.finish();
  assert.equal(s.digest, null);
  assert.equal(s.bodyLength, null);
  assert.equal(s.totalLength, 114);
  assert.equal(s.gapBytes, 100);
  assert.deepEqual(s.firstBytes, enc("0123456789"));
  assert.equal(s.firstMs, 2.5);
  assert.equal(s.lastMs, 10);
  assert.ok(!s.complete && s.truncated);
  acc.reset();
  acc.push(enc("abc"));
  const t = acc.finish(true);
  assert.ok(t.timedOut && !t.complete);
  assert.equal(t.firstMs, undefined);
  assert.equal(t.digest, digestOf(enc("abc")));
});

Deno.test("an explicit digest mode is used as given", () => {
  const s = summarize(enc(PLAIN), { mode: "bytes" });
  assert.equal(s.kind, "bytes");
  assert.equal(s.digest, digestOf(enc(PLAIN)));
  assert.equal(summarize(enc("+OK\r\n"), { mode: "http" }).kind, "http");
});

Deno.test("lazy accumulators (tcpcopy's online side) summarise exactly as eager ones, gaps and any split included", () => {
  const texts = [
    PLAIN,
    CHUNKED,
    PLAIN + PLAIN,
    "+OK\r\n",
    "\x00\x01binary bytes, no protocol at all",
  ];
  for (const text of texts) {
    const bytes = enc(text);
    for (const firstBytes of [16, 32, 64, 1024]) {
      for (let seed = 1; seed <= 20; seed++) {
        const eager = inPieces(bytes, seed, { firstBytes });
        assert.deepEqual(inPieces(bytes, seed, { firstBytes, lazy: true }), eager, `seed ${seed}`);
        // with a gap in the middle
        const run = (lazy: boolean) => {
          const acc = new AnswerAccumulator({ firstBytes, lazy });
          acc.reset();
          const cut = seed % bytes.length;
          acc.push(bytes, NaN, 0, cut);
          acc.gap(3);
          acc.push(bytes, NaN, Math.min(bytes.length, cut + 3));
          return acc.finish();
        };
        assert.deepEqual(run(true), run(false), `gap, seed ${seed}`);
      }
    }
  }
});

Deno.test("finishShared takes the other side's digest only for the same whole answer, else computes its own", () => {
  const mk = (text: string, lazy: boolean, firstBytes = 1024) => {
    const acc = new AnswerAccumulator({ firstBytes, lazy });
    acc.reset();
    acc.push(enc(text));
    return acc;
  };
  for (const text of [PLAIN, CHUNKED, "+OK\r\n", "\x00\x01binary"]) {
    const other = summarize(enc(text)); // the target's summary of the same bytes
    for (const lazy of [true, false]) {
      const acc = mk(text, lazy);
      assert.ok(acc.sameFirstBytes(other.firstBytes));
      const s = acc.finishShared(other);
      assert.deepEqual(s, mk(text, false).finish(), `${JSON.stringify(text)} lazy ${lazy}`);
      assert.equal(s.firstBytes, other.firstBytes, "the other side's first bytes, not a copy");
    }
  }
  // a target summary that does not hold the whole answer: never taken (the digest is computed)
  const whole = summarize(enc(PLAIN));
  const forged = { ...whole, digest: 12345n, bodyLength: 1 };
  for (
    const other of [
      { ...forged, totalLength: whole.totalLength + 5 }, // more bytes than its first bytes
      { ...forged, gapBytes: 1 },
      { ...forged, digest: null },
      { ...forged, kind: "bytes" as const }, // another kind than these bytes sniff as
    ]
  ) {
    const s = mk(PLAIN, true).finishShared(other);
    assert.equal(s.digest, whole.digest, `${other.totalLength} ${other.gapBytes} ${other.kind}`);
    assert.equal(s.bodyLength, whole.bodyLength);
  }
  // and a whole one is taken as it is: the shortcut is real (nothing is parsed here)
  assert.equal(mk(PLAIN, true).finishShared(forged).digest, 12345n);
  // an answer longer than the first bytes was parsed as it came: its own digest
  const long = enc(PLAIN + "x".repeat(100));
  const acc = new AnswerAccumulator({ firstBytes: 32, lazy: true });
  acc.reset();
  acc.push(long);
  const cut = summarize(long, { firstBytes: 32 });
  assert.equal(acc.finishShared({ ...cut, digest: 1n }).digest, cut.digest);
});

Deno.test("an answer held unparsed (finishSwapHeld) is completed to exactly the eager summary", () => {
  const scratch = new AnswerAccumulator({ firstBytes: 256 });
  for (const text of [PLAIN, CHUNKED, "+OK\r\n", "\x00\x01binary", "HTTP/1.1 200 OK\r\n"]) {
    for (const timedOut of [false, true]) {
      const bytes = enc(text).subarray(0, 200);
      const acc = new AnswerAccumulator({ firstBytes: 256, lazy: true });
      acc.reset();
      acc.push(bytes);
      const eager = summarize(bytes, { firstBytes: 256 });
      if (timedOut) eager.complete = false, eager.timedOut = true;
      assert.ok(acc.held);
      const s = acc.finishSwapHeld(new Uint8Array(256), timedOut);
      assert.equal(s.digest, null, "nothing computed yet");
      completeHeld(s, scratch, null);
      assert.deepEqual(s, eager, JSON.stringify(text));
    }
  }
  const acc = new AnswerAccumulator({ firstBytes: 256, lazy: true });
  acc.reset();
  acc.push(enc(PLAIN).subarray(0, 200));
  const s = acc.finishSwapHeld(new Uint8Array(256));
  const forged = { ...summarize(s.firstBytes), digest: 7n, firstBytes: s.firstBytes };
  completeHeld(s, scratch, forged);
  assert.equal(s.digest, 7n, "the same view: the other side's values");
  const s2 = { ...s, digest: null };
  completeHeld(s2, scratch, { ...forged, firstBytes: s.firstBytes.slice() });
  assert.equal(s2.digest, summarize(s.firstBytes).digest, "an equal copy: computed here");
  // an answer with a gap or beyond the first bytes is not held
  const gapped = new AnswerAccumulator({ firstBytes: 256, lazy: true });
  gapped.reset();
  gapped.push(enc("abc"));
  gapped.gap(2);
  assert.equal(gapped.held, false);
  assert.throws(() => gapped.finishSwapHeld(new Uint8Array(256)));
});

Deno.test("an answer held unparsed over bytes kept elsewhere (finishHeldAs) is the held summary of its own bytes", () => {
  const scratch = new AnswerAccumulator({ firstBytes: 256 });
  for (const text of [PLAIN, CHUNKED, "+OK\r\n", "\x00\x01binary"]) {
    for (const timedOut of [false, true]) {
      const bytes = enc(text).subarray(0, 200);
      const mk = () => {
        const acc = new AnswerAccumulator({ firstBytes: 256, lazy: true });
        acc.reset();
        acc.push(bytes);
        return acc;
      };
      const own = mk().finishSwapHeld(new Uint8Array(256), timedOut);
      const elsewhere = bytes.slice(); // (an earlier answer's first bytes: the same bytes)
      const acc = mk();
      const buffer = acc.buffer;
      const s = acc.finishHeldAs(elsewhere, timedOut);
      assert.equal(s.firstBytes, elsewhere, "the bytes given, not a view of its own buffer");
      assert.equal(acc.buffer, buffer, "the accumulator keeps its buffer");
      assert.deepEqual(s, own);
      completeHeld(s, scratch, null);
      completeHeld(own, scratch, null);
      assert.deepEqual(s, own, JSON.stringify(text));
    }
  }
  const gapped = new AnswerAccumulator({ firstBytes: 256, lazy: true });
  gapped.reset();
  gapped.push(enc("abc"));
  gapped.gap(2);
  assert.throws(() => gapped.finishHeldAs(enc("abc")));
});

Deno.test("answer: finishView's first bytes follow each answer's length (views kept across answers)", () => {
  const acc = new AnswerAccumulator({ firstBytes: 64, mode: "auto" });
  const answers = [
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab",
    "short",
    "plain bytes, more than sixteen",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ncd",
    "x".repeat(80),
  ];
  for (const text of [...answers, ...answers]) {
    const bytes = new TextEncoder().encode(text);
    acc.reset();
    acc.push(bytes);
    const got = acc.finishView();
    const want = summarize(bytes, { firstBytes: 64 });
    assert.deepEqual(got.firstBytes, want.firstBytes);
    assert.equal(got.kind, want.kind);
    assert.equal(got.digest, want.digest);
  }
});
