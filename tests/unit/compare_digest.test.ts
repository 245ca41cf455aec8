import assert from "node:assert/strict";
import { Digest64, digestHex, digestOf, digestText } from "../../lib/compare/digest.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";

/** xxHash's sanity buffer: byte i is the top byte of PRIME32_1 squared i times. */
function sanityBuffer(n: number): Uint8Array {
  const b = new Uint8Array(n);
  let gen = 2654435761;
  for (let i = 0; i < n; i++) {
    b[i] = gen >>> 24;
    gen = Math.imul(gen, gen) >>> 0;
  }
  return b;
}

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("digest halves are XXH32 with seeds 0 and PRIME32_1 (xxHash's test vectors)", () => {
  const buf = sanityBuffer(101);
  const cases: [number, number, number][] = [
    [0, 0x02cc5d05, 0x36b78ae7],
    [1, 0xb85cbee5, 0xd5845d64],
    [14, 0xe5aa0ab4, 0x4481951d],
    [101, 0x1f1aa412, 0x498ec8e2],
  ];
  for (const [len, seed0, seedPrime] of cases) {
    const d = new Digest64();
    d.update(buf, 0, len);
    assert.equal(d.value32(0), seed0, `len ${len} seed 0`);
    assert.equal(d.value32(1), seedPrime, `len ${len} seed PRIME32_1`);
    assert.equal(
      d.hex(),
      seed0.toString(16).padStart(8, "0") + seedPrime.toString(16).padStart(8, "0"),
    );
  }
  const words: [string, number][] = [
    ["a", 0x550d7456],
    ["abc", 0x32d153ff],
    ["abcdefghijklmnop", 0x9d2d8b62],
    ["abcdefghijklmnopqrstuvwxyz0123456789", 0x42ae804d],
    ["Nobody inspects the spammish repetition", 0xe2293b2f],
  ];
  for (const [s, v] of words) {
    const d = new Digest64();
    d.update(text(s));
    assert.equal(d.value32(0), v, s);
  }
});

Deno.test("digest is the same however the input is split, and reset starts over", () => {
  const rnd = mulberry32(15);
  const int = randomInt(rnd);
  const d = new Digest64();
  for (let round = 0; round < 200; round++) {
    const data = new Uint8Array(int(300));
    for (let i = 0; i < data.length; i++) data[i] = int(256);
    const whole = digestHex(data);
    d.reset();
    let i = 0;
    while (i < data.length) {
      const n = int(3) === 0 ? 1 : 1 + int(40);
      if (n === 1) d.updateByte(data[i++]);
      else {
        const end = Math.min(data.length, i + n);
        d.update(data, i, end);
        i = end;
      }
    }
    assert.equal(d.hex(), whole, `round ${round} length ${data.length}`);
    assert.equal(d.length, data.length);
  }
});

Deno.test("digests of different inputs differ (no collision over 20000 random short inputs)", () => {
  const rnd = mulberry32(7);
  const int = randomInt(rnd);
  const seen = new Set<string>();
  for (let k = 0; k < 20000; k++) {
    const data = new Uint8Array(1 + int(24));
    for (let i = 0; i < data.length; i++) data[i] = int(256);
    seen.add(Array.from(data).join(","));
  }
  const digests = new Set(
    [...seen].map((s) => digestHex(new Uint8Array(s.split(",").map(Number)))),
  );
  assert.equal(digests.size, seen.size);
});

Deno.test("digest reads views at any byte offset of their buffer, and alternating buffers", () => {
  const int = randomInt(mulberry32(5));
  const big = new Uint8Array(4096);
  for (let i = 0; i < big.length; i++) big[i] = int(256);
  const other = big.slice();
  for (let k = 0; k < 50; k++) {
    const from = int(100), to = from + int(3000);
    const d = new Digest64();
    d.update(big.subarray(from, from + 7)); // pending bytes
    d.update(other.subarray(from + 7, to)); // another buffer, odd offset
    d.update(big, to, to + 33);
    assert.equal(d.hex(), digestHex(big.slice(from, to + 33)), `from ${from} to ${to}`);
  }
});

Deno.test("digest value is the hex digest as a 64-bit number (seed A's half high)", () => {
  const int = randomInt(mulberry32(21));
  for (let k = 0; k < 300; k++) {
    const data = new Uint8Array(int(200));
    for (let i = 0; i < data.length; i++) data[i] = int(256);
    const d = new Digest64();
    d.update(data);
    const v = d.value();
    assert.equal(v, BigInt("0x" + d.hex()));
    assert.equal(v >> 32n, BigInt(d.value32(0)));
    assert.equal(digestText(v), d.hex());
    assert.equal(digestOf(data), v);
  }
});
