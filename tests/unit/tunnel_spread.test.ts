import assert from "node:assert/strict";
import { spread } from "../../lib/tunnel/spread.ts";

const client = (port: number, last = 7) => ({ addr: new Uint8Array([10, 0, 0, last]), port });
const client6 = (port: number) => ({
  addr: Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0xfd : i === 15 ? 9 : 0)),
  port,
});
const target = { addr: new Uint8Array([10, 0, 0, 2]), port: 8080 };
const target6 = {
  addr: Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0xfd : i === 15 ? 2 : 0)),
  port: 80,
};

/** Routes per link when `ports` of one client IP are spread over `links` connections. */
function counts(ports: number[], links: number, mk = client, t = target): number[] {
  const n = new Array(links).fill(0);
  for (const p of ports) n[spread(mk(p), t) % links]++;
  return n;
}

const evenPorts = Array.from({ length: 2000 }, (_, i) => 32768 + 2 * i);
const stepFour = Array.from({ length: 2000 }, (_, i) => 40000 + 4 * i);

/** Every link gets between 40 % and 160 % of its fair share. */
function assertEven(n: number[], what: string) {
  const fair = n.reduce((a, b) => a + b, 0) / n.length;
  for (const c of n) assert.ok(c > 0.4 * fair && c < 1.6 * fair, `${what}: ${n.join(" / ")}`);
}

Deno.test("tunnel spread: a client's even ephemeral ports (Linux connect()) use both of -C 2", () => {
  assertEven(counts(evenPorts, 2), "IPv4, 2 links, even ports");
  assertEven(counts(evenPorts, 2, client6, target6), "IPv6, 2 links, even ports");
});

Deno.test("tunnel spread: ports in steps of 4 and clients differing in one address bit spread over -C 4", () => {
  assertEven(counts(stepFour, 4), "IPv4, 4 links, ports step 4");
  const n = [0, 0, 0, 0];
  for (let last = 0; last < 256; last += 2) {
    for (let p = 50000; p < 50040; p += 4) n[spread(client(p, last), target) % 4]++;
  }
  assertEven(n, "even client addresses, ports step 4");
});

Deno.test("tunnel spread: deterministic, an unsigned 32-bit value, and the target takes part", () => {
  const a = spread(client(40000), target);
  assert.equal(spread(client(40000), target), a);
  assert.ok(Number.isInteger(a) && a >= 0 && a < 2 ** 32);
  assert.notEqual(spread(client(40000), { ...target, port: 8081 }), a);
});
