/**
 * The live tcpcopy process (the thin, impure edge around {@link Replicator}):
 *
 *   capture (-i, -F) --drain batch--> Replicator.onFrame --> Engine --> raw sender arena
 *                                                              |  ^         (flush per batch)
 *                                 TunnelClient <--routeAdd/Del-+  +-- onReplyBytes <-- intercept
 *
 * The capture is `openCapture`'s: a TPACKET_V3 ring read straight from JS, or libpcap when the
 * ring cannot be set up; received packets only (this host's own sends are left out).
 * Everything on the hot path runs on the reactor (lib/io/reactor.ts): one wait per capture
 * wake-up, then a synchronous drain; tunnel reads handed over straight from the poll round;
 * one flush per drain and one per round of tunnel reads; one reactor timer for all engine
 * timers, moved only when the earliest deadline comes earlier. JSON stats lines on stdout;
 * SIGINT/SIGTERM reset every session, print the final stats line and return 0.
 *
 * With `--offline FILE` an {@link OfflineSource} replaces the captures: the file is checked
 * before anything privileged, its client packets are injected when due on the wall clock, and
 * the process ends by itself after the last pass (see offline.ts).
 */
import { readSecretFile } from "../tunnel/secret_file.ts";
import { importSecret } from "../tunnel/auth.ts";
import type { TcpcopyConfig } from "../cli/config.ts";
import { Engine } from "../engine/engine.ts";
import { openCapture, type OpenedCapture } from "../io/capture.ts";
import { RawIp6Sender, RawIpSender } from "../io/raw_send.ts";
import { LinkSender } from "../io/link_send.ts";
import { type MetricsServer, serveMetrics } from "../metrics/server.ts";
import type { PacketSender } from "../io/batch_sender.ts";
import { IoError } from "../io/errors.ts";
import { sharedReactor } from "../io/reactor.ts";
import { TunnelClient } from "../tunnel/client.ts";
import { Logger } from "../stats/logger.ts";
import { jsonLine, nextStatsDue } from "../stats/json_lines.ts";
import { type TcpcopyCounters, tcpcopyStatsRecord } from "../stats/record.ts";
import { renderPrometheus, TCPCOPY_SCHEMA } from "../stats/prometheus.ts";
import { versionLine } from "../version.ts";
import { engineConfigOf } from "./convert.ts";
import { Replicator } from "./replicator.ts";
import { DeadlineTimer } from "./timer.ts";
import { fileSink, type LineSink, stdioSink } from "./output.ts";
import { MAX_DRAIN_MS, OfflineSource } from "./offline.ts";

/** Exit codes. */
export const EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2;

/** Packets drained per step before the clock is read again. */
const DRAIN_STEP = 2048;
/**
 * A capture ring starts at this many MiB (or -B, when smaller) and doubles up to -B as it fills:
 * the kernel maps the whole ring into the process, so a 64 MiB ring is 64 MiB of RSS from the
 * first packet on.
 */
const FIRST_RING_MIB = 8;

/** User and system CPU seconds of this process (Linux /proc; zeros elsewhere). */
function cpuSeconds(): { user: number; system: number } {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** An address as it is written before `:port` (IPv6 in brackets). */
function bracketed(ip: string): string {
  return ip.includes(":") ? `[${ip}]` : ip;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs tcpcopy until SIGINT/SIGTERM (or a fatal runtime problem); resolves to the exit code. */
export async function runTcpcopy(
  config: TcpcopyConfig,
  selfTargets: readonly string[] = [],
): Promise<number> {
  let secret: CryptoKey | undefined;
  if (config.secretFile !== null) {
    const r = readSecretFile(config.secretFile);
    if (!r.ok) {
      console.error(`tcpcopy: ${r.error}`);
      return EXIT_USAGE;
    }
    secret = await importSecret(r.secret);
    r.secret.fill(0);
  }
  let sink: LineSink;
  if (config.logFile === null) sink = stdioSink("stderr");
  else {
    const opened = fileSink(config.logFile);
    if ("kind" in opened) {
      // a symlink is a refused value of -l (exit 2); an I/O failure is a runtime problem
      console.error(`tcpcopy: -l/--log: cannot open log file: ${opened.message}`);
      return opened.kind === "symlink" ? EXIT_USAGE : EXIT_RUNTIME;
    }
    sink = opened;
  }
  // A progress line (offline replay on a terminal) is cleared before each log line.
  let progressShown = false;
  const clearProgress = () => {
    if (progressShown) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
    progressShown = false;
  };
  const log = new Logger((line) => {
    if (config.logFile === null) clearProgress();
    sink.write(line);
  });
  // SIGHUP (logrotate): reopen the log file; without -l there is nothing to reopen
  const onHup = () => {
    if (sink.reopen === undefined) {
      log.info("SIGHUP: no log file to reopen (use SIGINT or SIGTERM to stop)");
      return;
    }
    const err = sink.reopen();
    if (err) {
      log.error(`SIGHUP: cannot reopen the log file, still writing the old one: ${err.message}`);
    } else log.info("SIGHUP: log file reopened");
  };
  Deno.addSignalListener("SIGHUP", onHup);
  const fatal = (message: string, code = EXIT_RUNTIME): number => {
    log.error(message);
    if (config.logFile !== null) console.error(`tcpcopy: ${message}`);
    return code;
  };
  const stdout = stdioSink("stdout");
  const startMs = Date.now();
  // The engine's clock: monotonic, anchored at the start's wall time. A wall-clock step (NTP)
  // must not make every session look silent for an hour, or freeze its timers.
  const perfStart = performance.now();
  const clock = () => startMs + (performance.now() - perfStart);
  log.info(`${versionLine("tcpcopy")} starting`);
  if (selfTargets.length > 0) {
    log.warn(
      `--allow-self-target: target ${selfTargets.join(", ")} is an address of this host; ` +
        `replay goes to this (production) host`,
    );
  }
  for (const t of config.transfers) {
    log.info(
      `transfer ${t.onlineIp === null ? "*" : bracketed(t.onlineIp)}:${t.onlinePort} -> ` +
        `${bracketed(t.targetIp)}:${t.targetPort}`,
    );
  }

  // 0. Offline: the file is checked first, so a bad one is reported before anything else.
  let offline: OfflineSource | null = null;
  if (config.offline !== null) {
    const source = OfflineSource.open(config.offline);
    if (typeof source === "string") {
      sink.close();
      return fatal(source, EXIT_USAGE);
    }
    offline = source;
    log.info(offline.describe());
  } else {
    log.info(`capture on ${config.interfaces.join(",")} with filter: ${config.filter}`);
  }

  const senders: PacketSender[] = [];
  const captures: OpenedCapture[] = [];
  let tunnel: TunnelClient | null = null;
  const releaseAll = async () => {
    Deno.removeSignalListener("SIGHUP", onHup);
    for (const c of captures) c.close();
    offline?.close();
    for (const s of senders) s.close();
    if (tunnel !== null) await tunnel.close();
    sink.close();
  };

  // 1. Senders (the first privileged step: fails fast without CAP_NET_RAW).
  let v4: PacketSender | null = null, v6: PacketSender | null = null;
  try {
    const maxPacket = 65535; // the replicator keeps packets within -M; slots take any size
    if (config.outInterface !== null) {
      // Link-layer send: one AF_PACKET sender carries both families to the next hop.
      const t = config.transfers[0];
      const nextHopMac = config.nextHopMac ?? t.nextHopMac!;
      const link = LinkSender.open({
        device: config.outInterface,
        nextHopMac,
        srcMac: t.sourceMac ?? undefined,
        maxPacket,
      });
      senders.push(link);
      v4 = v6 = link;
      log.info(`send: link layer on ${config.outInterface} to next hop ${nextHopMac}`);
      if (config.transfers.some((x) => (config.nextHopMac ?? x.nextHopMac) !== nextHopMac)) {
        log.warn("-o: one next-hop MAC is used for every target (the first one given)");
      }
    } else {
      if (config.transfers.some((t) => t.targetFamily === 4)) {
        v4 = RawIpSender.open({ maxPacket });
        senders.push(v4);
      }
      if (config.transfers.some((t) => t.targetFamily === 6)) {
        v6 = RawIp6Sender.open({ maxPacket });
        senders.push(v6);
      }
      log.info(`send: raw ${[v4 && "IPv4", v6 && "IPv6"].filter(Boolean).join(" + ")} socket`);
    }
  } catch (e) {
    await releaseAll();
    return fatal(`cannot open the send socket: ${describe(e)}`);
  }

  const replicator = new Replicator({ v4, v6, log, now: clock, mtu: config.mtu });
  const engine = new Engine(engineConfigOf(config), replicator, startMs);
  replicator.attach(engine);

  // 2. Captures (device and filter problems surface here).
  try {
    for (const device of offline === null ? config.interfaces : []) {
      const cap = openCapture({
        device,
        filter: config.filter,
        snaplen: config.snaplen,
        bufferSize: Math.min(config.bufferMiB, FIRST_RING_MIB) * 1024 * 1024,
        maxBufferSize: config.bufferMiB * 1024 * 1024,
        direction: "in",
      });
      captures.push(cap);
      if (cap.fallbackReason !== undefined) {
        log.warn(`capture on ${device}: no packet ring (${cap.fallbackReason}); using libpcap`);
      }
      log.info(
        `capture on ${device}: ${cap.engine}, ${
          cap.direction === "in" ? "received packets only" : "both directions"
        }`,
      );
    }
  } catch (e) {
    await releaseAll();
    const userFilter = e instanceof IoError && e.kind === "filter" && !config.filterGenerated;
    return fatal(`cannot capture: ${describe(e)}`, userFilter ? EXIT_USAGE : EXIT_RUNTIME);
  }

  // 3. The tunnel to intercept(s).
  let stopping = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => resolveDone = r);
  const timer = new DeadlineTimer(() => engine.nextDeadline(), () => {
    if (stopping) return;
    replicator.tick(clock());
    replicator.flush();
  }, clock);
  const afterWork = () => {
    tunnel?.flush(); // the routes first: intercept should know a tuple before its reply
    replicator.flush();
    timer.arm();
  };
  // The tunnel hands over the records of one read synchronously, one call each: the engine
  // takes them at once, the packets they release go out in one flush after the last record.
  const onReply = (bytes: Uint8Array) => {
    if (!stopping) replicator.onReplyBytes(bytes, clock());
  };
  // the replies of every tunnel read of one reactor round: one flush after the last read
  let repliesPending = false;
  const onReadDone = () => {
    repliesPending = true;
  };
  const removeFlushHook = sharedReactor().afterEvents(() => {
    if (!repliesPending) return;
    repliesPending = false;
    if (!stopping) afterWork();
  });
  try {
    tunnel = await TunnelClient.connect({
      servers: config.intercepts.map((h) => ({ hostname: h.host, port: h.port })),
      connections: config.connections,
      lonely: config.lonely,
      secret,
      onReply,
      onReadDone,
      onAllDown: () =>
        void shutdown(EXIT_RUNTIME, "every intercept connection is gone (use -L to keep running)"),
      log: (line) => log.warn(line),
    });
  } catch (e) {
    removeFlushHook();
    await releaseAll();
    return fatal(`${describe(e)}; is intercept running there? (use -L to start anyway)`);
  }
  replicator.setRoutes(tunnel);
  log.info(`intercept connections up: ${tunnel.connected}`);

  // 4. Stats.
  const counters = (): TcpcopyCounters => {
    let kernelDrops = 0, ifDrops = 0, sent = 0, bufferBytes = 0, waitedMs = 0, stalledDrops = 0;
    for (const c of captures) {
      const s = c.stats();
      kernelDrops += s.dropped;
      ifDrops += s.ifDropped;
      bufferBytes += s.bufferBytes ?? config.bufferMiB * 1024 * 1024;
    }
    const errors: Record<string, number> = {};
    for (const s of senders) {
      sent += s.stats.sent;
      waitedMs += s.stats.waitedMs;
      stalledDrops += s.stats.stalledDrops;
      for (const [k, n] of Object.entries(s.stats.errors)) errors[k] = (errors[k] ?? 0) + n;
    }
    const r = replicator.counters;
    if (r.buildErrors > 0) errors.build = r.buildErrors;
    if (r.noSender > 0) errors.no_sender = r.noSender;
    const cpu = cpuSeconds();
    return {
      engine: engine.stats,
      capture: {
        packets: r.frames,
        kernelDrops,
        ifDrops,
        parseErrors: r.parseErrors + r.truncated,
        bufferBytes,
      },
      send: { packets: sent, errors, waitedMs, stalledDrops },
      intercept: {
        servers: config.intercepts.length,
        connected: tunnel?.connected ?? 0,
        replies: tunnel?.counters.replies ?? 0,
        replyErrors: r.replyErrors + (tunnel?.counters.protocolErrors ?? 0),
        reconnects: tunnel?.counters.reconnects ?? 0,
        routesResent: tunnel?.counters.routesResent ?? 0,
      },
      selfTarget: selfTargets.length > 0,
      process: {
        rssBytes: Deno.memoryUsage().rss,
        cpuUserS: cpu.user,
        cpuSystemS: cpu.system,
      },
    };
  };
  const record = (final: boolean) => {
    const r = tcpcopyStatsRecord(counters(), Date.now(), startMs, final);
    return offline === null ? r : { ...r, offline: offline.stats() };
  };
  let statsTimer: ReturnType<typeof setTimeout> | undefined;
  const scheduleStats = () => {
    const due = nextStatsDue(startMs, Date.now(), config.statsIntervalS);
    if (due === null) return;
    statsTimer = setTimeout(() => {
      if (stopping) return;
      stdout.write(jsonLine(record(false)));
      scheduleStats();
    }, Math.max(1, due - Date.now()));
  };
  scheduleStats();

  let metricsServer: MetricsServer | null = null;
  if (config.metrics !== null) {
    const where = `${config.metrics.host}:${config.metrics.port}`;
    try {
      metricsServer = serveMetrics(
        { hostname: config.metrics.host, port: config.metrics.port },
        () => renderPrometheus(record(false), TCPCOPY_SCHEMA),
      );
      log.info(`metrics on http://${where}/metrics`);
    } catch (e) {
      log.error(`--metrics: cannot listen on ${where}: ${describe(e)}`);
    }
  }

  // 5. Shutdown on signals.
  const onSignal = (name: string) => () => void shutdown(EXIT_OK, `${name} received`);
  const onInt = onSignal("SIGINT"), onTerm = onSignal("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);

  async function shutdown(code: number, why: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    log[code === EXIT_OK ? "info" : "error"](`stopping: ${why}`);
    if (code !== EXIT_OK && config.logFile !== null) console.error(`tcpcopy: ${why}`);
    for (const c of captures) c.stop();
    timer.cancel();
    removeFlushHook();
    if (statsTimer !== undefined) clearTimeout(statsTimer);
    try {
      engine.closeAll("shutdown", clock());
      replicator.flush();
    } catch (e) {
      log.error(`while resetting sessions: ${describe(e)}`);
    }
    stdout.write(jsonLine(record(true)));
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
    const grace = new Promise<void>((r) => setTimeout(r, 500));
    await Promise.race([
      Promise.allSettled([releaseAll(), metricsServer?.close()]),
      grace,
    ]);
    resolveDone(code);
  }

  // 6. The capture loops: one awaited wait per wake-up, then a synchronous drain.
  for (const cap of captures) {
    (async () => {
      const linkType = cap.linkType;
      let now = clock();
      const onPacket = (frame: Uint8Array, tsMicros: number) =>
        replicator.onFrame(frame, linkType, tsMicros, now);
      try {
        while (!stopping) {
          if (!(await cap.wait(1000)) || stopping) break;
          let n: number;
          do {
            now = clock();
            n = cap.drain(onPacket, DRAIN_STEP);
          } while (n === DRAIN_STEP && !stopping);
          if (!stopping) afterWork();
        }
      } catch (e) {
        void shutdown(EXIT_RUNTIME, `capture on ${cap.device} failed: ${describe(e)}`);
      }
    })();
  }
  // 7. Or the offline replay, which ends the process by itself.
  if (offline !== null) {
    const onTerminal = config.logFile === null && Deno.stderr.isTerminal();
    offline.start({
      transfers: engine.config.transfers,
      transfersText: config.transfers.map((t) =>
        `${t.onlineIp === null ? "" : `${bracketed(t.onlineIp)}:`}${t.onlinePort}-` +
        `${bracketed(t.targetIp)}:${t.targetPort}`
      ).join(","),
      drainMs: Math.min(config.sessionTimeoutS * 1000, MAX_DRAIN_MS),
      engineStats: () => engine.stats,
      inject: (p, tsMicros, nowMs) => replicator.onParsed(p, tsMicros, nowMs),
      flush: () => {
        if (!stopping) afterWork();
      },
      stopped: () => stopping,
      now: clock,
      log,
      progress: onTerminal
        ? (line) => {
          if (line === null) return clearProgress();
          Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${line}`));
          progressShown = true;
        }
        : undefined,
      finish: (code, why) => void shutdown(code, why),
    });
  }
  log.info("replicating");
  return await done;
}
