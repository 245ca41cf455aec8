/** Ethernet MAC addresses as typed by users (`aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`). */
import { formatMac, parseMac as macOf } from "../wire/addr.ts";

/** Parses a MAC address into lowercase colon form, or null (lib/wire/addr.ts parses it). */
export function parseMac(text: string): string | null {
  const bytes = macOf(text);
  return bytes === null ? null : formatMac(bytes);
}
