/**
 * End-to-end fuzz path (issue 12): random and mutated raw frames — Ethernet (with VLAN tags),
 * Linux cooked v1/v2 and raw IP, IPv4 and IPv6, truncated, with bad lengths and odd TCP
 * options — through the replicator into the real engine, with random reply headers and timer
 * ticks in between. Nothing may throw, and every packet built must go to a configured target
 * (address and port), never anywhere else. Seeded and bounded.
 */
import assert from "node:assert/strict";
import { Engine } from "../../lib/engine/engine.ts";
import { Replicator } from "../../lib/tcpcopy/replicator.ts";
import { Logger } from "../../lib/stats/logger.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../../lib/wire/build.ts";
import { LinkType } from "../../lib/wire/link.ts";
import { ParsedTcp, parseIpTcp } from "../../lib/wire/packet.ts";
import { mulberry32 } from "../helpers/prng.ts";

const TARGETS = new Set(["10.0.0.2:8080", "10.0.0.3:81", "[2001:db8::2]:8080"]);

/** A sender that parses every packet it is given and checks where it goes. */
class CheckingSender {
  pending = 0;
  sent = 0;
  bad: string[] = [];
  #slots: Uint8Array[] = [];
  readonly #p = new ParsedTcp();
  slot(len: number): Uint8Array {
    const s = new Uint8Array(len);
    this.#slots.push(s);
    this.pending++;
    return s;
  }
  flush(): number {
    for (const s of this.#slots) {
      if (s[0] >> 4 === 0) continue; // refused by the builder: the real sender skips it
      const err = parseIpTcp(s, 0, this.#p);
      if (err !== null) {
        this.bad.push(`unparsable packet built: ${err}`);
        continue;
      }
      const dst = this.#p.family === 6
        ? `[${this.#p.dstText()}]:${this.#p.dstPort}`
        : `${this.#p.dstText()}:${this.#p.dstPort}`;
      if (!TARGETS.has(dst)) this.bad.push(`packet to ${dst}`);
      this.sent++;
    }
    const n = this.#slots.length;
    this.#slots = [];
    this.pending = 0;
    return n;
  }
}

Deno.test("fuzz: mutated frames through replicator and engine; output only to the targets", () => {
  for (const seed of [1, 2, 3, 4]) {
    const r = mulberry32(seed * 7919);
    const int = (n: number) => Math.floor(r() * n);
    const pick = <T>(a: readonly T[]): T => a[int(a.length)];
    let now = 1_000_000;
    const v4 = new CheckingSender(), v6 = new CheckingSender();
    const rep = new Replicator({
      v4,
      v6,
      log: new Logger(() => {}, () => 0),
      now: () => now,
      routes: { addRoute: () => true, delRoute: () => true, canRoute: () => true },
      mtu: pick([576, 1500, 9000]),
    });
    const engine = new Engine(
      {
        transfers: [
          { online: { addr: "", port: 80 }, target: { addr: "10.0.0.2", port: 8080 } },
          { online: { addr: "10.0.0.1", port: 81 }, target: { addr: "10.0.0.3", port: 81 } },
          { online: { addr: "", port: 80 }, target: { addr: "2001:db8::2", port: 8080 } },
        ],
        copies: pick([1, 2, 1.5]),
        clientIps: seed % 2 ? ["10.9.0.1", "2001:db8::99"] : [],
        maxSessions: 200,
        maxFlows: 400,
        memoryBudgetBytes: 4 << 20,
        maxPps: seed === 3 ? 500 : 0,
      },
      rep,
      now,
    );
    rep.attach(engine);

    const clients = ["192.0.2.1", "192.0.2.2", "2001:db8::10", "10.0.0.2", "0.0.0.0", "::"];
    const servers = ["10.0.0.1", "10.0.0.9", "2001:db8::1", "10.0.0.2"];
    const validIp = (): Uint8Array => {
      const v6 = r() < 0.4;
      const fam = (a: string) => a.includes(":") === v6;
      const opts: Record<string, unknown> = {};
      if (r() < 0.5) opts.mss = int(65536);
      if (r() < 0.3) opts.wscale = int(20);
      if (r() < 0.3) opts.timestamp = { tsval: int(2 ** 32), tsecr: int(2 ** 32) };
      if (r() < 0.2) opts.sackPermitted = true;
      const payload = new Uint8Array(r() < 0.5 ? 0 : int(r() < 0.9 ? 300 : 3000));
      for (let i = 0; i < payload.length; i++) payload[i] = int(256);
      const repr = {
        ...addressPair(pick(clients.filter(fam)), pick(servers.filter(fam))),
        srcPort: pick([40000, 40001, 40002, int(65536)]),
        dstPort: pick([80, 81, 80, int(65536)]),
        seq: pick([1000, 1001, 1000 + int(5000), int(2 ** 32)]),
        ack: int(2 ** 32),
        flags: pick([0x02, 0x10, 0x18, 0x11, 0x04, 0x12, int(256)]),
        window: int(65536),
        options: {
          sackPermitted: false,
          sackBlocks: [],
          unknown: r() < 0.2 ? [{ kind: 30 + int(200), data: new Uint8Array(int(6)) }] : [],
          ...opts,
        },
        payload,
      };
      const len = tcpPacketLength(repr);
      if (len < 0) return new Uint8Array(int(80));
      const b = new Uint8Array(len);
      buildTcpPacket(repr, b);
      return b;
    };
    const withLink = (ip: Uint8Array): [Uint8Array, number] => {
      const v6 = ip[0] >> 4 === 6;
      const et = v6 ? [0x86, 0xdd] : [0x08, 0x00];
      switch (int(5)) {
        case 0: {
          const vlan = r() < 0.3 ? [0x81, 0x00, 0, 5] : [];
          const h = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, ...vlan, ...et];
          return [Uint8Array.from([...h, ...ip]), LinkType.EN10MB];
        }
        case 1:
          return [Uint8Array.from([0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, ...et, ...ip]), 113];
        case 2: {
          const h = [...et, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
          return [Uint8Array.from([...h, ...ip]), LinkType.LINUX_SLL2];
        }
        case 3:
          return [ip, LinkType.RAW];
        default:
          return [ip, pick([LinkType.IPV4, LinkType.IPV6, LinkType.NULL, 999])];
      }
    };
    const mutate = (f: Uint8Array): Uint8Array => {
      let out = f;
      const kind = int(6);
      if (kind === 0) out = out.slice(0, int(out.length + 1)); // truncated
      else if (kind === 1) { // flipped bytes
        out = out.slice();
        for (let k = int(4) + 1; k > 0 && out.length > 0; k--) out[int(out.length)] = int(256);
      } else if (kind === 2 && out.length > 40) { // bad lengths in the IP/TCP headers
        out = out.slice();
        const at = pick([2, 3, 4, 5, 16, 17, 18, 19, 30, 32, 46, 47]);
        if (at < out.length) out[at] = int(256);
      } else if (kind === 3) { // trailing garbage
        out = Uint8Array.from([...out, ...Array.from({ length: int(64) }, () => int(256))]);
      }
      return out;
    };

    for (let i = 0; i < 4000; i++) {
      now += r() * 50;
      const x = r();
      if (x < 0.7) {
        let [frame, link] = withLink(validIp());
        if (r() < 0.5) frame = mutate(frame);
        rep.onFrame(frame, link, now * 1000, now);
      } else if (x < 0.8) {
        const junk = new Uint8Array(int(120));
        for (let k = 0; k < junk.length; k++) junk[k] = int(256);
        rep.onFrame(junk, pick([1, 12, 113, 276, 228, 229, 0]), now * 1000, now);
      } else if (x < 0.95) {
        // a reply header as intercept would send it: valid, mutated or garbage
        const ip = validIp();
        rep.onReplyBytes(r() < 0.5 ? ip : mutate(ip), now);
      } else {
        engine.tick(now);
      }
      rep.flush();
    }
    for (let k = 0; k < 200; k++) {
      now += 1000;
      engine.tick(now);
      rep.flush();
    }
    engine.closeAll("shutdown", now);
    rep.flush();
    assert.deepEqual([...v4.bad, ...v6.bad].slice(0, 5), [], `seed ${seed}`);
    assert.ok(v4.sent + v6.sent > 50, `seed ${seed}: ${v4.sent + v6.sent} packets`);
    assert.ok(rep.counters.parseErrors + rep.counters.truncated > 100, `seed ${seed}`);
    assert.equal(engine.stats.sessions.active, 0);
  }
});
