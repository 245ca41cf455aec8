/**
 * One turn's comparison: which side answered, which comparator, the result. The entry point
 * the integration calls once per turn with both sides' summaries.
 *
 * @module
 */

import type { AnswerSummary } from "./answer.ts";
import { compareBytes } from "./bytes.ts";
import { compareHttp } from "./http.ts";
import { comparePg, pgStatus } from "./pg.ts";
import { lineExcerpt } from "./printable.ts";
import { compareResp, respStatus } from "./resp.ts";
import { type CompareResult, matched, mismatch } from "./result.ts";
import { answerProto, type CompareProto, type Proto, requestProto } from "./sniff.ts";
import { statusCode } from "./http_stream.ts";

/** Comparison settings of a transfer. */
export interface CompareOptions {
  /** `--compare-proto` (default `auto`). */
  proto?: CompareProto;
  /** `--compare-ignore-header` names (HTTP), besides the defaults. */
  ignoreHeaders?: readonly string[];
}

/** What is known of one turn. */
export interface TurnAnswers {
  /** The request's first bytes (for `auto`), if known. */
  request?: Uint8Array | null;
  /**
   * `requestProto(request)` when the caller has it already (tcpcopy sniffs each request once,
   * while its bytes are fresh); absent: `auto` sniffs `request` here.
   */
  requestProto?: Proto | null;
  /** The online answer, or null when the online server did not answer. */
  online: AnswerSummary | null;
  /** The target answer, or null when none came. */
  target: AnswerSummary | null;
  /** No target answer because the turn's deadline passed (else: the session ended). */
  targetTimedOut?: boolean;
}

/** A turn's verdict and the comparator that gave it. */
export interface TurnVerdict {
  proto: Proto;
  result: CompareResult;
}

/** Compares one turn: presence first (`missing`, `extra`, `timeout`), then the comparator. */
export function compareTurn(turn: TurnAnswers, opts: CompareOptions = {}): TurnVerdict {
  const { online, target } = turn;
  const choice = opts.proto ?? "auto";
  const proto = choice === "auto" ? sniffTurn(turn) : choice;
  return { proto, result: presence(turn) ?? compareWith(proto, online!, target!, opts) };
}

/**
 * True when two answers are the same answer: both complete (no gap, not cut), one shared view
 * of their first bytes (tcpcopy shares equal first bytes between the turn's two summaries),
 * the same total length, kind, digest and body length. Every comparator then finds nothing
 * and {@link compareTurn} gives `matched()` (not partial) whatever the proto: a caller that
 * needs no record may count the match without it (tests/unit/compare_identical.test.ts holds
 * the two to each other). False says nothing: compare as usual.
 */
export function identicalAnswers(o: AnswerSummary, t: AnswerSummary): boolean {
  return o.firstBytes === t.firstBytes && o.complete && t.complete &&
    o.totalLength === t.totalLength && o.kind === t.kind && o.digest !== null &&
    o.digest === t.digest && o.bodyLength !== null && o.bodyLength === t.bodyLength;
}

/** `auto`: the comparator the request names (sniffed here unless given), else the answer's. */
function sniffTurn(turn: TurnAnswers): Proto {
  const byRequest = turn.requestProto !== undefined
    ? turn.requestProto
    : requestProto(turn.request ?? null);
  return byRequest ?? answerProto(turn.online?.firstBytes ?? turn.target?.firstBytes ?? null);
}

/** The presence checks; null when both sides answered in time. */
function presence(turn: TurnAnswers): CompareResult | null {
  const { online, target } = turn;
  if (!online && !target) return matched();
  if (!online) return mismatch("extra", sideHint("extra", null, target));
  if (!target) {
    return mismatch(turn.targetTimedOut ? "timeout" : "missing", sideHint("answer", online, null));
  }
  if (target.timedOut && !online.timedOut) {
    return mismatch("timeout", sideHint("answer", online, target));
  }
  return null;
}

function sideHint(what: string, o: AnswerSummary | null, t: AnswerSummary | null) {
  return {
    offset: -1,
    what,
    online: o ? lineExcerpt(o.firstBytes, 0) : "(none)",
    target: t ? lineExcerpt(t.firstBytes, 0) : "(none)",
  };
}

/** Runs comparator `proto` over two answers. */
export function compareWith(
  proto: Proto,
  o: AnswerSummary,
  t: AnswerSummary,
  opts: CompareOptions = {},
): CompareResult {
  switch (proto) {
    case "http":
      return compareHttp(o, t, { ignoreHeaders: opts.ignoreHeaders });
    case "resp":
      return compareResp(o, t);
    case "pg":
      return comparePg(o, t);
    case "bytes":
      return compareBytes(o, t);
    default: {
      const never: never = proto;
      throw new Error(`unknown proto ${never}`);
    }
  }
}

/** A short status for records: HTTP code, RESP first line, pg tag/SQLSTATE; null for bytes. */
export function answerStatus(proto: Proto, s: AnswerSummary | null): number | string | null {
  if (!s) return null;
  switch (proto) {
    case "http": {
      const b = s.firstBytes;
      let end = 0;
      while (end < Math.min(b.length, 13) && b[end] !== 0x0d && b[end] !== 0x0a) end++;
      const code = statusCode(b, end);
      return code < 0 ? null : code;
    }
    case "resp":
      return respStatus(s);
    case "pg":
      return pgStatus(s);
    case "bytes":
      return null;
    default: {
      const never: never = proto;
      throw new Error(`unknown proto ${never}`);
    }
  }
}
