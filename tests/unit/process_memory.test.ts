/**
 * The memory split of both programs' stats lines (lib/process/memory.ts): /proc/PID/status is
 * parsed into anonymous and file-backed RSS, and the live figures of this process add up.
 */
import assert from "node:assert/strict";
import { processUsage, rssSplit } from "../../lib/process/memory.ts";
import { memoryFields } from "../../lib/stats/record.ts";

const STATUS = `Name:\tdeno
VmHWM:\t  120000 kB
VmRSS:\t   70368 kB
RssAnon:\t   23588 kB
RssFile:\t   46716 kB
RssShmem:\t      64 kB
Threads:\t9
`;

Deno.test("rssSplit: RssAnon, and RssFile + RssShmem, in bytes; zeros when absent", () => {
  assert.deepEqual(rssSplit(STATUS), { anon: 23588 * 1024, file: (46716 + 64) * 1024 });
  assert.deepEqual(rssSplit("Name:\tx\n"), { anon: 0, file: 0 });
  assert.deepEqual(rssSplit("RssAnonX:\t5 kB\nRssFile: 7 kB\n"), { anon: 0, file: 7 * 1024 });
});

Deno.test({
  name: "processUsage: anonymous + file pages are the RSS; 8 MiB of ArrayBuffer show as external",
  ignore: Deno.build.os !== "linux", // /proc/self/status is Linux's
  fn() {
    const before = processUsage();
    const held = new Uint8Array(8 << 20).fill(1); // touched: anonymous pages
    const u = processUsage();
    assert.ok(u.rssAnonBytes > 0 && u.rssFileBytes > 0);
    const sum = u.rssAnonBytes + u.rssFileBytes;
    assert.ok(Math.abs(sum - u.rssBytes) < 4 << 20, `${sum} vs ${u.rssBytes}`);
    assert.ok(u.externalBytes - before.externalBytes >= 8 << 20);
    assert.ok(u.rssAnonBytes - before.rssAnonBytes >= 6 << 20, "touched pages are anonymous RSS");
    assert.ok(u.heapTotalBytes >= u.heapBytes);
    assert.equal(held[held.length - 1], 1);
    const f = memoryFields(u);
    assert.deepEqual(Object.keys(f), [
      "rss_bytes",
      "rss_anon_bytes",
      "rss_file_bytes",
      "heap_bytes",
      "heap_total_bytes",
      "external_bytes",
    ]);
  },
});
