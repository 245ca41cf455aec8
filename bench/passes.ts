/**
 * The measuring loop of the no-network cost benches (bench/answer_path_cost.ts,
 * bench/route_message_cost.ts, bench/compare_cost.ts): process CPU time, V8's bytes allocated so
 * far, and timed passes after a warm-up pass.
 *
 * @example
 * ```ts
 * const r = timedPasses(() => pass(N), N); // a warm-up pass, then 5 timed ones
 * console.log(`${r.ns[2].toFixed(0)} ns/op, heap ${r.bytes.toFixed(0)} B/op`);
 * ```
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { getHeapStatistics } from "node:v8";

/** CPU ms of the process (user + system, all threads: V8's GC and compiler helpers too). */
export function cpuMs(): number {
  const u = cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Bytes V8 allocated on its heap since the process started (collected ones included). */
export function allocatedBytes(): number {
  // (in Deno's statistics, not yet in the HeapInfo type of @types/node)
  const stats = getHeapStatistics() as ReturnType<typeof getHeapStatistics> & {
    total_allocated_bytes: number;
  };
  return stats.total_allocated_bytes;
}

/** What {@link timedPasses} measured per unit of work. */
export interface PassFigures {
  /** CPU ns per unit of each timed pass, ascending (ns[2] is the median of 5) */
  ns: number[];
  /** heap bytes allocated per unit over the timed passes */
  bytes: number;
}

/**
 * Runs `pass` once unmeasured (the JIT's warm-up), then `passes` times timed; `units` is the
 * work one pass does (requests, message pairs).
 */
export function timedPasses(pass: () => void, units: number, passes = 5): PassFigures {
  pass();
  const ns: number[] = [];
  const a0 = allocatedBytes();
  for (let i = 0; i < passes; i++) {
    const t0 = cpuMs();
    pass();
    ns.push(((cpuMs() - t0) * 1e6) / units);
  }
  const bytes = (allocatedBytes() - a0) / (passes * units);
  return { ns: ns.sort((a, b) => a - b), bytes };
}
