/**
 * The memory split of both programs' stats lines (lib/process/memory.ts): /proc/PID/status is
 * parsed into anonymous and file-backed RSS, and the live figures of this process add up; the
 * executable's read-only mappings are found for the start-up page-out.
 */
import assert from "node:assert/strict";
import {
  codeRanges,
  pageOutStartupCode,
  type ProcessUsage,
  rssSplit,
  schedulePageOut,
  TCPCOPY_TRIM_EVERY_S,
  TRIM_EVERY_S,
  trimEverySOf,
} from "../../lib/process/memory.ts";
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

/**
 * Measured in a child process: RSS is the whole process's, and in the test runner other test
 * files allocate and free (the collector returns their buffers at any time, in parallel runs
 * they run at once), so a delta taken here failed the anonymous-RSS check twice in full
 * suites (with 8 and with 64 MiB) while passing alone.
 */
const CHILD = `
import { processUsage } from ${
  JSON.stringify(new URL("../../lib/process/memory.ts", import.meta.url).href)
};
const before = processUsage();
const held = new Uint8Array(64 << 20).fill(1); // touched: anonymous pages
const after = processUsage();
console.log(JSON.stringify({ before, after, last: held[held.length - 1] }));
`;

Deno.test({
  name: "processUsage: anonymous + file pages are the RSS; 64 MiB of ArrayBuffer show as external",
  ignore: Deno.build.os !== "linux", // /proc/self/status is Linux's
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", CHILD],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.ok(out.success, "the measuring child failed");
    const { before, after: u, last } = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      before: ProcessUsage;
      after: ProcessUsage;
      last: number;
    };
    assert.ok(u.rssAnonBytes > 0 && u.rssFileBytes > 0);
    const sum = u.rssAnonBytes + u.rssFileBytes;
    assert.ok(Math.abs(sum - u.rssBytes) < 4 << 20, `${sum} vs ${u.rssBytes}`);
    assert.ok(u.externalBytes - before.externalBytes >= 64 << 20);
    assert.ok(u.rssAnonBytes - before.rssAnonBytes >= 48 << 20, "touched pages are anonymous RSS");
    assert.ok(u.heapTotalBytes >= u.heapBytes);
    assert.equal(last, 1);
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

const MAPS = `55d0a0000000-55d0a1000000 r--p 00000000 fe:00 123 /opt/tcpcopy/deno
55d0a1000000-55d0a4000000 r-xp 01000000 fe:00 123 /opt/tcpcopy/deno
55d0a4000000-55d0a4100000 rw-p 04000000 fe:00 123 /opt/tcpcopy/deno
55d0a4100000-55d0a4200000 r-xp 04100000 fe:00 123 /opt/tcpcopy/deno (deleted)
7f0000000000-7f0000100000 r-xp 00000000 fe:00 456 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000200000-7f0000300000 rw-s 00000000 00:09 789 socket:[789]
7f0000300000-7f0000400000 r-xp 00000000 00:00 0
`;

Deno.test("codeRanges: the executable's code and read-only data, not its data, libraries or rings", () => {
  assert.deepEqual(codeRanges(MAPS, "/opt/tcpcopy/deno"), [
    { start: 0x55d0a0000000n, length: 0x1000000n },
    { start: 0x55d0a1000000n, length: 0x3000000n },
  ]);
  assert.deepEqual(codeRanges(MAPS, "/usr/bin/deno"), []);
});

Deno.test({
  name: "pageOutStartupCode: advises this process's executable mappings and keeps running",
  ignore: Deno.build.os !== "linux",
  fn() {
    // (read before and after: the runtime's threads may map or split code ranges meanwhile,
    // which failed once in a full parallel suite: 97,316,864 advised for 95,064,064 read before)
    const mapped = () =>
      codeRanges(Deno.readTextFileSync("/proc/self/maps"), Deno.execPath())
        .reduce((n, r) => n + Number(r.length), 0);
    const before = mapped();
    assert.ok(before > 1 << 20, "the runtime maps its executable");
    const advised = pageOutStartupCode();
    const after = mapped();
    assert.ok(
      advised === before || advised === after,
      `${advised} advised, ${before} / ${after} mapped`,
    );
    assert.equal(JSON.stringify({ still: "running" }), '{"still":"running"}');
  },
});

Deno.test({
  name:
    "schedulePageOut: pages out at once and trims malloc from the start, before the second page-out",
  ignore: Deno.build.os !== "linux",
  async fn() {
    let pageOuts = 0, trims = 0;
    const stop = schedulePageOut(0.01, { pageOut: () => pageOuts++, trim: () => trims++ });
    try {
      assert.equal(pageOuts, 1, "the first page-out runs at once");
      await new Promise((r) => setTimeout(r, 200));
      // the second page-out is PAGE_OUT_AFTER_S (3 s) away; the trims do not wait for it
      assert.equal(pageOuts, 1);
      assert.ok(trims >= 1, `${trims} trims in 200 ms at a 10 ms period`);
    } finally {
      stop();
    }
  },
});

Deno.test("malloc trim period: tcpcopy every second, intercept every 10 s", () => {
  assert.equal(trimEverySOf("tcpcopy"), TCPCOPY_TRIM_EVERY_S);
  assert.equal(TCPCOPY_TRIM_EVERY_S, 1);
  assert.equal(trimEverySOf("intercept"), TRIM_EVERY_S);
  assert.equal(TRIM_EVERY_S, 10);
});
