/**
 * The intercept program: capture replies (NFQUEUE on this host, or libpcap on an assistant
 * host), route each reply's headers to the tcpcopy that registered it, drop the reply (or
 * accept it for pass-listed destinations), print stats, and clean up on SIGINT/SIGTERM.
 *
 * Lifecycle: stale rules of a dead intercept are replaced at start (rules.ts); the first
 * SIGTERM/SIGINT drains for --drain-seconds (no new peers, replies still dropped), a second
 * one ends the drain (lifecycle.ts); the rules are removed on every exit path the process can
 * catch, uncaught errors and rejections included (exit_guard.ts); SIGHUP reopens the log. The
 * log, signals, stats timer, metrics and exit codes are the skeleton shared with tcpcopy
 * (lib/process/).
 */
import { pageOutStartupCode, processUsage } from "../process/memory.ts";
import { jsonLine } from "../stats/json_lines.ts";
import { TunnelServer } from "../tunnel/server.ts";
import type { InterceptConfig } from "../cli/intercept.ts";
import { openNfqueueSource } from "./nfqueue_source.ts";
import { SchedPolicy, setThreadPolicy } from "../io/sched.ts";
import { PassList } from "./pass_list.ts";
import { PcapSource } from "./pcap_source.ts";
import { NfqueueRules } from "./rules.ts";
import { installExitGuard } from "./exit_guard.ts";
import { type LifecyclePhase, onStopRequest } from "./lifecycle.ts";
import type { ReplySource } from "./source.ts";
import { INTERCEPT_SCHEMA, interceptStatsRecord } from "./stats.ts";
import { renderPrometheus } from "../stats/prometheus.ts";
import type { MetricsServer } from "../metrics/server.ts";
import { describe, EXIT_OK } from "../process/exit.ts";
import { fatal, openProcessLog, type ProcessLog, reopenLog } from "../process/log.ts";
import { stdioSink } from "../process/output.ts";
import { loadSecret } from "../process/secret.ts";
import { handleSignals, type SignalHandlers } from "../process/signals.ts";
import { startStatsTimer, type StatsTimer } from "../process/stats_timer.ts";
import { startMetrics } from "../process/metrics.ts";

/** Runs until a signal or a fatal error; returns the exit code (2 for a bad secret file). */
export async function runIntercept(cfg: InterceptConfig): Promise<number> {
  const startMs = Date.now();
  const secret = await loadSecret("intercept", cfg.secretFile);
  if (typeof secret === "number") return secret;
  const plog = openProcessLog("intercept", cfg.logFile ?? null);
  if (typeof plog === "number") return plog;
  let server: TunnelServer;
  try {
    server = listen(cfg, secret.key, plog);
  } catch (e) {
    plog.sink.close();
    return fatal(
      plog,
      `cannot listen for tcpcopy on ${cfg.bind}:${cfg.tunnelPort}: ${(e as Error).message}`,
    );
  }
  return await new InterceptProcess(cfg, plog, server, startMs).run(secret.key !== undefined);
}

/**
 * The tunnel server tcpcopy connects to, bound but not yet accepting (throws when the port
 * cannot be had): `InterceptProcess.run` opens it once the rules are in and the queue bound.
 */
function listen(cfg: InterceptConfig, secret: CryptoKey | undefined, plog: ProcessLog) {
  return TunnelServer.bind({
    port: cfg.tunnelPort,
    hostname: cfg.bind,
    maxPrefix: cfg.maxPrefix,
    maxBatch: cfg.batch,
    routeTtlMs: cfg.routeTtlS * 1000,
    allow: cfg.allow,
    secret,
    maxPerIp: cfg.maxConnsPerIp,
    maxPeerRoutes: cfg.maxPeerRoutes,
    idleTimeoutMs: cfg.idleTimeoutS * 1000,
    answers: cfg.compare,
    log: (l) => plog.log.info(l),
  });
}

/** The parts of a running intercept and the steps that start and stop them. */
class InterceptProcess {
  source: ReplySource | undefined;
  rules: NfqueueRules | undefined;
  passed = 0;
  readonly pass: PassList;
  phase: LifecyclePhase = "running";
  drainTimer: ReturnType<typeof setTimeout> | undefined;
  readonly failOpen: boolean;
  readonly log;
  readonly stdout = stdioSink("stdout");
  stats: StatsTimer | undefined;
  metrics: MetricsServer | undefined;
  signals: SignalHandlers | undefined;
  removeGuard: () => void = () => {};

  constructor(
    readonly cfg: InterceptConfig,
    readonly plog: ProcessLog,
    readonly server: TunnelServer,
    readonly startMs: number,
  ) {
    this.log = plog.log;
    this.pass = new PassList(cfg.mode.kind === "nfqueue" ? cfg.mode.pass : []);
    this.failOpen = cfg.mode.kind === "nfqueue" && cfg.mode.failOpen;
  }

  /** The start sequence, the capture until stopped, the stop sequence; the exit code. */
  async run(hasSecret: boolean): Promise<number> {
    let code = EXIT_OK;
    this.installGuard();
    // Signals are handled from here on, also while the rules go in: a SIGTERM during the start
    // never kills the process between installing the rules and removing them.
    this.signals = handleSignals(
      (sig) => this.requestStop(sig),
      () => reopenLog(this.plog, "logging to stderr"),
    );
    try {
      this.startMetrics();
      const src = await this.openSource();
      // only now: a peer accepted before the rules are in would replay sessions whose replies
      // leave the target un-queued, to the real clients (IPv6's rule goes in last)
      this.openTunnel();
      this.log.info(`listening for tcpcopy on ${this.cfg.bind}:${this.server.port}`);
      // what the start sequence touched once (rules: iptables runs; the queue's library) leaves
      // RSS before the first peer's traffic grows the heap, not at the fixed 3 s of
      // lib/process/memory.ts, which a workload starting sooner overlapped (README.md, memory)
      pageOutStartupCode();
      // the hot path from here on: a wake-up does not preempt (lib/io/sched.ts); the start
      // sequence above (rules, queue) ran under the normal policy
      setThreadPolicy(SchedPolicy.BATCH);
      if (this.cfg.compare) {
        this.log.info(
          "--compare: answer summaries for authenticated peers that ask; whole reply packets " +
            "are copied from the kernel",
        );
      }
      const warning = securityWarning(this.cfg, hasSecret);
      if (warning) this.log.warn(warning);
      // a signal came while starting (phase is set by the handlers): run() returns at once
      if ((this.phase as LifecyclePhase) === "stopping") src.stop();
      this.stats = startStatsTimer(
        this.startMs,
        this.cfg.statsIntervalS,
        () => this.printStats(false),
      );
      await this.capture(src);
    } catch (e) {
      code = fatal(this.plog, describe(e));
    } finally {
      await this.stop();
    }
    return code;
  }

  /** Starts accepting tcpcopy peers (after {@link openSource}); throws with the address. */
  openTunnel(): void {
    try {
      this.server.open();
    } catch (e) {
      const where = `${this.cfg.bind}:${this.cfg.tunnelPort}`;
      throw new Error(`cannot listen for tcpcopy on ${where}: ${(e as Error).message}`);
    }
  }

  /** One handler for the exit paths a bug can take: the rules go even then. */
  installGuard(): void {
    this.removeGuard = installExitGuard((path, detail) => {
      const had = this.rules?.count ?? 0;
      const errors = this.rules?.removeSync() ?? [];
      this.log.error(
        `${path}${detail ? `: ${detail}` : ""}; ` +
          (had === 0 ? "no NFQUEUE rules to remove" : "NFQUEUE rules removed") +
          (errors.length ? ` except: ${errors.join("; ")}` : ""),
      );
      if (this.plog.toFile) console.error(`intercept: ${path}${detail ? `: ${detail}` : ""}`);
    });
  }

  /** `--metrics`: a failure to listen stops intercept (thrown into the start sequence). */
  startMetrics(): void {
    if (!this.cfg.metrics) return;
    const m = startMetrics(
      this.cfg.metrics,
      () => renderPrometheus(this.record(false), INTERCEPT_SCHEMA),
      this.log,
    );
    if (m instanceof Error) throw m;
    this.metrics = m;
  }

  /** The reply source: libpcap (assistant host) or NFQUEUE with its rules (on the target). */
  async openSource(): Promise<ReplySource> {
    const { cfg, log } = this;
    if (cfg.mode.kind === "pcap") {
      this.source = new PcapSource(cfg.mode.device, cfg.mode.filter, cfg.maxPrefix, cfg.compare);
      log.info(`capturing replies on ${cfg.mode.device} with filter "${cfg.mode.filter}"`);
      return this.source;
    }
    // rules first (a conflict is the clearer message); until the queue is bound the kernel
    // drops what the rules queue, it never lets it through
    const mode = cfg.mode;
    const rules = new NfqueueRules(mode.ports, mode.queueNum, undefined, undefined, mode.failOpen);
    this.rules = rules;
    const err = await rules.install({ warn: (w) => log.warn(w), info: (i) => log.info(i) });
    if (err) {
      this.rules = undefined;
      throw new Error(err);
    }
    this.source = openNfqueueSource(mode, cfg.maxPrefix, cfg.compare);
    log.info(
      `NFQUEUE ${mode.queueNum}: replies from port(s) ${mode.ports.join(",")} ` +
        `(${
          rules.tools.join(" + ")
        }, rule tag ${rules.tag}, loopback not queued); pass-list: ${mode.pass.length} ` +
        `address(es); ${
          mode.failOpen
            ? "FAIL-OPEN (--fail-open: --queue-bypass, if intercept is gone the replies " +
              "reach the real clients)"
            : "fail-closed (if intercept is gone the replies are dropped)"
        }; drain ${cfg.drainSeconds} s on SIGTERM/SIGINT`,
    );
    return this.source;
  }

  /** Reads replies until stopped: pass-listed ones accepted, the rest routed and dropped. */
  capture(src: ReplySource): Promise<void> {
    const { pass, server } = this;
    return src.run((ip) => {
      if (!pass.empty && pass.has(ip)) {
        this.passed++;
        return true;
      }
      server.reply(ip);
      return false;
    }, { begin: () => server.beginCycle(), end: () => server.endCycle() });
  }

  /** SIGINT/SIGTERM: the first drains (lifecycle.ts), a second one ends the drain. */
  requestStop(sig: Deno.Signal): void {
    // while starting there is nothing to drain yet
    const drain = this.source === undefined ? 0 : this.cfg.drainSeconds;
    const { next, action } = onStopRequest(this.phase, drain);
    const from = this.phase;
    this.phase = next;
    switch (action) {
      case "drain":
        this.log.info(
          `${sig} received: draining for ${drain} s (no new tcpcopy peers, replies still ` +
            `dropped), then the rules go; ${sig} again stops at once`,
        );
        this.server.stopAccepting();
        this.drainTimer = setTimeout(() => {
          this.log.info("drain over, exiting");
          this.phase = "stopping";
          this.source?.stop();
        }, drain * 1000);
        break;
      case "stop":
        clearTimeout(this.drainTimer);
        this.log.info(
          from === "draining"
            ? `${sig} received again: drain ended early, exiting`
            : `${sig} received, exiting`,
        );
        this.source?.stop();
        break;
      case "none":
        break;
      default: {
        const never: never = action;
        throw new Error(`unknown action ${never}`);
      }
    }
  }

  /** The stop sequence: timers, metrics, signals, rules, server, final line, source, log. */
  async stop(): Promise<void> {
    clearTimeout(this.drainTimer);
    this.phase = "stopping";
    this.stats?.stop();
    await this.metrics?.close();
    this.signals?.remove();
    if (this.rules) {
      for (const err of await this.rules.remove()) this.log.error(`rule removal failed: ${err}`);
    }
    await this.server.close();
    this.printStats(true);
    try {
      this.source?.close();
    } catch { /* already closed */ }
    this.removeGuard();
    this.plog.sink.close();
  }

  /** The stats line on stdout (best effort: a closed stdout is ignored). */
  printStats(final: boolean): void {
    this.stdout.write(jsonLine(this.record(final)));
  }

  /** The stats record now. */
  record(final: boolean) {
    const { server, source, rules } = this;
    return interceptStatsRecord(
      {
        dispatch: server.dispatcher.counters,
        passed: this.passed,
        notIp: source?.notIp ?? 0,
        peers: server.peersConnected,
        accepted: server.counters.accepted,
        rejected: server.counters.rejected,
        routes: server.dispatcher.routes.size,
        routesEvicted: server.dispatcher.routes.evicted,
        routesOverQuota: server.dispatcher.routes.overQuota,
        security: server.security,
        access: { ...server.counters, logSuppressed: server.events.suppressedTotal },
        kernel: source?.kernel() ?? { pcap_drops: 0, nfq_queue_dropped: 0, nfq_user_dropped: 0 },
        verdicts: source?.verdicts() ?? { accept: 0, drop: 0 },
        batches: server.batchTotals(),
        answers: { ...server.answerCounters, ...server.answerGauges() },
        failOpen: this.failOpen,
        draining: this.phase === "draining",
        rulesInstalled: rules?.count ?? 0,
        staleRulesReplaced: rules?.staleReplaced ?? 0,
        process: processUsage(),
      },
      Date.now(),
      this.startMs,
      final,
    );
  }
}

/**
 * The start-up warning when the tunnel is open to anyone (no --allow, no --secret-file), or
 * undefined. The same sentence is the doctor's warn verdict.
 */
export function securityWarning(
  cfg: { allow: { empty: boolean }; bind: string; tunnelPort: number },
  hasSecret: boolean,
): string | undefined {
  if (hasSecret || !cfg.allow.empty) return undefined;
  return `tunnel open to anyone who reaches ${cfg.bind}:${cfg.tunnelPort}: no --allow and no ` +
    `--secret-file, so any host may register routes and read reply headers; ` +
    `give --allow TCPCOPY_HOST/32 and/or --secret-file FILE (see README "Security model")`;
}
