/**
 * The tunnel server's footprint under attack, measured in a separate intercept-side process
 * (a TunnelServer on 127.0.0.1, nothing else), with plain sockets as the attacker:
 *
 *   deno run -A bench/tunnel_adversary.ts [--adds 1000000] [--peers 1] [--idle 2000]
 *
 * 1. route flood: `--peers` connections (one by default) each send hello + `--adds`
 *    CLIENT_ADDs (14 bytes each) for distinct tuples; the server's routes, RSS and heap are sampled before and after (default quota
 *    250,000 routes per owner).
 * 2. idle sockets: `--idle` sockets connect and say nothing (per-address cap lifted to model
 *    as many addresses, 1024 connections at most); the time until the idle timeout (default
 *    15 s) closed every accepted one is measured, and a real TunnelClient connects meanwhile.
 * No root, no network beyond loopback.
 */
import { benchArgs } from "./args.ts";
import { TunnelServer } from "../lib/tunnel/server.ts";
import { TunnelClient } from "../lib/tunnel/client.ts";
import { encodeHello, encodeRoute } from "../lib/tunnel/messages.ts";

/** Writes every byte (Deno.Conn.write may take only part of a buffer). */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

const SELF = new URL(import.meta.url).pathname;

interface Sample {
  rssMiB: number;
  heapMiB: number;
  routes: number;
  open: number;
  accepted: number;
  refused: number;
  idleClosed: number;
  overQuota: number;
  routesAdded: number;
}

/** The server process: prints a sample line every 100 ms. */
function roleServer(maxPerIp: number): void {
  const s = TunnelServer.listen({
    port: 0,
    hostname: "127.0.0.1",
    maxPerIp,
    log: (l) => console.error(l),
  });
  console.log(JSON.stringify({ port: s.port }));
  let ticks = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  setInterval(() => {
    // a full GC once a second: heap figures are then live objects, not garbage
    if (++ticks % 10 === 0) gc?.();
    const m = Deno.memoryUsage();
    const sample: Sample = {
      rssMiB: Math.round(m.rss / 2 ** 20 * 10) / 10,
      heapMiB: Math.round(m.heapUsed / 2 ** 20 * 10) / 10,
      routes: s.dispatcher.routes.size,
      open: s.connectionsOpen,
      accepted: s.counters.accepted,
      refused: s.counters.rejected,
      idleClosed: s.counters.idleClosed,
      overQuota: s.dispatcher.routes.overQuota,
      routesAdded: s.dispatcher.counters.routesAdded,
    };
    console.log(JSON.stringify(sample));
  }, 100);
}

class ServerProcess {
  #child: Deno.ChildProcess;
  #lines: AsyncIterator<string>;
  last: Sample | undefined;
  port = 0;

  constructor(maxPerIp: number) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--expose-gc",
        SELF,
        "--role",
        "server",
        "--max-per-ip",
        `${maxPerIp}`,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
      new LineSplitter(),
    )[Symbol.asyncIterator]();
  }

  async start(): Promise<void> {
    const first = await this.#lines.next();
    this.port = JSON.parse(first.value).port;
  }

  async next(): Promise<Sample> {
    const r = await this.#lines.next();
    if (r.done) throw new Error("server process ended");
    return this.last = JSON.parse(r.value);
  }

  async until(cond: (s: Sample) => boolean, ms: number): Promise<Sample> {
    const end = Date.now() + ms;
    for (;;) {
      const s = await this.next();
      if (cond(s)) return s;
      if (Date.now() > end) throw new Error(`timeout; last ${JSON.stringify(s)}`);
    }
  }

  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* gone */ }
    await this.#child.status;
  }
}

class LineSplitter extends TransformStream<string, string> {
  constructor() {
    let buf = "";
    super({
      transform(chunk, ctl) {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          ctl.enqueue(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      },
    });
  }
}

async function routeFlood(adds: number, peers: number): Promise<void> {
  const srv = new ServerProcess(32);
  await srv.start();
  try {
    const before = await srv.next();
    const conns: Deno.Conn[] = [];
    for (let p = 0; p < peers; p++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port: srv.port }));
      await writeAll(conns[p], encodeHello());
    }
    const target = { addr: new Uint8Array([10, 0, 0, 2]), port: 80 };
    const batch = new Uint8Array(14 * 10_000);
    const t0 = performance.now();
    for (let sent = 0; sent < adds; sent += 10_000) {
      for (let p = 0; p < peers; p++) {
        for (let i = 0; i < 10_000; i++) {
          const n = sent + i;
          const client = {
            addr: new Uint8Array([10, 10 + p, (n >> 16) & 255, (n >> 8) & 255]),
            port: 1 + (n & 255),
          };
          batch.set(encodeRoute("add", client, target), i * 14);
        }
        await writeAll(conns[p], batch);
      }
    }
    const total = adds * peers;
    let peak = before.rssMiB;
    await srv.until((s) => {
      peak = Math.max(peak, s.rssMiB);
      return s.routesAdded >= total;
    }, 120_000);
    const ms0 = performance.now() - t0;
    // past the next full GC
    for (let i = 0; i < 12; i++) peak = Math.max(peak, (await srv.next()).rssMiB);
    const after = srv.last!;
    const ms = ms0;
    const real = await TunnelClient.connect({
      servers: [{ hostname: "127.0.0.1", port: srv.port }],
      onReply: () => {},
      log: () => {},
    });
    console.log(
      `route flood: ${peers} peer(s) x ${adds} CLIENT_ADDs (${
        (total * 14 / 1e6).toFixed(1)
      } MB) in ${
        (ms / 1000).toFixed(1)
      } s: routes ${after.routes} (over quota ${after.overQuota}), RSS ${before.rssMiB} -> ` +
        `${after.rssMiB} MiB (peak ${peak}), heap ${before.heapMiB} -> ${after.heapMiB} MiB; ` +
        `a real tcpcopy then connects: ${real.connected} connections`,
    );
    await real.close();
    for (const c of conns) c.close();
  } finally {
    await srv.stop();
  }
}

async function idleSockets(count: number): Promise<void> {
  const srv = new ServerProcess(100_000);
  await srv.start();
  const socks: Deno.Conn[] = [];
  try {
    const t0 = performance.now();
    for (let i = 0; i < count; i += 100) {
      const n = Math.min(100, count - i);
      const batch = Array.from(
        { length: n },
        () => Deno.connect({ hostname: "127.0.0.1", port: srv.port }),
      );
      for (const r of await Promise.allSettled(batch)) {
        if (r.status === "fulfilled") socks.push(r.value);
      }
    }
    const connected = performance.now();
    const full = await srv.until((s) => s.accepted + s.refused >= count, 10_000);
    const real = await TunnelClient.connect({
      servers: [{ hostname: "127.0.0.1", port: srv.port }],
      connections: 2,
      onReply: () => {},
      log: () => {},
    }).then((c) => c, (e) => e as Error);
    const realUp = real instanceof TunnelClient ? real.connected : 0;
    if (real instanceof TunnelClient) await real.close();
    const freed = await srv.until((s) => s.open === 0 && s.idleClosed > 0, 60_000);
    const done = performance.now();
    const after = await TunnelClient.connect({
      servers: [{ hostname: "127.0.0.1", port: srv.port }],
      connections: 2,
      onReply: () => {},
      log: () => {},
    });
    const afterUp = after.connected;
    await after.close();
    console.log(
      `idle sockets: ${socks.length} connected in ${((connected - t0) / 1000).toFixed(2)} s; ` +
        `accepted ${full.accepted}, refused at the connection limit ` +
        `${full.refused}; a real tcpcopy during the flood: ${
          real instanceof TunnelClient ? `${realUp} connections` : `failed (${real.message})`
        }; every accepted idle socket closed ${
          ((done - connected) / 1000).toFixed(1)
        } s after the last connect (idle closed ${freed.idleClosed}, RSS ${freed.rssMiB} MiB); ` +
        `a real tcpcopy then: ${afterUp} connections`,
    );
  } finally {
    for (const c of socks) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await srv.stop();
  }
}

if (import.meta.main) {
  const { values } = benchArgs(import.meta.url, {
    args: Deno.args,
    options: {
      role: { type: "string" },
      "max-per-ip": { type: "string" },
      adds: { type: "string" },
      idle: { type: "string" },
      peers: { type: "string" },
    },
  });
  if (values.role === "server") roleServer(Number(values["max-per-ip"] ?? 32));
  else {
    await routeFlood(Number(values.adds ?? 1_000_000), Number(values.peers ?? 1));
    if (Number(values.idle ?? 2000) > 0) await idleSockets(Number(values.idle ?? 2000));
    Deno.exit(0);
  }
}
