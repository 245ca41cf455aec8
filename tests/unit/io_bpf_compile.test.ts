/**
 * The capture filter compiled by libpcap into instructions kept in JS (lib/io/bpf_compile.ts):
 * libpcap is no longer mapped once the compile returns, the instructions attach to a socket
 * (no privilege needed for SO_ATTACH_FILTER on a UDP socket), a bad expression is an IoError
 * "filter". Needs libpcap installed (as the capture tests do).
 */

import assert from "node:assert/strict";
import { attachProgram, BPF_INSN_SIZE, compileFilter } from "../../lib/io/bpf_compile.ts";
import { IoError } from "../../lib/io/errors.ts";
import { loadLibc } from "../../lib/io/libc.ts";

const EN10MB = 1;

const BPF_COMPILE = new URL("../../lib/io/bpf_compile.ts", import.meta.url).href;

/**
 * libpcap's mappings in a fresh process before and after `compileFilter(EN10MB, 65535,
 * filter)`, and whether it threw an IoError "filter". A process of its own: the test runner's
 * other files in this process load libpcap and keep it (`deno test --parallel` shares one process
 * between files), so /proc/self/maps here says nothing about the compile.
 */
async function mappingsAround(filter: string): Promise<[number, number, boolean]> {
  const script = `
    import { compileFilter } from ${JSON.stringify(BPF_COMPILE)};
    const maps = () => Deno.readTextFileSync("/proc/self/maps").split("\\n")
      .filter((l) => /libpcap/.test(l)).length;
    const before = maps();
    let bad = false;
    try { compileFilter(1, 65535, ${JSON.stringify(filter)}); }
    catch (e) { bad = e?.kind === "filter"; }
    console.log(JSON.stringify([before, maps(), bad]));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", "--no-lock", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.ok(out.success, `child failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text);
}

Deno.test("compileFilter returns the instructions and leaves libpcap unmapped", async () => {
  const prog = compileFilter(EN10MB, 65535, "tcp and dst port 80");
  assert.equal(prog.length % BPF_INSN_SIZE, 0);
  assert.ok(prog.length / BPF_INSN_SIZE >= 4, `${prog.length / BPF_INSN_SIZE} instructions`);
  // the last instruction returns: BPF_RET (0x06) with a constant
  const last = new DataView(prog.buffer, prog.byteOffset + prog.length - BPF_INSN_SIZE);
  assert.equal(last.getUint16(0, true) & 0x07, 0x06);
  const [before, after, bad] = await mappingsAround("tcp and dst port 80");
  assert.equal(before, 0, "libpcap mapped before the compile: it proves nothing");
  assert.equal(after, 0, "libpcap still mapped after the compile");
  assert.equal(bad, false);
});

Deno.test("the same expression compiles to the same program, and it attaches to a socket", () => {
  const a = compileFilter(EN10MB, 65535, "tcp");
  const b = compileFilter(EN10MB, 65535, "tcp");
  assert.deepEqual(a, b);
  const C = loadLibc();
  const AF_INET = 2, SOCK_DGRAM = 2;
  const fd = C.socket(AF_INET, SOCK_DGRAM, 0);
  assert.ok(fd >= 0);
  try {
    assert.equal(attachProgram(fd, a), 0);
  } finally {
    C.close(fd);
  }
});

Deno.test("a bad expression is an IoError of kind filter naming it", async () => {
  assert.throws(
    () => compileFilter(EN10MB, 65535, "tcp and nonsense-word"),
    (e: unknown) => e instanceof IoError && e.kind === "filter" && /nonsense-word/.test(e.message),
  );
  const [before, after, bad] = await mappingsAround("tcp and nonsense-word");
  assert.deepEqual(
    [before, after, bad],
    [0, 0, true],
    "libpcap unloaded after a refused filter too",
  );
});
