/**
 * The live tcpcopy process (the thin, impure edge around {@link Replicator}):
 *
 *   capture (-i, -F) --drain batch--> Replicator.onFrame --> Engine --> raw sender arena
 *                                                              |  ^         (flush per batch)
 *                                 TunnelClient <--routeAdd/Del-+  +-- onReplyBytes <-- intercept
 *
 * The capture is `openCapture`'s (captures.ts). Everything on the hot path runs on the reactor
 * (lib/io/reactor.ts): one wait per capture wake-up, then a synchronous drain; tunnel reads
 * handed over straight from the poll round; one flush per drain and one per round of tunnel
 * reads; one reactor timer for all engine timers, moved only when the earliest deadline comes
 * earlier. JSON stats lines on stdout; SIGINT/SIGTERM reset every session, print the final
 * stats line and return 0. The log, SIGHUP, stats timer, metrics and exit codes are the process
 * skeleton shared with intercept (lib/process/).
 *
 * With `--offline FILE` an {@link OfflineSource} replaces the captures: the file is checked
 * before anything privileged, its client packets are injected when due on the wall clock, and
 * the process ends by itself after the last pass (see offline.ts).
 */
import type { TcpcopyConfig } from "../cli/config.ts";
import { Engine } from "../engine/engine.ts";
import type { OpenedCapture } from "../io/capture.ts";
import type { MetricsServer } from "../metrics/server.ts";
import { IoError } from "../io/errors.ts";
import { sharedReactor } from "../io/reactor.ts";
import { SchedPolicy, setThreadPolicy } from "../io/sched.ts";
import { TunnelClient } from "../tunnel/client.ts";
import { jsonLine } from "../stats/json_lines.ts";
import { tcpcopyStatsRecord } from "../stats/record.ts";
import { renderPrometheus, TCPCOPY_SCHEMA } from "../stats/prometheus.ts";
import { versionLine } from "../version.ts";
import v8 from "node:v8";
import { heapLimitWarning } from "../engine/budget.ts";
import { describe, EXIT_MISMATCH, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE } from "../process/exit.ts";
import { fatal, openProcessLog, type ProcessLog, reopenLog } from "../process/log.ts";
import { fileSink, type LineSink, stdioSink } from "../process/output.ts";
import { loadSecret } from "../process/secret.ts";
import { onSignal } from "../process/signals.ts";
import { startStatsTimer, type StatsTimer } from "../process/stats_timer.ts";
import { startMetrics } from "../process/metrics.ts";
import { engineConfigOf, replyPrefixFor } from "./convert.ts";
import type { Credentials } from "../modules/module.ts";
import { readAuthFile } from "../modules/auth_file.ts";
import { NO_MODULE_OPTIONS } from "../engine/module_bridge.ts";
import { Replicator } from "./replicator.ts";
import { DeadlineTimer } from "./timer.ts";
import { MAX_DRAIN_MS, OfflineSource } from "./offline.ts";
import { openSenders, type Senders } from "./senders.ts";
import { openCaptures, runCaptureLoop } from "./captures.ts";
import { tcpcopyCounters } from "./counters.ts";
import { formatHostPort } from "../wire/addr.ts";
import type { Comparer } from "./comparer.ts";
import { CompareLog } from "./compare_log.ts";
import { TICK_MS } from "./comparer.ts";
import { moduleOnlineOf, OnlineMatcher } from "./online_match.ts";
import {
  compareFailed,
  comparerFor,
  compareSummaryLines,
  renderCompareMetrics,
} from "./compare_output.ts";

/** Exit codes (lib/process/exit.ts). */
export { EXIT_MISMATCH, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE };

/** The offline replay's progress line on a terminal, cleared before each log line. */
class ProgressLine {
  #shown = false;
  readonly #enc = new TextEncoder();
  show(line: string): void {
    Deno.stderr.writeSync(this.#enc.encode(`\r\x1b[K${line}`));
    this.#shown = true;
  }
  clear(): void {
    if (this.#shown) Deno.stderr.writeSync(this.#enc.encode("\r\x1b[K"));
    this.#shown = false;
  }
}

/** Runs tcpcopy until SIGINT/SIGTERM (or a fatal runtime problem); resolves to the exit code. */
export async function runTcpcopy(
  config: TcpcopyConfig,
  selfTargets: readonly string[] = [],
): Promise<number> {
  const secret = await loadSecret("tcpcopy", config.secretFile);
  if (typeof secret === "number") return secret;
  let credentials: Credentials = NO_MODULE_OPTIONS.credentials;
  if (config.authFile !== null) {
    const auth = readAuthFile(config.authFile);
    if (!auth.ok) {
      console.error(`tcpcopy: ${auth.error}`);
      return EXIT_USAGE;
    }
    credentials = auth.credentials;
  }
  const progress = new ProgressLine();
  const plog = openProcessLog("tcpcopy", config.logFile, () => progress.clear());
  if (typeof plog === "number") return plog;
  const p = new TcpcopyProcess(config, selfTargets, plog, progress, credentials);
  return await p.run(secret.key);
}

/** The parts of a running tcpcopy and the steps that start and stop them. */
class TcpcopyProcess {
  readonly startMs = Date.now();
  /**
   * The engine's clock: monotonic, anchored at the start's wall time. A wall-clock step (NTP)
   * must not make every session look silent for an hour, or freeze its timers.
   */
  readonly clock: () => number;
  readonly log;
  readonly stdout: LineSink = stdioSink("stdout");
  readonly senders: Senders = { all: [], v4: null, v6: null };
  readonly captures: OpenedCapture[] = [];
  offline: OfflineSource | null = null;
  tunnel: TunnelClient | null = null;
  replicator!: Replicator;
  engine!: Engine;
  timer!: DeadlineTimer;
  stats: StatsTimer | null = null;
  metrics: MetricsServer | null = null;
  stopping = false;
  /** `--compare`: the comparer, where its records go, and its verdict timer. */
  comparer: Comparer | null = null;
  compareLog: LineSink | null = null;
  /** The records written to `compareLog`, and those that could not be (counted, warned). */
  compareRecords: CompareLog | null = null;
  compareTimer: ReturnType<typeof setInterval> | undefined;
  readonly done = Promise.withResolvers<number>();
  readonly #removeSignals: (() => void)[] = [];
  #removeFlushHook: () => void = () => {};

  constructor(
    readonly config: TcpcopyConfig,
    readonly selfTargets: readonly string[],
    readonly plog: ProcessLog,
    readonly progress: ProgressLine,
    readonly credentials: Credentials = NO_MODULE_OPTIONS.credentials,
  ) {
    this.log = plog.log;
    const perfStart = performance.now();
    this.clock = () => this.startMs + (performance.now() - perfStart);
    this.#removeSignals.push(
      onSignal("SIGHUP", () => {
        reopenLog(plog, "use SIGINT or SIGTERM to stop");
        const r = this.compareRecords?.reopen() ?? null; // (logrotate of --compare-log too)
        if (r !== null) this.log[r.ok ? "info" : "error"](r.line);
      }),
    );
  }

  /** The start sequence; resolves to the exit code once the process has stopped. */
  async run(secret: CryptoKey | undefined): Promise<number> {
    this.logStart();
    const started = this.openOffline() && this.openCompareLog() && await this.openSenders() &&
      this.createEngine() && await this.openCaptures() && await this.connectTunnel(secret);
    if (!started) return this.#failed;
    this.startStats();
    this.startMetrics();
    this.startCompare();
    this.handleStop();
    this.startCaptureLoops();
    this.startOffline();
    this.log.info("replicating");
    setThreadPolicy(SchedPolicy.BATCH); // the hot path: a wake-up does not preempt (lib/io/sched.ts)
    return await this.done.promise;
  }

  /** The exit code of a failed start step. */
  #failed = EXIT_RUNTIME;

  /** A start step failed: close what is open, log the one fatal line; false. */
  async #fail(message: string, code: number = EXIT_RUNTIME): Promise<false> {
    await this.releaseAll();
    this.#failed = fatal(this.plog, message, code);
    return false;
  }

  /** The version, a self-target warning and the transfers. */
  logStart(): void {
    const { log, config } = this;
    log.info(`${versionLine("tcpcopy")} starting`);
    const heapWarning = heapLimitWarning(
      config.maxMemoryMiB * 1048576,
      v8.getHeapStatistics().heap_size_limit,
    );
    if (heapWarning !== undefined) log.warn(heapWarning);
    if (this.selfTargets.length > 0) {
      log.warn(
        `--allow-self-target: target ${this.selfTargets.join(", ")} is an address of this host; ` +
          `replay goes to this (production) host`,
      );
    }
    for (const t of config.transfers) {
      log.info(
        `transfer ${formatHostPort(t.onlineIp ?? "*", t.onlinePort)} -> ` +
          formatHostPort(t.targetIp, t.targetPort) +
          (t.module !== null ? ` through module ${t.module}` : ""),
      );
    }
    const prefix = replyPrefixFor(config);
    if (config.transfers.some((t) => t.module !== null)) {
      log.info(
        `modules: reply payload prefix ${prefix} bytes requested from intercept` +
          `${config.readOnly ? ", read-only" : ""}, auth file ` +
          (config.authFile === null ? "none" : `${JSON.stringify(config.authFile)}`) +
          (config.trustLogins
            ? ", logins trusted (--module-trust-logins)"
            : ", production's verdict on each login awaited (both directions captured)"),
      );
      if (config.trustLogins) {
        log.warn(
          "--module-trust-logins: commands after a login production refused are replayed on " +
            "the target as the auth file's user",
        );
      }
    }
  }

  /** Offline: the file is checked first, so a bad one is reported before anything else. */
  openOffline(): boolean {
    const { config, log } = this;
    if (config.offline === null) {
      log.info(`capture on ${config.interfaces.join(",")} with filter: ${config.filter}`);
      return true;
    }
    const source = OfflineSource.open(config.offline);
    if (typeof source === "string") {
      this.removeSignals();
      this.plog.sink.close();
      this.#failed = fatal(this.plog, source, EXIT_USAGE);
      return false;
    }
    this.offline = source;
    log.info(source.describe());
    return true;
  }

  /** `--compare-log FILE` (`-` is stdout); a file that cannot be opened is a usage error. */
  openCompareLog(): boolean {
    const path = this.config.compare?.log ?? null;
    if (path === null) return true;
    const records = (sink: LineSink) => {
      this.compareLog = sink;
      this.compareRecords = new CompareLog(path, sink, (l) => this.log.warn(l), this.clock);
      return true;
    };
    if (path === "-") return records(this.stdout);
    const sink = fileSink(path);
    if ("write" in sink) return records(sink);
    this.offline?.close();
    this.removeSignals();
    this.plog.sink.close();
    this.#failed = fatal(this.plog, `--compare-log ${path}: ${sink.message}`, EXIT_USAGE);
    return false;
  }

  /** The senders: the first privileged step (fails fast without CAP_NET_RAW). */
  async openSenders(): Promise<boolean> {
    try {
      openSenders(this.config, this.log, this.senders);
      return true;
    } catch (e) {
      return await this.#fail(`cannot open the send socket: ${describe(e)}`);
    }
  }

  /** The replicator and engine, and the one reactor timer for the engine's deadlines. */
  createEngine(): true {
    const { v4, v6 } = this.senders;
    const engineConfig = engineConfigOf(this.config, {
      credentials: this.credentials,
      readOnly: false,
      trustLogins: this.config.trustLogins,
    });
    const records = this.compareRecords;
    this.comparer = comparerFor(
      this.config,
      records === null ? null : (r) => records.write(r),
      // the tunnel's own delay (heartbeat round trip), reported beside the target latency
      () => this.tunnel?.rttMs() ?? null,
    );
    this.replicator = new Replicator({
      v4,
      v6,
      log: this.log,
      now: this.clock,
      mtu: this.config.mtu,
      compare: this.comparer === null
        ? null
        : { comparer: this.comparer, online: new OnlineMatcher(engineConfig.transfers) },
      moduleOnline: moduleOnlineOf(engineConfig.transfers),
    });
    this.engine = new Engine(engineConfig, this.replicator, this.startMs);
    this.replicator.attach(this.engine);
    this.timer = new DeadlineTimer(() => this.engine.nextDeadline(), () => {
      if (this.stopping) return;
      this.replicator.tick(this.clock());
      this.replicator.flush();
    }, this.clock);
    return true;
  }

  /**
   * Captures (device and filter problems surface here; a bad `-F` is a usage error, a bad
   * generated filter is not); none for an offline replay.
   */
  async openCaptures(): Promise<boolean> {
    if (this.offline !== null) return true;
    try {
      openCaptures(this.config, this.log, this.captures);
      return true;
    } catch (e) {
      const userFilter = e instanceof IoError && e.kind === "filter" &&
        !this.config.filterGenerated;
      return await this.#fail(
        `cannot capture: ${describe(e)}`,
        userFilter ? EXIT_USAGE : EXIT_RUNTIME,
      );
    }
  }

  /** After a drain or a round of tunnel reads: routes out, packets out, timer re-armed. */
  afterWork(): void {
    this.tunnel?.flush(); // the routes first: intercept should know a tuple before its reply
    this.replicator.flush();
    this.timer.arm();
  }

  /** The tunnel to intercept(s); false (after the fatal line) when none can be reached. */
  async connectTunnel(secret: CryptoKey | undefined): Promise<boolean> {
    const { config } = this;
    // the replies of every tunnel read of one reactor round: one flush after the last read
    let repliesPending = false;
    this.#removeFlushHook = sharedReactor().afterEvents(() => {
      if (!repliesPending) return;
      repliesPending = false;
      if (!this.stopping) this.afterWork();
    });
    try {
      this.tunnel = await TunnelClient.connect({
        servers: config.intercepts.map((h) => ({ hostname: h.host, port: h.port })),
        connections: config.connections,
        lonely: config.lonely,
        secret,
        prefix: replyPrefixFor(config),
        ...(this.comparer !== null
          ? {
            compare: this.comparer.wanted,
            // (an answer no pending turn waits for is counted there, its summary not decoded)
            answerWanted: (head) => !this.stopping && this.replicator.answerWanted(head),
            onAnswer: (answer) => {
              if (!this.stopping) this.replicator.onAnswer(answer, this.clock());
            },
          }
          : {}),
        // The tunnel hands over the records of one read synchronously, one call each: the
        // engine takes them at once, the packets they release go out in one flush after the
        // last record.
        onReply: (bytes, _server, prefix) => {
          if (!this.stopping) this.replicator.onReplyBytes(bytes, this.clock(), prefix);
        },
        onReadDone: () => {
          repliesPending = true;
        },
        onAllDown: () =>
          void this.shutdown(
            EXIT_RUNTIME,
            "every intercept connection is gone (use -L to keep running)",
          ),
        log: (line) => this.log.warn(line),
      });
    } catch (e) {
      this.#removeFlushHook();
      return await this.#fail(
        `${describe(e)}; is intercept running there? (use -L to start anyway)`,
      );
    }
    this.replicator.setRoutes(this.tunnel);
    this.log.info(`intercept connections up: ${this.tunnel.connected}`);
    return true;
  }

  /** The stats record now (with the offline replay's part). */
  record(final: boolean) {
    const r = tcpcopyStatsRecord(
      tcpcopyCounters({
        config: this.config,
        captures: this.captures,
        senders: this.senders.all,
        replicator: this.replicator,
        engine: this.engine,
        tunnel: this.tunnel,
        selfTarget: this.selfTargets.length > 0,
      }),
      Date.now(),
      this.startMs,
      final,
    );
    const withCompare = this.comparer === null ? r : {
      ...r,
      compare: {
        ...this.comparer.line(),
        // --compare-log: records written, and records lost (disk full, EIO: never silent)
        log_records: this.compareRecords?.written ?? 0,
        log_errors: this.compareRecords?.errors ?? 0,
        ...(final ? { top_mismatches: this.comparer.top(10) } : {}),
      },
    };
    return this.offline === null ? withCompare : { ...withCompare, offline: this.offline.stats() };
  }

  /** The periodic stats line on stdout. */
  startStats(): void {
    this.stats = startStatsTimer(this.startMs, this.config.statsIntervalS, () => {
      if (!this.stopping) this.stdout.write(jsonLine(this.record(false)));
    });
  }

  /** `--metrics`: a failure to listen is logged, replication goes on. */
  startMetrics(): void {
    const m = this.config.metrics;
    if (m === null) return;
    const server = startMetrics(
      { hostname: m.host, port: m.port },
      () =>
        renderPrometheus(this.record(false), TCPCOPY_SCHEMA) +
        (this.comparer === null ? "" : renderCompareMetrics(this.comparer, this.compareRecords)),
      this.log,
    );
    if (server instanceof Error) {
      this.log.error(`--metrics: cannot listen on ${m.host}:${m.port}: ${server.message}`);
    } else this.metrics = server;
  }

  /** SIGINT/SIGTERM: reset every session, print the final line, exit 0. */
  handleStop(): void {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      this.#removeSignals.push(onSignal(sig, () => void this.shutdown(EXIT_OK, `${sig} received`)));
    }
  }

  /** `--compare`: verdicts are given on a timer (answers settle after the packets). */
  startCompare(): void {
    if (this.comparer === null) return;
    this.compareTimer = setInterval(() => {
      if (!this.stopping) this.replicator.compareTick(this.clock());
    }, TICK_MS);
  }

  /** The capture loops (not awaited: they end when stopping). */
  startCaptureLoops(): void {
    for (const cap of this.captures) {
      void runCaptureLoop(cap, {
        onFrame: (frame, linkType, tsMicros, now) =>
          this.replicator.onFrame(frame, linkType, tsMicros, now),
        afterDrain: () => this.afterWork(),
        stopping: () => this.stopping,
        now: this.clock,
        failed: (why) => void this.shutdown(EXIT_RUNTIME, why),
      });
    }
  }

  /** Or the offline replay, which ends the process by itself. */
  startOffline(): void {
    const { offline, config } = this;
    if (offline === null) return;
    const onTerminal = config.logFile === null && Deno.stderr.isTerminal();
    offline.start({
      transfers: this.engine.config.transfers,
      transfersText: config.transfers.map((t) =>
        `${t.onlineIp === null ? t.onlinePort : formatHostPort(t.onlineIp, t.onlinePort)}-` +
        formatHostPort(t.targetIp, t.targetPort)
      ).join(","),
      drainMs: Math.min(config.sessionTimeoutS * 1000, MAX_DRAIN_MS),
      engineStats: () => this.engine.stats,
      inject: (p, tsMicros, nowMs, recordedMicros) =>
        this.replicator.onParsed(p, tsMicros, nowMs, recordedMicros),
      // --compare, and modules (production's verdict on logins): the recorded server packets
      answers: this.comparer !== null ||
        (!this.config.trustLogins && this.config.transfers.some((t) => t.module !== null)),
      flush: () => {
        if (!this.stopping) this.afterWork();
      },
      stopped: () => this.stopping,
      now: this.clock,
      log: this.log,
      settled: this.comparer === null ? undefined : () => this.comparer!.settled(),
      progress: onTerminal
        ? (line) => line === null ? this.progress.clear() : this.progress.show(line)
        : undefined,
      finish: (code, why) => void this.shutdown(code, why),
    });
  }

  /**
   * `--compare` at the end: every pending turn gets its verdict, the summary is logged, and
   * `--compare-fail-above` may turn a clean exit into {@link EXIT_MISMATCH}.
   */
  finishCompare(code: number): number {
    const c = this.comparer;
    if (c === null) return code;
    c.closeAll(this.clock());
    for (const line of compareSummaryLines(c)) this.log.info(line);
    const records = this.compareRecords;
    if (records !== null) {
      records.flushWarning();
      if (records.errors > 0) {
        this.log.error(
          `compare: ${records.errors} of ${records.written + records.errors} records could ` +
            `not be written to --compare-log ${records.name}`,
        );
      }
    }
    const failAbove = this.config.compare?.failAbove ?? null;
    if (!compareFailed(c, failAbove)) return code;
    const why = `compare: mismatch ratio ${c.stats.mismatchRatio.toFixed(6)} is above ` +
      `--compare-fail-above ${failAbove}`;
    this.log.error(why);
    if (this.plog.toFile) console.error(`tcpcopy: ${why}`);
    return code === EXIT_OK ? EXIT_MISMATCH : code;
  }

  /** Removes every signal listener added so far. */
  removeSignals(): void {
    for (const remove of this.#removeSignals.splice(0)) remove();
  }

  /** Closes what is open (captures, offline file, senders, tunnel, log). */
  async releaseAll(): Promise<void> {
    this.removeSignals();
    for (const c of this.captures) c.close();
    this.offline?.close();
    this.compareRecords?.close(); // (a record after this is counted, never silently dropped)
    if (this.compareLog !== null && this.compareLog !== this.stdout) this.compareLog.close();
    for (const s of this.senders.all) s.close();
    if (this.tunnel !== null) await this.tunnel.close();
    this.plog.sink.close();
  }

  /** The stop sequence (once): sessions reset, final stats line, everything closed. */
  async shutdown(code: number, why: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log[code === EXIT_OK ? "info" : "error"](`stopping: ${why}`);
    if (code !== EXIT_OK && this.plog.toFile) console.error(`tcpcopy: ${why}`);
    for (const c of this.captures) c.stop();
    this.timer.cancel();
    this.#removeFlushHook();
    this.stats?.stop();
    if (this.compareTimer !== undefined) clearInterval(this.compareTimer);
    try {
      this.engine.closeAll("shutdown", this.clock());
      this.replicator.flush();
    } catch (e) {
      this.log.error(`while resetting sessions: ${describe(e)}`);
    }
    code = this.finishCompare(code);
    this.stdout.write(jsonLine(this.record(true)));
    this.removeSignals();
    const grace = new Promise<void>((r) => setTimeout(r, 500));
    await Promise.race([
      Promise.allSettled([this.releaseAll(), this.metrics?.close()]),
      grace,
    ]);
    this.done.resolve(code);
  }
}
