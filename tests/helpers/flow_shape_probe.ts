/**
 * Run with `--v8-flags=--allow-natives-syntax` (tests/unit/engine_flow_shape.test.ts): opens
 * connections through the replicator and engine of tests/helpers/syn_flood.ts, one of them on a
 * client tuple whose earlier connection is still the table's record (source-port reuse, its
 * flow links the old one as `prev`), and prints whether that flow, the old one and a flow on a
 * fresh tuple share one hidden class (V8's `%HaveSameMap`): code optimized for flows stays
 * monomorphic only if they do.
 *
 * @module
 */
import { ACK, SYN } from "../../lib/wire/tcp.ts";
import { clientFrame, floodRig } from "./syn_flood.ts";

const sameMap = new Function("a", "b", "return %HaveSameMap(a, b)") as (
  a: object,
  b: object,
) => boolean;
const rig = floodRig([]);
const C = "192.0.2.7", S = new Uint8Array([10, 0, 0, 1]);
const addr = new Uint8Array([192, 0, 2, 7]);
const flows = (rig.engine as unknown as {
  flows: { get(a: Uint8Array, p: number, b: Uint8Array, q: number): object | undefined };
}).flows;
const open = (port: number, isn: number) => {
  rig.feed(clientFrame(C, port, SYN, isn));
  rig.feed(clientFrame(C, port, ACK, isn + 1, "GET / HTTP/1.0\r\n\r\n"));
  return flows.get(addr, port, S, 80);
};
const fresh = open(40001, 1000);
const old = open(40002, 1000);
rig.advance(5);
const reused = open(40002, 900_000); // a new SYN on 40002 while its first flow is the record
if (!fresh || !old || !reused || reused === old) throw new Error("flow_shape_probe: no reuse");
if ((reused as { prev?: object }).prev !== old) throw new Error("flow_shape_probe: no prev");
console.log(JSON.stringify({ reused: sameMap(fresh, reused), old: sameMap(fresh, old) }));
