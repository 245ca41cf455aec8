import assert from "node:assert/strict";
import { summarize } from "../../lib/compare/answer.ts";
import {
  bucketOf,
  bucketUpper,
  LatencyHistogram,
  prometheusBuckets,
  SUB_BUCKETS,
} from "../../lib/compare/histogram.ts";
import { matched, mismatch } from "../../lib/compare/result.ts";
import { CompareStats } from "../../lib/compare/stats.ts";
import { TopK } from "../../lib/compare/topk.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";

/** Exact nearest-rank quantile. */
function exact(sorted: number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
}

Deno.test("histogram quantiles are within one bucket of brute force, on random data", () => {
  const rnd = mulberry32(42);
  for (let run = 0; run < 20; run++) {
    const h = new LatencyHistogram();
    const values: number[] = [];
    const n = 1 + Math.floor(rnd() * 3000);
    for (let i = 0; i < n; i++) {
      // log-uniform from 1 µs to 100 s, some zeros
      const v = rnd() < 0.02 ? 0 : 10 ** (rnd() * 8 - 3);
      values.push(v);
      h.record(v);
    }
    values.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99, 1]) {
      const want = exact(values, q), got = h.quantile(q)!;
      assert.ok(got >= want, `run ${run} q ${q}: ${got} < ${want}`);
      assert.ok(
        got <= Math.max(want * (1 + 1 / SUB_BUCKETS), 0.001) + 1e-12,
        `run ${run} q ${q}: ${got} vs ${want}`,
      );
    }
    assert.equal(h.summary().max, Math.round(values[values.length - 1] * 1000) / 1000);
  }
});

Deno.test("histogram buckets: bounds are consistent, merge adds, Prometheus buckets are cumulative", () => {
  for (let i = 1; i < 600; i++) {
    assert.equal(bucketOf(bucketUpper(i - 1)), i, `lower bound of ${i}`);
    assert.equal(bucketOf(bucketUpper(i) * 0.999999), i, `inside ${i}`);
  }
  const a = new LatencyHistogram(), b = new LatencyHistogram(), all = new LatencyHistogram();
  const int = randomInt(mulberry32(3));
  for (let i = 0; i < 1000; i++) {
    const v = int(100000) / 100;
    (i % 2 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  assert.deepEqual(a.counts, all.counts);
  assert.equal(a.count, 1000);
  assert.equal(a.quantile(0.9), all.quantile(0.9));
  const p = prometheusBuckets(a, [1, 10, 100, 1000]);
  assert.equal(p.buckets.at(-1)![1], 1000);
  for (let i = 1; i < p.buckets.length; i++) assert.ok(p.buckets[i][1] >= p.buckets[i - 1][1]);
  const empty = new LatencyHistogram();
  assert.deepEqual(empty.summary(), { count: 0, p50: null, p90: null, p99: null, max: null });
});

Deno.test("top-k keeps the heavy hitters with bounded error", () => {
  const rnd = mulberry32(99);
  const top = new TopK(32);
  const truth = new Map<string, number>();
  const heavy = ["GET /a", "GET /b", "POST /c", "GET /d", "GET /e"];
  const share = [0.1, 0.08, 0.06, 0.05, 0.04]; // each above 1/32 of the stream
  for (let i = 0; i < 20000; i++) {
    let r = rnd(), key = "";
    for (let k = 0; k < heavy.length && !key; k++) {
      if (r < share[k]) key = heavy[k];
      r -= share[k];
    }
    key ||= `GET /rare/${Math.floor(rnd() * 5000)}`;
    top.add(key);
    truth.set(key, (truth.get(key) ?? 0) + 1);
  }
  for (const [key, n] of truth) {
    if (n > 20000 / 32) assert.ok(top.top(32).some((e) => e.key === key), `${key} (${n}) lost`);
  }
  const best = top.top(5);
  assert.deepEqual(best.map((e) => e.key), heavy);
  for (const e of top.top(32)) {
    const t = truth.get(e.key)!;
    assert.ok(
      e.count - e.error <= t && t <= e.count,
      `${e.key}: ${t} not in [${e.count - e.error}, ${e.count}]`,
    );
  }
  assert.ok(best[0].count >= best[4].count);
  assert.equal(top.total, 20000);
});

Deno.test("compare stats: counters, latencies, ratio, snapshot shape", () => {
  const s = new CompareStats();
  const answer = (ms: number) => ({
    ...summarize(new TextEncoder().encode("+OK\r\n")),
    firstMs: ms,
  });
  for (let i = 1; i <= 100; i++) s.add(matched(), answer(i), answer(2 * i));
  s.add(
    mismatch("status", { offset: 0, what: "status", online: "a", target: "b" }),
    answer(1),
    answer(1),
    "GET /x",
  );
  s.add(
    mismatch("missing", { offset: -1, what: "answer", online: "", target: "" }),
    answer(1),
    null,
    "GET /x",
  );
  s.add(matched(true), null, null);
  s.skip(3);
  const snap = s.snapshot();
  assert.equal(snap.compared, 103);
  assert.equal(snap.matched, 101);
  assert.equal(snap.partial, 1);
  assert.equal(snap.skipped, 3);
  assert.equal(snap.mismatched.status, 1);
  assert.equal(snap.mismatched.missing, 1);
  assert.equal(snap.mismatched.body, 0);
  assert.equal(s.mismatchedTotal, 2);
  assert.equal(s.mismatchRatio, 2 / 103);
  assert.equal(snap.latencyMs.online.count, 102);
  assert.equal(snap.latencyMs.target.count, 101);
  assert.ok(snap.ratio.p50! > 1.8 && snap.ratio.p50! < 2.2, String(snap.ratio.p50));
  assert.deepEqual(s.topMismatches(), [{ key: "GET /x", count: 2, error: 0 }]);
});

Deno.test("histogram buckets: the clz32 path gives the Math.log2 buckets (edges, fractions, random)", () => {
  // the reference: the bucket as computed before the integer fast path
  const reference = (us: number): number => {
    if (!(us >= 1)) return 0;
    let e = Math.floor(Math.log2(us));
    if (2 ** e > us) e--;
    else if (2 ** (e + 1) <= us) e++;
    if (e > 41) return 1 + 42 * SUB_BUCKETS - 1;
    const sub = Math.min(SUB_BUCKETS - 1, Math.floor((us / 2 ** e - 1) * SUB_BUCKETS));
    return 1 + e * SUB_BUCKETS + sub;
  };
  const values: number[] = [0, 0.5, 0.999999, 1, 1.5, 2 ** 30 - 0.5, 2 ** 30, 2 ** 31, 2 ** 45];
  for (let e = 0; e <= 32; e++) {
    for (const d of [-1e-6, 0, 1e-6, 0.25, 0.5]) values.push(2 ** e + d, 2 ** e * 1.5 + d);
  }
  for (let i = 1; i < 600; i++) values.push(bucketUpper(i), bucketUpper(i) * 0.999999);
  const rnd = mulberry32(11);
  for (let i = 0; i < 20000; i++) values.push(10 ** (rnd() * 12 - 3));
  for (const v of values) assert.equal(bucketOf(v), reference(v), `${v} µs`);
});
