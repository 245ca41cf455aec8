/**
 * Framing of the target's reply stream (MySQL packets) when parts of it are missing: intercept
 * sends only a prefix of each reply TCP packet, the rest arrives as a gap. The framer keeps the
 * packet boundaries while gaps fall inside packet bodies; a gap that swallows a header loses the
 * framing for good (`lost`). Each packet is reported once complete, with the first `CAPTURE`
 * bytes of its payload (`truncated` when some were cut off). One reused buffer (grown to at most
 * `CAPTURE` bytes, by the packets seen), no allocation per packet.
 *
 * @module
 */

/** Payload bytes kept per packet (greetings, auth switches, ERR texts, an RSA key PEM). */
export const CAPTURE = 4096;

/** Called for each complete packet; `payload` is valid during the call only. */
export type OnPacket = (seq: number, payload: Uint8Array, truncated: boolean) => void;

/** The reply-stream framer. */
export class TargetFramer {
  /** A gap covered a packet header: packet boundaries are unknown from here on. */
  lost = false;
  /** Payload bytes to keep per packet (at most CAPTURE); 0 when only boundaries matter. */
  capture = CAPTURE;
  private readonly hdr = new Uint8Array(4);
  private hdrLen = 0;
  private bodyLeft = 0;
  private seq = 0;
  /** Grows up to CAPTURE with the packets seen (a session that never answers costs 256). */
  private buf = new Uint8Array(256);
  private bufLen = 0;
  private truncated = false;
  private inBody = false;

  constructor(private readonly onPacket: OnPacket) {}

  /** Reply bytes, in order. */
  feed(data: Uint8Array): void {
    let i = 0;
    while (i < data.length && !this.lost) {
      if (!this.inBody) {
        const take = Math.min(4 - this.hdrLen, data.length - i);
        this.hdr.set(data.subarray(i, i + take), this.hdrLen);
        this.hdrLen += take;
        i += take;
        if (this.hdrLen < 4) break;
        this.bodyLeft = this.hdr[0] | (this.hdr[1] << 8) | (this.hdr[2] << 16);
        this.seq = this.hdr[3];
        this.hdrLen = 0;
        this.bufLen = 0;
        this.truncated = false;
        this.inBody = true;
      }
      const take = Math.min(this.bodyLeft, data.length - i);
      if (!this.truncated) {
        const keep = Math.min(take, Math.max(0, Math.min(this.capture, CAPTURE) - this.bufLen));
        if (this.bufLen + keep > this.buf.length) this.grow(this.bufLen + keep);
        this.buf.set(data.subarray(i, i + keep), this.bufLen);
        this.bufLen += keep;
        if (keep < take) this.truncated = true;
      }
      i += take;
      this.bodyLeft -= take;
      if (this.bodyLeft === 0) this.complete();
    }
  }

  /** `n` reply bytes that were not sent. */
  gap(n: number): void {
    if (this.lost || n <= 0) return;
    if (!this.inBody || n > this.bodyLeft) {
      this.lost = true;
      return;
    }
    this.bodyLeft -= n;
    this.truncated = true;
    if (this.bodyLeft === 0) this.complete();
  }

  private grow(need: number): void {
    const next = new Uint8Array(Math.min(CAPTURE, Math.max(need, this.buf.length * 2)));
    next.set(this.buf.subarray(0, this.bufLen));
    this.buf = next;
  }

  private complete(): void {
    this.inBody = false;
    this.onPacket(this.seq, this.buf.subarray(0, this.bufLen), this.truncated);
  }
}
