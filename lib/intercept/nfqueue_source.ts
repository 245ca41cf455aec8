/**
 * NFQUEUE mode (intercept on the target): placeholder until lib/io/nfqueue.ts lands.
 */
import type { ReplySource } from "./source.ts";

/** Opens the NFQUEUE reply source. */
export function openNfqueueSource(
  _queueNum: number,
  _maxLen: number,
  _maxPrefix: number,
): ReplySource {
  throw new Error("NFQUEUE mode is not available in this build yet (lib/io/nfqueue.ts missing)");
}
