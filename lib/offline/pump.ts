/**
 * The offline packet source: reads a capture file pass after pass and hands each replayed
 * packet to the replicator when it is due on the wall clock. The clock, the sleep and the file
 * opener are injected, so the loop runs against fakes in tests.
 *
 *   open(pass) --records--> OfflineFeed.accept --due--> sleep until due --> inject
 *
 * Packets due within {@link DUE_SLACK_MS} are sent without sleeping; when the replay runs
 * late (a large file at a high -a) it yields to the event loop every {@link YIELD_EVERY}
 * packets so replies from intercept and timers keep flowing.
 *
 * @module
 */
import type { PcapRecord } from "../io/pcap_file.ts";
import { ParsedTcp } from "../wire/packet.ts";
import type { OfflineFeed } from "./feed.ts";

/** Packets due this close to now are sent at once. */
export const DUE_SLACK_MS = 1;
/** Packets injected back to back before yielding to the event loop. */
export const YIELD_EVERY = 1024;

/** One pass over the file, as the pump needs it (see ReplayReader). */
export interface RecordSource {
  readonly linkType: number;
  readonly truncatedRecords: number;
  readonly error: string | null;
  readonly warning: string | null;
  /** Share of the file read so far, 0..1. */
  readonly fraction: number;
  next(): PcapRecord | null;
  close(): void;
}

/** Where replayed packets go (the replicator, wrapped by the process edge). */
export interface ReplaySink {
  /**
   * One packet, rewritten for its pass; `tsMicros` is its scheduled time, `recordedMicros`
   * its time in the file.
   */
  inject(p: ParsedTcp, tsMicros: number, nowMs: number, recordedMicros: number): void;
  /** End of a burst: flush the senders, re-arm the engine timer. */
  flush(): void;
}

/** What the pump is given. */
export interface PumpOptions {
  feed: OfflineFeed;
  sink: ReplaySink;
  /** Opens the file for pass `pass` (0 may return an already opened reader). */
  open(pass: number): RecordSource | string;
  passes: number;
  now(): number;
  sleep(ms: number): Promise<void>;
  /** True once the replay should stop early (signal, intercept gone). */
  stopped(): boolean;
  /** Told about a truncated last record, once per pass. */
  warn?(line: string): void;
}

/** How the file was read. */
export interface PumpResult {
  /** Passes started. */
  passes: number;
  /** Truncated last records skipped (all passes). */
  truncatedRecords: number;
  /** A corrupt record or a file that could not be reopened, or null. */
  error: string | null;
  /** The replay was stopped before the end of the file. */
  stopped: boolean;
}

/** The pump's live state, for progress lines and stats. */
export interface PumpProgress {
  pass: number;
  /** Share of the whole replay read so far (all passes), 0..1. */
  fraction: number;
  truncatedRecords: number;
}

/** Replays the file `passes` times; resolves when it is done, failed or was stopped. */
export class OfflinePump {
  readonly progress: PumpProgress = { pass: 0, fraction: 0, truncatedRecords: 0 };
  #source: RecordSource | null = null;
  #done = false;

  constructor(private readonly o: PumpOptions) {}

  /** Share of the whole replay read so far. */
  get fraction(): number {
    if (this.#done) return 1;
    const s = this.#source;
    return (this.progress.pass + (s === null ? 0 : s.fraction)) / this.o.passes;
  }

  /** Runs every pass. */
  async run(): Promise<PumpResult> {
    const o = this.o;
    const parsed = new ParsedTcp();
    const result: PumpResult = { passes: 0, truncatedRecords: 0, error: null, stopped: false };
    for (let pass = 0; pass < o.passes; pass++) {
      if (pass > 0) o.feed.nextPass();
      this.progress.pass = pass;
      const source = o.open(pass);
      if (typeof source === "string") {
        result.error = source;
        break;
      }
      this.#source = source;
      result.passes++;
      let burst = 0;
      try {
        for (let r = source.next(); r !== null; r = source.next()) {
          const due = o.feed.accept(r.data, source.linkType, r.tsMicros, parsed);
          if (due === null) continue;
          let now = o.now();
          if (due > now + DUE_SLACK_MS || burst >= YIELD_EVERY) {
            o.sink.flush();
            await o.sleep(Math.max(0, due - now));
            burst = 0;
            if (o.stopped()) break;
            now = o.now();
          }
          o.sink.inject(parsed, due * 1000, now, r.tsMicros);
          burst++;
        }
        o.sink.flush();
      } finally {
        source.close();
      }
      result.truncatedRecords += source.truncatedRecords;
      this.progress.truncatedRecords = result.truncatedRecords;
      if (source.warning !== null) o.warn?.(source.warning);
      if (o.stopped()) {
        result.stopped = true;
        break;
      }
      if (source.error !== null) {
        result.error = source.error;
        break;
      }
    }
    this.#source = null;
    this.#done = true;
    return result;
  }
}
