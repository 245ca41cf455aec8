/**
 * Production's verdict on a MySQL login, read from the online server's packets to the captured
 * client: after the greeting (sequence id 0), the first OK packet (0x00) → accepted, an ERR
 * packet (0xFF) → refused; auth switches and more-data packets (0xFE, 0x01) are skipped. Only
 * packet headers and first payload bytes are looked at; nothing is buffered.
 *
 * @module
 */
import { OnlineLoginVerdict } from "../online_verdict.ts";

/** See the module comment. */
export class MyOnlineLogin extends OnlineLoginVerdict {
  readonly #head = new Uint8Array(5);
  #headLen = 0;
  #skip = 0;
  #packets = 0;

  /** Production's bytes, in order. */
  feed(data: Uint8Array): void {
    let i = 0;
    while (i < data.length && this.verdict === "pending") {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, data.length - i);
        this.#skip -= n;
        i += n;
        continue;
      }
      const n = Math.min(5 - this.#headLen, data.length - i);
      this.#head.set(data.subarray(i, i + n), this.#headLen);
      this.#headLen += n;
      i += n;
      if (this.#headLen < 5) continue;
      const h = this.#head;
      const len = h[0] | (h[1] << 8) | (h[2] << 16);
      this.#headLen = 0;
      if (len === 0) {
        return this.set("unknown", "production sent an empty packet during the login");
      }
      this.#skip = len - 1;
      const first = this.#packets++ === 0;
      const kind = h[4];
      if (kind === 0xff) {
        return this.set(
          "refused",
          first ? "production refused the connection" : "production refused the login",
        );
      }
      if (first) {
        if (h[3] !== 0 || kind !== 10) return this.set("unknown", "no greeting from production");
        continue;
      }
      if (kind === 0x00) return this.set("accepted", "");
      if (kind !== 0xfe && kind !== 0x01) {
        return this.set("unknown", `production sent packet 0x${kind.toString(16)} in the login`);
      }
    }
  }
}
