/**
 * `--compare-log`'s writer (lib/tcpcopy/compare_log.ts) and the line writer under it
 * (lib/stats/line_writer.ts): a record that cannot be written is counted and reported
 * (rate-limited), never dropped silently; a line torn by an error does not swallow the next
 * one; a record given after the log closed is counted too. And through a real file
 * (LogFileSink): written records are on disk at once, one JSON object per line.
 */
import assert from "node:assert/strict";
import type { CompareRecord } from "../../lib/compare/record.ts";
import { LineWriter, type SyncWriter } from "../../lib/stats/line_writer.ts";
import { LogFileSink } from "../../lib/stats/log_file.ts";
import { fileSink } from "../../lib/process/output.ts";
import { CompareLog, LOG_ERROR_EVERY_MS } from "../../lib/tcpcopy/compare_log.ts";

const dec = new TextDecoder();

/** A writer that fails (EIO-like) while `failing`, or takes at most `chunk` bytes per call. */
class FakeDisk implements SyncWriter {
  bytes: number[] = [];
  failing = false;
  /** Bytes accepted before a failure (a write cut short). */
  cutAfter = 0;
  chunk = Infinity;
  writeSync(p: Uint8Array): number {
    if (this.failing) {
      if (this.cutAfter > 0) {
        const n = Math.min(this.cutAfter, p.length);
        this.cutAfter -= n;
        this.bytes.push(...p.subarray(0, n));
        return n;
      }
      throw new Error("No space left on device (os error 28)");
    }
    const n = Math.min(this.chunk, p.length);
    this.bytes.push(...p.subarray(0, n));
    return n;
  }
  text(): string {
    return dec.decode(new Uint8Array(this.bytes));
  }
}

const rec = (turn: number) =>
  ({ type: "compare", turn, request: `GET /${turn}`, match: true }) as unknown as CompareRecord;

function rig() {
  const disk = new FakeDisk();
  const lines = new LineWriter(disk);
  const warnings: string[] = [];
  let now = 0;
  const log = new CompareLog("out.ndjson", { tryWrite: (l) => lines.write(l) }, (l) => {
    warnings.push(l);
  }, () => now);
  return { disk, log, warnings, at: (ms: number) => now = ms };
}

const parsed = (text: string) =>
  text.split("\n").filter((l) => l !== "").map((l) => {
    try {
      return JSON.parse(l).turn as number;
    } catch {
      return "torn";
    }
  });

Deno.test("compare log: records not written are counted and reported once a minute, the rest written", () => {
  const { disk, log, warnings, at } = rig();
  for (let i = 0; i < 3; i++) log.write(rec(i));
  disk.failing = true;
  at(1000);
  for (let i = 3; i < 8; i++) log.write(rec(i));
  assert.equal(log.written, 3);
  assert.equal(log.errors, 5);
  assert.equal(warnings.length, 1, warnings.join("\n")); // the first at once, then quiet
  assert.match(warnings[0], /--compare-log out\.ndjson: 1 record not written \(No space left/);
  at(1000 + LOG_ERROR_EVERY_MS);
  log.write(rec(8));
  assert.equal(warnings.length, 2);
  assert.match(warnings[1], /: 5 records not written .*6 in all, counted in compare\.log_errors/);
  log.write(rec(9));
  disk.failing = false;
  log.write(rec(10));
  log.flushWarning(); // at shutdown: the ones since the last line
  assert.match(warnings[2], /: 1 more record not written; 7 in all/);
  log.flushWarning();
  assert.equal(warnings.length, 3);
  assert.deepEqual(parsed(disk.text()), [0, 1, 2, 10]);
  assert.equal(log.written + log.errors, 11);
});

Deno.test("compare log: a line cut short by an error is ended by the next one (no record swallowed)", () => {
  const { disk, log } = rig();
  log.write(rec(1));
  disk.failing = true;
  disk.cutAfter = 10; // half a line reaches the disk, then ENOSPC
  log.write(rec(2));
  disk.failing = false;
  log.write(rec(3));
  log.write(rec(4));
  assert.equal(log.errors, 1);
  assert.deepEqual(parsed(disk.text()), [1, "torn", 3, 4]);
});

Deno.test("line writer: short writes are continued; a writer making no progress is an error", () => {
  const disk = new FakeDisk();
  disk.chunk = 3;
  const w = new LineWriter(disk);
  assert.equal(w.write('{"turn":1}\n'), null);
  assert.equal(disk.text(), '{"turn":1}\n');
  const stuck = new LineWriter({ writeSync: () => 0 });
  assert.match(stuck.write("x\n")?.message ?? "", /no progress/);
});

Deno.test("compare log: a record given after the log closed is counted, not dropped silently", () => {
  const { log, warnings } = rig();
  log.write(rec(1));
  log.close();
  log.write(rec(2));
  assert.equal(log.written, 1);
  assert.equal(log.errors, 1);
  assert.match(warnings[0], /closed already/);
});

Deno.test("compare log: through a file, each record is on disk when write returns; a closed sink reports", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/c.ndjson`;
    const sink = fileSink(path);
    assert.ok("tryWrite" in sink);
    const log = new CompareLog(path, sink, () => {}, () => 0);
    for (let i = 0; i < 50; i++) {
      log.write(rec(i));
      // (read back at once: nothing buffered in the process)
      assert.equal(parsed(Deno.readTextFileSync(path)).length, i + 1);
    }
    sink.close();
    log.write(rec(50)); // the sink closed under the log: counted
    assert.equal(log.errors, 1);
    assert.deepEqual(parsed(Deno.readTextFileSync(path)), [...Array(50).keys()]);
    const direct = LogFileSink.open(path);
    assert.ok(direct instanceof LogFileSink);
    direct.close();
    assert.match(direct.tryWrite("x\n")?.message ?? "", /is closed/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name: "compare log: /dev/full (ENOSPC on every write) counts every record",
  ignore: (() => {
    try {
      return !Deno.statSync("/dev/full").isCharDevice;
    } catch {
      return true;
    }
  })(),
  fn: () => {
    const f = Deno.openSync("/dev/full", { write: true });
    try {
      const lines = new LineWriter(f);
      const warnings: string[] = [];
      const log = new CompareLog("/dev/full", { tryWrite: (l) => lines.write(l) }, (l) => {
        warnings.push(l);
      }, () => 0);
      for (let i = 0; i < 20; i++) log.write(rec(i));
      assert.equal(log.errors, 20);
      assert.equal(log.written, 0);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /space|ENOSPC|os error 28/i);
    } finally {
      f.close();
    }
  },
});

Deno.test("compare log: SIGHUP's reopen after logrotate renamed the file: later records in the new file, none lost", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/c.ndjson`;
    const sink = fileSink(path);
    assert.ok("tryWrite" in sink);
    const log = new CompareLog(path, sink, () => {}, () => 0);
    log.write(rec(1));
    log.write(rec(2));
    Deno.renameSync(path, `${path}.1`);
    assert.deepEqual(log.reopen(), { ok: true, line: `SIGHUP: --compare-log ${path} reopened` });
    log.write(rec(3));
    assert.deepEqual(parsed(Deno.readTextFileSync(`${path}.1`)), [1, 2]);
    assert.deepEqual(parsed(Deno.readTextFileSync(path)), [3]);
    assert.equal(log.written, 3);
    // a path that cannot be opened again (now a symlink): the old file is kept
    Deno.renameSync(path, `${path}.2`);
    Deno.symlinkSync(`${path}.2`, path);
    const r = log.reopen();
    assert.equal(r?.ok, false);
    assert.match(r!.line, /cannot reopen --compare-log .*still writing the old one/);
    log.write(rec(4));
    assert.deepEqual(parsed(Deno.readTextFileSync(`${path}.2`)), [3, 4]);
    sink.close();
    // stdout (no reopen): nothing to say
    assert.equal(new CompareLog("-", { tryWrite: () => null }, () => {}, () => 0).reopen(), null);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
