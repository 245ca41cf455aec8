/**
 * bench/jit_trace.ts's count of V8's `--trace-opt`/`--trace-deopt` lines (bench/e2e_warmup.ts
 * `--jit`): compiles per tier with their time, bailouts and dependency deopts, per function, from
 * a file that grows between reads and may end in the middle of a line.
 */
import assert from "node:assert/strict";
import {
  countJitLine,
  emptyJitCounts,
  jitDelta,
  jitFollower,
  marksOf,
  topEntries,
} from "../../bench/jit_trace.ts";

const MAGLEV =
  "[completed compiling 0x08aae15718c1 <JSFunction walkTcpOptions (sfi = 0x304861f18f29)> (target MAGLEV) - took 0.000, 0.337, 0.005 ms]";
const TURBOFAN_OSR =
  "[completed compiling 0x1535b8879d79 <JSFunction drain (sfi = 0x1bbed3dfac21)> (target TURBOFAN_JS) OSR - took 0.001, 1.830, 0.019 ms]";
const BAILOUT =
  "[bailout (kind: deopt-eager, reason: Insufficient type feedback for binary operation): begin. deoptimizing 0x08aae1571829 <JSFunction walkTcpOptions (sfi = 0x1bbed3dd3239)>, 0x02ea86ec8d51 <Code MAGLEV>, opt id 2]";
const DEPENDENT =
  "[marking dependent code 0x02ea86ed2341 <Code MAGLEV> (0x3b1a93797891 <SharedFunctionInfo onCaptured>) (opt id 33) for deoptimization, reason: dependent field type constness changed]";
const OTHER = [
  "[marking 0x0aae5f996ac1 <JSFunction u16 (sfi = 0x1a88641d8f29)> for optimization to MAGLEV, ConcurrencyMode::kConcurrent, reason: hot and stable]",
  "[compiling method 0x0aae5f996ac1 <JSFunction u16 (sfi = 0x1a88641d8f29)> (target MAGLEV), mode: ConcurrencyMode::kConcurrent]",
  '{"type":"stats","uptime_s":1.0}',
  "rrent, reason: hot and stable]", // a line cut by another thread's output
];

Deno.test("jit trace: completed compiles per tier and function, bailouts and dependency deopts", () => {
  const c = emptyJitCounts();
  for (const line of [MAGLEV, MAGLEV, TURBOFAN_OSR, BAILOUT, DEPENDENT, ...OTHER]) {
    countJitLine(c, line);
  }
  assert.equal(c.maglev, 2);
  assert.equal(c.turbofan, 1);
  assert.ok(Math.abs(c.maglevMs - 2 * 0.342) < 1e-9);
  assert.ok(Math.abs(c.turbofanMs - 1.85) < 1e-9);
  assert.equal(c.deopts, 2);
  assert.deepEqual(topEntries(c.perFunction, 5), [
    "walkTcpOptions#8f29/maglev ×2",
    "drain#ac21/turbofan ×1",
  ]);
  assert.deepEqual(topEntries(c.perFunction, 5, 2), ["walkTcpOptions#8f29/maglev ×2"]);
  assert.deepEqual(topEntries(c.deoptReasons, 5), [
    "walkTcpOptions#3239: Insufficient type feedback for binary operation ×1",
  ]);
  const before = { ...c };
  countJitLine(c, MAGLEV);
  const d = jitDelta(c, before);
  assert.deepEqual([d.maglev, d.turbofan, d.deopts], [1, 0, 0]);
});

Deno.test("jit trace: a follower reads only what was appended, a cut line once complete", () => {
  const path = Deno.makeTempFileSync();
  try {
    const follow = jitFollower(path);
    Deno.writeTextFileSync(path, `${MAGLEV}\n${TURBOFAN_OSR.slice(0, 40)}`);
    assert.deepEqual([follow().maglev, follow().turbofan], [1, 0]);
    Deno.writeTextFileSync(path, `${TURBOFAN_OSR.slice(40)}\n${BAILOUT}\n`, { append: true });
    const c = follow();
    assert.deepEqual([c.maglev, c.turbofan, c.deopts], [1, 1, 1]);
    assert.equal(follow().maglev, 1);
  } finally {
    Deno.removeSync(path);
  }
  assert.equal(jitFollower("/nonexistent/jit.out")().maglev, 0);
});

Deno.test("jit trace: compiles cut by a bench's mark lines, TurboFan names in order", () => {
  const TURBOFAN =
    "[completed compiling 0x1535b8879d79 <JSFunction push (sfi = 0x1bbed3dfb2d9)> (target TURBOFAN_JS) - took 0.010, 2.000, 0.040 ms]";
  const lines = [
    MAGLEV,
    MAGLEV,
    "mark 1000",
    ...OTHER,
    "mark 2000",
    TURBOFAN_OSR,
    BAILOUT,
    MAGLEV,
    TURBOFAN,
    "mark 3000",
    "mark 4000",
    TURBOFAN,
    "a mark 5000", // not a mark line
  ];
  const got = marksOf(lines);
  assert.deepEqual(got.map((i) => [i.mark, i.maglev, i.turbofan, i.turbofanNames]), [
    [0, 2, 0, []],
    [2000, 1, 2, ["drain#ac21", "push#b2d9"]],
    [4000, 0, 1, ["push#b2d9"]],
  ]);
  assert.ok(Math.abs(got[1].turbofanMs - (1.85 + 2.05)) < 1e-9);
  assert.deepEqual(marksOf([]), []);
});
