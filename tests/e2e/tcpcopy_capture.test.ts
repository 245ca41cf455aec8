/**
 * The capture tcpcopy uses, end to end in network namespaces: the libpcap fallback honours
 * `direction: "in"` (pcap_setdirection) and reports it, so it leaves out the packets this host
 * sends, as the ring does. Host A connects to a closed port on B a few times: A sends SYNs,
 * B answers with RSTs; a capture on A must see only the RSTs with "in", both with "inout".
 */
import assert from "node:assert/strict";
import { denoEval, isRoot, vethPair, withNetns } from "../helpers/netns.ts";

const PCAP = new URL("../../lib/io/pcap.ts", import.meta.url).href;
const CAPTURE = new URL("../../lib/io/capture.ts", import.meta.url).href;

/** Runs in namespace A: captures while connecting to B, prints one JSON line. */
function probe(device: string, peer: string, port: number): string {
  return `
    import { PcapCapture } from ${JSON.stringify(PCAP)};
    import { openCapture } from ${JSON.stringify(CAPTURE)};
    const filter = "tcp port ${port}";
    const caps = {
      pcapIn: PcapCapture.openLive({ device: ${JSON.stringify(device)}, filter, direction: "in" }),
      pcapBoth: PcapCapture.openLive({ device: ${JSON.stringify(device)}, filter }),
      ring: openCapture({ device: ${JSON.stringify(device)}, filter }),
    };
    for (let i = 0; i < 3; i++) {
      await Deno.connect({ hostname: ${JSON.stringify(peer)}, port: ${port} })
        .then((c) => c.close(), () => {});
    }
    const out = {};
    for (const [name, cap] of Object.entries(caps)) {
      const flags = [];
      const end = performance.now() + 3000;
      while (flags.filter((f) => f & 4).length < 3 && performance.now() < end) {
        if (!await cap.wait(200)) break;
        cap.drain((frame) => flags.push(frame[14 + 20 + 13])); // Ethernet, IPv4 (no options)
      }
      out[name] = { direction: cap.direction, flags };
      cap.close();
    }
    console.log(JSON.stringify(out));
  `;
}

Deno.test({
  name: "capture: the pcap fallback leaves out sent packets with direction in, and says so",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const a = await env.netns("ca"), b = await env.netns("cb");
      const { ifA } = await vethPair(a, b, "10.233.0.1", "10.233.0.2");
      const r = await a.exec(denoEval(probe(ifA, "10.233.0.2", 7441)), { timeoutMs: 30_000 });
      const res = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<
        string,
        { direction: string; flags: number[] }
      >;
      const SYN = 2, RST = 4;
      const syns = (f: number[]) => f.filter((x) => x & SYN).length;
      const rsts = (f: number[]) => f.filter((x) => x & RST).length;

      assert.equal(res.pcapIn.direction, "in");
      assert.equal(rsts(res.pcapIn.flags), 3, `pcap in: ${res.pcapIn.flags}`);
      assert.equal(syns(res.pcapIn.flags), 0, `pcap in kept sent SYNs: ${res.pcapIn.flags}`);

      assert.equal(res.pcapBoth.direction, "inout");
      assert.equal(rsts(res.pcapBoth.flags), 3, `pcap inout: ${res.pcapBoth.flags}`);
      assert.equal(syns(res.pcapBoth.flags), 3, `pcap inout: ${res.pcapBoth.flags}`);

      // tcpcopy's default (openCapture, no engine named): the ring, received packets only
      assert.equal(res.ring.direction, "in");
      assert.equal(rsts(res.ring.flags), 3, `ring: ${res.ring.flags}`);
      assert.equal(syns(res.ring.flags), 0, `ring kept sent SYNs: ${res.ring.flags}`);
    }),
});
