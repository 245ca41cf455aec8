/**
 * Run with tcpcopy's V8 flags (lib/process/v8_flags.ts) plus
 * `--allow-natives-syntax,--expose-gc,--trace-deopt` (tests/unit/engine_shape_keepsake.test.ts):
 * does code optimized for one connection's objects stay valid for the next connection when no
 * object of the first was left in between? Two readers, each optimized on connection 1's
 * objects: `readStream` of a client stream and its close record (lib/engine/stream.ts),
 * `readOptions` of the options of the SYN the engine sent (lib/engine/session.ts); a third,
 * `readOpenStream`, makes the same reads optimized on a stream without a close record (the FIN's
 * record is then new to it: without type feedback for its fields, its code is thrown away,
 * "insufficient type feedback", unless the stream getters have read a record before). Connection 1's
 * objects go, full collections run (with `--memory-saver-mode` every one reduces memory, and V8
 * then keeps no hidden class that no object has), connection 2's objects come, and each reader
 * runs on them. V8's trace (stdout) says whether the readers' code was thrown away ("embedded
 * weak objects cleared": the hidden classes it was compiled for died, connection 2's objects
 * got new ones); a line of JSON says whether each reader was optimized before the
 * collections (`%GetOptimizationStatus`), so that a trace without deopts means something.
 *
 * @module
 */
import { ClientStream } from "../../lib/engine/stream.ts";
import type { SegmentOptions } from "../../lib/engine/segment.ts";
import { ACK, SYN } from "../../lib/wire/tcp.ts";
import { clientFrame, floodRig } from "./syn_flood.ts";

type Natives = (f: unknown) => number;
const prepare = new Function("f", "%PrepareFunctionForOptimization(f)") as Natives;
const optimizeNext = new Function("f", "%OptimizeFunctionOnNextCall(f)") as Natives;
const status = new Function("f", "return %GetOptimizationStatus(f)") as Natives;
/** Maglev (32) or TurboFan (64) code, V8's OptimizationStatus bits. */
const optimized = (f: unknown) => (status(f) & (32 | 64)) !== 0;
const gc = (globalThis as unknown as { gc(o: object): void }).gc;

function readStream(st: ClientStream): number {
  return (st.finSeq ?? 0) + (st.hasHole ? 1 : 0) + st.bytes;
}
/** The same reads as {@link readStream}, optimized on a stream that has no close record yet. */
function readOpenStream(st: ClientStream): number {
  return (st.finSeq ?? 0) + (st.hasHole ? 1 : 0) + st.bytes;
}
function readOptions(o: SegmentOptions): number {
  return (o.mss ?? 0) + (o.wscale ?? 0) + (o.sackPermitted ? 1 : 0) + (o.timestamp?.tsval ?? 0);
}

/** Runs `f` on `x` until optimized (feedback first: V8 allocates it after a few calls). */
function optimize<T>(f: (x: T) => number, x: T): void {
  for (let i = 0; i < 50; i++) f(x);
  prepare(f);
  f(x);
  f(x);
  optimizeNext(f);
  f(x);
}

let synOptions: SegmentOptions | undefined;
const rig = floodRig([], (seg) => {
  if (seg.flags & SYN) synOptions = seg.options;
});
/** A connection from 192.0.2.`n` with timestamps and window scaling: its SYN's options. */
function connect(n: number): SegmentOptions {
  const syn = clientFrame(`192.0.2.${n}`, 40000 + n, SYN, 1000);
  rig.feed(syn);
  rig.feed(clientFrame(`192.0.2.${n}`, 40000 + n, ACK, 1001, "GET / HTTP/1.1\r\n\r\n"));
  if (synOptions === undefined) throw new Error("shape_keepsake_probe: no SYN sent");
  const o = synOptions;
  synOptions = undefined;
  return o;
}

let openBefore = false;
(() => {
  const o = connect(7);
  optimize(readOpenStream, new ClientStream(3000)); // before any stream here has a close record
  openBefore = optimized(readOpenStream);
  const a = new ClientStream(1000);
  a.fin(1000, 7);
  optimize(readOptions, o);
  optimize(readStream, a);
})();
const before = {
  stream: optimized(readStream),
  options: optimized(readOptions),
  openStream: openBefore,
};
rig.engine.closeAll("shutdown", rig.advance(10));
await new Promise((r) => setTimeout(r, 0)); // nothing of connection 1 left on the stack
for (let i = 0; i < 4; i++) gc({ type: "major", execution: "sync", flavor: "last-resort" });
const b = new ClientStream(5000);
b.fin(5000, 9);
readStream(b);
readOpenStream(b);
readOptions(connect(8));
console.log(JSON.stringify({ before }));
