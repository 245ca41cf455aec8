/**
 * The offline packet source of the tcpcopy process (`--offline FILE`): the same replicator,
 * engine, senders and intercept tunnel as a live capture, fed from a capture file by
 * {@link OfflinePump} on the wall clock. After the last pass it waits for outstanding sessions
 * (at most the drain time), logs the summary and ends the process through `finish`: exit 0,
 * or 1 with the reason when nothing could be replicated or the file turned out corrupt.
 *
 * @module
 */
import type { OfflineConfig } from "../cli/config.ts";
import type { Transfer } from "../engine/config.ts";
import type { EngineStats } from "../engine/stats.ts";
import type { Logger } from "../stats/logger.ts";
import { OfflineFeed } from "../offline/feed.ts";
import { OfflinePump } from "../offline/pump.ts";
import { ReplayReader } from "../offline/reader.ts";
import {
  nothingReplicated,
  type OfflineState,
  offlineStats,
  progressLine,
  summaryLines,
  unfinishedRequests,
} from "../offline/report.ts";
import type { ParsedTcp } from "../wire/packet.ts";
import { linkTypeName } from "../wire/link.ts";
import { sharedReactor } from "../io/reactor.ts";

/** Longest wait for outstanding sessions after the last packet. */
export const MAX_DRAIN_MS = 30_000;
/** The replay counts as settled once nothing is outstanding for this long. */
const SETTLE_MS = 300;
/** Poll period of the drain and of the progress line. */
const DRAIN_POLL_MS = 50, PROGRESS_MS = 1000;

/** Sleeps on the reactor: precise while the loop is busy with replies (a Deno timer is not). */
const sleep = (ms: number) => sharedReactor().sleep(ms);

/** What the offline source drives and reports to (owned by the process edge). */
export interface OfflineHooks {
  transfers: readonly Transfer[];
  /** The -x text, for messages. */
  transfersText: string;
  /** Wait for outstanding sessions at most this long after the last packet. */
  drainMs: number;
  engineStats(): EngineStats;
  inject(p: ParsedTcp, tsMicros: number, nowMs: number, recordedMicros: number): void;
  /** `--compare`: hand the recorded server→client packets on too (the online answers). */
  answers?: boolean;
  /** `--compare`: no comparison waits for its verdict (the drain waits for it too). */
  settled?: () => boolean;
  /** Flush the senders and re-arm the engine timer. */
  flush(): void;
  stopped(): boolean;
  /** The engine's clock (monotonic ms); also paces the replay. Default Date.now. */
  now?: () => number;
  log: Logger;
  /** Shows (or with null clears) the progress line; absent when stderr is not a terminal. */
  progress?: (line: string | null) => void;
  /** Ends the process with `code`; `why` is logged. */
  finish(code: number, why: string): void;
}

/** A capture file replayed as the packet source. */
export class OfflineSource {
  #feed: OfflineFeed | null = null;
  #pump: OfflinePump | null = null;
  #reader: ReplayReader | null;

  private constructor(readonly config: OfflineConfig, reader: ReplayReader) {
    this.#reader = reader;
  }

  /** Opens the file (first pass); a one-line reason naming the file when it cannot be read. */
  static open(config: OfflineConfig): OfflineSource | string {
    const r = ReplayReader.open(config.file);
    return typeof r === "string" ? r : new OfflineSource(config, r);
  }

  /** How the file looks, for the start-up log line. */
  describe(): string {
    const r = this.#reader;
    const c = this.config;
    const timing = [
      `speed x${c.accelerate}`,
      c.skipGapMs > 0 ? `gaps over ${c.skipGapMs} ms collapsed` : "",
      c.repeat > 1 ? `${c.repeat} passes` : "",
    ].filter((s) => s !== "").join(", ");
    return r === null
      ? `offline replay of ${c.file}, ${timing}`
      : `offline replay of ${c.file} (${r.format}, ${
        linkTypeName(r.linkType)
      }, ${r.size} bytes), ` +
        timing;
  }

  /** The state for stats lines and the summary. */
  state(): OfflineState {
    const feed = this.#feed;
    return {
      file: this.config.file,
      feed: feed?.counters ?? { packetsRead: 0, packetsMatched: 0, notTcp: 0, connections: 0 },
      pass: this.#pump?.progress.pass ?? 0,
      passes: this.config.repeat,
      gapsCollapsed: feed?.schedule.gapsCollapsed ?? 0,
      truncatedRecords: this.#pump?.progress.truncatedRecords ?? 0,
    };
  }

  /** The `offline` object of the JSON stats line. */
  stats(): ReturnType<typeof offlineStats> {
    return offlineStats(this.state());
  }

  /** Starts replaying; ends the process through `hooks.finish` when done. */
  start(hooks: OfflineHooks): void {
    const c = this.config;
    const now = hooks.now ?? Date.now;
    const startMs = now();
    const feed = this.#feed = new OfflineFeed(
      hooks.transfers,
      { accelerate: c.accelerate, skipGapMs: c.skipGapMs },
      startMs,
      hooks.answers ?? false,
    );
    const pump = this.#pump = new OfflinePump({
      feed,
      sink: { inject: hooks.inject, flush: hooks.flush },
      passes: c.repeat,
      open: (pass) => {
        if (pass === 0 && this.#reader !== null) return this.#reader;
        const r = ReplayReader.open(c.file);
        if (typeof r !== "string") this.#reader = r;
        return r;
      },
      now,
      sleep,
      stopped: hooks.stopped,
      warn: (line) => hooks.log.warn(line),
    });
    let progressTimer: ReturnType<typeof setInterval> | undefined;
    if (hooks.progress) {
      const show = hooks.progress;
      progressTimer = setInterval(
        () => show(progressLine(this.state(), pump.fraction, now() - startMs)),
        PROGRESS_MS,
      );
    }
    const run = async () => {
      const result = await pump.run();
      if (hooks.stopped()) return;
      hooks.log.info(
        `end of ${c.file} after ${result.passes} pass(es); waiting up to ` +
          `${(hooks.drainMs / 1000).toFixed(1)} s for outstanding sessions`,
      );
      await this.#drain(hooks);
      if (progressTimer !== undefined) clearInterval(progressTimer);
      hooks.progress?.(null);
      if (hooks.stopped()) return;
      const e = hooks.engineStats();
      const state = this.state();
      for (const line of summaryLines(state, e)) hooks.log.info(line);
      const nothing = nothingReplicated(state, e, hooks.transfersText, feed.otherPorts());
      if (result.error !== null) hooks.finish(1, result.error);
      else if (nothing !== null) hooks.finish(1, nothing);
      else hooks.finish(0, "offline replay complete");
    };
    run().catch((err) => {
      if (progressTimer !== undefined) clearInterval(progressTimer);
      hooks.progress?.(null);
      hooks.finish(1, `offline replay failed: ${err instanceof Error ? err.message : err}`);
    });
  }

  /** Waits until no session has work outstanding (or none is left), at most the drain time. */
  async #drain(hooks: OfflineHooks): Promise<void> {
    const now = hooks.now ?? Date.now;
    const end = now() + hooks.drainMs;
    let quietSince: number | undefined;
    while (!hooks.stopped() && now() < end) {
      const e = hooks.engineStats();
      const settled = (e.sessions.active === 0 ||
        (unfinishedRequests(e) === 0 && e.queued_bytes === 0)) &&
        (hooks.settled === undefined || hooks.settled());
      if (!settled) quietSince = undefined;
      else if (quietSince === undefined) quietSince = now();
      else if (now() - quietSince >= SETTLE_MS) return;
      await sleep(DRAIN_POLL_MS);
    }
  }

  /** Releases the file. */
  close(): void {
    this.#reader?.close();
  }
}
