/**
 * Offline replay end to end: tcpdump records real clients (ab, curl) talking to nginx on the
 * online host, on its veth (Ethernet) and on `any` (Linux cooked v1 and v2) at the same time;
 * tcpcopy --offline then replays each file to nginx on the target, with intercept (NFQUEUE)
 * there. Each replay uses its own -c client address, so its lines in the target's access log
 * are told apart (and no replay meets the TIME_WAIT sockets of an earlier one).
 *
 * Checked: the same request lines as online (same count), -a 10 within 1/5 of the recorded
 * span, -T 3 gives 3x the requests, -I collapses the recorded idle gap, a file cut in the
 * middle of a record is replayed up to the cut (counted, offset named), and empty, random and
 * unmatched files end with their documented line and exit code.
 */
import assert from "node:assert/strict";
import { type Cleanup, isRoot, waitFor, withNetns } from "../helpers/netns.ts";
import { ab, sh } from "../helpers/lab.ts";
import {
  HTTP_PORT,
  readText,
  type Replication,
  startLogged,
  startReplication,
  tcpcopyCmd,
} from "../helpers/replication.ts";
import { PcapFile } from "../../lib/io/pcap_file.ts";

/** The quoted request of each access log line whose client address is `addr`. */
async function requests(log: string, addr: string): Promise<string[]> {
  const out: string[] = [];
  for (const line of (await readText(log)).split("\n")) {
    if (!line.startsWith(`${addr} `)) continue;
    const m = /"([A-Z]+ [^"]*)"/.exec(line);
    if (m) out.push(m[1]);
  }
  return out.sort();
}

/** Timestamps (µs) of the first and last record and the record offsets of a pcap file. */
function scan(path: string): { firstUs: number; lastUs: number; ends: number[] } {
  const f = PcapFile.open(path);
  let firstUs = NaN, lastUs = NaN, off = 24;
  const ends: number[] = [];
  for (const r of f) {
    if (Number.isNaN(firstUs)) firstUs = r.tsMicros;
    lastUs = r.tsMicros;
    off += 16 + r.data.length;
    ends.push(off);
  }
  return { firstUs, lastUs, ends };
}

interface Replayed {
  code: number;
  /** From "replicating" to "stopping" in tcpcopy's log, ms. */
  replayMs: number;
  stats: Record<string, unknown>[];
  log: string;
}

let runs = 0;

/** Runs tcpcopy --offline on the online host until it exits by itself (bounded). */
async function replay(
  env: Cleanup,
  rep: Replication,
  args: string[],
  timeoutMs = 20_000,
): Promise<Replayed> {
  const on = rep.online[0];
  const t = startLogged(
    env,
    on.ns,
    tcpcopyCmd(args),
    `${rep.lab.dir}/offline${runs++}`,
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    t.child.status,
    new Promise<null>((r) => timer = setTimeout(() => r(null), timeoutMs)),
  ]);
  clearTimeout(timer);
  if (status === null) {
    t.child.kill("SIGKILL");
    await t.child.status;
  }
  const log = await readText(t.err);
  const at = (re: RegExp) => {
    const line = log.split("\n").find((l) => re.test(l));
    return line ? Date.parse(line.slice(0, 24)) : NaN;
  };
  const stats = (await readText(t.out)).split("\n").filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  return {
    code: status?.code ?? -1,
    replayMs: at(/\] stopping: /) - at(/\] replicating$/),
    stats,
    log,
  };
}

Deno.test({
  name:
    "tcpcopy --offline e2e: recorded Ethernet/SLL/SLL2 files replayed with -a, -T, -I; bad files",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env, { deferTcpcopy: true });
      const on = rep.online[0], lab = rep.lab;
      const dir = lab.dir;
      const files = {
        eth: `${dir}/eth.pcap`,
        sll: `${dir}/sll.pcap`,
        sll2: `${dir}/sll2.pcap`,
      };
      // 1. Record: three tcpdumps at once while real clients talk to the online nginx.
      const dumps = [
        ["-i", lab.online[0].clientSideIf, "-w", files.eth],
        ["-i", "any", "-y", "LINUX_SLL", "-w", files.sll],
        ["-i", "any", "-y", "LINUX_SLL2", "-w", files.sll2],
      ].map((a, i) =>
        startLogged(
          env,
          on.ns,
          [
            "tcpdump",
            "-n",
            "-U",
            "--immediate-mode",
            "-s",
            "4096",
            "-B",
            "8192",
            ...a,
            `tcp port ${HTTP_PORT}`,
          ],
          `${dir}/tcpdump${i}`,
        )
      );
      for (const d of dumps) {
        const up = await waitFor(async () => /listening on/.test(await readText(d.err)), 5000);
        assert.ok(up, `tcpdump did not start: ${await readText(d.err)}`);
      }
      const url = (path: string) => `http://${on.ip}:${HTTP_PORT}${path}`;
      const short = await ab(on.client, url("/short"), { requests: 20, concurrency: 2 });
      await new Promise((r) => setTimeout(r, 2000));
      await sh(on.client, `curl -s -o /dev/null ${url("/one")}`);
      await new Promise((r) => setTimeout(r, 6000)); // the idle gap -I collapses
      const keep = await ab(on.client, url("/keep"), {
        requests: 20,
        concurrency: 2,
        keepAlive: true,
      });
      await new Promise((r) => setTimeout(r, 500));
      for (const d of dumps) d.child.kill("SIGTERM");
      await Promise.all(dumps.map((d) => d.child.status));
      for (const d of dumps) {
        const err = await readText(d.err);
        assert.match(err, /\n0 packets dropped by kernel/, err);
      }
      const online = await requests(on.accessLog, on.clientIp);
      assert.equal(online.length, short + 1 + keep);
      const { firstUs, lastUs, ends } = scan(files.eth);
      const spanMs = (lastUs - firstUs) / 1000;
      console.log(`[recording] ${online.length} requests over ${spanMs.toFixed(0)} ms`);
      assert.ok(spanMs >= 5000, `recording spans ${spanMs} ms`);

      const n = on.clientIp.split(".").slice(0, 3).join(".");
      const target = lab.targetIp;
      const base = (file: string, client: string) => [
        "-x",
        `${on.ip}:${HTTP_PORT}-${target}:${HTTP_PORT}`,
        "-s",
        target,
        "--offline",
        file,
        "-c",
        client,
        "--stats-interval",
        "1",
      ];
      const check = async (name: string, r: Replayed, client: string, times = 1) => {
        const got = await requests(rep.targetLog, client);
        const last = r.stats.at(-1) ?? {};
        console.log(
          `[${name}] exit=${r.code} replay=${r.replayMs} ms target=${got.length} ` +
            `expected=${online.length * times} offline=${JSON.stringify(last.offline)}`,
        );
        for (const l of r.log.split("\n")) {
          if (/\] (offline replay of|sessions:|requests:)/.test(l)) console.log(`  ${l.slice(25)}`);
        }
        assert.equal(r.code, 0, r.log);
        const want = Array.from({ length: times }, () => online).flat().sort();
        assert.deepEqual(got, want, `${name}: target requests differ from the online ones`);
        assert.equal(last.final, true);
        return last.offline as Record<string, number>;
      };

      // 2. Ethernet at -a 10: the online requests, within 1/5 of the recorded span.
      const fast = await replay(env, rep, [...base(files.eth, `${n}.101`), "-a", "10"]);
      const o1 = await check("eth -a 10", fast, `${n}.101`);
      assert.ok(fast.replayMs <= spanMs / 5, `-a 10 took ${fast.replayMs} ms of ${spanMs}`);
      assert.equal(o1.passes, 1);
      assert.equal(o1.packets_read, ends.length);
      assert.ok(o1.packets_matched > 0 && o1.packets_matched < o1.packets_read);
      assert.match(fast.log, /offline replay of .*eth\.pcap: 1\/1 pass\(es\)/);
      assert.match(fast.log, /requests: \d+ from the file .* answered; lost: none/);

      // 3. Cooked captures of the "any" device, v1 and v2.
      for (
        const [name, file, client] of [
          ["sll -a 10", files.sll, `${n}.102`],
          ["sll2 -a 10", files.sll2, `${n}.103`],
        ]
      ) {
        const r = await replay(env, rep, [...base(file, client), "-a", "10"]);
        await check(name, r, client);
      }

      // 4. -T 3: three times the requests, each pass on fresh ports.
      const three = await replay(env, rep, [...base(files.eth, `${n}.104`), "-a", "10", "-T", "3"]);
      const o3 = await check("eth -a 10 -T 3", three, `${n}.104`, 3);
      assert.equal(o3.pass, 3);
      assert.equal(o3.packets_read, 3 * ends.length);

      // 5. -I 1000 in real time: the 2 s and 6 s idle gaps are collapsed.
      const skip = await replay(env, rep, [...base(files.eth, `${n}.105`), "-I", "1000"]);
      const o5 = await check("eth -I 1000", skip, `${n}.105`);
      assert.ok(o5.gaps_collapsed >= 2, JSON.stringify(o5));
      assert.ok(
        skip.replayMs < spanMs - 5000,
        `-I took ${skip.replayMs} ms of a ${spanMs} ms recording`,
      );

      // 6. Cut in the middle of a record: replayed up to the cut, the record counted.
      const bytes = await Deno.readFile(files.eth);
      const k = Math.floor(ends.length / 2);
      const cut = `${dir}/cut.pcap`;
      await Deno.writeFile(cut, bytes.subarray(0, ends[k - 1] + 20));
      const c = await replay(env, rep, [...base(cut, `${n}.106`), "-a", "10"]);
      const oc = c.stats.at(-1)?.offline as Record<string, number>;
      console.log(`[cut] exit=${c.code} offline=${JSON.stringify(oc)}`);
      assert.equal(c.code, 0, c.log);
      assert.equal(oc.truncated_records, 1);
      assert.equal(oc.packets_read, k);
      assert.match(
        c.log,
        new RegExp(`cut\\.pcap: record ${k + 1} at byte ${ends[k - 1]} is truncated`),
      );
      const partial = await requests(rep.targetLog, `${n}.106`);
      assert.ok(partial.length > 0 && partial.length < online.length, `${partial.length}`);

      // 7. Files that replicate nothing.
      const empty = `${dir}/empty.pcap`, random = `${dir}/random.pcap`;
      await Deno.writeFile(empty, new Uint8Array(0));
      await Deno.writeFile(random, crypto.getRandomValues(new Uint8Array(4096)));
      const e = await replay(env, rep, base(empty, `${n}.107`));
      assert.equal(e.code, 2);
      assert.match(e.log, /empty\.pcap: the file is empty \(0 bytes\)/);
      const rnd = await replay(env, rep, base(random, `${n}.107`));
      assert.equal(rnd.code, 2);
      assert.match(
        rnd.log,
        /random\.pcap: not a pcap or pcapng file \(unknown magic 0x[0-9a-f]{8} at byte 0\)/,
      );
      const none = await replay(env, rep, [
        ...base(files.eth, `${n}.107`).map((a) =>
          a === `${on.ip}:${HTTP_PORT}-${target}:${HTTP_PORT}` ? `8080-${target}:80` : a
        ),
        "-a",
        "10",
      ]);
      assert.equal(none.code, 1, none.log);
      assert.match(none.log, /nothing to replicate: no packet in .*eth\.pcap matched -x 8080-/);
      assert.match(none.log, new RegExp(`TCP to port\\(s\\) ${HTTP_PORT} \\(`));
      assert.equal((await requests(rep.targetLog, `${n}.107`)).length, 0);
    }),
});
