/**
 * tcpcopy end to end with several tcpcopy processes feeding one target:
 * - two instances on one online host replicating the same traffic (-f 1 and -f 2 put their
 *   source ports in different lanes, so their tuples never meet), so intercept must route
 *   each reply to the right instance; each instance's final stats must account for every
 *   request (target = captured - lost for the two together, and nothing lost);
 * - the seed's experiment at small scale: two online hosts, each with its own clients and
 *   tcpcopy, one target that must serve the sum. Loss = (online1 + online2 - target) /
 *   (online1 + online2), from the access logs.
 */
import assert from "node:assert/strict";
import { isRoot, waitFor, withNetns } from "../helpers/netns.ts";
import { ab } from "../helpers/lab.ts";
import {
  HTTP_PORT,
  interceptCpu,
  readText,
  report,
  served,
  settle,
  type Started,
  startReplication,
  startTcpcopy,
  type Stopped,
  stopTcpcopy,
} from "../helpers/replication.ts";

/** The request counters of tcpcopy's final JSON stats line. */
interface Final {
  captured: number;
  sent: number;
  answered: number;
  lost: number;
  lostBy: Record<string, number>;
  handshakes: number;
  established: number;
  synRetransmits: number;
  resets: number;
  retransmits: number;
}

function finalStats(s: Stopped): Final {
  const last = s.stats.findLast((l) => l.final === true) ?? s.stats.at(-1);
  assert.ok(last, `no stats line from tcpcopy: ${s.log}`);
  const j = last as {
    requests: { captured: number; sent: number; answered: number };
    lost: Record<string, number>;
    handshakes: { sent: number; established: number; syn_retransmits: number };
    resets: number;
    retransmits: number;
  };
  const lostBy = Object.fromEntries(Object.entries(j.lost).filter(([, n]) => n > 0));
  return {
    ...j.requests,
    lost: Object.values(j.lost).reduce((a, b) => a + b, 0),
    lostBy,
    handshakes: j.handshakes.sent,
    established: j.handshakes.established,
    synRetransmits: j.handshakes.syn_retransmits,
    resets: j.resets,
    retransmits: j.retransmits,
  };
}

/** The instance's latest periodic stats line shows no live session. */
async function idle(t: Started): Promise<boolean> {
  const lines = (await readText(t.out)).split("\n").filter((l) => l.startsWith("{"));
  const last = lines.length > 0 ? JSON.parse(lines[lines.length - 1]) : undefined;
  return last?.sessions?.active === 0;
}

function summary(f: Final): string {
  return `requests captured=${f.captured} sent=${f.sent} answered=${f.answered} ` +
    `lost=${f.lost} ${JSON.stringify(f.lostBy)} handshakes=${f.established}/${f.handshakes} ` +
    `syn_retransmits=${f.synRetransmits} resets=${f.resets} retransmits=${f.retransmits}`;
}

Deno.test({
  name: "tcpcopy e2e: two tcpcopy instances on one host feed one target (each request twice)",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env, { deferTcpcopy: true });
      const on = rep.online[0];
      const a = await startTcpcopy(env, rep, 0, ["-f", "1"], "tcpcopy-a");
      const b = await startTcpcopy(env, rep, 0, ["-f", "2"], "tcpcopy-b");
      const url = `http://${on.ip}:${HTTP_PORT}`;
      const short = await ab(on.client, `${url}/twice-short`, { requests: 500, concurrency: 4 });
      const keep = await ab(on.client, `${url}/twice-keep`, {
        requests: 1000,
        concurrency: 4,
        keepAlive: true,
      });
      const online = await served(on.accessLog);
      assert.equal(online, short + keep);
      const target = await settle(() => served(rep.targetLog), 2 * online);
      // Stop once both instances say every session ended (bounded): answers still on their
      // way back are not counted as answered.
      await waitFor(async () => (await idle(a)) && (await idle(b)), 5000, 200);
      const icpu = await interceptCpu(rep);
      const sa = await stopTcpcopy(a), sb = await stopTcpcopy(b);
      console.log(report("two instances, one host", 2 * online, target, 2 * online, {
        tcpcopy: sa.cpuS + sb.cpuS,
        intercept: icpu,
      }));
      const fa = finalStats(sa), fb = finalStats(sb);
      for (const [name, s] of [["A (-f 1)", fa], ["B (-f 2)", fb]] as const) {
        console.log(`[two instances] ${name}: ${summary(s)}`);
      }
      // No silent loss: what the target served is what the instances captured minus what
      // they counted as lost, and here nothing is lost.
      assert.equal(target, fa.captured - fa.lost + fb.captured - fb.lost, "silent loss");
      for (const s of [fa, fb]) {
        assert.equal(s.captured, online, summary(s));
        assert.equal(s.lost, 0, summary(s));
        assert.equal(s.sent, s.captured, summary(s));
        assert.equal(s.answered, s.captured, summary(s));
        assert.equal(s.established, s.handshakes, summary(s));
      }
      assert.equal(await served(rep.targetLog, /GET \/twice-short /), 2 * short);
      assert.equal(await served(rep.targetLog, /GET \/twice-keep /), 2 * keep);
      assert.equal(target, 2 * online, "loss ratio must be 0");
      assert.equal(sa.code, 0);
      assert.equal(sb.code, 0);
    }),
});

Deno.test({
  name: "tcpcopy e2e: the seed's experiment, two online hosts replayed onto one target",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env, { onlineHosts: 2 });
      const runs = rep.online.map((h, i) =>
        Promise.all([
          ab(h.client, `http://${h.ip}:${HTTP_PORT}/seed${i}-short`, {
            requests: 600,
            concurrency: 4,
          }),
          ab(h.client, `http://${h.ip}:${HTTP_PORT}/seed${i}-keep`, {
            requests: 1500,
            concurrency: 4,
            keepAlive: true,
          }),
        ])
      );
      await Promise.all(runs);
      const online1 = await served(rep.online[0].accessLog);
      const online2 = await served(rep.online[1].accessLog);
      const sum = online1 + online2;
      const target = await settle(() => served(rep.targetLog), sum);
      const icpu = await interceptCpu(rep);
      const stops = await Promise.all(rep.online.map((h) => stopTcpcopy(h.tcpcopy)));
      const loss = (online1 + online2 - target) / (online1 + online2);
      console.log(
        `[seed] (online1 + online2 - target) / (online1 + online2) = ` +
          `(${online1} + ${online2} - ${target}) / ${sum} = ${loss}`,
      );
      console.log(report("seed experiment", sum, target, sum, {
        tcpcopy: stops[0].cpuS + stops[1].cpuS,
        intercept: icpu,
      }));
      for (let i = 0; i < 2; i++) {
        const mine = await served(rep.targetLog, new RegExp(`GET /seed${i}-`));
        assert.equal(mine, i === 0 ? online1 : online2, `online host ${i + 1}`);
        assert.equal(stops[i].code, 0);
      }
      assert.equal(loss, 0);
    }),
});
