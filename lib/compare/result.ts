/**
 * What a comparison says: match, or mismatch with one reason code and a short diff hint.
 * The reason codes are a contract (NDJSON records, stats, Prometheus labels).
 *
 * @module
 */

/** Why a turn's answers differ. */
export type MismatchReason =
  | "status"
  | "header"
  | "length"
  | "body"
  | "type"
  | "missing"
  | "extra"
  | "timeout";

/** Every reason code, in the order of the stats object. */
export const MISMATCH_REASONS: readonly MismatchReason[] = [
  "status",
  "header",
  "length",
  "body",
  "type",
  "missing",
  "extra",
  "timeout",
];

/** Where two answers first differ, bounded and printable. */
export interface DiffHint {
  /**
   * Byte offset of the first difference: in the answer (its first bytes), or in the decoded
   * body when `what` is `body` for HTTP; -1 when it is not located in the first bytes
   * (only the lengths or the digests differ).
   */
  offset: number;
  /** What differs: `status`, a header name, `body`, `length`, `digest`, a message type... */
  what: string;
  /** The online side around `offset` (escaped, at most {@link EXCERPT_MAX} source bytes). */
  online: string;
  /** The target side around `offset`. */
  target: string;
}

/** Source bytes in an excerpt: 16 before the difference, 32 from it. */
export const EXCERPT_BEFORE = 16;
/** See {@link EXCERPT_BEFORE}. */
export const EXCERPT_AFTER = 32;
/** The most source bytes an excerpt shows. */
export const EXCERPT_MAX = EXCERPT_BEFORE + EXCERPT_AFTER;

/** The outcome of comparing one turn. */
export type CompareResult =
  | {
    readonly match: true;
    /** True when a check was left out (a side has gaps or ran out of time: no digest). */
    readonly partial: boolean;
  }
  | {
    readonly match: false;
    readonly reason: MismatchReason;
    readonly hint: DiffHint;
  };

/** A match; `partial` when the digest or length could not be compared. */
export function matched(partial = false): CompareResult {
  return partial ? MATCHED_PARTIAL : MATCHED; // (read-only: shared, none made per turn)
}

const MATCHED: CompareResult = { match: true, partial: false };
const MATCHED_PARTIAL: CompareResult = { match: true, partial: true };

/** A mismatch for `reason` with `hint`. */
export function mismatch(reason: MismatchReason, hint: DiffHint): CompareResult {
  return { match: false, reason, hint };
}
