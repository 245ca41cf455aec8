/**
 * A packet sender for tests without sockets: `slot()` hands out buffers the way the raw and
 * link-layer senders' arenas do, `flush()` moves them to `sent`.
 *
 * @module
 */

/** Records what would have been sent (the shape of lib/io's PacketSender the glue uses). */
export class FakeSender {
  slots: Uint8Array[] = [];
  sent: Uint8Array[] = [];
  get pending() {
    return this.slots.length;
  }
  slot(len: number): Uint8Array {
    const s = new Uint8Array(len);
    this.slots.push(s);
    return s;
  }
  flush(): number {
    const n = this.slots.length;
    this.sent.push(...this.slots);
    this.slots = [];
    return n;
  }
}
