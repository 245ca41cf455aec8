/**
 * Held-connection client of bench/e2e_replication.ts: opens COUNT keep-alive connections to
 * HOST:PORT, sends one GET on each and reads its answer, prints `ready`, stays idle IDLE_S
 * seconds with every connection open, sends one more GET on each, reads the answers, closes them
 * and prints `{"first":N,"second":M}` (answers read in each phase). Connections are opened (and
 * their first request sent) at RATE per second at most. The benchmark runs several of these (this
 * machine allows 20,000 open files per process).
 *
 *   deno run -A bench/held_client.ts HOST PORT COUNT IDLE_S RATE
 *
 * @module
 */

const [host, portText, countText, idleText, rateText] = Deno.args;
const port = Number(portText), count = Number(countText), idleS = Number(idleText);
const rate = Number(rateText);
if (
  host === undefined || !Number.isInteger(port) || port < 1 || port > 65535 ||
  !Number.isInteger(count) || count < 1 || !(idleS >= 0)
) {
  console.error(
    "held_client: usage: held_client.ts HOST PORT COUNT IDLE_S (COUNT ≥ 1, IDLE_S ≥ 0)",
  );
  Deno.exit(2);
}

const BATCH = 50;
const encoder = new TextEncoder();
const buf = new Uint8Array(4096);

/** Sends one GET on `c` and reads until a whole `Content-Length` answer arrived; true if so. */
async function request(c: Deno.TcpConn, path: string): Promise<boolean> {
  await c.write(encoder.encode(`GET ${path} HTTP/1.1\r\nHost: held\r\n\r\n`));
  let got = "";
  for (let reads = 0; reads < 16; reads++) {
    const n = await c.read(buf);
    if (n === null) return false;
    got += new TextDecoder().decode(buf.subarray(0, n));
    const end = got.indexOf("\r\n\r\n");
    if (end < 0) continue;
    const len = Number(/content-length:\s*(\d+)/i.exec(got)?.[1] ?? 0);
    if (got.length >= end + 4 + len) return true;
  }
  return false;
}

/** Runs `fn` on every item, BATCH at a time; returns how many returned true. */
async function inBatches<T>(items: T[], fn: (t: T) => Promise<boolean>): Promise<number> {
  let ok = 0;
  for (let i = 0; i < items.length; i += BATCH) {
    const results = await Promise.all(
      items.slice(i, i + BATCH).map((t) => fn(t).catch(() => false)),
    );
    ok += results.filter((r) => r).length;
  }
  return ok;
}

const conns: Deno.TcpConn[] = [];
let first = 0;
const t0 = Date.now();
for (let i = 0; i < count; i += BATCH) {
  const batch = await Promise.all(
    Array.from(
      { length: Math.min(BATCH, count - i) },
      () => Deno.connect({ hostname: host, port }).catch(() => null),
    ),
  );
  const open = batch.filter((c): c is Deno.TcpConn => c !== null);
  conns.push(...open);
  first += await inBatches(open, (c) => request(c, "/held-first"));
  const due = t0 + (i + BATCH) / rate * 1000 - Date.now();
  if (due > 0) await new Promise((r) => setTimeout(r, due));
}
console.log("ready");
await new Promise((r) => setTimeout(r, idleS * 1000));
const second = await inBatches(conns, (c) => request(c, "/held-second"));
for (const c of conns) {
  try {
    c.close();
  } catch { /* already closed */ }
}
console.log(JSON.stringify({ first, second }));
