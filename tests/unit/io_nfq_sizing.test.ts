/** The NFQUEUE length and receive buffer decision (lib/io/nfq_sizing.ts). */
import assert from "node:assert/strict";
import {
  NFQ_MAXLEN_MAX,
  NFQ_MAXLEN_MIN,
  NFQ_RCVBUF_CHARGE,
  NFQ_RCVBUF_CHARGE_MAX,
  nfqMessageBytes,
  nfqSizing,
} from "../../lib/io/nfq_sizing.ts";
import { copyRangeFor } from "../../lib/intercept/nfqueue_source.ts";

/** What the kernel's charge limit (twice SO_RCVBUF) holds of messages copying `copied` bytes. */
const held = (rcvbuf: number, copied: number) => Math.floor((2 * rcvbuf) / nfqMessageBytes(copied));

Deno.test("nfq sizing: a message's charge grows with what is copied, in kmalloc's steps", () => {
  assert.equal(nfqMessageBytes(0), 512 + 256);
  assert.equal(nfqMessageBytes(248), 1024 + 256); // intercept's default copy range
  assert.equal(nfqMessageBytes(1500), 2048 + 256);
  assert.equal(nfqMessageBytes(65535), 131072 + 256);
  for (let c = 0; c < 70000; c += 997) assert.ok(nfqMessageBytes(c) >= c + 128 + 320 + 256);
});

Deno.test("nfq sizing: the default queue holds issue 14's burst of 20,000 replies, and the socket holds the queue", () => {
  for (
    const range of [copyRangeFor(128, false), copyRangeFor(0, false), copyRangeFor(4096, false)]
  ) {
    const s = nfqSizing(range);
    // held20k: 20,000 held connections answer together (8,192, the former default, dropped 29,014)
    assert.ok(s.maxLen >= 20_000, `copy range ${range}: queue of ${s.maxLen}`);
    // a queue longer than the socket holds would only turn queue drops into socket drops
    assert.ok(held(s.rcvbuf, Math.min(range, 1500)) >= s.maxLen, `copy range ${range}`);
    assert.equal(2 * s.rcvbuf, NFQ_RCVBUF_CHARGE, "no more kernel memory than before");
  }
  assert.ok(
    nfqSizing(copyRangeFor(128, false)).maxLen >= 50_000,
    "the default range: 2.5x the burst",
  );
  // --compare copies whole packets: MTU-sized messages are what the default is sized for
  const whole = nfqSizing(copyRangeFor(128, true));
  assert.ok(whole.maxLen >= 20_000 && held(whole.rcvbuf, 1500) >= whole.maxLen);
});

Deno.test("nfq sizing: --queue-maxlen is kept; the socket grows with it up to a bound", () => {
  assert.deepEqual(nfqSizing(248, 8192), { maxLen: 8192, rcvbuf: NFQ_RCVBUF_CHARGE / 2 });
  const big = nfqSizing(248, 150_000);
  assert.equal(big.maxLen, 150_000);
  assert.ok(held(big.rcvbuf, 248) >= 150_000 && 2 * big.rcvbuf <= NFQ_RCVBUF_CHARGE_MAX);
  assert.equal(nfqSizing(248, 1 << 24).rcvbuf, NFQ_RCVBUF_CHARGE_MAX / 2, "bounded");
  assert.equal(nfqSizing(65535, 1).maxLen, 1);
  // the default stays within its bounds whatever the copy range
  for (const r of [0, 60, 1500, 9000, 65535]) {
    const n = nfqSizing(r).maxLen;
    assert.ok(n >= NFQ_MAXLEN_MIN && n <= NFQ_MAXLEN_MAX, `${r}: ${n}`);
  }
});
