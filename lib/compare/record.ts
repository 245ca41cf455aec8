/**
 * The NDJSON comparison record (`--compare-log`): one plain object per reported turn.
 * Field names are a contract (jq recipes in the README use them).
 *
 * @module
 */

import type { AnswerSummary } from "./answer.ts";
import { answerStatus } from "./compare.ts";
import { requestHead } from "./head.ts";
import type { CompareResult, DiffHint, MismatchReason } from "./result.ts";
import type { Proto } from "./sniff.ts";

/** One side of a record. */
export interface RecordSide {
  /** HTTP status code, RESP first line, pg tag or SQLSTATE; null when none/unknown. */
  status: number | string | null;
  /** Total answer bytes (null: no answer). */
  length: number | null;
  /** Decoded body bytes (HTTP) or content bytes; null when unknown. */
  bodyLength: number | null;
  /** Ms from the request's last segment to the first answer byte; null when unknown. */
  latencyMs: number | null;
  /** Ms to the last answer byte; null when unknown. */
  lastMs: number | null;
}

/** A comparison record. */
export interface CompareRecord {
  type: "compare";
  /** ISO time of the verdict, when given. */
  time?: string;
  client: string;
  session: number | string;
  /** The session's target, "ip:port" (tcpcopy: each replayed session is compared). */
  targetAddr?: string;
  /** The session's copy index (`-n`: 0 for the first copy). */
  copy?: number;
  turn: number;
  proto: Proto;
  /** The request's first line or first bytes, printable. */
  request: string;
  match: boolean;
  /** The mismatch reason; null on a match. */
  reason: MismatchReason | null;
  /** A match with checks left out (gaps or a cut answer). */
  partial?: boolean;
  online: RecordSide;
  target: RecordSide;
  /** The tunnel's heartbeat round trip, beside (not inside) the target latency. */
  tunnelRttMs?: number;
  diff?: DiffHint;
}

/** What a record is built from. */
export interface RecordInput {
  client: string;
  session: number | string;
  /** See {@link CompareRecord.targetAddr}. */
  targetAddr?: string;
  copy?: number;
  turn: number;
  proto: Proto;
  request: Uint8Array | null;
  online: AnswerSummary | null;
  target: AnswerSummary | null;
  result: CompareResult;
  /** Epoch ms of the verdict. */
  atMs?: number;
  tunnelRttMs?: number;
}

function round3(ms: number | undefined): number | null {
  return ms === undefined ? null : Math.round(ms * 1000) / 1000;
}

function side(proto: Proto, s: AnswerSummary | null): RecordSide {
  return {
    status: answerStatus(proto, s),
    length: s ? s.totalLength : null,
    bodyLength: s ? s.bodyLength : null,
    latencyMs: round3(s?.firstMs),
    lastMs: round3(s?.lastMs),
  };
}

/** Builds the record of one turn (pure: the caller prints it with JSON.stringify). */
export function compareRecord(r: RecordInput): CompareRecord {
  const rec: CompareRecord = {
    type: "compare",
    client: r.client,
    session: r.session,
    ...(r.targetAddr !== undefined ? { targetAddr: r.targetAddr } : {}),
    ...(r.copy !== undefined ? { copy: r.copy } : {}),
    turn: r.turn,
    proto: r.proto,
    request: requestHead(r.request),
    match: r.result.match,
    reason: r.result.match ? null : r.result.reason,
    online: side(r.proto, r.online),
    target: side(r.proto, r.target),
  };
  if (r.atMs !== undefined) rec.time = new Date(r.atMs).toISOString();
  if (r.result.match && r.result.partial) rec.partial = true;
  if (r.tunnelRttMs !== undefined) rec.tunnelRttMs = round3(r.tunnelRttMs)!;
  if (!r.result.match) rec.diff = r.result.hint;
  return rec;
}
