import assert from "node:assert/strict";
import {
  canonicalIp,
  formatIpv4,
  formatIpv6,
  ipv4ToU32,
  isIpv4,
  isIpv6,
  parseIp,
  sameFamily,
  u32ToIpv4,
  writeIp,
} from "../../lib/wire/addr.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
}

Deno.test("IPv4 parse/format round trip and u32 conversion", () => {
  const r = parseIp("192.168.1.254");
  assert.ok(typeof r !== "string");
  assert.equal(r.family, 4);
  assert.deepEqual([...r.bytes], [192, 168, 1, 254]);
  assert.equal(formatIpv4(r.bytes, 0), "192.168.1.254");
  assert.equal(ipv4ToU32(r.bytes), 0xc0a801fe);
  assert.equal(u32ToIpv4(0xc0a801fe), "192.168.1.254");
  assert.equal(u32ToIpv4(0), "0.0.0.0");
  assert.equal(u32ToIpv4(0xffffffff), "255.255.255.255");
  const buf = new Uint8Array([9, 9, 10, 0, 0, 1]);
  assert.equal(formatIpv4(buf, 2), "10.0.0.1");
});

Deno.test("IPv4 text validation", () => {
  for (
    const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1..2.3",
      "a.b.c.d",
      " 1.2.3.4",
      "1.2.3.4/24",
    ]
  ) {
    assert.equal(parseIp(bad), "bad_address", bad);
    assert.equal(isIpv4(bad), false, bad);
  }
  assert.ok(isIpv4("0.0.0.0"));
  assert.ok(!isIpv6("1.2.3.4"));
});

Deno.test("IPv6 formatting follows RFC 5952", () => {
  const cases: [string, string][] = [
    ["20010db8000000000000000000000001", "2001:db8::1"],
    ["00000000000000000000000000000000", "::"],
    ["00000000000000000000000000000001", "::1"],
    ["20010db8000000010001000100010001", "2001:db8:0:1:1:1:1:1"], // one zero word: no "::"
    ["20010db8000000000001000000000001", "2001:db8::1:0:0:1"], // first of equal runs
    ["20010db8000000000000000100000000", "2001:db8::1:0:0"],
    ["fe800000000000000000000000000000", "fe80::"],
    ["00000000000000000000ffffc0000201", "::ffff:192.0.2.1"],
    ["2001DB8ABCD00120000000000000000".toLowerCase().padEnd(32, "0"), "2001:db8a:bcd0:120::"],
  ];
  for (const [h, text] of cases) {
    assert.equal(formatIpv6(hex(h), 0), text);
    const r = parseIp(text);
    assert.ok(typeof r !== "string", text);
    assert.equal(r.family, 6);
    assert.deepEqual([...r.bytes], [...hex(h)], text);
  }
});

Deno.test("IPv6 parsing accepts every valid spelling and rejects junk", () => {
  assert.equal(canonicalIp("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
  assert.equal(canonicalIp("2001:0db8::0001"), "2001:db8::1");
  assert.equal(canonicalIp("::ffff:10.1.2.3"), "::ffff:10.1.2.3");
  assert.equal(canonicalIp("0:0:0:0:0:ffff:a01:203"), "::ffff:10.1.2.3");
  assert.equal(canonicalIp("1:2:3:4:5:6:7::"), "1:2:3:4:5:6:7:0");
  assert.equal(canonicalIp("::2:3:4:5:6:7:8"), "0:2:3:4:5:6:7:8");
  assert.equal(canonicalIp("64:ff9b::192.0.2.33"), "64:ff9b::c000:221");
  for (
    const bad of [
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "12345::",
      "g::",
      ":1::",
      "1::2:",
      "fe80::1%eth0",
      "1:2:3:4:5:6:7::8",
      "::1.2.3",
      "1.2.3.4::",
    ]
  ) {
    assert.equal(parseIp(bad), "bad_address", bad);
    assert.equal(isIpv6(bad), false, bad);
  }
});

Deno.test("writeIp writes both families and refuses junk or short buffers", () => {
  const out = new Uint8Array(20);
  assert.equal(writeIp("10.1.2.3", out, 1), 4);
  assert.deepEqual([...out.subarray(1, 5)], [10, 1, 2, 3]);
  assert.equal(writeIp("2001:db8::1", out, 4), 16);
  assert.equal(formatIpv6(out, 4), "2001:db8::1");
  assert.equal(writeIp("2001:db8::1", out, 5), 0);
  assert.equal(writeIp("nope", out, 0), 0);
});

Deno.test("property: random IPv6 bytes survive format -> parse", () => {
  const next = randomInt(mulberry32(12345)).bind(null, 0x10000);
  for (let i = 0; i < 5000; i++) {
    const b = new Uint8Array(16);
    // Bias towards zero words so that "::" runs appear.
    for (let w = 0; w < 8; w++) {
      if (next() % 3 !== 0) continue;
      b[2 * w] = next();
      b[2 * w + 1] = next();
    }
    const text = formatIpv6(b, 0);
    const r = parseIp(text);
    assert.ok(typeof r !== "string", text);
    assert.deepEqual([...r.bytes], [...b], text);
    assert.equal(canonicalIp(text), text);
    assert.ok(!/(^|:)0[0-9a-f]/.test(text.replace(/::ffff:.*/, "")), `leading zero in ${text}`);
  }
});

Deno.test("property: cached formatting never returns another address's text", () => {
  const next = randomInt(mulberry32(99)).bind(null, 2 ** 32);
  const b = new Uint8Array(16);
  for (let i = 0; i < 50000; i++) {
    // A small pool of values makes cache hits and slot collisions both frequent.
    const v = i % 3 === 0 ? next() : (next() % 64) * 0x01010101;
    b[0] = v >>> 24;
    b[1] = (v >>> 16) & 255;
    b[2] = (v >>> 8) & 255;
    b[3] = v & 255;
    assert.equal(formatIpv4(b, 0), `${b[0]}.${b[1]}.${b[2]}.${b[3]}`);
    b[15] = v & 255;
    b[8] = (v >>> 8) & 3;
    const text = formatIpv6(b, 0);
    const r = parseIp(text);
    assert.ok(typeof r !== "string");
    assert.deepEqual(r.bytes, b, text);
  }
});

Deno.test("sameFamily: both 4 bytes or both 16, nothing else", () => {
  const v4 = new Uint8Array(4), v6 = new Uint8Array(16);
  assert.ok(sameFamily(v4, new Uint8Array(4)));
  assert.ok(sameFamily(v6, new Uint8Array(16)));
  assert.ok(!sameFamily(v4, v6));
  assert.ok(!sameFamily(v6, v4));
  assert.ok(!sameFamily(new Uint8Array(5), new Uint8Array(5)));
  assert.ok(!sameFamily(new Uint8Array(0), new Uint8Array(0)));
});
