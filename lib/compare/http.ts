/**
 * The HTTP/1.x comparator: status codes (of every response in the first bytes), then the
 * first response's headers except an ignore list, then the decoded body length, the decoded
 * body's first bytes and the body digest. Content-Length and Transfer-Encoding are framing,
 * not compared as headers: a chunked and a Content-Length answer with the same body match.
 *
 * @module
 */

import type { AnswerSummary } from "./answer.ts";
import { compareBytes, firstBytesCheck } from "./bytes.ts";
import { bodyLengthCheck, digestCheck, firstMismatch, type Partial } from "./checks.ts";
import { HttpResponseParser, nameEnd, trimRange } from "./http_stream.ts";
import { equalBytes, sameHttpHeads } from "./http_fast.ts";
import { clip, lineExcerpt, printable } from "./printable.ts";
import { type CompareResult, matched, mismatch } from "./result.ts";
import { isHttpAnswer } from "./sniff.ts";

/** Headers never compared by default (`--compare-ignore-header` adds more). */
export const DEFAULT_IGNORED_HEADERS: readonly string[] = [
  "date",
  "server",
  "set-cookie",
  "etag",
  "last-modified",
  "expires",
  "age",
  "x-request-id",
];

/** Framing headers: compared through the body length instead. */
const FRAMING_HEADERS = ["content-length", "transfer-encoding"];

/** Status lines kept per answer (pipelined responses in the first bytes). */
const MAX_STATUSES = 64;

/** Options of {@link compareHttp}. */
export interface HttpCompareOptions {
  /** Header names ignored besides the defaults (any case). */
  ignoreHeaders?: readonly string[];
}

/** A header line of a response. */
interface Field {
  name: string;
  value: string;
  at: number;
}

/** What the first bytes of an HTTP answer say. */
export interface HttpView {
  /** Status codes and their line offsets, in order. */
  statuses: { code: number; at: number }[];
  /** The first response's header lines. */
  fields: Field[];
  /** True when the first response's head ends inside the first bytes. */
  headDone: boolean;
  /** The decoded body bytes inside the first bytes. */
  body: Uint8Array;
}

/** Parses an answer's first bytes (bounded by their length). */
export function httpView(bytes: Uint8Array): HttpView {
  const statuses: { code: number; at: number }[] = [];
  const fields: Field[] = [];
  const body = new Uint8Array(bytes.length);
  let bodyLen = 0;
  const parser = new HttpResponseParser({
    status(code, at) {
      if (statuses.length < MAX_STATUSES) statuses.push({ code, at });
    },
    header(line, len, at) {
      if (statuses.length === 1) fields.push(field(line, len, at));
    },
    body(b, from, to) {
      body.set(b.subarray(from, to), bodyLen);
      bodyLen += to - from;
    },
  }, bytes.length);
  parser.push(bytes);
  const headDone = parser.messages > 0 || statuses.length > 1 ||
    (statuses.length === 1 && !parser.inHead);
  return { statuses, fields, headDone, body: body.subarray(0, bodyLen) };
}

function field(line: Uint8Array, len: number, at: number): Field {
  const colon = nameEnd(line, len);
  if (colon < 0) return { name: "", value: printable(line, 0, len), at };
  const [ns, ne] = trimRange(line, 0, colon);
  const [vs, ve] = trimRange(line, colon + 1, len);
  return { name: printable(line, ns, ne).toLowerCase(), value: printable(line, vs, ve), at };
}

const NONE: readonly string[] = [];
/** The ignore set of each `ignoreHeaders` list (one per run: not built per answer). */
const ignoreSets = new WeakMap<readonly string[], Ignore>();

interface Ignore {
  set: ReadonlySet<string>;
  /** The same names without the framing headers (the fast path reads those itself). */
  list: readonly string[];
}

function ignoreSetOf(extra: readonly string[]): Ignore {
  let ig = ignoreSets.get(extra);
  if (ig === undefined) {
    const list = [...DEFAULT_IGNORED_HEADERS, ...extra.map((h) => h.toLowerCase())];
    ig = { set: new Set([...list, ...FRAMING_HEADERS]), list };
    ignoreSets.set(extra, ig);
  }
  return ig;
}

/**
 * Compares two HTTP answers; see the module comment for the order of the checks. Two fast
 * paths come first (the common case: equal answers), each taken only where the full checks
 * would find nothing before the lengths and the digest (tests/unit/compare_http_fast.test.ts
 * holds them against {@link compareHttpFull}): byte-identical first bytes, then
 * {@link sameHttpHeads} (equal but for ignored headers).
 */
export function compareHttp(
  o: AnswerSummary,
  t: AnswerSummary,
  opts: HttpCompareOptions = {},
): CompareResult {
  return compareHttpWith(o, t, opts, true);
}

/** {@link compareHttp} without its fast paths: every check on parsed views (tests). */
export function compareHttpFull(
  o: AnswerSummary,
  t: AnswerSummary,
  opts: HttpCompareOptions = {},
): CompareResult {
  return compareHttpWith(o, t, opts, false);
}

function compareHttpWith(
  o: AnswerSummary,
  t: AnswerSummary,
  opts: HttpCompareOptions,
  fast: boolean,
): CompareResult {
  const oHttp = isHttpAnswer(o.firstBytes), tHttp = isHttpAnswer(t.firstBytes);
  if (!oHttp && !tHttp) return compareBytes(o, t);
  if (oHttp !== tHttp) {
    return mismatch("type", {
      offset: 0,
      what: "http",
      online: lineExcerpt(o.firstBytes, 0),
      target: lineExcerpt(t.firstBytes, 0),
    });
  }
  const ig = ignoreSetOf(opts.ignoreHeaders ?? NONE);
  const p: Partial = { partial: false };
  if (
    fast && (equalBytes(o.firstBytes, t.firstBytes) ||
      sameHttpHeads(o.firstBytes, t.firstBytes, ig.list, FRAMING_HEADERS))
  ) {
    // status, headers and body bytes agree (the common case): only lengths and digests left
    return bodyLengthCheck(o, t, p) ?? digestCheck(o, t, p) ?? matched(p.partial);
  }
  const ov = httpView(o.firstBytes), tv = httpView(t.firstBytes);
  const ignore = ig.set;
  return firstMismatch(
    p,
    () => statusCheck(o.firstBytes, ov, t.firstBytes, tv),
    () => headerCheck(o.firstBytes, ov, t.firstBytes, tv, ignore),
    () => bodyLengthCheck(o, t, p),
    () => firstBytesCheck(ov.body, tv.body),
    () => digestCheck(o, t, p),
  );
}

function statusCheck(
  ob: Uint8Array,
  ov: HttpView,
  tb: Uint8Array,
  tv: HttpView,
): CompareResult | null {
  const n = Math.min(ov.statuses.length, tv.statuses.length);
  for (let i = 0; i < n; i++) {
    const a = ov.statuses[i], b = tv.statuses[i];
    if (a.code === b.code) continue;
    return mismatch("status", {
      offset: a.at,
      what: "status",
      online: lineExcerpt(ob, a.at),
      target: lineExcerpt(tb, b.at),
    });
  }
  return null;
}

function headerCheck(
  ob: Uint8Array,
  ov: HttpView,
  tb: Uint8Array,
  tv: HttpView,
  ignore: ReadonlySet<string>,
): CompareResult | null {
  const a = ov.fields.filter((f) => !ignore.has(f.name));
  const b = tv.fields.filter((f) => !ignore.has(f.name));
  const name = ov.headDone && tv.headDone ? differingName(a, b) : differingShared(a, b);
  if (name === null) return null;
  const fa = a.find((f) => f.name === name), fb = b.find((f) => f.name === name);
  return mismatch("header", {
    offset: fa ? fa.at : -1,
    what: clip(name),
    online: fa ? lineExcerpt(ob, fa.at) : "(absent)",
    target: fb ? lineExcerpt(tb, fb.at) : "(absent)",
  });
}

/** Sorted by name, same-name fields in their order (their order matters in HTTP). */
function byName(fields: Field[]): Field[] {
  return fields.map((f, i) => ({ f, i }))
    .sort((x, y) => x.f.name < y.f.name ? -1 : x.f.name > y.f.name ? 1 : x.i - y.i)
    .map((x) => x.f);
}

/** Both heads complete: the first header name whose fields differ, or null. */
function differingName(a: Field[], b: Field[]): string | null {
  const sa = byName(a), sb = byName(b);
  for (let i = 0; i < Math.max(sa.length, sb.length); i++) {
    const x = sa[i], y = sb[i];
    if (x && y && x.name === y.name && x.value === y.value) continue;
    if (!x || !y) return (x ?? y).name;
    return x.name <= y.name ? x.name : y.name;
  }
  return null;
}

/** A head cut by the first-bytes limit: only names present on both sides are compared. */
function differingShared(a: Field[], b: Field[]): string | null {
  for (const name of new Set(a.map((f) => f.name))) {
    const va = a.filter((f) => f.name === name).map((f) => f.value);
    const vb = b.filter((f) => f.name === name).map((f) => f.value);
    for (let i = 0; i < Math.min(va.length, vb.length); i++) if (va[i] !== vb[i]) return name;
  }
  return null;
}
