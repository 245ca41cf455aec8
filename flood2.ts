import { encodeHello, encodeRoute } from "/work/wt/tunnel/lib/tunnel/messages.ts";
const c = await Deno.connect({ hostname: "127.0.0.1", port:  });
await c.write(encodeHello());
const target = { addr: new Uint8Array([10, 0, 0, 2]), port: 80 };
const batch = new Uint8Array(14 * 10_000);
for (let sent = 0; sent < 1000000; sent += 10_000) {
  for (let i = 0; i < 10_000; i++) {
    const n = sent + i;
    batch.set(encodeRoute("add", { addr: new Uint8Array([10, 9, (n >> 16) & 255, (n >> 8) & 255]), port: 1 + (n & 255) }, target), i * 14);
  }
  await c.write(batch);
}
console.log("done");
