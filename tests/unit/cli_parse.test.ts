import assert from "node:assert/strict";
import { parseTcpcopyArgs } from "../../lib/cli/tcpcopy.ts";
import { DEFAULTS } from "../../lib/cli/config.ts";
import { renderHelp } from "../../lib/cli/tcpcopy.ts";
import { FLAGS } from "../../lib/cli/tcpcopy_flags.ts";

const BASE = ["-x", "80-10.0.0.2:8080", "-s", "10.0.0.3"];

function run(args: string[]) {
  const r = parseTcpcopyArgs(args);
  if (r.kind !== "run") throw new Error(`expected a config, got ${JSON.stringify(r)}`);
  return r.config;
}

function error(args: string[]): string {
  const r = parseTcpcopyArgs(args);
  if (r.kind !== "error") throw new Error(`expected an error, got ${r.kind}`);
  assert.deepEqual(r.exitCode, 2);
  assert(!r.message.includes("\n"), "one line");
  return r.message;
}

Deno.test("defaults are filled in", () => {
  const c = run(BASE);
  assert.deepEqual(c.intercepts, [{ host: "10.0.0.3", family: 4, port: 36524 }]);
  assert.deepEqual(c.connections, DEFAULTS.connections);
  assert.deepEqual(c.interfaces, ["any"]);
  assert.deepEqual(c.filter, "tcp and ((dst port 80))");
  assert(c.filterGenerated);
  assert.deepEqual(c.bufferMiB, 64);
  assert.deepEqual(c.copies, 1);
  assert.deepEqual(c.samplePct, 100);
  assert.deepEqual(c.sessionTimeoutS, 600);
  assert.deepEqual(c.keepaliveTimeoutS, 720);
  assert.deepEqual(c.statsIntervalS, 5);
  assert.deepEqual(c.clientIps, []);
  assert.deepEqual(c.outInterface, null);
  assert.deepEqual(c.metrics, null);
  assert.deepEqual([c.gradual, c.onlyComplete, c.noWait, c.lonely], [false, false, false, false]);
});

Deno.test("every flag reaches the config, short and long forms", () => {
  const c = run([
    "--transfer=10.0.0.1:80-10.0.0.2:8080",
    "-x",
    "81-[2001:db8::2]:81",
    "-s",
    "10.0.0.3:4000,[2001:db8::3]",
    "-C4",
    "-i",
    "eth0,eth1",
    "-F",
    "tcp port 80",
    "-B",
    "128",
    "-S",
    "2048",
    "-c",
    "10.1.2.x",
    "-n",
    "1.5",
    "-f",
    "3",
    "-r",
    "50",
    "-gOWL",
    "-M",
    "1400",
    "-D",
    "1360",
    "-t",
    "60",
    "-m",
    "256",
    "-o",
    "veth1",
    "--next-hop-mac",
    "02:00:00:00:00:02",
    "-l",
    "/tmp/x.log",
    "--stats-interval",
    "0.5",
    "--metrics",
    "9120",
  ]);
  assert.deepEqual(c.transfers.length, 2);
  assert.deepEqual(c.transfers[1].targetIp, "2001:db8::2");
  assert.deepEqual(c.intercepts, [
    { host: "10.0.0.3", family: 4, port: 4000 },
    { host: "2001:db8::3", family: 6, port: 36524 },
  ]);
  assert.deepEqual(c.connections, 4);
  assert.deepEqual(c.interfaces, ["eth0", "eth1"]);
  assert.deepEqual(c.filter, "tcp port 80");
  assert.deepEqual(c.filterGenerated, false);
  assert.deepEqual([c.bufferMiB, c.snaplen], [128, 2048]);
  assert.deepEqual(c.clientIps.length, 254);
  assert.deepEqual([c.copies, c.portShift, c.samplePct], [1.5, 3, 50]);
  assert.deepEqual([c.gradual, c.onlyComplete, c.noWait, c.lonely], [true, true, true, true]);
  assert.deepEqual([c.mtu, c.mss, c.sessionTimeoutS, c.keepaliveTimeoutS], [1400, 1360, 60, 180]);
  assert.deepEqual(c.maxMemoryMiB, 256);
  assert.deepEqual([c.outInterface, c.nextHopMac], ["veth1", "02:00:00:00:00:02"]);
  assert.deepEqual(c.logFile, "/tmp/x.log");
  assert.deepEqual(c.statsIntervalS, 0.5);
  assert.deepEqual(c.metrics, { host: "127.0.0.1", family: 4, port: 9120 });
});

Deno.test("usage errors: one line naming the flag, the value and what is expected", () => {
  const cases: [string[], RegExp][] = [
    [["-s", "10.0.0.3"], /missing required flag -x\/--transfer; expected \[onlineIP:\]/],
    [["-x", "80-10.0.0.2:80"], /missing required flag -s\/--intercept/],
    [[...BASE, "--frobnicate"], /unknown flag '--frobnicate'/],
    [[...BASE, "-q"], /unknown flag '-q'/],
    [[...BASE, "stray"], /unexpected argument 'stray'/],
    [["-x", "80-10.0.0.2:99999", "-s", "h"], /-x\/--transfer '80-10.0.0.2:99999'.*port '99999'/],
    [["-x", "80-10.0.0.999:80", "-s", "h"], /'10.0.0.999' is not an IPv4 or IPv6 address/],
    [["-x", "80-10.0.0.2:80", "-s", "10.0.0.3:0"], /-s\/--intercept '10.0.0.3:0'.*1..65535/],
    [[...BASE, "-n", "0"], /-n\/--copies '0': expected a number > 0/],
    [[...BASE, "-n", "-1"], /-n/],
    [[...BASE, "-r", "101"], /-r\/--sample '101': expected a number 1..100/],
    [[...BASE, "-r", "0"], /-r\/--sample '0'/],
    [[...BASE, "-C", "x"], /-C\/--connections 'x': expected a whole number/],
    [[...BASE, "-t", "0"], /-t\/--session-timeout '0'/],
    [[...BASE, "-c", "10.1.x"], /-c\/--client-ip '10.1.x'/],
    [[...BASE, "-o", "eth1"], /-o\/--out-interface 'eth1': link-layer send needs --next-hop-mac/],
    [[...BASE, "--next-hop-mac", "02:00:00:00:00:02"], /only used with -o/],
    [[...BASE, "-o", "eth1", "--next-hop-mac", "zz"], /--next-hop-mac 'zz'/],
    [[...BASE, "--offline", ""], /--offline '': expected the path of a pcap or pcapng file/],
    [[...BASE, "--offline", "f.pcap", "-a", "0"], /-a\/--accelerate '0': expected a number > 0/],
    [[...BASE, "--offline", "f.pcap", "-a", "x"], /-a\/--accelerate 'x'/],
    [[...BASE, "--offline", "f.pcap", "--skip-gap=-5"], /-I\/--skip-gap .-5.: expected a whole/],
    [[...BASE, "--offline", "f.pcap", "-I", "1.5"], /-I\/--skip-gap '1.5'/],
    [[...BASE, "--offline", "f.pcap", "-T", "0"], /-T\/--repeat '0': expected a whole number/],
    [[...BASE, "--offline", "f.pcap", "-i", "eth0"], /-i\/--interface 'eth0': not used with --/],
    [[...BASE, "--offline", "f.pcap", "-F", "tcp"], /-F\/--filter 'tcp': not used with --off/],
    [[...BASE, "-a", "10"], /-a\/--accelerate '10': only used with --offline FILE/],
    [[...BASE, "-T", "3"], /-T\/--repeat '3': only used with --offline FILE/],
    [[...BASE, "--interval", "3"], /unknown flag '--interval'/],
    [[...BASE, "--times", "3"], /unknown flag '--times'/],
    [[...BASE, "-x"], /-x, --transfer <value>' argument missing/],
    [[...BASE, "-g=1"], /./],
    [[...BASE, "-F", " "], /-F\/--filter ' '/],
    [[...BASE, "--metrics", "host:"], /--metrics 'host:'/],
  ];
  for (const [args, re] of cases) {
    const message = error(args);
    assert.match(message, /^tcpcopy: /);
    assert.match(message, re, args.join(" "));
  }
});

Deno.test("offline flags: --offline FILE with -a, -I, -T; live capture when absent", () => {
  assert.equal(run(BASE).offline, null);
  assert.deepEqual(run([...BASE, "--offline", "/tmp/rec.pcap"]).offline, {
    file: "/tmp/rec.pcap",
    accelerate: DEFAULTS.accelerate,
    skipGapMs: DEFAULTS.skipGapMs,
    repeat: DEFAULTS.repeat,
  });
  const c = run([...BASE, "--offline", "rec.pcapng", "-a", "2.5", "-I", "500", "-T", "3"]);
  assert.deepEqual(c.offline, { file: "rec.pcapng", accelerate: 2.5, skipGapMs: 500, repeat: 3 });
  const long = run([
    ...BASE,
    "--offline=r.pcap",
    "--accelerate",
    "0.5",
    "--skip-gap",
    "0",
    "--repeat",
    "1",
  ]);
  assert.deepEqual(long.offline, { file: "r.pcap", accelerate: 0.5, skipGapMs: 0, repeat: 1 });
});

Deno.test("help, version and doctor are recognised", () => {
  assert.deepEqual(parseTcpcopyArgs(["-h"]).kind, "help");
  assert.deepEqual(parseTcpcopyArgs([...BASE, "--help"]).kind, "help");
  assert.deepEqual(parseTcpcopyArgs(["-v"]).kind, "version");
  assert.deepEqual(parseTcpcopyArgs(["doctor", "--json"]), { kind: "doctor", args: ["--json"] });
});

Deno.test("help text explains every public flag with an example", () => {
  const help = renderHelp();
  for (const f of FLAGS) {
    if (f.reserved) continue;
    assert(help.includes(`--${f.long}`), f.long);
    if (f.short) assert(help.includes(`-${f.short}, --${f.long}`), f.short);
    assert(f.example && help.includes(f.example), `example for ${f.long}`);
  }
});
