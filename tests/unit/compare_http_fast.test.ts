// The HTTP comparator's fast path (lib/compare/http_fast.ts): whenever it says "same", the full
// view (httpView) finds the same statuses, the same non-ignored headers and equal body bytes;
// it says "same" for the common case (only ignored headers differ).
import assert from "node:assert/strict";
import { equalBytes, sameHttpHeads } from "../../lib/compare/http_fast.ts";
import {
  compareHttp,
  compareHttpFull,
  DEFAULT_IGNORED_HEADERS,
  httpView,
} from "../../lib/compare/http.ts";
import { type AnswerSummary, summarize } from "../../lib/compare/answer.ts";

const te = new TextEncoder();
const FRAMING = ["content-length", "transfer-encoding"];

function answer(date: string, extra = "", body = "hello world"): Uint8Array {
  return te.encode(
    `HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: ${date}\r\nContent-Type: text/html\r\n` +
      `${extra}Content-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`,
  );
}

/** What the full checks compare, from httpView. */
function fullSame(a: Uint8Array, b: Uint8Array, ignore: readonly string[]): boolean {
  const va = httpView(a), vb = httpView(b);
  const skip = new Set([...ignore, ...FRAMING]);
  if (va.statuses.length !== vb.statuses.length) return false;
  for (let i = 0; i < va.statuses.length; i++) {
    if (va.statuses[i].code !== vb.statuses[i].code) return false;
  }
  const key = (f: { name: string; value: string }) => `${f.name}\n${f.value}`;
  const fa = va.fields.filter((f) => !skip.has(f.name)).map(key).sort();
  const fb = vb.fields.filter((f) => !skip.has(f.name)).map(key).sort();
  if (fa.join("\0") !== fb.join("\0")) return false;
  const n = Math.min(va.body.length, vb.body.length);
  for (let i = 0; i < n; i++) if (va.body[i] !== vb.body[i]) return false;
  return true;
}

Deno.test("http fast path: equal but for ignored headers is same", () => {
  const a = answer("Mon, 01 Jan 2026 00:00:00 GMT");
  const b = answer("Tue, 02 Jan 2026 11:11:11 GMT", 'ETag: "x"\r\n');
  assert.equal(sameHttpHeads(a, b, DEFAULT_IGNORED_HEADERS, FRAMING), true);
  assert.equal(sameHttpHeads(a, a.subarray(0, 60), DEFAULT_IGNORED_HEADERS, FRAMING), false);
  const other = answer("x", "", "hello WORLD");
  assert.equal(sameHttpHeads(a, other, DEFAULT_IGNORED_HEADERS, FRAMING), false);
  const chunked = te.encode(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  );
  assert.equal(sameHttpHeads(chunked, chunked, DEFAULT_IGNORED_HEADERS, FRAMING), false);
});

Deno.test("http fast path: never 'same' where the full view differs (mutations)", () => {
  const base = answer("Mon, 01 Jan 2026 00:00:00 GMT", "X-A: 1\r\nx-b:  two \r\n");
  const ignores: (readonly string[])[] = [DEFAULT_IGNORED_HEADERS, [
    ...DEFAULT_IGNORED_HEADERS,
    "x-a",
  ]];
  const bytes = [0x20, 0x0a, 0x0d, 0x3a, 0x41, 0x61, 0x5c, 0x30, 0x39, 0x7f, 0x60, 0x40, 0x2d];
  let same = 0, checked = 0;
  let seed = 7;
  const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
  for (let k = 0; k < 4000; k++) {
    const b = base.slice();
    const edits = 1 + rnd(2);
    for (let e = 0; e < edits; e++) b[rnd(b.length)] = bytes[rnd(bytes.length)];
    const cut = rnd(4) === 0 ? b.subarray(0, rnd(b.length + 1)) : b;
    for (const ig of ignores) {
      const fast = sameHttpHeads(base, cut, ig, FRAMING);
      checked++;
      if (!fast) continue;
      same++;
      assert.equal(fullSame(base, cut, ig), true, new TextDecoder().decode(cut));
    }
  }
  assert.ok(same > 100 && same < checked, `${same} of ${checked}`);
});

Deno.test("compareHttp's fast paths give the full checks' result (random edits, cuts, gaps)", () => {
  const bases = [
    answer("Mon, 01 Jan 2026 00:00:00 GMT", "X-A: 1\r\nx-b:  two \r\n"),
    answer("Mon, 01 Jan 2026 00:00:01 GMT", 'ETag: "5"\r\nX-A: 1\r\nx-b:  two \r\n'),
    answer("Mon, 01 Jan 2026 00:00:00 GMT", "", "x".repeat(300)),
    te.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    te.encode("HTTP/1.1 304 Not Modified\r\nDate: x\r\n\r\n"),
    te.encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 No\r\n\r\n"),
    te.encode("HTTP/1.0 200 OK\r\nServer: a\r\n\r\nno framing"),
  ];
  const bytes = [0x20, 0x0a, 0x0d, 0x3a, 0x41, 0x61, 0x5c, 0x30, 0x31, 0x7f, 0x09, 0x78];
  const ignores: (readonly string[])[] = [[], ["x-a"], ["X-B", "content-type"]];
  let seed = 11;
  const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
  /** A summary of `b` with N first bytes, sometimes with a gap or cut by a deadline. */
  const side = (b: Uint8Array, n: number): AnswerSummary => {
    const s = summarize(b, { firstBytes: n });
    switch (rnd(8)) {
      case 0:
        return { ...s, gapBytes: 3, totalLength: s.totalLength + 3, digest: null, complete: false };
      case 1:
        return { ...s, bodyLength: null, digest: null, complete: false };
      case 2:
        return { ...s, timedOut: true, complete: false };
      default:
        return s;
    }
  };
  let identical = 0, fastSame = 0;
  for (let k = 0; k < 3000; k++) {
    const a = bases[rnd(bases.length)];
    const b = rnd(3) === 0 ? bases[rnd(bases.length)].slice() : a.slice();
    const edits = rnd(3);
    for (let e = 0; e < edits; e++) b[rnd(b.length)] = bytes[rnd(bytes.length)];
    const n = [16, 40, 64, 1024][rnd(4)];
    const o = side(a, n), t = side(b, n);
    if (equalBytes(o.firstBytes, t.firstBytes)) identical++;
    for (const ig of ignores) {
      const want = compareHttpFull(o, t, { ignoreHeaders: ig });
      assert.deepEqual(compareHttp(o, t, { ignoreHeaders: ig }), want, new TextDecoder().decode(b));
      const list = [...DEFAULT_IGNORED_HEADERS, ...ig.map((h) => h.toLowerCase())];
      if (sameHttpHeads(o.firstBytes, t.firstBytes, list, FRAMING)) fastSame++;
    }
  }
  assert.ok(identical > 300 && fastSame > 300, `identical ${identical}, fast ${fastSame}`);
});

Deno.test("equalBytes: the 32-bit word path agrees with a byte loop at every alignment", () => {
  const naive = (a: Uint8Array, b: Uint8Array) =>
    a.length === b.length && a.every((x, i) => x === b[i]);
  const slab = new Uint8Array(4096), other = new Uint8Array(4096);
  let x = 12345;
  for (let i = 0; i < slab.length; i++) {
    slab[i] = other[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  }
  let checked = 0;
  for (const len of [0, 3, 63, 64, 65, 130, 1024]) {
    for (let ao = 0; ao < 8; ao++) {
      for (let bo = 0; bo < 8; bo++) {
        const a = slab.subarray(100 + ao, 100 + ao + len);
        for (const flip of [-1, 0, 1, len >> 1, len - 1]) {
          const b = other.subarray(100 + bo, 100 + bo + len);
          const saved = flip >= 0 && flip < len ? b[flip] : -1;
          if (saved >= 0) b[flip] ^= 0x40;
          assert.equal(
            equalBytes(a, b),
            naive(a, b),
            `len ${len} offsets ${ao}/${bo} flip ${flip}`,
          );
          // the same buffer on both sides (one slab of the pool)
          assert.equal(
            equalBytes(a, slab.subarray(100 + bo, 100 + bo + len)),
            naive(a, slab.subarray(100 + bo, 100 + bo + len)),
          );
          if (saved >= 0) b[flip] = saved;
          checked++;
        }
      }
    }
  }
  assert.equal(checked, 7 * 8 * 8 * 5);
  assert.equal(equalBytes(slab.subarray(0, 100), slab.subarray(0, 99)), false);
});
