/**
 * The tunnel under attack end to end: intercept (NFQUEUE) on the target and tcpcopy on the
 * online host both run with --secret-file; from the online host, an attacker with plain
 * sockets asks for a payload prefix and registers the real clients' tuples, and a tcpcopy
 * with a wrong secret tries to connect, while real HTTP traffic is replicated. The real
 * tcpcopy must keep every reply (loss 0), the attacker must get nothing, and intercept's
 * stats must say what happened.
 */
import assert from "node:assert/strict";
import { denoCmd, isRoot, waitFor, withNetns } from "../helpers/netns.ts";
import { ab } from "../helpers/lab.ts";
import {
  HTTP_PORT,
  readText,
  served,
  settle,
  startReplication,
  stopTcpcopy,
} from "../helpers/replication.ts";

const ATTACKER = new URL("../helpers/tunnel_attacker.ts", import.meta.url);

Deno.test({
  name:
    "tunnel security e2e: with --secret-file, a hijacker and a wrong secret get nothing; loss 0",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const dir = await Deno.makeTempDir({ prefix: "tunnel-sec" });
      env.defer(() => Deno.remove(dir, { recursive: true }));
      const secret = `${dir}/secret`, wrong = `${dir}/wrong`;
      await Deno.writeTextFile(secret, "e2e shared secret, 32 bytes long\n", { mode: 0o600 });
      await Deno.writeTextFile(wrong, "another secret of the same size.\n", { mode: 0o600 });
      await Deno.chmod(secret, 0o600);
      await Deno.chmod(wrong, 0o600);
      const rep = await startReplication(env, {
        interceptArgs: ["--secret-file", secret, "--stats-interval", "1"],
        tcpcopyArgs: () => ["--secret-file", secret],
      });
      const on = rep.online[0];
      const target = rep.lab.targetIps[0];
      const attack = (args: string[]) =>
        on.ns.exec(denoCmd(ATTACKER, args)).then((r) => JSON.parse(r.stdout.trim()));
      // the attacker registers the client's likely ports (the ephemeral range) while traffic runs
      const hijack = attack(["hijack", target, "36524", on.clientIp, "32768", "2000"]);
      const traffic = ab(on.client, `http://${on.ip}:${HTTP_PORT}/sec`, {
        requests: 500,
        concurrency: 4,
      });
      const [h, requests] = await Promise.all([hijack, traffic]);
      assert.deepEqual(h, { closed: true, bytes: 0 }, "the hijacker was closed, got nothing");
      const w = await attack(["secret", target, "36524", wrong]);
      assert.equal(w.connected, 0);
      assert.match(w.error, /cannot authenticate/);

      const online = await served(on.accessLog);
      assert.equal(online, requests);
      const got = await settle(() => served(rep.targetLog, /GET \/sec /), online);
      assert.equal(got, online, "loss ratio must be 0");
      const stop = await stopTcpcopy(on.tcpcopy);
      assert.equal(stop.code, 0, stop.log);

      // intercept's stats line: protected, two authenticated connections, the attacks counted
      let last: Record<string, unknown> | undefined;
      await waitFor(async () => {
        const lines = (await readText(rep.intercept.out)).split("\n").filter((l) =>
          l.startsWith("{")
        );
        last = lines.length ? JSON.parse(lines.at(-1)!) : undefined;
        const p = last?.peers as Record<string, number> | undefined;
        return p !== undefined && p.auth_failed >= 2;
      }, 5000);
      assert.ok(last, "intercept printed stats");
      console.log(`[intercept stats] ${JSON.stringify(last)}`);
      assert.deepEqual(last.security, { auth: "secret", allow: "any" });
      const peers = last.peers as Record<string, number>;
      assert.equal(peers.auth_ok, 2, "tcpcopy's -C 2 connections");
      assert.equal(peers.auth_required, 1, "the hijacker");
      assert.equal(peers.auth_failed, 2, "the wrong secret's two connections");
      assert.equal(last.routes_contested, 0, "the hijacker never got to register a route");
      const log = await readText(rep.intercept.err);
      assert.doesNotMatch(log, /tunnel open to anyone/);
    }),
});

Deno.test({
  name: "tunnel security e2e: without --allow or --secret-file intercept warns at start",
  ignore: !isRoot(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withNetns(async (env) => {
      const rep = await startReplication(env, {
        deferTcpcopy: true,
        interceptArgs: ["--stats-interval", "1"],
      });
      const ok = await waitFor(
        async () => /\[warn\].*tunnel open to anyone/.test(await readText(rep.intercept.err)),
        5000,
      );
      assert.ok(ok, await readText(rep.intercept.err));
      await waitFor(async () => (await readText(rep.intercept.out)).includes('"security"'), 5000);
      const line = (await readText(rep.intercept.out)).split("\n").find((l) => l.startsWith("{"))!;
      assert.deepEqual(JSON.parse(line).security, { auth: "none", allow: "any" });
    }),
});
