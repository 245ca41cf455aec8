/**
 * A copy of a segment the engine sends: `EngineOutput.send` gets one object the engine refills
 * for every packet (lib/engine/engine.ts), so a test that keeps what was sent keeps copies.
 * Endpoints, options and payload are copied (an IPv4 client's endpoint is refilled too).
 */
import type { OutSegment } from "../../lib/engine/segment.ts";

/** `seg` as it is now, in objects of its own. */
export function keepSegment(seg: OutSegment): OutSegment {
  const o = seg.options;
  const copy: OutSegment = {
    src: { ...seg.src, addr: seg.src.addr.slice() },
    dst: { ...seg.dst, addr: seg.dst.addr.slice() },
    seq: seg.seq,
    ack: seg.ack,
    flags: seg.flags,
    window: seg.window,
    options: { ...o, ...(o.timestamp ? { timestamp: { ...o.timestamp } } : {}) },
    payload: seg.payload.slice(),
  };
  if (seg.ipId !== undefined) copy.ipId = seg.ipId;
  return copy;
}
