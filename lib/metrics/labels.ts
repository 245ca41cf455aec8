/**
 * Label values in the Prometheus text exposition format (version 0.0.4): a value is written
 * between double quotes, with `\` as `\\`, `"` as `\"` and a line feed as `\n`; every other
 * character (`:`, `[`, `]`, `.`, UTF-8) stands as it is. So a target `10.0.0.2:80` or
 * `[fd00::2]:80` is its own label value, unchanged.
 *
 * @module
 */

/** `value` escaped for use between the double quotes of a label. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** `name="value"` (the value escaped), to put between the braces of a sample. */
export function labelPair(name: string, value: string): string {
  return `${name}="${escapeLabelValue(value)}"`;
}
