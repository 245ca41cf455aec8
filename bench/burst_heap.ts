/**
 * What a burst of short connections costs tcpcopy's heap (issue 14), no network: `--conns`
 * short connections (SYN, handshake ACK, one request, the answer with the server's FIN, the
 * client's FIN) through the replicator and engine of tests/helpers/syn_flood.ts on a fake
 * clock, answered by a mini target (SYN-ACK; the answer with its FIN; the ACK of the client's
 * FIN). They run as a pipeline of `--concurrency` connections (a third opening, a third
 * asking, a third closing each round; `--round-ms` of fake time per round: abshort's replay,
 * ~3,000 connections/s with ~1,200 sessions live, is the default).
 *
 * After a warm-up burst (code compiled, tables grown) and its timers, prints per connection: the
 * heap still held right after the burst (V8 heap used after forced GCs, from before it: ended
 * connections' records, the flows' tombstones) and once the engine's timers ran `--after` ms
 * of fake time (what ended connections leave for good; the flows and sessions still queued for
 * eviction are printed too); then the bytes allocated per connection over one more burst (at
 * most 10,000; V8's sampling heap profiler, garbage included: what drives scavenges and, for
 * objects that outlive two of them, the old generation's growth). `--top N` lists the N
 * functions that allocated most (self bytes per connection; the rig's reply buffers and fake
 * sender show up too); `--snapshot FILE` writes a heap snapshot right after the burst.
 *
 *   deno run -A --v8-flags=--expose-gc,--max-semi-space-size=2 bench/burst_heap.ts
 *       [--conns 20000] [--concurrency 1200] [--round-ms 130] [--after 11000] [--top 15]
 *       [--snapshot f.heapsnapshot]
 *
 * @module
 */
import { benchArgs, intArg } from "./args.ts";
import v8 from "node:v8";
import { Session } from "node:inspector";
import { type ShortRig, shortRig } from "../tests/helpers/short_rig.ts";

function heapAfterGc(): number {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) throw new Error("burst_heap: run with --v8-flags=--expose-gc");
  for (let i = 0; i < 3; i++) g();
  return Deno.memoryUsage().heapUsed;
}

/** One sampled allocation profile node (HeapProfiler.SamplingHeapProfileNode). */
interface ProfileNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children: ProfileNode[];
}

/** Self bytes per function ("name file" ; a builtin is named with its caller), summed. */
function bySite(root: ProfileNode): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (n: ProfileNode, parent: string) => {
    const f = n.callFrame;
    let name = `${f.functionName || "(anonymous)"} ${f.url.split("/").slice(-2).join("/")}`;
    if (f.url === "") name += ` <- ${parent}`;
    if (n.selfSize > 0) out.set(name, (out.get(name) ?? 0) + n.selfSize);
    for (const c of n.children) walk(c, name);
  };
  walk(root, "");
  return out;
}

/** Posts an inspector command, resolves with its result. */
function post<T>(s: Session, method: string, params: object): Promise<T> {
  return new Promise((resolve, reject) =>
    s.post(method, params, (e: Error | null, v?: object) => e ? reject(e) : resolve(v as T))
  );
}

/** A whole-number flag value of at least `min` (else one line and exit 2: bench/args.ts). */
const positive = (flag: string, text: string, min = 1) => intArg(import.meta.url, flag, text, min);

/** Runs connections `from`..`from + n` as a pipeline of `third` × 3 (see the module comment). */
function burst(r: ShortRig, from: number, n: number, third: number, roundMs: number): void {
  for (let i = 0; i < n + 2 * third; i += third) {
    for (let j = 0; j < third; j++) {
      if (i + j < n) r.step(from + i + j, 0);
      if (i - third + j >= 0 && i - third + j < n) r.step(from + i - third + j, 1);
      if (i - 2 * third + j >= 0 && i - 2 * third + j < n) r.step(from + i - 2 * third + j, 2);
    }
    r.tick(roundMs);
  }
}

/** Bytes allocated per function while `run` runs (V8's sampling heap profiler, garbage included). */
async function allocations(run: () => void): Promise<Map<string, number>> {
  const inspector = new Session();
  inspector.connect();
  await post(inspector, "HeapProfiler.startSampling", {
    samplingInterval: 512,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  run();
  const { profile } = await post<{ profile: { head: ProfileNode } }>(
    inspector,
    "HeapProfiler.stopSampling",
    {},
  );
  inspector.disconnect();
  return bySite(profile.head);
}

if (import.meta.main) {
  const { values } = benchArgs(import.meta.url, {
    args: Deno.args,
    options: {
      conns: { type: "string", default: "20000" },
      concurrency: { type: "string", default: "1200" },
      "round-ms": { type: "string", default: "130" },
      after: { type: "string", default: "11000" },
      top: { type: "string", default: "0" },
      snapshot: { type: "string" },
    },
  });
  const conns = positive("conns", values.conns);
  const third = Math.max(1, Math.floor(positive("concurrency", values.concurrency) / 3));
  const roundMs = positive("round-ms", values["round-ms"], 0);
  const top = positive("top", values.top, 0);
  const r = shortRig([]);
  burst(r, 0, 3 * third, third, roundMs); // the code paths warm, the tables grown
  for (let t = 0; t < Number(values.after); t += 100) r.tick(100);
  const base = heapAfterGc();
  const t0 = performance.now();
  burst(r, 3 * third, conns, third, roundMs);
  const ms = performance.now() - t0;
  const st = r.rig.engine.stats;
  const after = heapAfterGc();
  const flows = r.rig.engine.flowCount;
  if (values.snapshot) v8.writeHeapSnapshot(values.snapshot);
  for (let t = 0; t < Number(values.after); t += 100) r.tick(100);
  const later = heapAfterGc();
  const left = { flows: r.rig.engine.flowCount, queued: r.rig.engine.evictionQueued };
  // then the allocations of a burst of its own (the profile is not in the figures above)
  const n = Math.min(conns, 10_000);
  const sites = await allocations(() => burst(r, 3 * third + conns, n, third, roundMs));
  const allocated = [...sites.values()].reduce((a, b) => a + b, 0);
  console.log(JSON.stringify({
    conns,
    concurrency: third * 3,
    ms: Math.round(ms),
    closed: st.sessions.closed,
    answered: st.requests.answered,
    heldPerConn: Math.round((after - base) / conns),
    flowsHeld: flows,
    leftPerConn: Math.round((later - base) / conns),
    flowsLeft: left.flows,
    evictionQueued: left.queued,
    allocatedPerConn: Math.round(allocated / n),
  }));
  for (const [k, v] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${String(Math.round(v / n)).padStart(7)}  ${k}`);
  }
}
