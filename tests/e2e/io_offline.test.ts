/**
 * Savefiles and errors: PcapWriter -> PcapFile round trip, a hand-made pcapng file, a file
 * written by `tcpdump -w` (root, in a namespace), clear errors for missing / corrupt / truncated
 * files, bad devices and filters, a missing library and a missing --allow-ffi.
 */

import assert from "node:assert/strict";
import { pcapng } from "../helpers/pcapng.ts";
import { IoError } from "../../lib/io/errors.ts";
import { LinkType, PcapCapture, PcapFile, PcapWriter } from "../../lib/io/pcap.ts";
import { isRoot, waitFor, withNetns } from "../helpers/netns.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "io_offline" });
}

function throwsIo(fn: () => unknown, kind: string, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof IoError, `not an IoError: ${e}`);
    assert.equal(e.kind, kind, e.message);
    for (const p of parts) {
      if (typeof p === "string") assert.ok(e.message.includes(p), `"${p}" not in: ${e.message}`);
      else assert.match(e.message, p);
    }
    return true;
  });
}

Deno.test("PcapWriter -> PcapFile round trip keeps bytes, timestamps, wire lengths, link type", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir}/w.pcap`;
    const frames = Array.from({ length: 50 }, (_, i) => {
      const f = new Uint8Array(14 + i * 7);
      for (let j = 0; j < f.length; j++) f[j] = (i * 31 + j) & 0xff;
      return { f, ts: 1_700_000_000_000_000 + i * 1_234_567, wire: f.length + (i % 3) * 100 };
    });
    const w = PcapWriter.create(path, { linkType: LinkType.RAW });
    for (const { f, ts, wire } of frames) w.write(f, ts, wire);
    w.close();
    const file = PcapFile.open(path);
    assert.equal(file.linkType, LinkType.RAW);
    const got = [...file];
    assert.equal(got.length, frames.length);
    got.forEach((r, i) => {
      assert.deepEqual(r.data, frames[i].f);
      assert.equal(r.tsMicros, frames[i].ts);
      assert.equal(r.wireLen, frames[i].wire);
    });
    assert.equal(file.next(), null, "stays at the end");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PcapFile reads pcapng", async () => {
  const dir = await tempDir();
  try {
    const packets = [
      { ts: 1_700_000_000_000_001, data: new Uint8Array([1, 2, 3, 4, 5]) },
      { ts: 1_700_000_000_500_000, data: new Uint8Array(60).fill(7) },
    ];
    await Deno.writeFile(`${dir}/a.pcapng`, pcapng(packets));
    const file = PcapFile.open(`${dir}/a.pcapng`);
    assert.equal(file.linkType, LinkType.EN10MB);
    const got = [...file];
    assert.deepEqual(
      got.map((r) => [r.tsMicros, [...r.data]]),
      packets.map((p) => [p.ts, [...p.data]]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PcapFile errors: missing, not a savefile, truncated record", async () => {
  const dir = await tempDir();
  try {
    throwsIo(
      () => PcapFile.open(`${dir}/missing.pcap`),
      "file",
      `${dir}/missing.pcap`,
      /No such file/,
    );
    await Deno.writeTextFile(`${dir}/junk.pcap`, "this is not a capture file at all, just text\n");
    throwsIo(() => PcapFile.open(`${dir}/junk.pcap`), "file", `${dir}/junk.pcap`, /format/i);
    const w = PcapWriter.create(`${dir}/t.pcap`);
    w.write(new Uint8Array(100), 1e15);
    w.write(new Uint8Array(100), 1e15 + 1);
    w.close();
    const whole = await Deno.readFile(`${dir}/t.pcap`);
    await Deno.writeFile(`${dir}/t.pcap`, whole.subarray(0, whole.length - 30));
    const file = PcapFile.open(`${dir}/t.pcap`);
    assert.equal(file.next()?.data.length, 100);
    throwsIo(() => file.next(), "file", `${dir}/t.pcap`, /truncated/);
    throwsIo(() => PcapWriter.create(`${dir}/no/such/dir/x.pcap`), "file", "no/such/dir");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing libpcap names the package and the env var", async () => {
  const code = `import { PcapFile } from "${new URL("../../lib/io/pcap.ts", import.meta.url)}";
    try { PcapFile.open("/x.pcap"); } catch (e) { console.log(e.kind + ": " + e.message); }`;
  const env = { TCPCOPY_LIBPCAP: "/nonexistent/libpcap.so.9" };
  const cmd = new Deno.Command(Deno.execPath(), { args: ["eval", "--quiet", code], env });
  const res = await cmd.output();
  const text = new TextDecoder().decode(res.stdout);
  assert.match(text, /^library: /);
  assert.ok(text.includes("libpcap0.8") && text.includes("TCPCOPY_LIBPCAP"), text);
  assert.ok(text.includes("/nonexistent/libpcap.so.9"), text);
});

Deno.test("no --allow-ffi: the error names the flag", async () => {
  const dir = await tempDir();
  try {
    const script = `${dir}/noffi.ts`;
    await Deno.writeTextFile(
      script,
      `import { RawIpSender } from "${new URL("../../lib/io/raw_send.ts", import.meta.url)}";
      try { RawIpSender.open(); } catch (e) { console.log(e.kind + ": " + e.message); }`,
    );
    const res = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-lock", "--allow-read", "--allow-env", script],
    }).output();
    const text = new TextDecoder().decode(res.stdout);
    assert.match(text, /^ffi-permission: .*--allow-ffi/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "live capture errors: unknown device and bad filter carry libpcap's message and the value",
  ignore: !isRoot(),
  fn: () => {
    throwsIo(() => PcapCapture.openLive({ device: "nosuchdev0" }), "device", '"nosuchdev0"');
    throwsIo(
      () => PcapCapture.openLive({ device: "lo", filter: "tcp port" }),
      "filter",
      '"tcp port"',
      /syntax error/,
    );
  },
});

Deno.test({
  name: "PcapFile reads what tcpdump -w wrote, and stop() ends an idle wait promptly",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const ns = await env.netns("of");
      const dir = await tempDir();
      env.defer(() => Deno.remove(dir, { recursive: true }));
      const path = `${dir}/td.pcap`;
      const td = env.child(ns.spawn(
        ["tcpdump", "-i", "lo", "-U", "-n", "-Z", "root", "-w", path, "tcp", "port", "7501"],
        { stderr: "piped" },
      ));
      const err = td.stderr.pipeThrough(new TextDecoderStream()).getReader();
      for (let seen = ""; !seen.includes("listening on");) {
        const { value, done } = await err.read();
        if (done) throw new Error(`tcpdump did not start: ${seen}`);
        seen += value;
      }
      // a SYN to a closed port: SYN out, RST back
      await ns.exec(["curl", "-s", "-m", "2", "http://127.0.0.1:7501/"], { check: false });
      const twoRecords = () => {
        try {
          return [...PcapFile.open(path)].length >= 2;
        } catch {
          return false;
        }
      };
      assert.ok(await waitFor(twoRecords, 5000, 100), "tcpdump wrote the packets");
      const file = PcapFile.open(path);
      assert.equal(file.linkType, LinkType.EN10MB);
      const flags = [...file].map((r) => r.data[14 + 20 + 13]);
      assert.deepEqual(flags.slice(0, 2), [0x02, 0x14], "SYN, then RST|ACK");

      // an idle capture: stop() resolves a pending wait within a second
      const cap = PcapCapture.openLive({ device: "lo", filter: "tcp port 7502" });
      try {
        const pending = cap.wait();
        await new Promise((r) => setTimeout(r, 150));
        const t0 = performance.now();
        cap.stop();
        assert.equal(await pending, false);
        assert.ok(performance.now() - t0 < 1000, `stop took ${performance.now() - t0} ms`);
        assert.equal(await cap.wait(), false, "stays stopped");
      } finally {
        cap.close();
      }
    }),
});
