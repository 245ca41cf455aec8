/**
 * The scheduling policy of the hot-path thread (sched(7)).
 *
 * tcpcopy and intercept wake once or twice per replayed request on a sparse load (the HTTP/2
 * one-stream workload: one wake-up per reply in intercept, one per captured request and one per
 * tunnel read in tcpcopy), and each wake-up of a SCHED_OTHER thread may preempt whatever runs on
 * that CPU: intercept's tunnel write wakes tcpcopy, which took the CPU from intercept in the
 * middle of its round; intercept then had to be switched back in only to go to sleep in poll()
 * (two switches where one does). Under SCHED_BATCH a woken thread does not preempt the running
 * one (its turn comes when that one sleeps or its slice ends; it still runs at once on an idle
 * CPU, and has the same CPU share as before): on bench/e2e_replication.ts's `h2` row
 * intercept's involuntary context switches per request halved (0.71-0.75 to 0.37-0.41) and both
 * programs' CPU per request fell by 5-14 % in 8 of 9 A/B pairs (lib/io/README.md, "Scheduling":
 * small next to this VM's noise). On a production host it
 * also means the replay never preempts the production service when a packet wakes it.
 *
 * Only the calling thread changes (Linux policies are per thread): call it from the JS thread,
 * which runs the reactor, once the start sequence is over (tcpcopy: "replicating"; intercept:
 * "listening for tcpcopy"), so that the start (rules, queue, captures) keeps the normal policy.
 * No privilege is needed to move between SCHED_OTHER and SCHED_BATCH.
 *
 * @module
 */

import { loadLibc } from "./libc.ts";

/** The scheduling policies of sched(7) that matter here. */
export const SchedPolicy = { OTHER: 0, BATCH: 3, IDLE: 5 } as const;
/** One of {@link SchedPolicy}. */
export type SchedPolicy = typeof SchedPolicy[keyof typeof SchedPolicy];

/** struct sched_param { int sched_priority; }: 0 for the normal policies. */
const PARAM = new Uint8Array(4);

/**
 * Puts the calling thread under `policy` (SCHED_BATCH by default); false when the kernel
 * refused (e.g. a seccomp filter), in which case nothing changed.
 */
export function setThreadPolicy(policy: SchedPolicy = SchedPolicy.BATCH): boolean {
  return loadLibc().sched_setscheduler(0, policy, PARAM) === 0;
}

/** The calling thread's policy (-1 when it cannot be read). */
export function threadPolicy(): number {
  return loadLibc().sched_getscheduler(0);
}
