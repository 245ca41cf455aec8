/**
 * A map keyed by a TCP 4-tuple (near address, near port, far address, far port) that does
 * not build a key string per lookup.
 *
 * The hot path looks up one connection per packet. Joining four fields into a text key
 * allocates a string and hashes it every time; here the near address string (interned by
 * the packet parser's address cache, so its hash is computed once) selects a small map
 * keyed by the near port (a small integer), whose entry is a short chain of (far address,
 * far port) pairs. A chain has one element unless one client port talks to several servers.
 */

interface Entry<V> {
  farAddr: string;
  farPort: number;
  value: V;
  next: Entry<V> | undefined;
}

/** See the module comment. */
export class TupleMap<V> {
  private readonly byAddr = new Map<string, Map<number, Entry<V>>>();
  /** Number of entries. */
  size = 0;

  /** The value stored for the tuple, or undefined. */
  get(nearAddr: string, nearPort: number, farAddr: string, farPort: number): V | undefined {
    const ports = this.byAddr.get(nearAddr);
    if (ports === undefined) return undefined;
    for (let e = ports.get(nearPort); e !== undefined; e = e.next) {
      if (e.farPort === farPort && e.farAddr === farAddr) return e.value;
    }
    return undefined;
  }

  /** Store `value` for the tuple (replacing any previous value). */
  set(nearAddr: string, nearPort: number, farAddr: string, farPort: number, value: V): void {
    let ports = this.byAddr.get(nearAddr);
    if (ports === undefined) {
      ports = new Map();
      this.byAddr.set(nearAddr, ports);
    }
    const head = ports.get(nearPort);
    for (let e = head; e !== undefined; e = e.next) {
      if (e.farPort === farPort && e.farAddr === farAddr) {
        e.value = value;
        return;
      }
    }
    ports.set(nearPort, { farAddr, farPort, value, next: head });
    this.size++;
  }

  /** Remove the tuple; returns whether it was present. */
  delete(nearAddr: string, nearPort: number, farAddr: string, farPort: number): boolean {
    const ports = this.byAddr.get(nearAddr);
    if (ports === undefined) return false;
    let prev: Entry<V> | undefined;
    for (let e = ports.get(nearPort); e !== undefined; prev = e, e = e.next) {
      if (e.farPort !== farPort || e.farAddr !== farAddr) continue;
      if (prev !== undefined) prev.next = e.next;
      else if (e.next !== undefined) ports.set(nearPort, e.next);
      else {
        ports.delete(nearPort);
        if (ports.size === 0) this.byAddr.delete(nearAddr);
      }
      this.size--;
      return true;
    }
    return false;
  }

  /** Every stored value (in no particular order). */
  *values(): IterableIterator<V> {
    for (const ports of this.byAddr.values()) {
      for (const head of ports.values()) {
        for (let e: Entry<V> | undefined = head; e !== undefined; e = e.next) yield e.value;
      }
    }
  }
}
