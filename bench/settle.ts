/**
 * Heap figures after forced full collections, for the no-network memory benches
 * (`route_table_heap.ts`, `intercept_route_heap.ts`): run them with `--v8-flags=--expose-gc`.
 *
 * @example
 * ```ts
 * const gc = exposedGc("route_table_heap");
 * const before = await settledHeap(gc, 50);
 * ```
 */

/** V8's `gc()`, or one line naming the bench and the flag, and exit 2. */
export function exposedGc(bench: string): () => void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) {
    console.error(`${bench}: run with --v8-flags=--expose-gc`);
    Deno.exit(2);
  }
  return gc;
}

/** Three forced full GCs `pauseMs` apart; heap used and external bytes after. */
export async function settledHeap(
  gc: () => void,
  pauseMs: number,
): Promise<{ heap: number; external: number }> {
  for (let n = 0; n < 3; n++) {
    gc();
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  const m = Deno.memoryUsage();
  return { heap: m.heapUsed, external: m.external };
}
