/**
 * bench/mem_trace.ts's smaps split: the executable's pages, capture rings, libraries, and
 * anonymous memory with malloc's arenas and thread stacks told apart from the rest (V8).
 */
import assert from "node:assert/strict";
import { smapsBreakdown } from "../../bench/mem_trace.ts";

const kB = 1024;
const map = (range: string, perms: string, name: string, rssKb: number) =>
  `${range} ${perms} 00000000 00:00 0          ${name}\nSize: 4 kB\nRss:  ${rssKb} kB\nPss: 1 kB\n`;

const SMAPS = [
  map("55b46816d000-55b468c79000", "rw-p", "[heap]", 10_000),
  map("1b5400000000-1b5402060000", "rw-p", "", 20_000), // V8 pages at a 64 MiB boundary
  map("1b5402060000-1b5800000000", "---p", "", 0),
  map("7fa8e4000000-7fa8e40a0000", "rw-p", "", 640), // a thread arena and its reserved rest
  map("7fa8e40a0000-7fa8e8000000", "---p", "", 0),
  map("7fa900000000-7fa904000000", "rw-p", "", 3_000), // a whole 64 MiB arena
  map("7fa910000000-7fa910800000", "rw-p", "", 100), // an 8 MiB thread stack
  map("7fa920000000-7fa920100000", "r--p", "/tmp/lab/deno-tcpcopy", 5_000),
  map("7fa930000000-7fa930c00000", "rw-s", "socket:[1234]", 12_288),
  map("7fa940000000-7fa940100000", "r-xp", "/usr/lib/libc.so.6", 1_000),
  map("7ffd15933000-7ffd15996000", "rw-p", "[stack]", 400),
].join("");

Deno.test("smapsBreakdown: executable, rings, libraries; anonymous split into malloc, stacks, rest", () => {
  const b = smapsBreakdown(SMAPS, "/tmp/lab/deno-tcpcopy");
  assert.equal(b.exe, 5_000 * kB);
  assert.equal(b.ring, 12_288 * kB);
  assert.equal(b.lib, 1_000 * kB);
  assert.equal(b.anon, (10_000 + 20_000 + 640 + 3_000 + 100 + 400) * kB);
  assert.equal(b.malloc, (10_000 + 640 + 3_000) * kB, "[heap] and the arenas, not V8's pages");
  assert.equal(b.mallocMain, 10_000 * kB);
  assert.equal(b.stacks, 500 * kB);
  assert.equal(b.anonLargest, 20_000 * kB);
  assert.equal(b.anonMappings, 6);
  assert.equal(b.rss, b.exe + b.ring + b.lib + b.anon);
});
