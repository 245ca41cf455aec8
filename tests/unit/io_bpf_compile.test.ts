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

/** Mappings of libpcap in this process now. */
function pcapMappings(): number {
  return Deno.readTextFileSync("/proc/self/maps").split("\n").filter((l) => /libpcap/.test(l))
    .length;
}

Deno.test("compileFilter returns the instructions and leaves libpcap unmapped", () => {
  assert.equal(pcapMappings(), 0, "libpcap mapped before the test: it proves nothing here");
  const prog = compileFilter(EN10MB, 65535, "tcp and dst port 80");
  assert.equal(prog.length % BPF_INSN_SIZE, 0);
  assert.ok(prog.length / BPF_INSN_SIZE >= 4, `${prog.length / BPF_INSN_SIZE} instructions`);
  // the last instruction returns: BPF_RET (0x06) with a constant
  const last = new DataView(prog.buffer, prog.byteOffset + prog.length - BPF_INSN_SIZE);
  assert.equal(last.getUint16(0, true) & 0x07, 0x06);
  assert.equal(pcapMappings(), 0, "libpcap still mapped after the compile");
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

Deno.test("a bad expression is an IoError of kind filter naming it", () => {
  assert.throws(
    () => compileFilter(EN10MB, 65535, "tcp and nonsense-word"),
    (e: unknown) => e instanceof IoError && e.kind === "filter" && /nonsense-word/.test(e.message),
  );
  assert.equal(pcapMappings(), 0);
});
