import assert from "node:assert/strict";
import { formatLogLine, Logger } from "../../lib/stats/logger.ts";

Deno.test("log line: ISO timestamp, level, message on one line", () => {
  const t = Date.UTC(2025, 0, 31, 12, 0, 0, 7);
  assert.equal(formatLogLine(t, "warn", "a\nb"), "2025-01-31T12:00:00.007Z [warn] a b\n");
});

Deno.test("logger filters by level and writes to the sink", () => {
  const lines: string[] = [];
  const log = new Logger((l) => lines.push(l), () => 0, "info");
  log.debug("hidden");
  log.info("shown");
  log.error("bad");
  assert.deepEqual(lines.map((l) => l.slice(25).trimEnd()), ["[info] shown", "[error] bad"]);
});

Deno.test("rate-limited messages: at most N per key per minute, then a summary", () => {
  let now = 0;
  const lines: string[] = [];
  const log = new Logger((l) => lines.push(l), () => now, "info", 3);
  for (let i = 0; i < 10; i++) log.limited("send", "warn", `send failed ${i}`);
  log.limited("other", "warn", "different key");
  assert.equal(lines.length, 4);
  now = 61_000;
  log.limited("send", "warn", "send failed again");
  assert.match(lines[4], /7 more 'send' messages suppressed/);
  assert.match(lines[5], /send failed again/);
});
