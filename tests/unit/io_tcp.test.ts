/**
 * TcpSocket over loopback: listen/connect/accept, bytes both ways, EAGAIN, end of stream,
 * refused and reset connections, address reuse errors, interop with Deno's own sockets,
 * and no leaked fds. No root needed.
 */

import assert from "node:assert/strict";
import { IoError } from "../../lib/io/errors.ts";
import { Errno, loadLibc, NativeMemory } from "../../lib/io/libc.ts";
import { Sock } from "../../lib/io/socket.ts";
import { decodeSockaddr, encodeSockaddr, TcpError, TcpSocket } from "../../lib/io/tcp.ts";
import { mulberry32, randomInt } from "../helpers/prng.ts";

const POLLIN = 0x1;
const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;

/**
 * Waits until `fd` reports any of `events` (or POLLERR/POLLHUP): sync poll() in 20 ms slices,
 * yielding to the event loop between slices so Deno's own sockets make progress. Bounded by
 * `ms`; returns revents, or throws on timeout.
 */
async function waitFd(fd: number, events: number, ms = 5000): Promise<number> {
  const pfd = new NativeMemory(8);
  try {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      pfd.dv.setInt32(0, fd, true);
      pfd.dv.setInt16(4, events, true);
      pfd.dv.setInt16(6, 0, true);
      const r = loadLibc().poll(pfd.pointer, 1n, 20);
      if (r > 0) return pfd.dv.getInt16(6, true);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    throw new Error(`fd ${fd}: events 0x${events.toString(16)} not ready within ${ms} ms`);
  } finally {
    pfd.free();
  }
}

/** Accepts one connection within `ms`. */
async function acceptOne(server: TcpSocket, ms = 5000): Promise<TcpSocket> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    await waitFd(server.fd, POLLIN, deadline - Date.now());
    const s = server.accept();
    if (s !== null) return s;
  }
  throw new Error("no connection accepted");
}

/** Reads exactly `n` bytes (bounded in time), failing on a premature end of stream. */
async function readExactly(s: TcpSocket, n: number, ms = 5000): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  const deadline = Date.now() + ms;
  while (got < n) {
    if (Date.now() > deadline) throw new Error(`read ${got} of ${n} bytes before the deadline`);
    const r = s.read(out.subarray(got));
    if (r === 0) throw new Error(`end of stream after ${got} of ${n} bytes`);
    if (r < 0) await waitFd(s.fd, POLLIN, deadline - Date.now());
    else got += r;
  }
  return out;
}

/** Writes all of `bytes` (bounded in time). */
async function writeAll(s: TcpSocket, bytes: Uint8Array, ms = 5000): Promise<void> {
  let sent = 0;
  const deadline = Date.now() + ms;
  while (sent < bytes.length) {
    if (Date.now() > deadline) throw new Error(`wrote ${sent} of ${bytes.length} bytes`);
    const w = s.write(bytes.subarray(sent));
    if (w === 0) await waitFd(s.fd, POLLOUT, deadline - Date.now());
    sent += w;
  }
}

/** `p`, or a rejection after `ms` (so an awaited Deno socket call cannot hang the test). */
async function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Deterministic pseudo-random bytes. */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  const byte = randomInt(mulberry32(seed));
  for (let i = 0; i < n; i++) b[i] = byte(256);
  return b;
}

/** A connected pair over `host` plus its listener; the caller closes all three. */
async function connectedPair(
  host: string,
): Promise<{ server: TcpSocket; client: TcpSocket; peer: TcpSocket }> {
  const server = TcpSocket.listen(host, 0);
  const client = TcpSocket.connect(host, server.localAddr().port);
  const revents = await waitFd(client.fd, POLLOUT);
  assert.ok(revents & POLLOUT, `connect to ${host} did not become writable`);
  assert.equal(client.connectError(), 0);
  const peer = await acceptOne(server);
  return { server, client, peer };
}

/** True when ::1 is configured and bindable here. */
function hasIpv6Loopback(): boolean {
  try {
    TcpSocket.listen("::1", 0).close();
    return true;
  } catch {
    return false;
  }
}

async function roundTrip(host: string): Promise<void> {
  const { server, client, peer } = await connectedPair(host);
  try {
    client.setNoDelay(true);
    peer.setNoDelay(true);
    // addresses agree on both ends
    const port = server.localAddr().port;
    assert.ok(port > 0);
    assert.deepEqual(client.remoteAddr(), { hostname: host, port });
    assert.deepEqual(peer.localAddr(), { hostname: host, port });
    assert.deepEqual(peer.remoteAddr(), client.localAddr());
    assert.equal(client.localAddr().hostname, host);
    assert.deepEqual(client.remoteAddr(), peer.localAddr()); // cached value still right

    // nothing pending yet: -1, no pending connection: null
    const buf = new Uint8Array(4096);
    assert.equal(peer.read(buf), -1);
    assert.equal(server.accept(), null);

    const up = pattern(10_000, 1);
    await writeAll(client, up);
    assert.deepEqual(await readExactly(peer, up.length), up);
    const down = pattern(3_333, 2);
    await writeAll(peer, down);
    assert.deepEqual(await readExactly(client, down.length), down);
    assert.equal(client.read(buf), -1);

    // the peer closes: end of stream (0), after the last bytes
    await writeAll(peer, new Uint8Array([7, 8, 9]));
    peer.close();
    assert.deepEqual(await readExactly(client, 3), new Uint8Array([7, 8, 9]));
    await waitFd(client.fd, POLLIN);
    assert.equal(client.read(buf), 0);
  } finally {
    peer.close();
    client.close();
    server.close();
  }
}

Deno.test("tcp: IPv4 loopback connect, accept, bytes both ways, EAGAIN and end of stream", () =>
  roundTrip("127.0.0.1"));

// Ignored (reported as such by deno test) on a host without ::1: there is nothing to connect to.
const NO_IPV6_LOOPBACK = !hasIpv6Loopback();

Deno.test({
  name: "tcp: IPv6 ::1 the same (ignored when ::1 is not configured on this host)",
  ignore: NO_IPV6_LOOPBACK,
  fn: () => roundTrip("::1"),
});

Deno.test({
  name:
    "tcp: a dual-stack :: listener sees an IPv4 client as ::ffff:127.0.0.1 (ignored without IPv6)",
  ignore: NO_IPV6_LOOPBACK,
}, async () => {
  const server = TcpSocket.listen("::", 0);
  const client = TcpSocket.connect("127.0.0.1", server.localAddr().port);
  try {
    await waitFd(client.fd, POLLOUT);
    assert.equal(client.connectError(), 0);
    const peer = await acceptOne(server);
    try {
      assert.equal(peer.remoteAddr().hostname, "::ffff:127.0.0.1");
      assert.equal(peer.remoteAddr().port, client.localAddr().port);
    } finally {
      peer.close();
    }
  } finally {
    client.close();
    server.close();
  }
});

Deno.test("tcp: connect to a closed port gives ECONNREFUSED once writable", async () => {
  const probe = TcpSocket.listen("127.0.0.1", 0);
  const port = probe.localAddr().port;
  probe.close();
  const client = TcpSocket.connect("127.0.0.1", port);
  try {
    const revents = await waitFd(client.fd, POLLOUT);
    assert.ok(revents & (POLLOUT | POLLERR | POLLHUP));
    assert.equal(client.connectError(), Errno.ECONNREFUSED);
  } finally {
    client.close();
  }
});

Deno.test("tcp: write returns 0 when the peer does not read, and nothing is lost", async () => {
  const { server, client, peer } = await connectedPair("127.0.0.1");
  try {
    const chunk = pattern(65536, 3);
    let written = 0;
    let full = false;
    for (let i = 0; i < 4096 && !full; i++) { // ≤ 256 MiB: far above loopback buffers
      const w = client.write(chunk);
      assert.ok(w >= 0 && w <= chunk.length);
      if (w === 0) full = true;
      written += w;
    }
    assert.ok(full, `send buffer never filled after ${written} bytes`);
    assert.ok(written > 0);
    // not writable now; drain everything on the other side and compare with what was sent
    const buf = new Uint8Array(65536);
    let read = 0;
    const deadline = Date.now() + 10_000;
    while (read < written && Date.now() < deadline) {
      const r = peer.read(buf);
      assert.notEqual(r, 0, "unexpected end of stream");
      if (r < 0) {
        await waitFd(peer.fd, POLLIN, 1000);
        continue;
      }
      // chunk i starts at offset (read % 65536) of the pattern
      const at = read % chunk.length;
      const first = Math.min(r, chunk.length - at);
      assert.deepEqual(buf.subarray(0, first), chunk.subarray(at, at + first));
      assert.deepEqual(buf.subarray(first, r), chunk.subarray(0, r - first));
      read += r;
    }
    assert.equal(read, written);
    assert.equal(peer.read(buf), -1);
    assert.ok((await waitFd(client.fd, POLLOUT)) & POLLOUT);
    assert.ok(client.write(chunk) > 0);
  } finally {
    peer.close();
    client.close();
    server.close();
  }
});

Deno.test("tcp: a reset connection throws ECONNRESET on read and EPIPE/ECONNRESET on write", async () => {
  const { server, client, peer } = await connectedPair("127.0.0.1");
  try {
    // SO_LINGER {on, 0 s}: close() sends a RST
    const linger = new Int32Array([1, 0]);
    assert.equal(loadLibc().setsockopt(peer.fd, Sock.SOL_SOCKET, 13, linger, 8), 0);
    peer.close();
    await waitFd(client.fd, POLLIN);
    assert.throws(() => client.read(new Uint8Array(16)), (e: unknown) => {
      assert.ok(e instanceof IoError && e instanceof TcpError);
      assert.equal(e.errno, Errno.ECONNRESET);
      assert.equal(e.code, "ECONNRESET");
      assert.match(e.message, /ECONNRESET/);
      return true;
    });
    assert.throws(() => client.write(new Uint8Array(16)), (e: unknown) => {
      assert.ok(e instanceof TcpError);
      assert.ok(e.errno === Errno.EPIPE || e.errno === Errno.ECONNRESET, e.message);
      return true;
    });
  } finally {
    peer.close();
    client.close();
    server.close();
  }
});

Deno.test("tcp: listening on a port in use throws EADDRINUSE naming the address", () => {
  const first = TcpSocket.listen("127.0.0.1", 0);
  try {
    const port = first.localAddr().port;
    assert.throws(() => TcpSocket.listen("127.0.0.1", port), (e: unknown) => {
      assert.ok(e instanceof IoError);
      assert.equal(e.kind, "system");
      assert.match(e.message, /EADDRINUSE \(Address already in use\)/);
      assert.ok(e.message.includes(`127.0.0.1:${port}`), e.message);
      return true;
    });
  } finally {
    first.close();
  }
});

Deno.test("tcp: bad addresses and ports are IoErrors, not crashes", () => {
  for (const [host, port] of [["localhost", 80], ["1.2.3", 80], ["::1%lo", 80]] as const) {
    assert.throws(() => TcpSocket.connect(host, port), IoError, host);
    assert.throws(() => TcpSocket.listen(host, port), IoError, host);
  }
  for (const port of [-1, 65536, 1.5, NaN]) {
    assert.throws(() => TcpSocket.listen("127.0.0.1", port), /bad port/);
  }
});

Deno.test("tcp: sockaddr layouts (family LE, port BE, address) round-trip", () => {
  const v4 = encodeSockaddr("10.1.2.3", 0x1234);
  assert.equal(v4.length, 16);
  assert.deepEqual([...v4.subarray(0, 8)], [2, 0, 0x12, 0x34, 10, 1, 2, 3]);
  assert.deepEqual(decodeSockaddr(v4, 16), { hostname: "10.1.2.3", port: 0x1234 });
  const v6 = encodeSockaddr("2001:db8::1", 36524);
  assert.equal(v6.length, 28);
  assert.deepEqual([...v6.subarray(0, 4)], [10, 0, 36524 >> 8, 36524 & 0xff]);
  assert.equal(v6[8], 0x20);
  assert.equal(v6[23], 1);
  assert.deepEqual(decodeSockaddr(v6, 28), { hostname: "2001:db8::1", port: 36524 });
  assert.equal(decodeSockaddr(v6, 16), null); // too short for AF_INET6
  assert.equal(decodeSockaddr(new Uint8Array(16), 16), null); // AF_UNSPEC
});

Deno.test("tcp: interop with Deno.connect and Deno.listen", async () => {
  // Deno client -> TcpSocket server
  const server = TcpSocket.listen("127.0.0.1", 0);
  const conn = await within(
    Deno.connect({ hostname: "127.0.0.1", port: server.localAddr().port }),
  );
  try {
    const peer = await acceptOne(server);
    try {
      const up = pattern(50_000, 4);
      const sending = (async () => {
        let total = 0;
        for (let i = 0; i < 1000 && total < up.length; i++) {
          total += await conn.write(up.subarray(total));
        }
      })();
      assert.deepEqual(await readExactly(peer, up.length), up);
      await within(sending);
      const down = pattern(20_000, 5);
      await writeAll(peer, down);
      const got = new Uint8Array(down.length);
      let n = 0;
      for (let i = 0; i < 1000 && n < got.length; i++) {
        const r = await within(conn.read(got.subarray(n)));
        assert.ok(r !== null, "Deno side saw end of stream early");
        n += r;
      }
      assert.deepEqual(got, down);
      assert.deepEqual(peer.remoteAddr(), {
        hostname: "127.0.0.1",
        port: (conn.localAddr as Deno.NetAddr).port,
      });
    } finally {
      peer.close();
    }
  } finally {
    conn.close();
    server.close();
  }

  // TcpSocket client -> Deno server
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = TcpSocket.connect("127.0.0.1", (listener.addr as Deno.NetAddr).port);
  try {
    await waitFd(client.fd, POLLOUT);
    assert.equal(client.connectError(), 0);
    const accepted = await within(listener.accept());
    try {
      const up = pattern(30_000, 6);
      await writeAll(client, up);
      client.close(); // end of stream for the Deno side
      const chunks: Uint8Array[] = [];
      const buf = new Uint8Array(8192);
      for (let i = 0; i < 1000; i++) {
        const r = await within(accepted.read(buf));
        if (r === null) break;
        chunks.push(buf.slice(0, r));
      }
      const got = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        got.set(c, at);
        at += c.length;
      }
      assert.deepEqual(got, up);
    } finally {
      accepted.close();
    }
  } finally {
    client.close();
    listener.close();
  }
});

/** What each open fd of this process refers to ("socket:[12345]" for a socket). */
function openFileLinks(): Set<string> {
  const links = new Set<string>();
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      links.add(Deno.readLinkSync(`/proc/self/fd/${e.name}`));
    } catch { /* closed meanwhile (the directory's own fd) */ }
  }
  return links;
}

Deno.test("tcp: close is idempotent, closed sockets refuse I/O, and no fd leaks", async () => {
  // warm up libc and the helpers once, then count
  const warm = await connectedPair("127.0.0.1");
  warm.peer.close();
  warm.client.close();
  warm.server.close();

  // other test files may run in this process at the same time (deno test --parallel), so the
  // check follows our own sockets by inode rather than counting the process's descriptors
  const v6 = hasIpv6Loopback();
  const ours: string[] = [];
  for (let i = 0; i < 20; i++) {
    const { server, client, peer } = await connectedPair(i % 2 || !v6 ? "127.0.0.1" : "::1");
    await writeAll(client, new Uint8Array([i]));
    assert.deepEqual(await readExactly(peer, 1), new Uint8Array([i]));
    for (const s of [peer, client, server]) {
      assert.equal(s.isOpen, true);
      const link = Deno.readLinkSync(`/proc/self/fd/${s.fd}`);
      assert.match(link, /^socket:\[\d+\]$/);
      ours.push(link);
      s.close();
      s.close();
      assert.equal(s.isOpen, false);
    }
    assert.throws(() => client.read(new Uint8Array(1)), /closed/);
    assert.throws(() => client.write(new Uint8Array(1)), /closed/);
    assert.throws(() => server.accept(), /closed/);
  }
  // failing listen/connect close their fd too
  const busy = TcpSocket.listen("127.0.0.1", 0);
  for (let i = 0; i < 10; i++) {
    assert.throws(() => TcpSocket.listen("127.0.0.1", busy.localAddr().port), IoError);
  }
  ours.push(Deno.readLinkSync(`/proc/self/fd/${busy.fd}`));
  busy.close();
  const still = openFileLinks();
  assert.deepEqual(ours.filter((l) => still.has(l)), [], "sockets left open");
});
