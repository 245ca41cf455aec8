import assert from "node:assert/strict";
import { parseTransfer, parseTransfers } from "../../lib/cli/transfer.ts";
import { buildCaptureFilter } from "../../lib/cli/filter.ts";
import { parseClientIps } from "../../lib/cli/client_ip.ts";

Deno.test("transfer: port-only, IPv4 and IPv6 forms", () => {
  const a = parseTransfer("80-10.0.0.2:8080");
  assert(a.ok);
  assert.deepEqual(a.value, {
    onlineIp: null,
    onlinePort: 80,
    targetIp: "10.0.0.2",
    targetFamily: 4,
    targetPort: 8080,
    sourceMac: null,
    nextHopMac: null,
    module: null,
  });
  const b = parseTransfer("[2001:DB8::1]:80-[2001:db8::2]:81");
  assert(b.ok);
  assert.deepEqual(b.value.onlineIp, "2001:db8::1");
  assert.deepEqual(b.value.targetIp, "2001:db8::2");
  assert.deepEqual(b.value.targetFamily, 6);
  const c = parseTransfer("80@02:00:00:00:00:01-10.0.0.2:80@02:00:00:00:00:02");
  assert(c.ok);
  assert.deepEqual(c.value.sourceMac, "02:00:00:00:00:01");
  assert.deepEqual(c.value.nextHopMac, "02:00:00:00:00:02");
});

Deno.test("transfer: errors name the wrong part", () => {
  const cases: [string, RegExp][] = [
    ["80", /no '-'/],
    ["0-10.0.0.2:80", /online port '0'/],
    ["80-10.0.0.2:70000", /port '70000'/],
    ["80-10.0.0.256:80", /'10.0.0.256' is not an IPv4 or IPv6 address/],
    ["80-10.0.0.2", /has no port/],
    ["10.0.0.1:80-[::1]:80", /different IP families/],
    ["10.0.0.1:80-10.0.0.1:80", /same endpoint/],
    ["80-10.0.0.2:80@0z", /'0z' is not a MAC/],
    ["80-10.0.0.2:80@02:00:00:00:00:0g", /is not a MAC/],
  ];
  for (const [text, re] of cases) {
    const r = parseTransfer(text);
    assert(!r.ok, text);
    assert.match(r.error, re, text);
  }
});

Deno.test("transfer: '@NAME' at the end picks a protocol module, never taken for a MAC", () => {
  const a = parseTransfer("5432-10.0.0.2:5432@postgres");
  assert(a.ok);
  assert.equal(a.value.module, "postgres");
  assert.equal(a.value.nextHopMac, null);
  assert.equal(a.value.targetPort, 5432);
  const b = parseTransfer("80@02:00:00:00:00:01-10.0.0.2:80@02:00:00:00:00:02@mysql");
  assert(b.ok);
  assert.equal(b.value.module, "mysql");
  assert.equal(b.value.sourceMac, "02:00:00:00:00:01");
  assert.equal(b.value.nextHopMac, "02:00:00:00:00:02");
  const c = parseTransfer("80-10.0.0.2:80@02:00:00:00:00:02");
  assert(c.ok);
  assert.equal(c.value.module, null);
  assert.equal(c.value.nextHopMac, "02:00:00:00:00:02");
  const d = parseTransfer("[2001:db8::1]:80-[2001:db8::2]:80@redis");
  assert(d.ok);
  assert.equal(d.value.module, "redis");
  assert.equal(d.value.targetIp, "2001:db8::2");
});

Deno.test("transfer list: several entries, targets and duplicates", () => {
  const r = parseTransfers(["80-10.0.0.2:80,81-10.0.0.3:81", "82-10.0.0.2:82"]);
  assert(r.ok);
  assert.deepEqual(r.value.map((t) => `${t.onlinePort}>${t.targetIp}:${t.targetPort}`), [
    "80>10.0.0.2:80",
    "81>10.0.0.3:81",
    "82>10.0.0.2:82",
  ]);
  const dup = parseTransfers(["80-10.0.0.2:80,80-10.0.0.2:80"]);
  assert(!dup.ok);
  assert.match(dup.error, /twice/);
  assert(!parseTransfers(["80-10.0.0.2:80,"]).ok);
});

Deno.test("generated filter matches each transfer and guards against self-capture", () => {
  const r = parseTransfers(["10.0.0.1:80-10.0.0.2:8080,443-10.0.0.2:8443"]);
  assert(r.ok);
  assert.deepEqual(
    buildCaptureFilter(r.value),
    "tcp and ((dst port 80 and dst host 10.0.0.1) or (dst port 443))",
  );
  const loop = parseTransfers(["80-10.0.0.2:80"]);
  assert(loop.ok);
  assert.deepEqual(
    buildCaptureFilter(loop.value),
    "tcp and ((dst port 80)) and not ((dst port 80 and dst host 10.0.0.2))",
  );
});

Deno.test("client-ip: x ranges, CIDR, ranges, target exclusion", () => {
  const x = parseClientIps(["10.1.2.x"], new Set());
  assert(x.ok);
  assert.deepEqual(x.value.length, 254);
  assert.deepEqual(x.value[0], "10.1.2.1");
  assert.deepEqual(x.value[253], "10.1.2.254");
  const cidr = parseClientIps(["10.1.0.0/30,10.1.0.9"], new Set(["10.1.0.2"]));
  assert(cidr.ok);
  assert.deepEqual(cidr.value, ["10.1.0.1", "10.1.0.9"]);
  const range = parseClientIps(["10.0.0.254-10.0.1.1"], new Set());
  assert(range.ok);
  assert.deepEqual(range.value, ["10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"]);
  const v6 = parseClientIps(["2001:db8::/126"], new Set());
  assert(v6.ok);
  assert.deepEqual(v6.value, ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"]);
  const single = parseClientIps(["10.0.0.5,10.0.0.5"], new Set());
  assert(single.ok);
  assert.deepEqual(single.value, ["10.0.0.5"]);
  for (
    const bad of ["10.1.x", "10.1.2.*", "10.0.0.0/4", "10.0.0.9-10.0.0.1", "nope", "10.0.0.0/8"]
  ) {
    assert(!parseClientIps([bad], new Set()).ok, bad);
  }
  const onlyTarget = parseClientIps(["10.0.0.2"], new Set(["10.0.0.2"]));
  assert(!onlyTarget.ok);
});
