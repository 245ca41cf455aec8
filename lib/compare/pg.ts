/**
 * The PostgreSQL comparator over backend message streams: message types in order (notices
 * left out), CommandComplete tags and ErrorResponse SQLSTATE codes (reason `status`),
 * RowDescription field names (`header`), other payloads such as DataRow (`body`), then
 * the digest of the compared parts (what lies beyond the first bytes). Per-server values
 * (BackendKeyData, ParameterStatus, auth salts, error texts) are not compared; see
 * pg_messages.ts.
 *
 * @module
 */

import type { AnswerSummary } from "./answer.ts";
import { compareBytes } from "./bytes.ts";
import { digestCheck, firstMismatch, type Partial } from "./checks.ts";
import { errorCode, type PgMessage, pgMessages, pgPolicy, rowNames } from "./pg_messages.ts";
import { bytesHint, excerpt, firstDifference, printable } from "./printable.ts";
import { type CompareResult, mismatch } from "./result.ts";
import { isPgAnswer } from "./sniff.ts";
import { sameBytes } from "./same_bytes.ts";

/** The compared messages of an answer's first bytes (notices dropped). */
function messages(b: Uint8Array): { list: PgMessage[]; whole: boolean } {
  const r = pgMessages(b);
  const list = r.messages.filter((m) => pgPolicy(m.type) !== "skip");
  return { list, whole: !r.bad && r.rest === b.length };
}

/** Compares two pg backend message streams; see the module comment. */
export function comparePg(o: AnswerSummary, t: AnswerSummary): CompareResult {
  const a = o.firstBytes, b = t.firstBytes;
  if (!isPgAnswer(a) || !isPgAnswer(b)) {
    if (isPgAnswer(a) !== isPgAnswer(b) && a.length > 0 && b.length > 0) {
      return mismatch("type", bytesHint("type", a, b, 0));
    }
    return compareBytes(o, t);
  }
  const ma = messages(a), mb = messages(b);
  const p: Partial = { partial: false };
  return firstMismatch(
    p,
    () => sequenceCheck(a, ma.list, b, mb.list),
    () => countCheck(o, ma, t, mb),
    () => digestCheck(o, t, p),
  );
}

/** The first differing message among those both first-bytes hold. */
function sequenceCheck(
  a: Uint8Array,
  la: PgMessage[],
  b: Uint8Array,
  lb: PgMessage[],
): CompareResult | null {
  for (let i = 0; i < Math.min(la.length, lb.length); i++) {
    const r = messageCheck(a, la[i], b, lb[i]);
    if (r) return r;
  }
  return null;
}

function messageCheck(
  a: Uint8Array,
  x: PgMessage,
  b: Uint8Array,
  y: PgMessage,
): CompareResult | null {
  const hint = (what: string) => ({
    offset: x.at,
    what,
    online: excerpt(a, x.at),
    target: excerpt(b, y.at),
  });
  if (x.type !== y.type) return mismatch("type", hint("message type"));
  const type = String.fromCharCode(x.type);
  const policy = pgPolicy(x.type);
  switch (policy) {
    case "typeOnly":
    case "skip":
      return null;
    case "auth":
      return sameBytes(a, x.from, Math.min(x.to, x.from + 4), b, y.from, Math.min(y.to, y.from + 4))
        ? null
        : mismatch("type", hint("auth"));
    case "error": {
      const ca = errorCode(a, x.from, x.to), cb = errorCode(b, y.from, y.to);
      return ca === cb ? null : mismatch("status", { ...hint("sqlstate"), online: ca, target: cb });
    }
    case "rowDesc": {
      const na = rowNames(a, x.from, x.to).join(","), nb = rowNames(b, y.from, y.to).join(",");
      return na === nb ? null : mismatch("header", { ...hint("fields"), online: na, target: nb });
    }
    case "full": {
      if (sameBytes(a, x.from, x.to, b, y.from, y.to)) return null;
      if (type === "C") {
        return mismatch("status", {
          ...hint("tag"),
          online: printable(a, x.from, x.to - 1),
          target: printable(b, y.from, y.to - 1),
        });
      }
      const off = firstDifference(a.subarray(x.from, x.to), b.subarray(y.from, y.to));
      const at = off < 0 ? Math.min(x.to - x.from, y.to - y.from) : off;
      return mismatch("body", bytesHint(type, a, b, x.from + at));
    }
    default: {
      const never: never = policy;
      throw new Error(`unknown policy ${never}`);
    }
  }
}

/** Whole streams inside the first bytes with a different number of messages. */
function countCheck(
  o: AnswerSummary,
  ma: { list: PgMessage[]; whole: boolean },
  t: AnswerSummary,
  mb: { list: PgMessage[]; whole: boolean },
): CompareResult | null {
  if (o.truncated || t.truncated || !ma.whole || !mb.whole) return null;
  if (ma.list.length === mb.list.length) return null;
  const i = Math.min(ma.list.length, mb.list.length);
  const show = (l: PgMessage[]) =>
    l.slice(i, i + 8).map((m) => String.fromCharCode(m.type)).join("");
  return mismatch("type", {
    offset: ma.list[i]?.at ?? o.firstBytes.length,
    what: "message count",
    online: show(ma.list) || "(end)",
    target: show(mb.list) || "(end)",
  });
}

/** A short status for records: the last CommandComplete tag or ErrorResponse code. */
export function pgStatus(s: AnswerSummary): string {
  const { messages: list } = pgMessages(s.firstBytes);
  let status = "";
  for (const m of list) {
    if (m.type === 0x43) status = printable(s.firstBytes, m.from, Math.min(m.to - 1, m.from + 32));
    if (m.type === 0x45) status = "E" + errorCode(s.firstBytes, m.from, m.to);
  }
  return status;
}
