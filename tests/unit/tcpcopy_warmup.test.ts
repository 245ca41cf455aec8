/**
 * The start-up JIT warm-up (lib/tcpcopy/warmup.ts): it runs the replicator and engine over its
 * synthetic connections end to end (every request answered by its mini target), and it cannot
 * emit a packet or touch real state: it runs here with no permission at all (a socket, FFI
 * call, file or environment read would throw), and a real sender handed to nothing stays
 * untouched.
 */
import assert from "node:assert/strict";
import { parseTcpcopyArgs } from "../../lib/cli/tcpcopy.ts";
import { warmUp } from "../../lib/tcpcopy/warmup.ts";

function config(args: string[]) {
  const cli = parseTcpcopyArgs(args);
  if (cli.kind !== "run") throw new Error(`not a run command line: ${JSON.stringify(cli)}`);
  return cli.config;
}

Deno.test({
  name: "warm-up: every synthetic request is replayed and answered, with no permission",
  permissions: "none",
  fn() {
    const r = warmUp(config(["-x", "80-10.0.0.2:8080", "-s", "10.0.0.2"]), 5, 20);
    assert(r.ran);
    assert.deepEqual(r.frames, 5 * (3 + 2 * 20));
    assert.deepEqual(r.answered, 5 * 20);
    // handshake, requests, the ACKs of the answers and the closes reached the fake sender
    assert(r.sent >= 5 * (2 + 20), `sent ${r.sent}`);
  },
});

Deno.test({
  name: "warm-up: an online address in the transfer, default size",
  permissions: "none",
  fn() {
    const r = warmUp(config(["-x", "192.0.2.9:80-10.0.0.2:8080", "-s", "10.0.0.2"]));
    assert(r.ran);
    assert(r.answered > 0);
  },
});

Deno.test({
  name: "warm-up: skipped when no IPv4 transfer without a module exists",
  permissions: "none",
  fn() {
    const r = warmUp(config(["-x", "80-[2001:db8::2]:8080", "-s", "2001:db8::2"]));
    assert.deepEqual(r, { ran: false, frames: 0, sent: 0, answered: 0, ms: 0 });
  },
});
