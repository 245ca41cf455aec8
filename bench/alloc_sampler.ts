/**
 * V8's sampling heap profiler over a stretch of a bench (one sample per 64 bytes allocated on
 * average: an estimate, but one that does not depend on the machine's load). `report(n)` prints
 * the bytes per request (or per whatever `n` counts) by allocating function (self), the largest
 * first; a builtin with no script (`subarray`, `slice`, …) is named with its caller.
 *
 * @example
 * ```ts
 * const sampler = await allocSampler({ collected: true });
 * runRequests(10_000);
 * await sampler.report(10_000);
 * ```
 */
import inspector from "node:inspector";

/** How the report is made. */
export interface AllocSamplerOptions {
  /** Count objects the GC already took too (allocated bytes); false: the live ones. */
  collected: boolean;
  /** Functions listed (default 25). */
  top?: number;
  /** Where the lines go (default console.log). */
  print?: (line: string) => void;
  /** Put before every line (e.g. "@@ " for lines a parent process picks out). */
  prefix?: string;
}

/** A running sample: `report(n)` stops it and prints. */
export interface AllocSampler {
  report(n: number): Promise<void>;
}

/** A node of V8's sampling heap profile. */
interface AllocNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: AllocNode[];
}

/** Starts sampling now. */
export async function allocSampler(opts: AllocSamplerOptions): Promise<AllocSampler> {
  const { collected, top = 25, print = console.log, prefix = "" } = opts;
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params: object = {}) =>
    new Promise<unknown>((ok, fail) =>
      session.post(method, params, (e: Error | null, r?: unknown) => e ? fail(e) : ok(r))
    );
  await post("HeapProfiler.enable");
  await post("HeapProfiler.startSampling", {
    samplingInterval: 64,
    includeObjectsCollectedByMajorGC: collected,
    includeObjectsCollectedByMinorGC: collected,
  });
  return {
    async report(n: number) {
      const { profile } = await post("HeapProfiler.stopSampling") as {
        profile: { head: AllocNode };
      };
      const rows = [...bytesBySite(profile.head)].sort((a, b) => b[1] - a[1]);
      const total = rows.reduce((a, r) => a + r[1], 0);
      print(
        `${prefix}${collected ? "allocated" : "still live"} ${(total / n).toFixed(0)} B per ` +
          `request (sampled); by function:`,
      );
      for (const [site, bytes] of rows.slice(0, top)) {
        print(`${prefix}${(bytes / n).toFixed(1).padStart(8)} B  ${site}`);
      }
      session.disconnect();
    },
  };
}

/** Self bytes per allocating site of a profile tree. */
function bytesBySite(head: AllocNode): Map<string, number> {
  const bySite = new Map<string, number>();
  const name = (f: AllocNode["callFrame"]) =>
    `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber + 1}`;
  const walk = (node: AllocNode, caller: string) => {
    const f = node.callFrame, own = name(f);
    const site = f.url === "" && caller !== "" ? `${f.functionName} <- ${caller}` : own;
    if (node.selfSize > 0) bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    for (const c of node.children) walk(c, own);
  };
  walk(head, "");
  return bySite;
}
