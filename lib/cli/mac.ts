/** Ethernet MAC addresses as typed by users (`aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`). */

/** Parses a MAC address into lowercase colon form, or null. */
export function parseMac(text: string): string | null {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6) return null;
  if (!parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return null;
  return parts.join(":").toLowerCase();
}

/** Converts a canonical MAC string into its six bytes. */
export function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(":").map((p) => parseInt(p, 16)));
}
