/**
 * Polling for a condition in the unit tests that talk over loopback sockets (tunnel tests).
 *
 * @module
 */

/** Waits until `cond()` holds, polling every 5 ms; throws "timed out waiting for `what`" after `ms`. */
export async function until(cond: () => boolean, ms = 3000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
