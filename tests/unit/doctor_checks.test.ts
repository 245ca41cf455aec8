import assert from "node:assert/strict";
import {
  checkTunnelSecurity,
  formatReport,
  type HostFacts,
  runChecks,
} from "../../lib/doctor/checks.ts";
import { securityWarning } from "../../lib/intercept/run.ts";
import { AllowList } from "../../lib/tunnel/access.ts";

function facts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    uid: 0,
    libraries: { "libpcap.so.0.8": "" },
    libraryPackages: { "libpcap.so.0.8": "libpcap0.8" },
    programs: {},
    devices: {},
    ipForward: "0",
    rpFilter: { all: "0", default: "0" },
    gro: {},
    mtu: {},
    ports: [],
    intercepts: {},
    ...over,
  };
}

const byId = (role: "tcpcopy" | "intercept", f: HostFacts, assistant = false) =>
  Object.fromEntries(runChecks(role, f, assistant).map((v) => [v.id, v]));

Deno.test("doctor: root passes, an unprivileged user without capabilities fails with setcap", () => {
  assert.equal(byId("tcpcopy", facts()).privileges.status, "pass");
  const v = byId("tcpcopy", facts({ uid: 1000, capEff: 0n })).privileges;
  assert.equal(v.status, "fail");
  assert.match(v.fix!, /setcap cap_net_raw,cap_net_admin\+ep/);
  // CAP_NET_RAW (bit 13) is enough for tcpcopy; intercept also needs CAP_NET_ADMIN (bit 12).
  assert.equal(byId("tcpcopy", facts({ uid: 1000, capEff: 1n << 13n })).privileges.status, "pass");
  assert.equal(
    byId("intercept", facts({ uid: 1000, capEff: 1n << 13n })).privileges.status,
    "fail",
  );
  assert.equal(
    byId("intercept", facts({ uid: 1000, capEff: 3n << 12n })).privileges.status,
    "pass",
  );
});

Deno.test("doctor: a missing library names the package to install", () => {
  const v = byId("tcpcopy", facts({ libraries: { "libpcap.so.0.8": "not found" } }))[
    "library:libpcap.so.0.8"
  ];
  assert.equal(v.status, "fail");
  assert.match(v.fix!, /install libpcap0\.8/);
});

Deno.test("doctor: an override refused under setcap advises to unset it, not to install", () => {
  const v = byId("tcpcopy", {
    ...facts({ libraries: { "libpcap.so.0.8": "TCPCOPY_LIBPCAP=/x refused: ..." } }),
    libraryFixes: { "libpcap.so.0.8": "unset TCPCOPY_LIBPCAP, or ..." },
  })["library:libpcap.so.0.8"];
  assert.equal(v.status, "fail");
  assert.match(v.fix!, /^unset TCPCOPY_LIBPCAP/);
});

Deno.test("doctor: strict rp_filter on the target warns, ip_forward on an assistant fails", () => {
  const strict = facts({ rpFilter: { all: "1", default: "0", eth0: "1" } });
  assert.equal(byId("intercept", strict).rp_filter.status, "warn");
  assert.match(byId("intercept", strict).rp_filter.fix!, /all\.rp_filter=2.*eth0\.rp_filter=2/);
  assert.equal(byId("tcpcopy", strict).rp_filter.status, "pass");
  assert.equal(byId("intercept", facts({ ipForward: "1" }), true).ip_forward.status, "fail");
  assert.equal(byId("intercept", facts({ ipForward: "1" }), false).ip_forward.status, "pass");
});

Deno.test("doctor: a foreign NFQUEUE rule on the port conflicts; intercept's own does not", () => {
  const own = "-A OUTPUT -p tcp -m tcp --sport 80 -m comment --comment tcpcopy-intercept-1 " +
    "-j NFQUEUE --queue-num 1";
  const foreign = "-A OUTPUT -p tcp -m tcp --sport 80 -j DROP";
  // Any rule on the port conflicts, as intercept itself judges it (even an ACCEPT).
  const accept = "-A OUTPUT -p tcp -m tcp --sport 80 -j ACCEPT";
  assert.equal(
    byId("intercept", facts({ ports: [80], iptablesOutput: [accept] }))["nfqueue:80"].status,
    "fail",
  );
  assert.equal(
    byId("intercept", facts({ ports: [81], iptablesOutput: [accept] }))["nfqueue:81"].status,
    "pass",
  );
  assert.equal(
    byId("intercept", facts({ ports: [80], iptablesOutput: ["-P OUTPUT ACCEPT", own] }))[
      "nfqueue:80"
    ].status,
    "pass",
  );
  const v = byId("intercept", facts({ ports: [80], iptablesOutput: [foreign] }))["nfqueue:80"];
  assert.equal(v.status, "fail");
  assert.equal(v.fix, "remove it: iptables -D OUTPUT -p tcp -m tcp --sport 80 -j DROP");
  assert.equal(byId("intercept", facts({ ports: [80] })).iptables.status, "fail");
});

Deno.test("doctor: a stale intercept rule and a fail-open one are warnings with the fix", () => {
  const tag = "tcpcopy-intercept-4242-100-ab";
  const rule = `-A OUTPUT ! -o lo -p tcp -m tcp --sport 80 -m comment --comment ${tag} ` +
    "-j NFQUEUE --queue-num 36524";
  const stale = byId(
    "intercept",
    facts({
      ports: [80],
      iptablesOutput: [rule],
      staleRules: { [rule]: "owner pid 4242 is not running" },
    }),
  )["nfqueue:80"];
  assert.equal(stale.status, "warn");
  assert.match(stale.summary, /stale intercept rule .*owner pid 4242 is not running/);
  assert.match(stale.fix!, /^intercept cleanup/);
  const open = byId(
    "intercept",
    facts({ ports: [80], iptablesOutput: [`${rule} --queue-bypass`], staleRules: {} }),
  )["nfqueue:80"];
  assert.equal(open.status, "warn");
  assert.match(open.summary, /FAIL-OPEN for port 80/);
  const closed = byId("intercept", facts({ ports: [80], iptablesOutput: [rule], staleRules: {} }))[
    "nfqueue:80"
  ];
  assert.equal(closed.status, "pass");
  assert.match(closed.summary, /running, fail-closed/);
});

Deno.test("doctor: unreachable intercept, missing device and GRO are reported", () => {
  const f = facts({
    intercepts: { "10.0.0.2:36524": "Connection refused", "10.0.0.3:36524": "" },
    devices: { eth9: false, eth0: true },
    gro: { eth0: "on" },
    mtu: { eth0: 1500 },
  });
  const v = byId("tcpcopy", f);
  assert.equal(v["intercept:10.0.0.2:36524"].status, "fail");
  assert.equal(v["intercept:10.0.0.3:36524"].status, "pass");
  assert.equal(v["device:eth9"].status, "fail");
  assert.equal(v["gro:eth0"].status, "warn");
  const text = formatReport(runChecks("tcpcopy", f));
  assert.match(text, /^FAIL {2}intercept:10\.0\.0\.2:36524: .*Connection refused$/m);
  assert.match(text, /checks: 2 failed, 1 warnings$/);
});

Deno.test("doctor: programs from the package list: missing ones fail, optional ones warn", () => {
  const f = facts({ programs: { iptables: false, ip6tables: true, nft: false, ethtool: false } });
  const intercept = byId("intercept", f);
  assert.equal(intercept["program:iptables"].status, "fail");
  assert.match(intercept["program:iptables"].fix!, /install iptables \(Debian\/Ubuntu\)/);
  assert.equal(intercept["program:ip6tables"].status, "pass");
  assert.equal(intercept["program:nft"].status, "warn", "intercept works without nft");
  assert.equal(intercept["program:ethtool"], undefined, "ethtool is tcpcopy's");
  assert.equal(byId("intercept", f, true)["program:iptables"], undefined, "pcap mode: no rules");
  assert.equal(byId("tcpcopy", f)["program:ethtool"].status, "warn");
  assert.equal(byId("tcpcopy", f)["program:iptables"], undefined);
});

Deno.test("doctor: intercept's libraries follow its mode (NFQUEUE or pcap)", () => {
  const f = facts({
    libraries: { "libpcap.so.0.8": "gone", "libnetfilter_queue.so.1": "", "libc.so.6": "" },
  });
  assert.equal(byId("intercept", f)["library:libpcap.so.0.8"], undefined);
  assert.equal(byId("intercept", f)["library:libnetfilter_queue.so.1"].status, "pass");
  assert.equal(byId("intercept", f, true)["library:libpcap.so.0.8"].status, "fail");
  assert.equal(byId("tcpcopy", f)["library:libpcap.so.0.8"].status, "fail");
});

Deno.test("doctor: an open tunnel warns, a protected one passes, a bad secret file fails", () => {
  assert.equal(checkTunnelSecurity({ allow: 0 }).status, "warn");
  assert.match(checkTunnelSecurity({ allow: 0 }).summary, /no --allow and no --secret-file/);
  assert.equal(checkTunnelSecurity({ allow: 2 }).status, "pass");
  assert.equal(checkTunnelSecurity({ allow: 0, secretFile: "/s" }).status, "pass");
  const bad = checkTunnelSecurity({ allow: 0, secretFile: "/s", secretError: "mode 644" });
  assert.equal(bad.status, "fail");
  assert.equal(
    securityWarning({ allow: new AllowList([]), bind: "0.0.0.0", tunnelPort: 36524 }, false)
      ?.startsWith("tunnel open to anyone who reaches 0.0.0.0:36524"),
    true,
  );
  assert.equal(
    securityWarning({ allow: new AllowList([]), bind: "0.0.0.0", tunnelPort: 1 }, true),
    undefined,
  );
});

Deno.test("doctor: a -x target that is this host fails; none is checked without -x", () => {
  assert.equal(byId("tcpcopy", facts())["self_target"], undefined);
  assert.equal(byId("tcpcopy", facts({ selfTargets: [] }))["self_target"].status, "pass");
  const v = byId("tcpcopy", facts({ selfTargets: ["127.0.0.1"] }))["self_target"];
  assert.equal(v.status, "fail");
  assert.match(v.summary, /127\.0\.0\.1 is an address of this host/);
  assert.equal(byId("intercept", facts({ selfTargets: ["127.0.0.1"] }))["self_target"], undefined);
});
