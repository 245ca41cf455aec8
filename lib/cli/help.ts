/** The `tcpcopy --help` text, generated from the flag table. */
import { FLAGS } from "./options.ts";

/** Renders the help text (usage, every flag with an example, exit codes). */
export function renderHelp(): string {
  const lines = [
    "tcpcopy: replicate live TCP traffic from this (online) host to a target server.",
    "",
    "Usage: tcpcopy -x [onlineIP:]onlinePort-targetIP:targetPort -s intercept[:port] [options]",
    "       tcpcopy doctor [--json] [-x ...] [-s ...] [-i ...] [--secret-file FILE]   check this host's set-up",
    "",
    "Example: replicate port 80 to 10.0.0.2:8080, intercept running on 10.0.0.2:",
    "  sudo tcpcopy -x 80-10.0.0.2:8080 -s 10.0.0.2 -c 10.1.2.x",
    "",
    "Options:",
  ];
  for (const f of FLAGS) {
    if (f.reserved) continue;
    const names = `${f.short ? `-${f.short}, ` : "    "}--${f.long}${f.arg ? ` ${f.arg}` : ""}`;
    lines.push(`  ${names}`);
    lines.push(`      ${f.help}`);
    if (f.example) lines.push(`      e.g. ${f.example}`);
  }
  lines.push(
    "",
    "Output: one JSON stats object per line on stdout (every --stats-interval seconds and at",
    "exit); log lines on stderr or --log FILE.",
    "Exit codes: 0 done (SIGINT/SIGTERM), 1 runtime problem (intercept unreachable, no",
    "privilege, missing device), 2 bad command line.",
  );
  return lines.join("\n");
}
