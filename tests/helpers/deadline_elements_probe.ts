/**
 * Run with `--v8-flags=--allow-natives-syntax` (tests/unit/engine_deadline_elements.test.ts):
 * prints, for each array of deadlines the engine's timer structures make (`TimerHeap`,
 * `DeadlineQueue`, a `TimerQueue` far bucket), whether it holds doubles from the start (V8's
 * `%HasDoubleElements`). One that starts with small-integer elements changes its elements kind
 * at the first deadline with a fraction, and code optimized while it was empty is thrown away.
 *
 * @module
 */
import { TimerHeap } from "../../lib/engine/heap.ts";
import { DeadlineQueue } from "../../lib/engine/deadline_queue.ts";
import { TimerQueue } from "../../lib/engine/timer_queue.ts";

const doubles = new Function("a", "return %HasDoubleElements(a)") as (a: unknown) => boolean;
// deno-lint-ignore no-explicit-any
const field = (o: unknown, k: string) => (o as any)[k];

const q = new TimerQueue<string>();
q.push(1e7, "far"); // beyond the horizon: a new far bucket, its first deadline a whole number
const bucket = [...field(q, "buckets").values()][0];
console.log(JSON.stringify({
  heap: doubles(field(new TimerHeap<string>(), "at")),
  queue: doubles(field(new DeadlineQueue<string>(), "at")),
  bucket: doubles(bucket.at),
}));
