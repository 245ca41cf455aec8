/**
 * Production's verdict on a PostgreSQL login, read from the online server's replies to the
 * captured client: AuthenticationOk ('R', code 0) then ReadyForQuery ('Z') → accepted; an
 * ErrorResponse ('E') before that → refused. Everything else of the login (challenges,
 * ParameterStatus, BackendKeyData, notices) is skipped without being buffered: the watcher
 * keeps at most one message header.
 *
 * @module
 */
import { OnlineLoginVerdict } from "../online_verdict.ts";

const AUTH = 0x52, ERROR = 0x45, READY = 0x5a;

/** See the module comment. */
export class PgOnlineLogin extends OnlineLoginVerdict {
  /** Bytes of production's 'N'/'S' answer to an SSLRequest/GSSENCRequest still to skip. */
  #skipAnswers = 0;
  readonly #head = new Uint8Array(9);
  #headLen = 0;
  #skip = 0;
  #authOk = false;

  /** The session sent an SSL/GSS request first: production's one-byte answer precedes. */
  expectEncryptionAnswer(): void {
    this.#skipAnswers++;
  }

  /** Production's bytes, in order. */
  feed(data: Uint8Array): void {
    let i = 0;
    while (i < data.length && this.verdict === "pending") {
      if (this.#skipAnswers > 0) {
        if (data[i] !== 0x4e) return this.set("unknown", "production accepted encryption");
        this.#skipAnswers--;
        i++;
        continue;
      }
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, data.length - i);
        this.#skip -= n;
        i += n;
        continue;
      }
      const want = this.#headLen >= 5 && this.#head[0] === AUTH ? 9 : 5;
      const n = Math.min(want - this.#headLen, data.length - i);
      this.#head.set(data.subarray(i, i + n), this.#headLen);
      this.#headLen += n;
      i += n;
      if (this.#headLen < 5) continue;
      const h = this.#head;
      const type = h[0];
      const len = ((h[1] << 24) | (h[2] << 16) | (h[3] << 8) | h[4]) >>> 0;
      if (len < 4) return this.set("unknown", `production sent a message with length ${len}`);
      if (type === AUTH && len >= 8 && this.#headLen < 9) continue;
      this.#headLen = 0;
      this.#skip = 1 + len - (type === AUTH && len >= 8 ? 9 : 5);
      switch (type) {
        case AUTH:
          if (len >= 8 && h[5] === 0 && h[6] === 0 && h[7] === 0 && h[8] === 0) {
            this.#authOk = true;
          }
          break;
        case ERROR:
          return this.set(
            "refused",
            this.#authOk ? "production refused the session" : "production refused the login",
          );
        case READY:
          if (this.#authOk) return this.set("accepted", "");
          return this.set("unknown", "ReadyForQuery before AuthenticationOk on production");
        default:
          break; // challenges, ParameterStatus, BackendKeyData, NoticeResponse, ...
      }
    }
  }
}
