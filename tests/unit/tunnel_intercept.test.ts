// intercept program parts that need no root: options, rule bookkeeping, pass-list, stats.
import assert from "node:assert/strict";
import { DEFAULT_QUEUE_NUM, parseInterceptArgs } from "../../lib/cli/intercept.ts";
import {
  type CommandRunner,
  findConflict,
  findNftConflict,
  NfqueueRules,
  ruleSpec,
} from "../../lib/intercept/rules.ts";
import { PassList } from "../../lib/intercept/pass_list.ts";
import { BUSY_DRAIN, sleepBeforeDrain } from "../../lib/intercept/nfqueue_source.ts";
import { interceptStatsRecord } from "../../lib/intercept/stats.ts";
import { Dispatcher } from "../../lib/tunnel/dispatch.ts";
import { segment } from "../helpers/tunnel_fixtures.ts";

Deno.test("options: both modes, defaults and C flags", () => {
  const a = parseInterceptArgs([
    "--port",
    "8080,8081",
    "-x",
    "192.0.2.1",
    "-x",
    "2001:db8::7",
    "-p",
    "4000",
  ]);
  assert.equal(a.kind, "run");
  assert.ok(a.kind === "run" && a.config.mode.kind === "nfqueue");
  assert.deepEqual(a.config.mode.ports, [8080, 8081]);
  assert.equal(a.config.mode.queueNum, DEFAULT_QUEUE_NUM);
  assert.deepEqual(a.config.mode.pass.map((b) => b.length), [4, 16]);
  assert.equal(a.config.tunnelPort, 4000);
  assert.equal(a.config.statsIntervalS, 5);
  assert.equal(a.config.mode.coalesceMs, 0, "no holding back real users' replies");
  const c = parseInterceptArgs(["--port", "80"]);
  assert.ok(c.kind === "run" && c.config.mode.kind === "nfqueue");
  assert.equal(c.config.mode.coalesceMs, 1, "only under load, see sleepBeforeDrain");
  const d = parseInterceptArgs(["--port", "80", "--coalesce-ms", "2"]);
  assert.ok(d.kind === "run" && d.config.mode.kind === "nfqueue");
  assert.equal(d.config.mode.coalesceMs, 2);
  const b = parseInterceptArgs([
    "-i",
    "eth0",
    "-F",
    "tcp and src port 80",
    "-b",
    "10.0.0.9",
    "-l",
    "/tmp/x",
  ]);
  assert.ok(b.kind === "run" && b.config.mode.kind === "pcap");
  assert.equal(b.config.mode.device, "eth0");
  assert.equal(b.config.bind, "10.0.0.9");
  assert.equal(b.config.tunnelPort, 36524);
  assert.equal(parseInterceptArgs(["-h"]).kind, "help");
  assert.equal(parseInterceptArgs(["--version"]).kind, "version");
});

Deno.test("options: bad values name the flag, the value and what is expected", () => {
  const cases: [string[], RegExp][] = [
    [["--port", "0"], /--port "0": expected an integer 1\.\.65535/],
    [["--port", "80,http"], /--port "http"/],
    [["--port", "80", "-x", "1.2.3"], /-x "1\.2\.3": expected an IPv4 or IPv6 address/],
    [["--port", "80", "--queue-num", "70000"], /--queue-num "70000"/],
    [["--port", "80", "--coalesce-ms", "11"], /--coalesce-ms "11": expected an integer 0\.\.10/],
    [["--port", "80", "-F", "tcp"], /cannot be combined/],
    [["-i", "eth0"], /-F missing/],
    [[], /no capture mode/],
    [["-F", "tcp", "-n", "17"], /-n "17": expected an integer 1\.\.16/],
    [["-F", "tcp", "-b", "host"], /-b "host"/],
    [["-F", "tcp", "--stats-interval", "-1"], /stats-interval/],
    [["--nope"], /Unknown option '--nope'/],
    [["-F", "tcp", "extra"], /unexpected argument "extra"/],
  ];
  for (const [args, re] of cases) {
    const r = parseInterceptArgs(args);
    assert.equal(r.kind, "error", args.join(" "));
    assert.ok(r.kind === "error");
    assert.match(r.message, re);
    assert.doesNotMatch(r.message, /\n/);
  }
});

Deno.test("rules: conflicts are found by source port, port range, multiport and queue", () => {
  const listing = [
    "-P OUTPUT ACCEPT",
    "-A OUTPUT -p tcp -m tcp --sport 9000 -j DROP",
    "-A OUTPUT -p tcp -m multiport --sports 22,8000:8100 -j ACCEPT",
    "-A OUTPUT -p udp -j NFQUEUE --queue-num 7",
  ].join("\n");
  assert.match(findConflict(listing, [9000], 1)!, /--sport 9000/);
  assert.match(findConflict(listing, [8050], 1)!, /multiport/);
  assert.match(findConflict(listing, [80], 7)!, /queue-num 7/);
  assert.equal(findConflict(listing, [80, 9001], 8), undefined);
});

Deno.test("rules: installs tagged rules, removes exactly those, refuses conflicts", async () => {
  const calls: string[][] = [];
  let v6 = true;
  let output = "-P OUTPUT ACCEPT\n";
  const run: CommandRunner = (cmd) => {
    calls.push(cmd);
    if (cmd[0] === "ip6tables" && !v6) {
      return Promise.resolve({ code: 3, stdout: "", stderr: "no ip6 tables" });
    }
    return Promise.resolve({ code: 0, stdout: output, stderr: "" });
  };
  const r = new NfqueueRules([8080, 8081], 5, "tcpcopy-intercept-1-abc", run);
  assert.equal(await r.install(() => {}), undefined);
  assert.deepEqual(r.tools, ["iptables", "ip6tables"]);
  const inserts = calls.filter((c) => c[2] === "-I");
  assert.equal(inserts.length, 4);
  assert.deepEqual(inserts[0], [
    "iptables",
    "-w",
    "-I",
    "OUTPUT",
    ...ruleSpec(8080, 5, "tcpcopy-intercept-1-abc"),
  ]);
  calls.length = 0;
  await r.remove();
  assert.deepEqual(calls.map((c) => c[2]), ["-D", "-D", "-D", "-D"]);
  assert.ok(calls.every((c) => c.includes("tcpcopy-intercept-1-abc")));
  calls.length = 0;
  await r.remove();
  assert.equal(calls.length, 0, "idempotent");

  v6 = false;
  const warnings: string[] = [];
  const r4 = new NfqueueRules([8080], 5, "t", run);
  assert.equal(await r4.install((w) => warnings.push(w)), undefined);
  assert.deepEqual(r4.tools, ["iptables"]);
  assert.match(warnings[0], /ip6tables unusable/);

  output =
    "-A OUTPUT -p tcp -m tcp --sport 8080 -m comment --comment tcpcopy-intercept-77-x -j NFQUEUE --queue-num 5\n";
  calls.length = 0;
  // pid 77 runs intercept (injected facts): its rule still refuses the start
  const alive = () => ({ alive: true, cmdline: "/usr/local/bin/intercept --port 8080" });
  const err = await new NfqueueRules([8080], 5, "t", run, false, alive, 1).install(() => {});
  assert.match(err!, /conflicting rule/);
  assert.match(err!, /owned by the running intercept pid 77/);
  assert.equal(calls.filter((c) => c[2] === "-I").length, 0, "nothing installed");
});

Deno.test("pass-list matches reply destinations of both families", () => {
  const p = new PassList([new Uint8Array([192, 0, 2, 1]), new Uint8Array(16).fill(7)]);
  const to = (dst: number[]) =>
    segment({
      src: dst.length === 4 ? [10, 0, 0, 2] : new Array(16).fill(1),
      dst,
      sport: 80,
      dport: 1,
    });
  assert.equal(p.has(to([192, 0, 2, 1])), true);
  assert.equal(p.has(to([192, 0, 2, 2])), false);
  assert.equal(p.has(to(new Array(16).fill(7))), true);
  assert.equal(p.has(to(new Array(16).fill(8))), false);
  assert.equal(p.has(new Uint8Array(3)), false);
  assert.equal(new PassList([]).empty, true);
});

Deno.test("stats record has the documented shape and derived averages", () => {
  const d = new Dispatcher();
  d.reply(segment({ src: [10, 0, 0, 2], dst: [10, 0, 0, 1], sport: 80, dport: 1 }), 0);
  const rec = interceptStatsRecord(
    {
      dispatch: d.counters,
      passed: 2,
      notIp: 1,
      peers: 3,
      accepted: 5,
      rejected: 1,
      routes: 4,
      routesEvicted: 0,
      routesOverQuota: 6,
      security: { auth: "none", allow: "any" },
      access: {
        refusedAllow: 1,
        refusedPerIp: 2,
        authOk: 3,
        authFailed: 4,
        authRequired: 5,
        idleClosed: 6,
        protocolErrors: 7,
        logSuppressed: 8,
      },
      kernel: { pcap_drops: 5, nfq_queue_dropped: 6, nfq_user_dropped: 7 },
      verdicts: { accept: 8, drop: 9 },
      batches: { frames: 4, records: 10, dropped: 1 },
      answers: {
        sent: 9,
        skipped: 1,
        dropped: 2,
        bytes: 900,
        duplicateBytes: 3,
        open: 4,
        live: 3,
        flows: 5,
      },
      failOpen: true,
      draining: false,
      rulesInstalled: 2,
      staleRulesReplaced: 1,
    },
    Date.parse("2026-01-01T00:00:10Z"),
    Date.parse("2026-01-01T00:00:00Z"),
    true,
  );
  const back = JSON.parse(JSON.stringify(rec));
  assert.equal(back.type, "stats");
  assert.equal(back.program, "intercept");
  assert.equal(back.ts, "2026-01-01T00:00:10.000Z");
  assert.equal(back.uptime_s, 10);
  assert.deepEqual(
    [
      back.replies.seen,
      back.replies.forwarded,
      back.replies.dropped_no_route,
      back.replies.delayed,
    ],
    [1, 0, 1, 0],
  );
  assert.equal(back.replies.malformed, 1);
  assert.deepEqual(back.peers, {
    connected: 3,
    accepted: 5,
    rejected: 1,
    refused_allow: 1,
    refused_per_ip: 2,
    auth_ok: 3,
    auth_failed: 4,
    auth_required: 5,
    idle_closed: 6,
    protocol_errors: 7,
    log_suppressed: 8,
  });
  assert.deepEqual(back.security, { auth: "none", allow: "any" });
  assert.equal(back.routes_over_quota, 6);
  assert.equal(back.routes, 4);
  assert.equal(back.routes_evicted, 0);
  assert.deepEqual(back.kernel, { pcap_drops: 5, nfq_queue_dropped: 6, nfq_user_dropped: 7 });
  assert.deepEqual(back.verdicts, { accept: 8, drop: 9 });
  assert.deepEqual(back.batches, { count: 4, avg_size: 2.5, dropped_queue_full: 1 });
  assert.deepEqual(back.answers, {
    sent: 9,
    skipped: 1,
    dropped: 2,
    bytes: 900,
    duplicate_bytes: 3,
    open: 4,
    live: 3,
    flows: 5,
  });
  assert.equal(back.fail_open, true);
  assert.equal(back.draining, false);
  assert.deepEqual(back.rules, { installed: 2, stale_replaced: 1 });
});

Deno.test("rules: native nft output rules conflict by sport (sets, ranges) and queue", () => {
  const ruleset = `table inet custom {
	chain in {
		type filter hook input priority filter; policy accept;
		tcp sport 8080 accept
	}
	chain out {
		type filter hook output priority filter; policy accept;
		tcp sport { 22, 8000-8100 } counter accept
		meta l4proto udp queue num 3-5
	}
}`;
  assert.equal(findNftConflict(ruleset, [8080], 1), "tcp sport { 22, 8000-8100 } counter accept");
  assert.equal(findNftConflict(ruleset, [22], 1), "tcp sport { 22, 8000-8100 } counter accept");
  assert.equal(findNftConflict(ruleset, [443], 4), "meta l4proto udp queue num 3-5");
  assert.equal(
    findNftConflict(ruleset, [443], 6),
    undefined,
    "input-chain rule and other queues ignored",
  );
});

Deno.test("NFQUEUE source: poll after a small drain; sleep only when busy and coalescing", () => {
  assert.equal(sleepBeforeDrain(1, 0), -1, "default: always poll");
  assert.equal(sleepBeforeDrain(500, 0), -1, "even when busy");
  assert.equal(sleepBeforeDrain(0, 2), -1, "a lone or no reply is never held");
  assert.equal(sleepBeforeDrain(BUSY_DRAIN - 1, 2), -1);
  assert.equal(sleepBeforeDrain(BUSY_DRAIN, 2), 2);
  assert.equal(sleepBeforeDrain(64, 1), 1);
});

Deno.test("rules: nft duplicates of iptables-nft's own OUTPUT chains are left to iptables -S", () => {
  // what `nft list ruleset` prints for rules iptables-nft made (comments are not shown)
  const ruleset = `table ip filter {
	chain OUTPUT {
		type filter hook output priority filter; policy accept;
		oifname != "lo" tcp sport 80  counter packets 0 bytes 0 queue num 7
	}
}
table ip6 filter {
	chain OUTPUT {
		type filter hook output priority filter; policy accept;
		oifname != "lo" tcp sport 80  counter packets 0 bytes 0 queue num 7
	}
}
table inet mine {
	chain OUTPUT {
		type filter hook output priority filter; policy accept;
		tcp sport 443 drop
	}
}`;
  assert.equal(findNftConflict(ruleset, [80], 7), undefined);
  assert.equal(findNftConflict(ruleset, [443], 7), "tcp sport 443 drop", "native nft still seen");
});
