import assert from "node:assert/strict";
import { formatIpv6, parseIpAddress, parseIpv4, parseIpv6 } from "../../lib/cli/ip.ts";
import { parseMac } from "../../lib/cli/mac.ts";
import { parseHostPort, parsePort, splitHostPort } from "../../lib/cli/endpoint.ts";

Deno.test("IPv4 parses dotted quads and rejects everything else", () => {
  assert.deepEqual(parseIpv4("10.0.0.1"), 0x0a000001);
  assert.deepEqual(parseIpv4("255.255.255.255"), 0xffffffff);
  for (const bad of ["10.0.0", "10.0.0.256", "10.0.0.1.2", "a.b.c.d", "010.0.0.1", "", "1..2.3"]) {
    assert.deepEqual(parseIpv4(bad), null, bad);
  }
});

Deno.test("IPv6 canonical form follows RFC 5952", () => {
  const cases: [string, string][] = [
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // one zero group stays
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // longest run wins
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // first of equal runs
    ["::ffff:10.0.0.1", "::ffff:10.0.0.1"],
    ["::ffff:a00:1", "::ffff:10.0.0.1"],
    ["::10.0.0.1", "::a00:1"],
    ["1:2:3:4:5:6:10.0.0.1", "1:2:3:4:5:6:a00:1"],
  ];
  for (const [input, want] of cases) {
    assert.deepEqual(parseIpAddress(input), { family: 6, text: want }, input);
  }
  for (const bad of ["1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::1", ":1", "1:2:3:4:5:6:7"]) {
    assert.deepEqual(parseIpv6(bad), null, bad);
  }
});

Deno.test("IPv6 format round-trips random addresses", () => {
  for (let i = 0; i < 500; i++) {
    const groups = Array.from(
      { length: 8 },
      () => (Math.random() < 0.4 ? 0 : (Math.random() * 65536) | 0),
    );
    const text = formatIpv6(groups);
    assert.deepEqual(parseIpv6(text), groups, text);
  }
});

Deno.test("MAC addresses are normalised to lowercase colon form", () => {
  assert.deepEqual(parseMac("AA-bb-CC-dd-00-11"), "aa:bb:cc:dd:00:11");
  assert.deepEqual(parseMac("aa:bb:cc:dd:ee"), null);
  assert.deepEqual(parseMac("aa:bb:cc:dd:ee:fg"), null);
});

Deno.test("host:port splitting handles brackets, names and bare IPv6", () => {
  assert.deepEqual(splitHostPort("[2001:db8::1]:80"), { host: "2001:db8::1", port: "80" });
  assert.deepEqual(splitHostPort("10.0.0.1:80"), { host: "10.0.0.1", port: "80" });
  assert.deepEqual(splitHostPort("2001:db8::1"), { host: "2001:db8::1", port: null });
  assert.deepEqual(splitHostPort("[2001:db8::1"), null);
  assert.deepEqual(parsePort("0"), null);
  assert.deepEqual(parsePort("65536"), null);
  assert.deepEqual(parsePort("65535"), 65535);
  const named = parseHostPort("Intercept.example:9", 36524, true);
  assert(named.ok);
  assert.deepEqual(named.value, { host: "intercept.example", family: null, port: 9 });
  const defaulted = parseHostPort("10.0.0.3", 36524, true);
  assert(defaulted.ok);
  assert.deepEqual(defaulted.value.port, 36524);
  assert(!parseHostPort("10.0.0.300", 1, true).ok);
  assert(!parseHostPort("name", 1, false).ok);
});
