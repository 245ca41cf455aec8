/**
 * Production's verdict on a captured login, as the modules' online readers keep it
 * (lib/modules/postgres/online.ts, lib/modules/mysql/online.ts): pending until production's
 * replies say accepted or refused, unknown when they cannot be read (a capture gap, a message
 * the reader does not expect). Each reader parses its protocol and calls {@link set}.
 *
 * @module
 */

/** What production said about the login so far. */
export type OnlineVerdict = "pending" | "accepted" | "refused" | "unknown";

/** The verdict and why; the gap rule shared by every reader. */
export class OnlineLoginVerdict {
  verdict: OnlineVerdict = "pending";
  /** One line on why the verdict is not `accepted` (network bytes never quoted). */
  detail = "";

  /** `n` bytes of production's stream are missing: the verdict cannot be read any more. */
  gap(n: number): void {
    if (this.verdict === "pending") {
      this.set("unknown", `${n} bytes of production's replies were not captured`);
    }
  }

  protected set(v: OnlineVerdict, detail: string): void {
    this.verdict = v;
    this.detail = detail;
  }
}
