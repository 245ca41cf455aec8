/**
 * Savefiles through libpcap: reading pcap and pcapng ({@link PcapFile}) and writing pcap
 * ({@link PcapWriter}). Timestamps are microseconds since the epoch (nanosecond files are
 * scaled by libpcap).
 *
 * @module
 */

import { IoError } from "./errors.ts";
import { cstr, fromCstr } from "./libc.ts";
import { LinkType } from "../wire/link.ts";
import { ERRBUF_SIZE, loadPcap, type Pcap, pcapError, PcapStatus } from "./pcap_lib.ts";

/** One savefile record; `data` is a fresh copy owned by the caller. */
export interface PcapRecord {
  data: Uint8Array;
  /** capture time, microseconds since the epoch */
  tsMicros: number;
  /** original length on the wire (>= data.length when the snaplen cut it) */
  wireLen: number;
}

const PRECISION_MICRO = 0;

/** A savefile opened for reading. Iterable; close it when done (iteration to the end does). */
export class PcapFile implements Iterable<PcapRecord> {
  /** DLT_* of every record (see LinkType). */
  readonly linkType: number;
  readonly #P: Pcap;
  #p: Deno.PointerObject | null;
  readonly #hdrPP = new BigUint64Array(1);
  readonly #dataPP = new BigUint64Array(1);

  private constructor(readonly path: string, P: Pcap, p: Deno.PointerObject) {
    this.#P = P;
    this.#p = p;
    this.linkType = P.pcap_datalink(p);
  }

  /**
   * Opens a pcap or pcapng file. Throws an IoError of kind "file" with libpcap's message and
   * the path when it is missing, unreadable or not a savefile.
   */
  static open(path: string): PcapFile {
    const P = loadPcap();
    const errbuf = new Uint8Array(ERRBUF_SIZE);
    const p = P.pcap_open_offline_with_tstamp_precision(cstr(path), PRECISION_MICRO, errbuf);
    if (p === null) {
      throw new IoError("file", `cannot read savefile "${path}": ${fromCstr(errbuf)}`);
    }
    return new PcapFile(path, P, p);
  }

  /**
   * The next record, or null at the end of the file. Throws an IoError of kind "file" when the
   * file is truncated or corrupt in the middle.
   */
  next(): PcapRecord | null {
    if (this.#p === null) return null;
    const rc = this.#P.pcap_next_ex(this.#p, this.#hdrPP, this.#dataPP);
    if (rc === 1) {
      // struct pcap_pkthdr { struct timeval ts; bpf_u_int32 caplen; bpf_u_int32 len; }
      const hdr = new Deno.UnsafePointerView(Deno.UnsafePointer.create(this.#hdrPP[0])!);
      const caplen = hdr.getUint32(16);
      const data = new Uint8Array(caplen);
      if (caplen > 0) {
        new Deno.UnsafePointerView(Deno.UnsafePointer.create(this.#dataPP[0])!).copyInto(data);
      }
      const tsMicros = Number(hdr.getBigInt64(0)) * 1e6 + Number(hdr.getBigInt64(8));
      return { data, tsMicros, wireLen: hdr.getUint32(20) };
    }
    if (rc === PcapStatus.BREAK) { // end of file
      this.close();
      return null;
    }
    const msg = pcapError(this.#p);
    this.close();
    throw new IoError("file", `corrupt savefile "${this.path}": ${msg}`);
  }

  *[Symbol.iterator](): Iterator<PcapRecord> {
    for (let r = this.next(); r !== null; r = this.next()) yield r;
  }

  /** Releases the file. Idempotent. */
  close(): void {
    if (this.#p !== null) {
      this.#P.pcap_close(this.#p);
      this.#p = null;
    }
  }
}

/** Options of {@link PcapWriter.create}. */
export interface WriterOptions {
  /** DLT_* of the records (Ethernet) */
  linkType?: number;
  /** snaplen written in the file header (262144) */
  snaplen?: number;
}

/** Writes a pcap savefile (microsecond timestamps). */
export class PcapWriter {
  readonly #P: Pcap;
  readonly #p: Deno.PointerObject;
  #d: Deno.PointerObject | null;
  readonly #hdr = new Uint8Array(24);
  readonly #hdrView = new DataView(this.#hdr.buffer);

  private constructor(
    readonly path: string,
    P: Pcap,
    p: Deno.PointerObject,
    d: Deno.PointerObject,
  ) {
    this.#P = P;
    this.#p = p;
    this.#d = d;
  }

  /** Creates (truncates) `path`; throws an IoError of kind "file" with the reason. */
  static create(path: string, opts: WriterOptions = {}): PcapWriter {
    const P = loadPcap();
    const p = P.pcap_open_dead(opts.linkType ?? LinkType.EN10MB, opts.snaplen ?? 262144);
    if (p === null) throw new IoError("system", "pcap_open_dead failed");
    const d = P.pcap_dump_open(p, cstr(path));
    if (d === null) {
      const msg = pcapError(p);
      P.pcap_close(p);
      throw new IoError("file", `cannot write savefile "${path}": ${msg}`);
    }
    return new PcapWriter(path, P, p, d);
  }

  /** Appends one record (`wireLen` defaults to the frame length). */
  write(frame: Uint8Array, tsMicros: number, wireLen = frame.length): void {
    if (this.#d === null) throw new Error(`savefile "${this.path}" is closed`);
    const h = this.#hdrView;
    const sec = Math.floor(tsMicros / 1e6);
    h.setBigInt64(0, BigInt(sec), true);
    h.setBigInt64(8, BigInt(Math.round(tsMicros - sec * 1e6)), true);
    h.setUint32(16, frame.length, true);
    h.setUint32(20, Math.max(wireLen, frame.length), true);
    this.#P.pcap_dump(this.#d, this.#hdr, frame);
  }

  /** Flushes buffered records to the file. */
  flush(): void {
    if (this.#d !== null) this.#P.pcap_dump_flush(this.#d);
  }

  /** Flushes and closes the file. Idempotent. */
  close(): void {
    if (this.#d !== null) {
      this.#P.pcap_dump_close(this.#d);
      this.#P.pcap_close(this.#p);
      this.#d = null;
    }
  }
}
