/**
 * tcpcopy's send path, opened at start (the first privileged step: it fails fast without
 * CAP_NET_RAW): `-o DEV` one AF_PACKET sender to the next hop for both families, otherwise a raw
 * IPv4 and/or IPv6 socket for the target families the transfers name.
 */
import type { TcpcopyConfig } from "../cli/config.ts";
import type { PacketSender } from "../io/batch_sender.ts";
import { RawIp6Sender, RawIpSender } from "../io/raw_send.ts";
import { LinkSender } from "../io/link_send.ts";
import type { Logger } from "../stats/logger.ts";

/** The opened senders: `all` to close and count, `v4`/`v6` by family (null = none). */
export interface Senders {
  all: PacketSender[];
  v4: PacketSender | null;
  v6: PacketSender | null;
}

/**
 * Opens the senders into `out` (so the caller closes what was opened when a later one throws);
 * throws when one cannot be opened.
 */
export function openSenders(config: TcpcopyConfig, log: Logger, out: Senders): void {
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
    out.all.push(link);
    out.v4 = out.v6 = link;
    log.info(`send: link layer on ${config.outInterface} to next hop ${nextHopMac}`);
    if (config.transfers.some((x) => (config.nextHopMac ?? x.nextHopMac) !== nextHopMac)) {
      log.warn("-o: one next-hop MAC is used for every target (the first one given)");
    }
    return;
  }
  if (config.transfers.some((t) => t.targetFamily === 4)) {
    out.v4 = RawIpSender.open({ maxPacket });
    out.all.push(out.v4);
  }
  if (config.transfers.some((t) => t.targetFamily === 6)) {
    out.v6 = RawIp6Sender.open({ maxPacket });
    out.all.push(out.v6);
  }
  log.info(`send: raw ${[out.v4 && "IPv4", out.v6 && "IPv6"].filter(Boolean).join(" + ")} socket`);
}
