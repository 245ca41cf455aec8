import assert from "node:assert/strict";
import { loadLibc } from "../../lib/io/libc.ts";
import { PollEvents, Reactor, type Watch } from "../../lib/io/reactor.ts";

const EFD_NONBLOCK = 0o4000;

/** A nonblocking eventfd: readable while its counter is non-zero. */
function eventfd(): { fd: number; signal(): void; drain(): void; close(): void } {
  const libc = loadLibc();
  const fd = libc.eventfd(0, EFD_NONBLOCK);
  assert.ok(fd >= 0);
  const one = new BigUint64Array([1n]), buf = new Uint8Array(8);
  return {
    fd,
    signal: () => void libc.write(fd, one, 8n),
    drain: () => void libc.read(fd, buf, 8n),
    close: () => void libc.close(fd),
  };
}

Deno.test("reactor: a descriptor made ready from Deno's side wakes an idle loop", async () => {
  // A 60 s idle wait: if the event did not wake the loop, the handler would run only when the
  // wait ends, far past the 20 s "eventually" bound below (generous for a loaded runner).
  const r = new Reactor({ idleWaitMs: 60_000 });
  const e = eventfd();
  let w: Watch | undefined;
  try {
    let calls = 0;
    const got = new Promise<number>((resolve) => {
      w = r.watch(e.fd, PollEvents.IN, (revents) => {
        e.drain();
        calls++;
        resolve(revents);
      });
    });
    assert.equal(r.watching, 1);
    setTimeout(() => e.signal(), 50);
    const t0 = performance.now();
    const revents = await got;
    assert.ok(revents & PollEvents.IN);
    assert.equal(calls, 1);
    assert.ok(performance.now() - t0 < 20_000, "woken by the event, not by the idle timeout");
  } finally {
    w?.remove();
    await r.settled();
    e.close();
  }
});

Deno.test("reactor: removing the last watch ends the loop; settled() resolves", async () => {
  const r = new Reactor();
  const e = eventfd();
  const w = r.watch(e.fd, PollEvents.IN, () => {});
  await new Promise((res) => setTimeout(res, 30));
  assert.equal(r.running, true);
  w.remove();
  await r.settled();
  assert.equal(r.running, false);
  e.close();
});

Deno.test("reactor: timers fire in order, re-arm, cancel; sleep resolves", async () => {
  const r = new Reactor();
  const order: string[] = [];
  const a = r.timer(() => order.push("a"));
  const b = r.timer(() => order.push("b"));
  const c = r.timer(() => order.push("c"));
  let again = 0;
  const d = r.timer(() => {
    order.push("d");
    if (++again < 3) d.armIn(5);
  });
  b.armIn(40);
  a.armIn(10);
  c.armIn(20);
  c.cancel();
  d.armIn(60);
  const t0 = performance.now();
  await r.sleep(100);
  // A lower bound only (load can delay a timer, never bring it forward): sleep must not resolve
  // before its 100 ms.
  assert.ok(performance.now() - t0 >= 99);
  assert.deepEqual(order, ["a", "b", "d", "d", "d"]);
  assert.equal(c.armed, false);
  await r.settled();
});

Deno.test("reactor: afterEvents runs once per round, after the handlers", async () => {
  const r = new Reactor();
  const e1 = eventfd(), e2 = eventfd();
  // both ready before the loop starts, so its first poll() sees them in one round (signalled
  // while the loop waits, a poll() on the helper thread could return between the two writes)
  e1.signal();
  e2.signal();
  const seen: string[] = [];
  let rounds = 0;
  const off = r.afterEvents(() => {
    rounds++;
    if (seen.length && seen.at(-1) !== "after") seen.push("after");
  });
  const w1 = r.watch(e1.fd, PollEvents.IN, () => {
    e1.drain();
    seen.push("1");
  });
  const w2 = r.watch(e2.fd, PollEvents.IN, () => {
    e2.drain();
    seen.push("2");
  });
  await r.sleep(30);
  assert.deepEqual(seen, ["1", "2", "after"]);
  assert.ok(rounds >= 1);
  off();
  const before = rounds;
  e1.signal();
  await r.sleep(20);
  assert.equal(rounds, before, "a removed hook no longer runs");
  assert.deepEqual(seen, ["1", "2", "after", "1"]);
  w1.remove();
  w2.remove();
  await r.settled();
  e1.close();
  e2.close();
});

Deno.test("reactor: a busy loop still lets Deno timers run (yields)", async () => {
  const r = new Reactor({ yieldEveryMs: 20 });
  const e = eventfd();
  e.signal(); // never drained: always readable, the loop never idles
  let spins = 0;
  const w = r.watch(e.fd, PollEvents.IN, () => spins++);
  try {
    const t0 = performance.now();
    await new Promise((res) => setTimeout(res, 10));
    const late = performance.now() - t0;
    // Without yields the timer would never fire while the loop spins; the bound is generous
    // because the parallel suite (a 1M-SYN engine test among others) can starve this process.
    assert.ok(late < 5000, `a 10 ms Deno timer fired after ${late.toFixed(0)} ms`);
    assert.ok(spins > 10, `handler ran ${spins} times`);
    assert.ok(r.counters.syncPolls > 10);
  } finally {
    w.remove();
    await r.settled();
    e.close();
  }
});

Deno.test("reactor: a throwing handler is reported and the loop goes on", async () => {
  const errors: unknown[] = [];
  const r = new Reactor({ onError: (e) => errors.push(e) });
  const e = eventfd();
  let calls = 0;
  const w = r.watch(e.fd, PollEvents.IN, () => {
    e.drain();
    if (++calls === 1) throw new Error("boom");
  });
  try {
    e.signal();
    await r.sleep(20);
    e.signal();
    await r.sleep(20);
    assert.equal(calls, 2);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /boom/);
  } finally {
    w.remove();
    await r.settled();
    e.close();
  }
});

Deno.test("reactor: setEvents switches between IN and OUT", async () => {
  const r = new Reactor();
  const e = eventfd(); // an eventfd is always writable
  let outs = 0, ins = 0;
  const w = r.watch(e.fd, PollEvents.IN, (rev) => {
    if (rev & PollEvents.OUT) {
      outs++;
      w.setEvents(PollEvents.IN);
      e.signal();
    } else if (rev & PollEvents.IN) {
      ins++;
      e.drain();
    }
  });
  try {
    await r.sleep(10);
    assert.equal(outs, 0);
    w.setEvents(PollEvents.IN | PollEvents.OUT);
    // up to 2 s for the OUT round and the IN round after it (a loaded machine delays rounds)
    for (let i = 0; i < 100 && ins === 0; i++) await r.sleep(20);
    await r.sleep(20); // a second OUT would come now if setEvents(IN) had not taken
    assert.equal(outs, 1);
    assert.equal(ins, 1);
  } finally {
    w.remove();
    await r.settled();
    e.close();
  }
});

Deno.test("reactor: the earliest deadline follows moves and cancels (fake clock)", async () => {
  // An always-readable descriptor makes a round per step; the clock moves only between steps,
  // so what fires in each round is exactly what is due at that step's time.
  let t = 0;
  const r = new Reactor({ now: () => t, yieldEveryMs: 1e9 });
  const e = eventfd();
  e.signal(); // never drained
  const fired: string[] = [];
  const timer = (name: string) => r.timer(() => fired.push(`${name}@${t}`));
  const a = timer("a"), b = timer("b"), c = timer("c"), d = timer("d");
  const steps: (() => void)[] = [
    () => { // 0
      a.armAt(10);
      b.armAt(20);
      c.armAt(30);
    },
    () => { // 5: the earliest moves later: must not fire at 10
      t = 5;
      a.armAt(40);
    },
    () => void (t = 15),
    () => void (t = 20), // b
    () => { // 25: the earliest left (c) is cancelled
      t = 25;
      c.cancel();
    },
    () => { // 26: a new one after a, then moved before it: must fire at 35, not 40 or 50
      t = 26;
      d.armAt(50);
      d.armAt(35);
    },
    () => void (t = 30), // nothing: c was cancelled
    () => void (t = 35), // d
    () => void (t = 39),
    () => void (t = 40), // a
  ];
  let step = 0;
  try {
    await new Promise<void>((resolve) => {
      const w = r.watch(e.fd, PollEvents.IN, () => {
        // the previous step's time was seen by the timers of that round: check it
        if (step === steps.length) {
          w.remove();
          resolve();
          return;
        }
        steps[step++]();
      });
    });
    assert.deepEqual(fired, ["b@20", "d@35", "a@40"]);
    assert.equal(r.counters.timersFired, 3);
  } finally {
    for (const x of [a, b, c, d]) x.cancel(); // a failed run must not leave the loop waiting
    await r.settled();
    e.close();
  }
});

Deno.test("reactor: a `last` watch runs after the `first` ones of its round, though made before them", async () => {
  const r = new Reactor();
  const queue = eventfd(), tunnel = eventfd(), other = eventfd();
  // all ready before the loop starts: one round sees them together (see afterEvents above)
  queue.signal();
  tunnel.signal();
  other.signal();
  const seen: string[] = [];
  const on = (name: string, e: ReturnType<typeof eventfd>) => () => {
    e.drain();
    seen.push(name);
  };
  // made first, like intercept's NFQUEUE source before any tunnel connection
  const wq = r.watch(queue.fd, PollEvents.IN, on("queue", queue), "last");
  const wt = r.watch(tunnel.fd, PollEvents.IN, on("tunnel", tunnel));
  const wo = r.watch(other.fd, PollEvents.IN, on("other", other), "first");
  await r.sleep(30);
  assert.deepEqual(seen, ["tunnel", "other", "queue"]);
  for (const w of [wq, wt, wo]) w.remove();
  await r.settled();
  for (const e of [queue, tunnel, other]) e.close();
});
