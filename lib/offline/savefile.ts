/**
 * What a capture file is, from its first bytes, and where a reader stands in it (pure).
 *
 * Classic pcap: a 24-byte file header, then records of a 16-byte header plus `caplen` bytes, so
 * the byte offset of every record is known exactly. pcapng: blocks of variable length with
 * options; the offset is estimated (32 bytes of block overhead per packet, data padded to 4).
 * libpcap does the actual reading; this module turns its situation into messages that name the
 * file, the record and the byte offset.
 *
 * @module
 */
import { LinkType, linkTypeName } from "../wire/link.ts";

/** Size of the classic pcap file header. */
export const PCAP_FILE_HEADER = 24;
/** Size of a classic pcap record header. */
export const PCAP_RECORD_HEADER = 16;
/** Smallest pcapng section header block. */
export const PCAPNG_MIN_SHB = 28;
/** Bytes needed to recognise a file. */
export const SNIFF_BYTES = PCAP_FILE_HEADER;

/** A recognised capture file format. */
export type SavefileFormat = "pcap" | "pcapng";

const PCAP_MAGICS = new Set([0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1]);
const PCAPNG_SHB = 0x0a0d0d0a;

/**
 * Recognises a capture file from its first bytes (`head`, up to {@link SNIFF_BYTES}) and its
 * size; a one-line reason when it is not one.
 */
export function sniffSavefile(head: Uint8Array, size: number): SavefileFormat | string {
  if (size === 0) return "the file is empty (0 bytes); expected a pcap or pcapng capture";
  if (head.length < 4) {
    return `truncated at byte ${size}: too short for a pcap or pcapng file header`;
  }
  const magic = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, false);
  if (PCAP_MAGICS.has(magic)) {
    if (size < PCAP_FILE_HEADER) {
      return `truncated file header at byte ${size} (a pcap file header is ${PCAP_FILE_HEADER} bytes)`;
    }
    return "pcap";
  }
  if (magic === PCAPNG_SHB) {
    if (size < PCAPNG_MIN_SHB) {
      return `truncated section header at byte ${size} (a pcapng section header is at least ` +
        `${PCAPNG_MIN_SHB} bytes)`;
    }
    return "pcapng";
  }
  return `not a pcap or pcapng file (unknown magic 0x${hex32(magic)} at byte 0)`;
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** The link types lib/wire decodes. */
const SUPPORTED_LINKS = new Set<number>(Object.values(LinkType));

/** Null when lib/wire decodes `linkType`, else the reason. */
export function checkLinkType(linkType: number): string | null {
  if (SUPPORTED_LINKS.has(linkType)) return null;
  return `link type ${linkTypeName(linkType)} is not supported (Ethernet, Linux cooked v1/v2, ` +
    `raw IP and loopback captures are)`;
}

/**
 * How a read that libpcap refused ended: "truncated", the file ends inside the last record
 * (counted and skipped); "corrupt", the replay stops with an error.
 */
export type ReadFailureKind = "truncated" | "corrupt";

/** How a read that libpcap refused ended. */
export interface ReadFailure {
  /** See {@link ReadFailureKind}; the reader's switch over it is never-checked. */
  kind: ReadFailureKind;
  /** One line: which record, where, and libpcap's words. */
  message: string;
}

/** Where a reader stands: records read and the byte offset of the next record. */
export class SavefilePosition {
  /** Records read so far. */
  records = 0;
  /** Offset of the next record: exact for pcap, an estimate for pcapng. */
  offset: number;

  constructor(readonly format: SavefileFormat) {
    this.offset = format === "pcap" ? PCAP_FILE_HEADER : PCAPNG_MIN_SHB + 20;
  }

  /** Moves past a record with `caplen` captured bytes. */
  advance(caplen: number): void {
    this.records++;
    this.offset += this.format === "pcap" ? PCAP_RECORD_HEADER + caplen : 32 + ((caplen + 3) & ~3);
  }

  /** Classifies a libpcap read error at the current position (the next record). */
  failure(libpcapMessage: string): ReadFailure {
    const kind = /truncated/i.test(libpcapMessage) ? "truncated" : "corrupt";
    const where = this.format === "pcap"
      ? `at byte ${this.offset}`
      : `after byte ~${this.offset} (pcapng offsets are estimates)`;
    const what = kind === "truncated" ? "truncated" : "corrupt";
    return {
      kind,
      message: `record ${this.records + 1} ${where} is ${what}: ${libpcapMessage}`,
    };
  }
}
