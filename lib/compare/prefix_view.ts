/**
 * Views of the start of long-lived buffers, made once per buffer and length: tcpcopy's pooled
 * request-head and first-bytes buffers go from turn to turn, and a turn keeps a view of the
 * bytes it used until its verdict (about 100 ms: a few thousand turns at 20k requests/s). A new
 * view per turn was ~90 heap bytes that lived long enough to be copied by the young-generation
 * collector; answers and requests of one length (a steady workload) reuse one view instead.
 *
 * A view is shared by every caller asking for the same buffer and length: only for buffers
 * whose users take turns (one owner at a time), as pooled buffers do.
 *
 * @module
 */

/** The last view made of each buffer (weak: a buffer dropped by its pool goes with it). */
const views = new WeakMap<Uint8Array, Uint8Array>();

/** `buf.subarray(0, n)`, the same object as the last call's for this buffer when `n` is the same. */
export function prefixView(buf: Uint8Array, n: number): Uint8Array {
  if (n === buf.length) return buf;
  const v = views.get(buf);
  if (v !== undefined && v.length === n) return v;
  const view = buf.subarray(0, n);
  views.set(buf, view);
  return view;
}
