/**
 * A replication lab built from network namespaces: the seed's deployment at small scale.
 *
 * ```
 *   client_i ──veth── online_i ──veth──┐
 *   (10.N.i.2)        (10.N.i.1)        │
 *                     (10.N.10i.1) ─────┴── target (10.N.10i.2, one veth per online host)
 * ```
 *
 * Every online host and the target run the same real servers (nginx with an access log, and a
 * server-speaks-first line protocol); tcpcopy runs on each online host, intercept on the
 * target. The target routes each client subnet back through its online host, so spoofed
 * client addresses pass reverse-path checks; intercept drops the replies before they leave.
 * Used by the end-to-end tests and by `./build.sh demo`.
 *
 * With `{ ipv6: true }` the lab is dual-stack: IPv6 stays enabled in every namespace and each
 * link also gets ULA addresses (`fd00:N:i::1/64` ... mirroring the IPv4 plan, no duplicate
 * address detection, so they work at once), with the same routes.
 *
 * @module
 */
import { Cleanup, denoEval, Netns, run, vethPair, waitFor } from "./netns.ts";
import { statTimes } from "../../lib/process/memory.ts";

/** Port of the HTTP server on every host of the lab. */
export const HTTP_PORT = 80;
/** Port of the line-protocol server (server speaks first) on every host of the lab. */
export const LINE_PORT = 7070;

/** One online host with its own client namespace. */
export interface OnlineHost {
  ns: Netns;
  client: Netns;
  /** Address of the online host as its clients see it. */
  ip: string;
  /** Address of its client namespace. */
  clientIp: string;
  /** The online host's interface towards its clients (capture here). */
  clientSideIf: string;
  /** The online host's address on the link towards the target. */
  uplinkIp: string;
  /** IPv6 counterparts of `ip`, `clientIp`, `uplinkIp` (dual-stack labs only). */
  ip6?: string;
  clientIp6?: string;
  uplinkIp6?: string;
}

/** The lab: online hosts, one target, and the folder with every server's logs. */
export interface Lab {
  online: OnlineHost[];
  target: Netns;
  /** Target address on the link to online host 0 (what `-x ...-TARGET:PORT` names). */
  targetIp: string;
  /** Target address per online host link. */
  targetIps: string[];
  /** IPv6 counterparts of `targetIp` and `targetIps` (dual-stack labs only). */
  targetIp6?: string;
  targetIp6s?: string[];
  dir: string;
}

/** Options of {@link buildLab}. */
export interface LabOptions {
  /** Dual-stack: IPv6 enabled and ULA addresses next to the IPv4 ones. */
  ipv6?: boolean;
}

/** Second octet shared by a lab's subnets (10.N.x.y), distinct per lab in one process. */
let nextNet = 100 + Math.floor(Math.random() * 100);

/** Adds an IPv6 address without duplicate address detection (usable at once). */
async function addIp6(ns: Netns, dev: string, cidr: string): Promise<void> {
  await ns.exec(["ip", "-6", "addr", "add", cidr, "dev", dev, "nodad"]);
}

/**
 * Builds the namespaces and links of a lab with `onlineHosts` online hosts (dual-stack with
 * `opts.ipv6`). Everything is torn down by `env`.
 */
export async function buildLab(
  env: Cleanup,
  onlineHosts = 1,
  opts: LabOptions = {},
): Promise<Lab> {
  const n = nextNet++ % 250;
  const v6 = opts.ipv6 === true;
  const nsOpts = { ipv6: v6 };
  const net6 = `fd00:${n.toString(16)}`;
  const dir = await Deno.makeTempDir({ prefix: "tcpcopy-lab-" });
  env.defer(() => Deno.remove(dir, { recursive: true }));
  const target = await env.netns("tgt", nsOpts);
  const online: OnlineHost[] = [];
  const targetIps: string[] = [], targetIp6s: string[] = [];
  for (let i = 1; i <= onlineHosts; i++) {
    const ns = await env.netns(`on${i}`, nsOpts);
    const client = await env.netns(`cl${i}`, nsOpts);
    const ip = `10.${n}.${i}.1`, clientIp = `10.${n}.${i}.2`;
    const { ifA, ifB } = await vethPair(ns, client, ip, clientIp);
    const uplinkIp = `10.${n}.${10 * i}.1`, targetIp = `10.${n}.${10 * i}.2`;
    const up = await vethPair(ns, target, uplinkIp, targetIp);
    await client.exec(["ip", "route", "add", "default", "via", ip]);
    // Replies to this host's clients go back through this online host (where they die, if
    // intercept did not drop them first).
    await target.exec(["ip", "route", "add", `10.${n}.${i}.0/24`, "via", uplinkIp]);
    await ns.exec(["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    const host: OnlineHost = { ns, client, ip, clientIp, clientSideIf: ifA, uplinkIp };
    targetIps.push(targetIp);
    if (v6) {
      host.ip6 = `${net6}:${i}::1`;
      host.clientIp6 = `${net6}:${i}::2`;
      host.uplinkIp6 = `${net6}:${10 * i}::1`;
      const targetIp6 = `${net6}:${10 * i}::2`;
      await addIp6(ns, ifA, `${host.ip6}/64`);
      await addIp6(client, ifB, `${host.clientIp6}/64`);
      await addIp6(ns, up.ifA, `${host.uplinkIp6}/64`);
      await addIp6(target, up.ifB, `${targetIp6}/64`);
      await client.exec(["ip", "-6", "route", "add", "default", "via", host.ip6]);
      await target.exec(["ip", "-6", "route", "add", `${net6}:${i}::/64`, "via", host.uplinkIp6]);
      await ns.exec(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"]);
      targetIp6s.push(targetIp6);
    }
    online.push(host);
  }
  const lab: Lab = { online, target, targetIp: targetIps[0], targetIps, dir };
  if (v6) {
    lab.targetIp6 = targetIp6s[0];
    lab.targetIp6s = targetIp6s;
  }
  return lab;
}

/** An address as written before `:port` or in a URL (IPv6 in brackets). */
export function hostPart(ip: string): string {
  return ip.includes(":") ? `[${ip}]` : ip;
}

/**
 * The nginx configuration of one lab host: `return 200` for every request, with an access log;
 * with `ipv6` it listens on `[::]:port` too.
 */
export function nginxConfig(dir: string, port = HTTP_PORT, ipv6 = false): string {
  const listen6 = ipv6 ? `\n    listen [::]:${port} backlog=4096;` : "";
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_max_body_size 16m;
  client_body_buffer_size 1m;
  server {
    listen ${port} backlog=4096;${listen6}
    location / { return 200 "ok $request_method $request_uri\\n"; }
  }
}
`;
}

/**
 * Starts nginx in `ns` with its own folder `${lab.dir}/${name}`, waits until it accepts
 * connections on `ip` and returns the path of its access log. It also listens on IPv6 when
 * `ipv6` is true (the default when `ip` is an IPv6 address).
 */
export async function startNginx(
  env: Cleanup,
  ns: Netns,
  dir: string,
  ip: string,
  ipv6 = ip.includes(":"),
) {
  await Deno.mkdir(dir, { recursive: true });
  const conf = `${dir}/nginx.conf`;
  await Deno.writeTextFile(conf, nginxConfig(dir, HTTP_PORT, ipv6));
  env.child(ns.spawn(["nginx", "-c", conf, "-e", `${dir}/error.log`], { stderr: "null" }));
  const up = await waitFor(
    async () =>
      (await ns.exec(["bash", "-c", `exec 3<>/dev/tcp/${ip}/${HTTP_PORT}`], { check: false }))
        .code === 0,
    5000,
    50,
  );
  if (!up) {
    throw new Error(`nginx did not start in ${ns.name}: ${await readOr(`${dir}/error.log`)}`);
  }
  return `${dir}/access.log`;
}

/** Starts the line-protocol server (tests/helpers/line_server.ts) in `ns`, logging to `log`. */
export async function startLineServer(env: Cleanup, ns: Netns, ip: string, log: string) {
  const script = new URL("./line_server.ts", import.meta.url).pathname;
  env.child(
    ns.spawn([Deno.execPath(), "run", "-A", "--quiet", script, ip, String(LINE_PORT), log]),
  );
  const up = await waitFor(
    async () =>
      (await ns.exec(["bash", "-c", `exec 3<>/dev/tcp/${ip}/${LINE_PORT}`], { check: false }))
        .code === 0,
    10_000,
    50,
  );
  if (!up) throw new Error(`line server did not start in ${ns.name}`);
}

/** Number of request lines in an access log (0 if it does not exist yet). */
export async function countLines(path: string, match?: RegExp): Promise<number> {
  const text = await readOr(path);
  let count = 0;
  for (const line of text.split("\n")) {
    if (line.length > 0 && (!match || match.test(line))) count++;
  }
  return count;
}

async function readOr(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

/** CPU seconds (user + system) used so far by a process, from /proc/PID/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  const { user, sys } = statTimes(await readOr(`/proc/${pid}/stat`));
  return user + sys;
}

/** Resident memory (MiB) of a process, from /proc/PID/status. */
export async function rssMiB(pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readOr(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Loss ratio as the seed defines it: (online - target) / online, 0 when nothing was sent. */
export function lossRatio(online: number, target: number): number {
  return online === 0 ? 0 : (online - target) / online;
}

/** Runs `ab` in a client namespace (bounded by count and time); returns its completed count. */
export async function ab(
  client: Netns,
  url: string,
  opts: { requests: number; concurrency?: number; keepAlive?: boolean; timeoutS?: number },
): Promise<number> {
  // -t implies -n 50000 unless -n comes after it.
  const args = ["ab", "-q", "-s", "10", "-t", String(opts.timeoutS ?? 30)];
  args.push("-n", String(opts.requests), "-c", String(opts.concurrency ?? 1));
  if (opts.keepAlive) args.push("-k");
  args.push(url);
  const out = await client.exec(args, {
    check: false,
    timeoutMs: (opts.timeoutS ?? 30) * 1000 + 10_000,
  });
  const m = /Complete requests:\s+(\d+)/.exec(out.stdout);
  if (!m) throw new Error(`ab failed: ${out.stderr || out.stdout}`);
  return Number(m[1]);
}

/** Runs a shell command in `ns` and returns stdout (throws on failure). */
export async function sh(ns: Netns, script: string, timeoutMs = 60_000): Promise<string> {
  return (await ns.exec(["bash", "-c", script], { timeoutMs })).stdout;
}

export { run };

/**
 * The command line of a client that pipelines `n` GETs (`/pipe0`..) on one connection to `host`
 * (IPv4 or IPv6) and prints how many answers it read (bounded to 10 s).
 */
export function pipelineClient(host: string, n: number): string[] {
  return denoEval(`
const c = await Deno.connect({ hostname: "${host}", port: ${HTTP_PORT} });
let reqs = "";
for (let i = 0; i < ${n}; i++) reqs += "GET /pipe" + i + " HTTP/1.1\\r\\nHost: x\\r\\n" +
  (i === ${n} - 1 ? "Connection: close\\r\\n" : "") + "\\r\\n";
await c.write(new TextEncoder().encode(reqs));
const buf = new Uint8Array(65536), dec = new TextDecoder();
let got = "", answers = 0;
const end = Date.now() + 10000;
while (answers < ${n} && Date.now() < end) {
  const k = await c.read(buf);
  if (k === null) break;
  got += dec.decode(buf.subarray(0, k));
  answers = got.split("HTTP/1.1 200").length - 1;
}
console.log(answers);
c.close();`);
}
