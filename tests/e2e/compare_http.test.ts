/**
 * `--compare` end to end (issue 15): nginx on the online host and on the target serve the same
 * answers except three paths: `/diff-status` (503 on the target), `/diff-body` (another body of
 * the same length) and `/slow` (the same answer 200 ms later, through a delaying backend).
 * Short and keep-alive connections; tcpcopy must report exactly those two paths as mismatches
 * with the right reasons, `/slow` as a match with a target latency of 200 ms or more, and
 * nothing else. Then a recording of the same traffic replayed with `--offline --compare`, where
 * `--compare-fail-above` decides the exit code.
 */
import assert from "node:assert/strict";
import { type Cleanup, isRoot, waitFor, withNetns } from "../helpers/netns.ts";
import { sh } from "../helpers/lab.ts";
import {
  HTTP_PORT,
  readText,
  type Replication,
  startLogged,
  startReplication,
  startTcpcopy,
  stopTcpcopy,
  tcpcopyCmd,
} from "../helpers/replication.ts";
import type { CompareRecord } from "../../lib/compare/record.ts";
import { parseInterceptArgs } from "../../lib/cli/intercept.ts";

/**
 * intercept's `--compare` flag comes with branch c-tunnel's intercept side; until it is merged
 * this test cannot run (the reason is in its name, not silent).
 */
const INTERCEPT_COMPARE =
  (parseInterceptArgs(["--port", "80", "--secret-file", "/s", "--compare"]) as {
    kind: string;
  }).kind !== "error";

const SLOW_PORT = 8090;
const PATHS = ["/a", "/b", "/diff-status", "/diff-body", "/slow"];
const KEEP = ["/a", "/diff-status", "/b", "/diff-body", "/slow", "/c"];

async function secretFile(env: Cleanup): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "tcpcopy-secret-" });
  env.defer(() => Deno.remove(path));
  await Deno.writeFile(path, crypto.getRandomValues(new Uint8Array(32)), { mode: 0o600 });
  await Deno.chmod(path, 0o600);
  return path;
}

/**
 * The target's nginx answers three paths differently (`/slow` `slowMs` later); reloaded with
 * SIGHUP.
 */
async function changeTarget(env: Cleanup, rep: Replication, slowMs = 200): Promise<void> {
  const dir = `${rep.lab.dir}/target`;
  const conf = await Deno.readTextFile(`${dir}/nginx.conf`);
  const extra = `    location = /diff-status { return 503 "ok $request_method $request_uri\\n"; }
    location = /diff-body { return 200 "ok $request_method /diff-bodX\\n"; }
    location = /slow { proxy_pass http://127.0.0.1:${SLOW_PORT}; }
`;
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    conf.replace("    location / {", extra + "    location / {"),
  );
  const script = new URL("../helpers/slow_http.ts", import.meta.url).pathname;
  env.child(rep.lab.target.spawn([
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    script,
    "127.0.0.1",
    String(SLOW_PORT),
    String(slowMs),
  ]));
  Deno.kill(Number((await Deno.readTextFile(`${dir}/nginx.pid`)).trim()), "SIGHUP");
  const ok = await waitFor(
    async () => {
      const out = await sh(
        rep.lab.target,
        `curl -s -o /dev/null -w '%{http_code}' http://${rep.lab.targetIp}:${HTTP_PORT}/diff-status`,
      ).catch(() => "");
      return out === "503";
    },
    5000,
    100,
  );
  assert.ok(ok, "the target nginx took the changed configuration");
}

/** Short connections (each path twice) and one keep-alive connection with every path. */
async function traffic(rep: Replication): Promise<number> {
  const on = rep.online[0];
  const url = (p: string) => `http://${on.ip}:${HTTP_PORT}${p}`;
  let n = 0;
  for (let round = 0; round < 2; round++) {
    for (const p of PATHS) {
      await sh(on.client, `curl -s -o /dev/null ${url(p)}`);
      n++;
    }
  }
  await sh(on.client, `curl -s ${KEEP.map((p) => `-o /dev/null ${url(p)}`).join(" ")}`);
  return n + KEEP.length;
}

function records(text: string): CompareRecord[] {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
    .filter((r) => r.type === "compare");
}

const path = (r: CompareRecord) => r.request.split(" ")[1];

/** tcpdump of the online host's client side (port 80) into `file`; the returned call stops it. */
async function startRecording(
  env: Cleanup,
  rep: Replication,
  file: string,
): Promise<() => Promise<void>> {
  const dump = startLogged(env, rep.online[0].ns, [
    "tcpdump",
    "-n",
    "-U",
    "--immediate-mode",
    "-s",
    "0",
    "-i",
    rep.lab.online[0].clientSideIf,
    "-w",
    file,
    `tcp port ${HTTP_PORT}`,
  ], `${file}.tcpdump`);
  await waitFor(async () => (await readText(dump.err)).includes("listening"), 5000, 50);
  return async () => {
    dump.child.kill("SIGINT");
    await dump.child.status;
  };
}

/**
 * `tcpcopy --offline recording --compare` with `args`, its clients rewritten into
 * `10.<lab>.<pool>.<host>` (-c), which the target routes back through the online host like the
 * lab's client subnets. Returns the exit code, stderr and the last stats line's `compare`.
 */
async function offlineCompare(
  env: Cleanup,
  rep: Replication,
  recording: string,
  pool: number,
  host: number,
  args: string[],
  // deno-lint-ignore no-explicit-any
): Promise<{ code: number; err: string; compare: any }> {
  const net = `10.${rep.lab.targetIp.split(".")[1]}.${pool}`;
  await rep.lab.target.exec([
    "ip",
    "route",
    "replace",
    `${net}.0/24`,
    "via",
    rep.lab.online[0].uplinkIp,
  ]);
  const t = startLogged(
    env,
    rep.online[0].ns,
    tcpcopyCmd([
      "--offline",
      recording,
      ...args,
      "-s",
      rep.lab.targetIp,
      "--compare",
      "-c",
      `${net}.${host}`,
    ]),
    `${recording}.offline-${pool}-${host}`,
  );
  const status = await t.child.status;
  const err = await readText(t.err);
  const stats = (await readText(t.out)).split("\n").filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  return { code: status.code, err, compare: stats.at(-1)?.compare };
}

Deno.test({
  name:
    "tcpcopy --compare e2e: exactly the changed paths, with reasons and latencies; offline gate" +
    (INTERCEPT_COMPARE ? "" : " (ignored: intercept has no --compare flag in this tree yet)"),
  ignore: !isRoot() || !INTERCEPT_COMPARE,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const secret = await secretFile(env);
      const rep = await startReplication(env, {
        deferTcpcopy: true,
        interceptArgs: ["--secret-file", secret, "--compare"],
      });
      await changeTarget(env, rep);
      const on = rep.online[0], dir = rep.lab.dir;
      const recording = `${dir}/compare.pcap`;
      const stopDump = await startRecording(env, rep, recording);
      const log = `${dir}/compare.ndjson`;
      on.tcpcopy = await startTcpcopy(env, rep, 0, [
        "--secret-file",
        secret,
        "--compare",
        "--compare-log",
        log,
        "--compare-all",
      ]);
      const sent = await traffic(rep);
      const done = await waitFor(
        async () => records(await readText(log)).length >= sent,
        20_000,
        200,
      );
      const stop = await stopTcpcopy(on.tcpcopy);
      await stopDump();
      const recs = records(await readText(log));
      console.log(`[compare] ${recs.length} records for ${sent} requests (complete: ${done})`);
      for (const r of recs) {
        console.log(
          `  ${r.request} ${
            r.match ? "match" : r.reason
          } online ${r.online.latencyMs} ms target ${r.target.latencyMs} ms`,
        );
      }
      assert.equal(stop.code, 0, stop.log);
      assert.equal(recs.length, sent, stop.log);
      const bad = recs.filter((r) => !r.match);
      assert.deepEqual(
        bad.map((r) => `${path(r)} ${r.reason}`).sort(),
        [
          "/diff-body body",
          "/diff-body body",
          "/diff-body body",
          "/diff-status status",
          "/diff-status status",
          "/diff-status status",
        ],
      );
      for (const r of bad.filter((r) => r.reason === "status")) {
        assert.equal(r.online.status, 200);
        assert.equal(r.target.status, 503);
      }
      for (const r of recs.filter((r) => path(r) === "/slow")) {
        assert.equal(r.match, true);
        assert.ok(r.target.latencyMs! >= 195, `slow target latency ${r.target.latencyMs}`);
        assert.ok(r.online.latencyMs! < 100, `online latency ${r.online.latencyMs}`);
      }
      // the other paths answer at once: their median is far below /slow's 200 ms (a single one
      // may be late on a loaded machine, so each is only bounded by a sanity ceiling)
      const quick = recs.filter((r) => path(r) !== "/slow").map((r) => r.target.latencyMs);
      assert.ok(quick.every((ms) => ms !== null && ms < 1000), JSON.stringify(quick));
      const sorted = (quick as number[]).sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)];
      assert.ok(median < 100, `median target latency of the quick paths ${median} ms`);
      const last = stop.stats.at(-1)! as { compare: Record<string, unknown> };
      const c = last.compare as {
        compared: number;
        matched: number;
        mismatched: Record<string, number>;
        skipped: number;
        tunnel_rtt_ms: number | null;
        log_records: number;
        log_errors: number;
      };
      // --compare-all: one record per compared turn, every one written (issue 15's log promise)
      assert.equal(c.log_records, recs.length, JSON.stringify(c));
      assert.equal(c.log_errors, 0);
      // the tunnel's own delay, measured by heartbeats, beside the target latency (namespaces
      // on one host: well under the 200 ms of /slow)
      assert.ok(
        c.tunnel_rtt_ms !== null && c.tunnel_rtt_ms >= 0 && c.tunnel_rtt_ms < 100,
        `tunnel_rtt_ms ${c.tunnel_rtt_ms}`,
      );
      assert.ok(bad.every((r) => typeof r.tunnelRttMs === "number"), "records carry tunnelRttMs");
      assert.match(stop.log, /tunnel round trip \d+(\.\d+)? ms/);
      assert.equal(c.compared, sent);
      assert.equal(c.matched, sent - 6);
      assert.equal(c.mismatched.status, 3);
      assert.equal(c.mismatched.body, 3);
      assert.equal(c.skipped, 0);
      assert.match(
        stop.log,
        /compare: top mismatching requests: (GET \/diff-(status|body) \(3\)(, )?){2}/,
      );

      // offline: the recording replayed; its server packets are the online answers
      const offline = (failAbove: string, more: string[] = []) =>
        offlineCompare(env, rep, recording, 77, failAbove === "0" ? 1 : 2, [
          "-x",
          `${on.ip}:${HTTP_PORT}-${rep.lab.targetIp}:${HTTP_PORT}`,
          "--secret-file",
          secret,
          "--compare-fail-above",
          failAbove,
          ...more,
        ]);
      const strict = await offline("0");
      console.log(`[offline strict] code ${strict.code} ${JSON.stringify(strict.compare)}`);
      assert.equal(strict.code, 3, strict.err);
      assert.equal(strict.compare.mismatched.status, 3);
      assert.equal(strict.compare.mismatched.body, 3);
      // (with every record logged: the offline end writes each verdict before the log closes)
      const offlineLog = `${dir}/offline.ndjson`;
      const lax = await offline("0.5", ["--compare-all", "--compare-log", offlineLog]);
      assert.equal(lax.code, 0, lax.err);
      assert.equal(lax.compare.compared, sent);
      assert.equal(records(await readText(offlineLog)).length, sent);
      assert.equal(lax.compare.log_records, sent);
      assert.equal(lax.compare.log_errors, 0);
    }),
});

/** Pipelined batches: each one connection, every request in one write (bash printf to /dev/tcp). */
const BATCHES = [
  ["/a", "/b", "/c"],
  ["/a", "/diff-body", "/b"],
  ["/c", "/a"],
  ["/b", "/diff-status", "/a"],
];

Deno.test({
  name: "tcpcopy --compare e2e: pipelined requests, exactly the batches with a changed path",
  ignore: !isRoot() || !INTERCEPT_COMPARE,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const secret = await secretFile(env);
      const rep = await startReplication(env, {
        deferTcpcopy: true,
        interceptArgs: ["--secret-file", secret, "--compare"],
      });
      await changeTarget(env, rep);
      const on = rep.online[0];
      const log = `${rep.lab.dir}/pipelined.ndjson`;
      on.tcpcopy = await startTcpcopy(env, rep, 0, [
        "--secret-file",
        secret,
        "--compare",
        "--compare-log",
        log,
        "--compare-all",
      ]);
      for (const batch of BATCHES) {
        // one write of every request (a Deno one-liner: bash's printf may split it), then the
        // answers until the server closes (the last request says Connection: close)
        const reqs = batch.map((p, i) =>
          `GET ${p} HTTP/1.1\r\nHost: x\r\n${
            i === batch.length - 1 ? "Connection: close\r\n" : ""
          }\r\n`
        ).join("");
        const code = `const c = await Deno.connect({ hostname: "${on.ip}", port: ${HTTP_PORT} });
          await c.write(new TextEncoder().encode(${JSON.stringify(reqs)}));
          const out = []; const b = new Uint8Array(65536);
          for (let n; (n = await c.read(b)) !== null;) out.push(new TextDecoder().decode(b.subarray(0, n)));
          console.log(out.join(""));`;
        const out = (await on.client.exec([Deno.execPath(), "eval", code], { timeoutMs: 15_000 }))
          .stdout;
        assert.equal(out.split("HTTP/1.1 200").length - 1, batch.length, out);
      }
      // one turn per batch: the requests of one write are one request for the engine
      await waitFor(async () => records(await readText(log)).length >= BATCHES.length, 20_000, 200);
      const stop = await stopTcpcopy(on.tcpcopy);
      const recs = records(await readText(log));
      for (const r of recs) {
        console.log(
          `  ${r.request} ${r.match ? "match" : r.reason} ${JSON.stringify(r.diff ?? null)}`,
        );
      }
      assert.equal(stop.code, 0, stop.log);
      assert.equal(recs.length, BATCHES.length, stop.log);
      assert.deepEqual(
        recs.filter((r) => !r.match).map((r) => `${path(r)} ${r.reason}`).sort(),
        ["/a body", "/b status"],
        "the batches holding /diff-body and /diff-status, named by their first request",
      );
    }),
});

/** The release candidate's port on the target host: a second nginx server, one path changed. */
const RC_PORT = 8081;

/** The target's nginx also listens on {@link RC_PORT}, where `/diff-body` has another body. */
async function addCandidate(env: Cleanup, rep: Replication): Promise<void> {
  const dir = `${rep.lab.dir}/target`;
  const conf = await Deno.readTextFile(`${dir}/nginx.conf`);
  const rc = `  server {
    listen ${RC_PORT} backlog=4096;
    location = /diff-body { return 200 "ok $request_method /diff-bodX\\n"; }
    location / { return 200 "ok $request_method $request_uri\\n"; }
  }
}
`;
  await Deno.writeTextFile(`${dir}/nginx.conf`, conf.replace(/\}\s*$/, rc));
  Deno.kill(Number((await Deno.readTextFile(`${dir}/nginx.pid`)).trim()), "SIGHUP");
  const ok = await waitFor(
    async () => {
      const out = await sh(
        rep.lab.target,
        `curl -s http://${rep.lab.targetIp}:${RC_PORT}/diff-body`,
      ).catch(() => "");
      return out.includes("diff-bodX");
    },
    5000,
    100,
  );
  assert.ok(ok, `the target nginx listens on ${RC_PORT} too`);
  void env;
}

Deno.test({
  name:
    "tcpcopy --compare e2e: two targets (current, release candidate) and -n 2 copies, every session compared, only the candidate's changed path mismatches; offline too",
  ignore: !isRoot() || !INTERCEPT_COMPARE,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const secret = await secretFile(env);
      const rep = await startReplication(env, {
        deferTcpcopy: true,
        interceptArgs: ["--secret-file", secret, "--compare", "--port", String(RC_PORT)],
      });
      await addCandidate(env, rep);
      const on = rep.online[0];
      const log = `${rep.lab.dir}/sessions.ndjson`;
      const recording = `${rep.lab.dir}/sessions.pcap`;
      const stopDump = await startRecording(env, rep, recording);
      const current = `${rep.lab.targetIp}:${HTTP_PORT}`, rc = `${rep.lab.targetIp}:${RC_PORT}`;
      on.tcpcopy = await startTcpcopy(env, rep, 0, [
        "-x",
        `${on.ip}:${HTTP_PORT}-${rc}`,
        "-n",
        "2",
        "--secret-file",
        secret,
        "--compare",
        "--compare-log",
        log,
        "--compare-all",
      ]);
      const sent = await traffic(rep);
      const want = 4 * sent; // two targets, two copies each
      const done = await waitFor(
        async () => records(await readText(log)).length >= want,
        30_000,
        200,
      );
      const stop = await stopTcpcopy(on.tcpcopy);
      await stopDump();
      const recs = records(await readText(log));
      console.log(`[sessions] ${recs.length} records for ${want} (complete: ${done})`);
      assert.equal(stop.code, 0, stop.log);
      assert.equal(recs.length, want, stop.log);
      const count = new Map<string, number>();
      for (const r of recs) {
        const k = `${r.targetAddr} copy ${r.copy}`;
        count.set(k, (count.get(k) ?? 0) + 1);
      }
      assert.deepEqual(
        [...count].sort(),
        [
          [`${current} copy 0`, sent],
          [`${current} copy 1`, sent],
          [`${rc} copy 0`, sent],
          [`${rc} copy 1`, sent],
        ],
        "every session's requests compared",
      );
      const bad = recs.filter((r) => !r.match);
      assert.deepEqual(
        bad.map((r) => `${r.targetAddr} ${r.copy} ${path(r)} ${r.reason}`).sort(),
        [0, 0, 0, 1, 1, 1].map((c) => `${rc} ${c} /diff-body body`),
        "the candidate's changed path in both copies, nothing of the current version",
      );
      const last = stop.stats.at(-1)! as { compare: Record<string, unknown> };
      const c = last.compare as {
        compared: number;
        matched: number;
        mismatched: Record<string, number>;
        skipped: number;
        targets: Record<string, { compared: number; matched: number; mismatched: number }>;
      };
      assert.equal(c.compared, want);
      assert.equal(c.matched, want - 6);
      assert.equal(c.mismatched.body, 6);
      assert.equal(c.skipped, 0);
      assert.deepEqual(c.targets, {
        [current]: { compared: 2 * sent, matched: 2 * sent, mismatched: 0 },
        [rc]: { compared: 2 * sent, matched: 2 * sent - 6, mismatched: 6 },
      });
      assert.ok(
        stop.log.includes(
          `compare: by target: ${current} ${2 * sent} compared, 0 mismatched; ` +
            `${rc} ${2 * sent} compared, 6 mismatched`,
        ),
        stop.log,
      );

      // offline: the recording replayed to both targets, each session compared with the
      // recorded answers; the candidate's mismatches fail the gate
      const { code, err, compare: off } = await offlineCompare(env, rep, recording, 78, 1, [
        "-x",
        `${on.ip}:${HTTP_PORT}-${current},${on.ip}:${HTTP_PORT}-${rc}`,
        "--secret-file",
        secret,
        "--compare-fail-above",
        "0",
      ]);
      console.log(`[offline sessions] code ${code} ${JSON.stringify(off?.targets)}`);
      assert.equal(code, 3, err);
      assert.equal(off.compared, 2 * sent, err);
      assert.equal(off.mismatched.body, 3, err);
      assert.deepEqual(off.targets, {
        [current]: { compared: sent, matched: sent, mismatched: 0 },
        [rc]: { compared: sent, matched: sent - 3, mismatched: 3 },
      });
    }),
});

Deno.test({
  name:
    "tcpcopy --compare e2e: stopped while a verdict is pending, its record is in the log (verdicts before the log closes); SIGHUP reopens the log" +
    (INTERCEPT_COMPARE ? "" : " (ignored: intercept has no --compare flag in this tree yet)"),
  ignore: !isRoot() || !INTERCEPT_COMPARE,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const secret = await secretFile(env);
      const rep = await startReplication(env, {
        deferTcpcopy: true,
        interceptArgs: ["--secret-file", secret, "--compare"],
      });
      // the target's /slow answers 5 s late: tcpcopy is stopped long before, with /slow's
      // turn waiting for its verdict; the stop gives it (closeAll) and the record must be
      // written before the log closes
      await changeTarget(env, rep, 5000);
      const on = rep.online[0], dir = rep.lab.dir;
      const log = `${dir}/pending.ndjson`;
      on.tcpcopy = await startTcpcopy(env, rep, 0, [
        "--secret-file",
        secret,
        "--compare",
        "--compare-log",
        log,
        "--compare-all",
      ]);
      const url = (p: string) => `http://${on.ip}:${HTTP_PORT}${p}`;
      await sh(on.client, `curl -s -o /dev/null ${url("/a")} -o /dev/null ${url("/slow")}`);
      // /a's verdict (the target answers at once) comes while running: /slow's is pending then
      const aDone = await waitFor(
        async () => records(await readText(log)).some((r) => path(r) === "/a"),
        5000,
        50,
      );
      // logrotate: the log renamed, SIGHUP: what follows goes into a new file at the path
      await Deno.rename(log, `${log}.1`);
      on.tcpcopy.child.kill("SIGHUP");
      const reopened = await waitFor(
        async () => (await readText(on.tcpcopy!.err)).includes("--compare-log"),
        5000,
        50,
      );
      const stop = await stopTcpcopy(on.tcpcopy);
      assert.ok(reopened, stop.log);
      assert.match(stop.log, /SIGHUP: --compare-log .* reopened/);
      const rotated = records(await readText(`${log}.1`));
      assert.deepEqual(rotated.map(path), ["/a"]);
      const recs = [...rotated, ...records(await readText(log))];
      console.log(`[pending] ${recs.map((r) => `${path(r)} ${r.match ? "match" : r.reason}`)}`);
      assert.equal(stop.code, 0, stop.log);
      assert.ok(aDone, `/a compared while running: ${stop.log}`);
      const slow = recs.filter((r) => path(r) === "/slow");
      assert.equal(slow.length, 1, JSON.stringify(recs));
      assert.equal(slow[0].match, false, JSON.stringify(slow[0])); // no target answer yet
      const c = (stop.stats.at(-1)! as {
        compare: { compared: number; log_records: number; log_errors: number };
      }).compare;
      assert.equal(c.compared, recs.length, JSON.stringify(c));
      assert.equal(c.log_records, recs.length, JSON.stringify(c));
      assert.equal(c.log_errors, 0, JSON.stringify(c));
    }),
});
