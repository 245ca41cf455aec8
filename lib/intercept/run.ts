/**
 * The intercept program: capture replies (NFQUEUE on this host, or libpcap on an assistant
 * host), route each reply's headers to the tcpcopy that registered it, drop the reply (or
 * accept it for pass-listed destinations), print stats, and clean up on SIGINT/SIGTERM.
 *
 * Lifecycle: stale rules of a dead intercept are replaced at start (rules.ts); the first
 * SIGTERM/SIGINT drains for --drain-seconds (no new peers, replies still dropped), a second
 * one ends the drain (lifecycle.ts); the rules are removed on every exit path the process can
 * catch, uncaught errors and rejections included (exit_guard.ts); SIGHUP reopens the log.
 */
import { Logger } from "../stats/logger.ts";
import { jsonLine } from "../stats/json_lines.ts";
import { TunnelServer } from "../tunnel/server.ts";
import { readSecretFile } from "../tunnel/secret_file.ts";
import { importSecret } from "../tunnel/auth.ts";
import type { InterceptConfig } from "../cli/intercept.ts";
import { openNfqueueSource } from "./nfqueue_source.ts";
import { PassList } from "./pass_list.ts";
import { PcapSource } from "./pcap_source.ts";
import { NfqueueRules } from "./rules.ts";
import { installExitGuard } from "./exit_guard.ts";
import { type LifecyclePhase, onStopRequest } from "./lifecycle.ts";
import { LogFileSink } from "../stats/log_file.ts";
import type { ReplySource } from "./source.ts";
import { INTERCEPT_SCHEMA, interceptStatsRecord } from "./stats.ts";
import { renderPrometheus } from "../stats/prometheus.ts";
import { type MetricsServer, serveMetrics } from "../metrics/server.ts";

/** Runs until a signal or a fatal error; returns the exit code (2 for a bad secret file). */
export async function runIntercept(cfg: InterceptConfig): Promise<number> {
  const startMs = Date.now();
  let secret: CryptoKey | undefined;
  if (cfg.secretFile !== undefined) {
    const r = readSecretFile(cfg.secretFile);
    if (!r.ok) {
      console.error(`intercept: ${r.error}`);
      return 2;
    }
    secret = await importSecret(r.secret);
    r.secret.fill(0);
  }
  let logFile: LogFileSink | undefined;
  if (cfg.logFile) {
    const opened = LogFileSink.open(cfg.logFile);
    if (!(opened instanceof LogFileSink)) {
      // a symlink is a refused value of -l (exit 2); an I/O failure is a runtime problem
      console.error(`intercept: -l/--log: cannot open log file: ${opened.message}`);
      return opened.kind === "symlink" ? 2 : 1;
    }
    logFile = opened;
  }
  const enc = new TextEncoder();
  const log = new Logger((line) => {
    if (logFile) logFile.write(line);
    else {
      try {
        Deno.stderr.writeSync(enc.encode(line));
      } catch { /* stderr closed: the log is best effort */ }
    }
  });
  const fatal = (msg: string) => {
    log.error(msg);
    if (logFile) console.error(`intercept: ${msg}`);
    return 1;
  };

  let server: TunnelServer;
  try {
    server = TunnelServer.listen({
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
      log: (l) => log.info(l),
    });
  } catch (e) {
    logFile?.close();
    return fatal(
      `cannot listen for tcpcopy on ${cfg.bind}:${cfg.tunnelPort}: ${(e as Error).message}`,
    );
  }

  let source: ReplySource | undefined;
  let rules: NfqueueRules | undefined;
  let passed = 0;
  const pass = new PassList(cfg.mode.kind === "nfqueue" ? cfg.mode.pass : []);
  let code = 0;
  let phase: LifecyclePhase = "running";
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  const failOpen = cfg.mode.kind === "nfqueue" && cfg.mode.failOpen;
  const stopSignals: [Deno.Signal, () => void][] = [];
  // One handler for the exit paths a bug can take: the rules go even then.
  const removeGuard = installExitGuard((path, detail) => {
    const had = rules?.count ?? 0;
    const errors = rules?.removeSync() ?? [];
    log.error(
      `${path}${detail ? `: ${detail}` : ""}; ` +
        (had === 0 ? "no NFQUEUE rules to remove" : "NFQUEUE rules removed") +
        (errors.length ? ` except: ${errors.join("; ")}` : ""),
    );
    if (logFile) console.error(`intercept: ${path}${detail ? `: ${detail}` : ""}`);
  });
  let statsTimer: ReturnType<typeof setInterval> | undefined;
  const record = (final: boolean) =>
    interceptStatsRecord(
      {
        dispatch: server.dispatcher.counters,
        passed,
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
        failOpen,
        draining: phase === "draining",
        rulesInstalled: rules?.count ?? 0,
        staleRulesReplaced: rules?.staleReplaced ?? 0,
      },
      Date.now(),
      startMs,
      final,
    );
  const printStats = (final: boolean) => {
    try {
      Deno.stdout.writeSync(enc.encode(jsonLine(record(final))));
    } catch { /* stdout closed: stats are best effort */ }
  };

  // Signals are handled from here on, also while the rules go in: a SIGTERM during the start
  // never kills the process between installing the rules and removing them.
  const requestStop = (sig: Deno.Signal) => {
    // while starting there is nothing to drain yet
    const drain = source === undefined ? 0 : cfg.drainSeconds;
    const { next, action } = onStopRequest(phase, drain);
    const from = phase;
    phase = next;
    switch (action) {
      case "drain":
        log.info(
          `${sig} received: draining for ${drain} s (no new tcpcopy peers, replies still ` +
            `dropped), then the rules go; ${sig} again stops at once`,
        );
        server.stopAccepting();
        drainTimer = setTimeout(() => {
          log.info("drain over, exiting");
          phase = "stopping";
          source?.stop();
        }, drain * 1000);
        break;
      case "stop":
        clearTimeout(drainTimer);
        log.info(
          from === "draining"
            ? `${sig} received again: drain ended early, exiting`
            : `${sig} received, exiting`,
        );
        source?.stop();
        break;
      case "none":
        break;
      default: {
        const never: never = action;
        throw new Error(`unknown action ${never}`);
      }
    }
  };
  const onHup = () => {
    if (!logFile) return log.info("SIGHUP: no log file to reopen (logging to stderr)");
    const err = logFile.reopen();
    if (err) {
      log.error(`SIGHUP: cannot reopen the log file, still writing the old one: ${err.message}`);
    } else log.info("SIGHUP: log file reopened");
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const h = () => requestStop(sig);
    Deno.addSignalListener(sig, h);
    stopSignals.push([sig, h]);
  }
  Deno.addSignalListener("SIGHUP", onHup);
  stopSignals.push(["SIGHUP", onHup]);

  let metrics: MetricsServer | undefined;
  try {
    if (cfg.metrics) {
      metrics = serveMetrics(cfg.metrics, () => renderPrometheus(record(false), INTERCEPT_SCHEMA));
      log.info(`metrics on http://${cfg.metrics.hostname}:${metrics.port}/metrics`);
    }
    if (cfg.mode.kind === "pcap") {
      source = new PcapSource(cfg.mode.device, cfg.mode.filter, cfg.maxPrefix);
      log.info(`capturing replies on ${cfg.mode.device} with filter "${cfg.mode.filter}"`);
    } else {
      // rules first (a conflict is the clearer message); until the queue is bound the kernel
      // drops what the rules queue, it never lets it through
      rules = new NfqueueRules(
        cfg.mode.ports,
        cfg.mode.queueNum,
        undefined,
        undefined,
        cfg.mode.failOpen,
      );
      const err = await rules.install({ warn: (w) => log.warn(w), info: (i) => log.info(i) });
      if (err) {
        rules = undefined;
        throw new Error(err);
      }
      source = openNfqueueSource(cfg.mode, cfg.maxPrefix);
      log.info(
        `NFQUEUE ${cfg.mode.queueNum}: replies from port(s) ${cfg.mode.ports.join(",")} ` +
          `(${
            rules.tools.join(" + ")
          }, rule tag ${rules.tag}, loopback not queued); pass-list: ${cfg.mode.pass.length} ` +
          `address(es); ${
            cfg.mode.failOpen
              ? "FAIL-OPEN (--fail-open: --queue-bypass, if intercept is gone the replies " +
                "reach the real clients)"
              : "fail-closed (if intercept is gone the replies are dropped)"
          }; drain ${cfg.drainSeconds} s on SIGTERM/SIGINT`,
      );
    }
    log.info(`listening for tcpcopy on ${cfg.bind}:${server.port}`);
    const warning = securityWarning(cfg, secret !== undefined);
    if (warning) log.warn(warning);
    const src = source;
    // a signal came while starting (phase is set by the handlers): run() returns at once
    if ((phase as LifecyclePhase) === "stopping") src.stop();
    if (cfg.statsIntervalS > 0) {
      statsTimer = setInterval(() => printStats(false), cfg.statsIntervalS * 1000);
    }
    await src.run((ip) => {
      if (!pass.empty && pass.has(ip)) {
        passed++;
        return true;
      }
      server.reply(ip);
      return false;
    }, { begin: () => server.beginCycle(), end: () => server.endCycle() });
  } catch (e) {
    code = fatal((e as Error).message);
  } finally {
    clearTimeout(drainTimer);
    phase = "stopping";
    if (statsTimer !== undefined) clearInterval(statsTimer);
    await metrics?.close();
    for (const [sig, h] of stopSignals) Deno.removeSignalListener(sig, h);
    if (rules) { for (const err of await rules.remove()) log.error(`rule removal failed: ${err}`); }
    await server.close();
    printStats(true);
    try {
      source?.close();
    } catch { /* already closed */ }
    removeGuard();
    logFile?.close();
  }
  return code;
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
