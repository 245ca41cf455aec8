/** Prints benchmark results as an aligned Markdown table (ready for the README). */
export function printTable(head: string[], rows: string[][]): void {
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => "| " + r.map((c, i) => c.padEnd(width[i])).join(" | ") + " |";
  console.log(line(head));
  console.log(line(width.map((w) => "-".repeat(w))));
  for (const r of rows) console.log(line(r));
}
