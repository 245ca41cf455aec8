/**
 * A model of one online client connection: produces the client->server segments a capture
 * on the online host would see (client sequence numbers, ACKs in the online server's
 * sequence space, timestamps, pure ACKs of responses), for the engine to replay.
 *
 * Requests use the simulated target's line protocol: `REQ <id> <responseLength> <pad>\n`.
 */

import type { CapturedSegment, SegmentOptions, TextEndpoint } from "../../lib/engine/mod.ts";
import { ACK, endpointOf, FIN, PSH, RST, SYN } from "../../lib/engine/mod.ts";

/** One request/response exchange. */
export interface Exchange {
  id: number;
  responseLength: number;
  /** Request split into this many segments (default 1; more if it exceeds the MSS). */
  segments?: number;
  /** Request payload padding (bytes of "x"). */
  pad?: number;
  /** Sent together with the next request, before any response (pipelining). */
  pipelineWithNext?: boolean;
  /** Client think time after the response (ms). */
  thinkMs?: number;
}

/** One online connection. */
export interface OnlineConn {
  client: TextEndpoint;
  server: TextEndpoint;
  clientIsn: number;
  serverIsn: number;
  start: number;
  exchanges: Exchange[];
  /** Capture the handshake (default true). */
  syn?: boolean;
  greeting?: number;
  close?: "fin" | "server-fin" | "rst" | "none";
  /** Client half-closes right after its last request, before the response. */
  halfClose?: boolean;
  rttMs?: number;
  mss?: number;
  wscale?: number;
  timestamps?: boolean;
  window?: number;
  /** Send a keep-alive probe (seq - 1, 1 byte) after each response. */
  probes?: boolean;
}

/** The captured segments and what the client meant to send. */
export interface OnlineTrace {
  segments: CapturedSegment[];
  /** The whole client byte stream. */
  bytes: string;
  requests: string[];
  end: number;
}

const enc = new TextEncoder();

/** Request line for an exchange. */
export function requestText(e: Exchange): string {
  return `REQ ${e.id} ${e.responseLength} ${"x".repeat(e.pad ?? 8)}\n`;
}

/** Build the trace of one online connection. */
export function onlineConnection(c: OnlineConn): OnlineTrace {
  const rtt = c.rttMs ?? 2;
  const mss = c.mss ?? 1460;
  const out: CapturedSegment[] = [];
  let t = c.start;
  let seq = c.clientIsn >>> 0;
  const sBase = (c.serverIsn + 1) >>> 0;
  let got = 0; // bytes (and FIN) received from the online server
  const ts = c.timestamps ?? true;
  const window = c.window ?? 502;
  const client = endpointOf(c.client.addr, c.client.port);
  const server = endpointOf(c.server.addr, c.server.port);
  const opts = (): SegmentOptions =>
    ts ? { timestamp: { tsval: (1000 + Math.floor(t)) >>> 0, tsecr: 7 } } : {};
  const push = (flags: number, payload: Uint8Array, s = seq) =>
    out.push({
      src: client,
      dst: server,
      seq: s >>> 0,
      ack: flags & ACK ? (sBase + got) >>> 0 : 0,
      flags,
      window,
      options: opts(),
      payload,
      timeMs: t,
    });
  if (c.syn ?? true) {
    const o: SegmentOptions = { mss, sackPermitted: true };
    if (c.wscale !== undefined) o.wscale = c.wscale;
    else o.wscale = 7;
    if (ts) o.timestamp = { tsval: 1000 + Math.floor(t), tsecr: 0 };
    out.push({
      src: client,
      dst: server,
      seq,
      ack: 0,
      flags: SYN,
      window: 64240,
      options: o,
      payload: new Uint8Array(0),
      timeMs: t,
    });
    t += rtt;
    seq = (seq + 1) >>> 0;
    push(ACK, new Uint8Array(0));
  } else {
    seq = (seq + 1) >>> 0;
  }
  if (c.greeting) {
    t += rtt / 2;
    got += c.greeting;
    push(ACK, new Uint8Array(0));
  }
  let bytes = "";
  const requests: string[] = [];
  let i = 0;
  const ex = c.exchanges;
  while (i < ex.length) {
    // A batch: pipelined requests go out before any response.
    const batch: Exchange[] = [ex[i]];
    while (ex[i].pipelineWithNext && i + 1 < ex.length) batch.push(ex[++i]);
    i++;
    for (const e of batch) {
      const text = requestText(e);
      requests.push(text);
      bytes += text;
      const data = enc.encode(text);
      const parts = Math.max(e.segments ?? 1, Math.ceil(data.length / mss));
      const size = Math.ceil(data.length / parts);
      for (let off = 0; off < data.length; off += size) {
        const piece = data.subarray(off, Math.min(data.length, off + size));
        const last = off + size >= data.length;
        push(ACK | (last ? PSH : 0), piece);
        seq = (seq + piece.length) >>> 0;
        t += 0.01;
      }
    }
    const lastOfAll = i >= ex.length;
    if (lastOfAll && c.halfClose) {
      push(FIN | ACK, new Uint8Array(0));
      seq = (seq + 1) >>> 0;
    }
    t += rtt;
    for (const e of batch) got += e.responseLength;
    if (lastOfAll && c.close === "server-fin") got += 1;
    push(ACK, new Uint8Array(0));
    if (c.probes) {
      t += 1;
      push(ACK, enc.encode("x").subarray(0, 1), seq - 1);
      push(ACK, new Uint8Array(0), seq - 1);
    }
    t += batch[batch.length - 1].thinkMs ?? 1;
  }
  if (!c.halfClose) {
    const close = c.close ?? "fin";
    if (close === "fin" || close === "server-fin") {
      push(FIN | ACK, new Uint8Array(0));
      seq = (seq + 1) >>> 0;
      t += rtt;
      if (close === "fin") {
        got += 1;
        push(ACK, new Uint8Array(0));
      }
    } else if (close === "rst") {
      push(RST | ACK, new Uint8Array(0));
    }
  }
  return { segments: out, bytes, requests, end: t };
}

/** Merge several traces into one capture, ordered by time (stable). */
export function mergeTraces(traces: OnlineTrace[]): CapturedSegment[] {
  const all = traces.flatMap((tr, k) => tr.segments.map((s, i) => ({ s, k, i })));
  all.sort((a, b) => a.s.timeMs - b.s.timeMs || a.k - b.k || a.i - b.i);
  return all.map((x) => x.s);
}
