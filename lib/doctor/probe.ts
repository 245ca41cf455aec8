/**
 * The send-path probe of `tcpcopy doctor -x ... -s ...`: one SYN, counted on both ends.
 *
 * It registers a route for a probe client with every intercept, sends one SYN from that client
 * to the target through the same raw IP socket tcpcopy uses, and waits for the target's answer
 * to come back through intercept. A SYN-ACK (or RST: port closed) proves the whole path: the
 * packet left this host, reached the target, the target answered, and intercept captured the
 * answer and routed it here. The half-open connection is released with an RST.
 *
 * @module
 */
import { RawIpSender } from "../io/raw_send.ts";
import { TunnelClient } from "../tunnel/client.ts";
import { addressPair, buildTcpPacket, tcpPacketLength, type TcpPacketRepr } from "../wire/build.ts";
import { ParsedTcp, parseIpTcp } from "../wire/packet.ts";
import { parseIp } from "../wire/addr.ts";
import { TcpFlags } from "../wire/tcp.ts";
import type { Verdict } from "./checks.ts";

/** What to probe. */
export interface ProbeRequest {
  target: { addr: string; port: number };
  intercepts: { host: string; port: number }[];
  /** Probe client address; default: this host's source address towards the target. */
  clientAddr?: string;
  timeoutMs?: number;
  /** The tunnel's shared secret (an intercept with --secret-file refuses the probe without). */
  secret?: CryptoKey;
}

/** The source address the kernel picks towards `target` (`ip route get`). */
export async function sourceAddressFor(target: string): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("ip", {
      args: ["route", "get", target],
      stdout: "piped",
      stderr: "null",
    }).output();
    return /\bsrc (\S+)/.exec(new TextDecoder().decode(out.stdout))?.[1];
  } catch {
    return undefined;
  }
}

/** The probe client, its first sequence number and what came back. */
interface Probe {
  id: string;
  client: { addr: string; port: number };
  iss: number;
  started: number;
  answer?: { flags: number; ms: number };
}

/** A failed check with its fix. */
function failed(id: string, summary: string, fix: string): Verdict {
  return { id, status: "fail", summary, fix };
}

/** Sends one probe SYN and judges what came back. Never throws. */
export async function probeSendPath(req: ProbeRequest): Promise<Verdict> {
  const id = `probe:${req.target.addr}:${req.target.port}`;
  if (req.target.addr.includes(":")) {
    return { id, status: "warn", summary: "the probe supports IPv4 targets only" };
  }
  const src = req.clientAddr ?? await sourceAddressFor(req.target.addr);
  if (!src) return failed(id, `no route to ${req.target.addr}`, `ip route get ${req.target.addr}`);
  const probe: Probe = {
    id,
    client: { addr: src, port: 40000 + Math.floor(Math.random() * 20000) },
    iss: Math.floor(Math.random() * 0xffffffff) >>> 0,
    started: performance.now(),
  };
  const problem = await runProbe(req, probe);
  if (problem !== undefined) return problem;
  return judgeAnswer(req, probe);
}

/**
 * Connects the tunnel, registers the probe route, sends the SYN and waits for the answer (in
 * `probe.answer`); a verdict when the probe could not be made, undefined when it was.
 */
async function runProbe(req: ProbeRequest, probe: Probe): Promise<Verdict | undefined> {
  const { id, client } = probe;
  const parsed = new ParsedTcp();
  let tunnel: TunnelClient | undefined;
  let sender: RawIpSender | undefined;
  try {
    tunnel = await TunnelClient.connect({
      servers: req.intercepts.map((i) => ({ hostname: i.host, port: i.port })),
      connections: 1,
      secret: req.secret,
      onReply: (bytes) => {
        if (parseIpTcp(bytes, 0, parsed) !== null) return;
        if (parsed.dstText() !== client.addr || parsed.dstPort !== client.port) return;
        probe.answer ??= { flags: parsed.flags, ms: performance.now() - probe.started };
      },
    });
    if (tunnel.connected === 0) {
      return failed(
        id,
        "no intercept accepted the tunnel connection",
        "start intercept on the target (intercept --port PORT) and check -s",
      );
    }
    const route = [client, req.target].map(({ addr, port }) => {
      const ip = parseIp(addr);
      return { addr: typeof ip === "string" ? new Uint8Array(4) : ip.bytes, port };
    });
    tunnel.addRoute(route[0], route[1]);
    await new Promise((r) => setTimeout(r, 50)); // let the route reach intercept first
    sender = RawIpSender.open();
    await sendSyn(req, probe, sender);
    const errors = Object.entries(sender.stats.errors);
    if (errors.length > 0) {
      return failed(
        id,
        `the kernel refused the probe SYN: ${errors.map(([k, v]) => `${k} x${v}`).join(", ")}`,
        "EPERM: an OUTPUT rule on this host; ENETUNREACH: no route to the target; or send " +
          "at the link layer with -o DEV --next-hop-mac MAC",
      );
    }
    tunnel.delRoute(route[0], route[1]);
  } catch (e) {
    return failed(id, `probe failed: ${e instanceof Error ? e.message : String(e)}`, "run as root");
  } finally {
    sender?.close();
    await tunnel?.close();
  }
  return undefined;
}

/** The SYN, the wait for its answer, and an RST that releases a half-open connection. */
async function sendSyn(req: ProbeRequest, probe: Probe, sender: RawIpSender): Promise<void> {
  const send = (repr: TcpPacketRepr) => {
    buildTcpPacket(repr, sender.slot(tcpPacketLength(repr)));
    sender.flush();
  };
  const base = {
    ...addressPair(probe.client.addr, req.target.addr), // throws on a bad address: "probe failed"
    srcPort: probe.client.port,
    dstPort: req.target.port,
    window: 65535,
  };
  send({
    ...base,
    seq: probe.iss,
    ack: 0,
    flags: TcpFlags.SYN,
    options: { mss: 1460, sackPermitted: false, sackBlocks: [], unknown: [] },
  });
  const deadline = probe.started + (req.timeoutMs ?? 2000);
  while (probe.answer === undefined && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  if (probe.answer !== undefined && (probe.answer.flags & TcpFlags.RST) === 0) {
    send({ ...base, seq: (probe.iss + 1) >>> 0, ack: 0, flags: TcpFlags.RST });
  }
}

/** The verdict on what came back: SYN-ACK pass, RST warn, nothing fail. */
function judgeAnswer(req: ProbeRequest, probe: Probe): Verdict {
  const { id, client, answer } = probe;
  if (answer === undefined) {
    return failed(
      id,
      `probe SYN ${client.addr}:${client.port} -> ${req.target.addr}:${req.target.port} sent, ` +
        `no answer came back through intercept within ${req.timeoutMs ?? 2000} ms`,
      "on the target: is the SYN seen (tcpdump -ni any port " + req.target.port +
        ")? If not, this host's routing/iptables/conntrack or anti-spoofing on the way drops " +
        "it (try -o DEV, or -c with a routed range). If it is, intercept does not get the " +
        "reply: intercept --port " + req.target.port + " on the target, or route the client " +
        "range to the assistant host",
    );
  }
  const what = answer.flags & TcpFlags.RST ? "RST (port closed on the target)" : "SYN-ACK";
  return {
    id,
    status: answer.flags & TcpFlags.RST ? "warn" : "pass",
    summary: `probe SYN answered: ${what} came back through intercept in ` +
      `${answer.ms.toFixed(1)} ms`,
    fix: answer.flags & TcpFlags.RST
      ? `start the server on ${req.target.addr}:${req.target.port}`
      : undefined,
  };
}
