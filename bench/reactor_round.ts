/**
 * The reactor's own cost per round (no network, no root): CPU of the JS thread per round of
 * lib/io/reactor.ts with one always-readable descriptor (an eventfd never drained) and one armed
 * timer, as tcpcopy and intercept have, against a bare poll() of the same descriptor through FFI.
 * Nothing sleeps, so the difference is what a wake-up costs besides its syscalls: the loop's
 * bookkeeping, the handler call, the microtask steps (lib/io/README.md, "Where the CPU of a sparse
 * load goes").
 *
 *   deno run -A bench/reactor_round.ts [--rounds 1000000] [--reps 3]
 *
 * CPU comes from /proc/thread-self/stat (10 ms ticks: keep the runs above a second).
 */

import { benchArgs } from "./args.ts";
import { loadLibc, NativeMemory } from "../lib/io/libc.ts";
import { PollEvents, Reactor } from "../lib/io/reactor.ts";
import { printTable } from "./table.ts";

const EFD_NONBLOCK = 0o4000;

/** CPU µs of the calling thread so far. */
function threadCpuUs(): number {
  const f = Deno.readTextFileSync("/proc/thread-self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

/** CPU µs per reactor round over `rounds` rounds (after a warm-up of a tenth as many). */
async function reactorRound(fd: number, rounds: number): Promise<number> {
  const r = new Reactor();
  const warm = Math.ceil(rounds / 10);
  const timer = r.timer(() => {});
  timer.armIn(3_600_000);
  let n = 0, c0 = 0;
  await new Promise<void>((resolve) => {
    const w = r.watch(fd, PollEvents.IN, () => {
      if (++n === warm) c0 = threadCpuUs();
      if (n === warm + rounds) {
        w.remove();
        timer.cancel();
        resolve();
      }
    });
  });
  const us = (threadCpuUs() - c0) / rounds;
  await r.settled();
  return us;
}

/** CPU µs per bare FFI poll() of the same descriptor. */
function barePoll(fd: number, calls: number): number {
  const libc = loadLibc();
  const pfd = new NativeMemory(8);
  pfd.dv.setInt32(0, fd, true);
  pfd.dv.setInt16(4, PollEvents.IN, true);
  for (let i = 0; i < calls / 10; i++) libc.poll(pfd.pointer, 1n, 0);
  const c0 = threadCpuUs();
  for (let i = 0; i < calls; i++) libc.poll(pfd.pointer, 1n, 0);
  const us = (threadCpuUs() - c0) / calls;
  pfd.free();
  return us;
}

async function main(): Promise<void> {
  const { values } = benchArgs(import.meta.url, {
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "1000000" },
      reps: { type: "string", default: "3" },
    },
  });
  const rounds = Number(values.rounds), reps = Number(values.reps);
  if (!Number.isInteger(rounds) || rounds < 1000) {
    console.error(`reactor_round: --rounds ${values.rounds}: expected an integer >= 1000`);
    Deno.exit(2);
  }
  if (!Number.isInteger(reps) || reps < 1 || reps > 20) {
    console.error(`reactor_round: --reps ${values.reps}: expected an integer from 1 to 20`);
    Deno.exit(2);
  }
  const libc = loadLibc();
  const fd = libc.eventfd(1, EFD_NONBLOCK); // readable until read, and never read
  const rows: string[][] = [];
  for (let i = 0; i < reps; i++) {
    const round = await reactorRound(fd, rounds);
    const poll = barePoll(fd, rounds);
    rows.push([String(i + 1), round.toFixed(2), poll.toFixed(2), (round - poll).toFixed(2)]);
  }
  libc.close(fd);
  printTable(["rep", "µs CPU per reactor round", "µs per bare poll()", "reactor's own µs"], rows);
  console.log(`(load average ${Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3)})`);
}

if (import.meta.main) await main();
