/**
 * Which captured packets come from an online server (`--compare` captures both directions):
 * source port and address of a transfer's online endpoint, and not also addressed to one
 * (a client packet wins: only server→client packets are kept away from the engine).
 *
 * @module
 */
import type { Transfer } from "../engine/config.ts";
import { endpointOf, sameAddr } from "../engine/endpoint.ts";

interface Online {
  /** Empty: any address. */
  addr: Uint8Array;
  port: number;
}

const ANY = new Uint8Array(0);

/** See the module comment. */
export class OnlineMatcher {
  readonly #online: readonly Online[];
  /**
   * Every transfer's online port (-1 past the transfers): a captured packet is first told
   * apart by its ports, no endpoint object read (`isAnswer` runs for every captured packet).
   */
  readonly #ports: Int32Array;

  constructor(transfers: readonly Transfer[]) {
    this.#online = transfers.map((t) => {
      const a = t.online.addr;
      const any = a === "" || a === "0.0.0.0" || a === "::";
      return { addr: any ? ANY : endpointOf(a, 0).addr, port: t.online.port };
    });
    this.#ports = Int32Array.from(this.#online, (o) => o.port);
  }

  /** `addr:port` is an online endpoint of a transfer. */
  matches(addr: Uint8Array, port: number): boolean {
    const ports = this.#ports;
    for (let i = 0; i < ports.length; i++) {
      if (ports[i] !== port) continue;
      const a = this.#online[i].addr;
      if (a.length === 0 || sameAddr(a, addr)) return true;
    }
    return false;
  }

  /** A packet from an online server to a client (and not to an online endpoint). */
  isAnswer(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number): boolean {
    return this.matches(src, srcPort) && !this.matches(dst, dstPort);
  }
}

/**
 * The online endpoints of the transfers with a protocol module (their server→client packets
 * carry production's verdict on logins) and of all transfers, or null when no transfer has a
 * module.
 */
export function moduleOnlineOf(
  transfers: readonly Transfer[],
): { modules: OnlineMatcher; all: OnlineMatcher } | null {
  const withModule = transfers.filter((t) => t.module !== undefined);
  if (withModule.length === 0) return null;
  return { modules: new OnlineMatcher(withModule), all: new OnlineMatcher(transfers) };
}
