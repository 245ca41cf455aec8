/**
 * Run with `--v8-flags=--allow-natives-syntax` (tests/unit/wire_seq_field_shape.test.ts): the
 * objects tcpcopy reuses packet after packet (the parser's `ParsedTcp`, the captured and reply
 * segments, the packet description it builds from) are filled once
 * with sequence numbers and timestamps below 2^31 and once with numbers above; prints, per kind,
 * whether the two have one hidden class (V8's `%HaveSameMap`). They do not when the fields
 * started as small integers: the first number above 2^31 gave the object a new class, and code
 * optimized for the old one was thrown away ("wrong map").
 *
 * @module
 */
import { ParsedTcp, parseIpTcp } from "../../lib/wire/packet.ts";
import { SEQ_FIELD_INIT } from "../../lib/wire/seq.ts";
import { ACK } from "../../lib/wire/tcp.ts";
import { addressPair, buildTcpPacket, tcpPacketLength } from "../../lib/wire/build.ts";
import {
  emptyCapturedSegment,
  emptyPacketRepr,
  emptyReplySegment,
  fillPacketRepr,
  readCapturedSegment,
  readReplySegment,
} from "../../lib/tcpcopy/convert.ts";
import type { OutSegment } from "../../lib/engine/segment.ts";

const sameMap = new Function("a", "b", "return %HaveSameMap(a, b)") as (
  a: object,
  b: object,
) => boolean;

/** An IPv4 ACK with payload, sequence `seq`, ACK `seq + 1`, timestamps `seq`, `seq + 2`. */
function packet(seq: number): Uint8Array {
  const repr = {
    ...addressPair("192.0.2.1", "10.0.0.1"),
    srcPort: 40000,
    dstPort: 80,
    seq,
    ack: (seq + 1) >>> 0,
    flags: ACK,
    window: 512,
    options: {
      sackPermitted: false,
      sackBlocks: [],
      unknown: [],
      timestamp: { tsval: seq, tsecr: (seq + 2) >>> 0 },
    },
    payload: new Uint8Array(3),
  };
  const b = new Uint8Array(tcpPacketLength(repr));
  buildTcpPacket(repr, b);
  return b;
}

/** Each reused object filled from a packet with sequence number `seq`. */
function filled(seq: number) {
  const p = new ParsedTcp();
  if (parseIpTcp(packet(seq), 0, p) !== null) throw new Error("seq_field_shape_probe: no parse");
  const cap = emptyCapturedSegment();
  const ts = () => ({ tsval: SEQ_FIELD_INIT, tsecr: SEQ_FIELD_INIT });
  if (!readCapturedSegment(p, 1, cap, cap.options, ts())) throw new Error("no captured segment");
  const reply = emptyReplySegment();
  if (!readReplySegment(p, reply, ts())) throw new Error("no reply segment");
  const repr = fillPacketRepr(cap as OutSegment, emptyPacketRepr());
  return { p, cap, reply, repr };
}

const small = filled(1000), large = filled(0x90000000);
console.log(JSON.stringify(Object.fromEntries(
  Object.keys(small).map((k) => [
    k,
    sameMap(small[k as keyof typeof small], large[k as keyof typeof large]),
  ]),
)));
