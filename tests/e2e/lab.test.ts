/** The replication lab itself: servers answer, access logs count, routes are symmetric. */
import assert from "node:assert/strict";
import { isRoot, withNetns } from "../helpers/netns.ts";
import {
  ab,
  buildLab,
  countLines,
  HTTP_PORT,
  LINE_PORT,
  sh,
  startLineServer,
  startNginx,
} from "../helpers/lab.ts";

Deno.test({
  name: "lab: clients reach the online server, the target is reachable, logs count requests",
  ignore: !isRoot(),
  fn: () =>
    withNetns(async (env) => {
      const lab = await buildLab(env, 1);
      const on = lab.online[0];
      const onlineLog = await startNginx(env, on.ns, `${lab.dir}/online`, on.ip);
      const targetLog = await startNginx(env, lab.target, `${lab.dir}/target`, lab.targetIp);
      assert.equal(await ab(on.client, `http://${on.ip}:${HTTP_PORT}/a`, { requests: 50 }), 50);
      assert.equal(await countLines(onlineLog, /GET \/a /), 50);
      assert.equal(await countLines(targetLog), 0);
      // The online host reaches the target, and the target routes the client subnet back.
      const body = await sh(on.ns, `curl -s http://${lab.targetIp}:${HTTP_PORT}/b`);
      assert.equal(body, "ok GET /b\n");
      const route = await sh(lab.target, `ip route get ${on.clientIp}`);
      assert.match(route, new RegExp(`via ${on.uplinkIp.replaceAll(".", "\\.")}`));
      // The server-speaks-first protocol answers its client.
      const lineLog = `${lab.dir}/line-online.log`;
      await startLineServer(env, on.ns, on.ip, lineLog);
      const client = new URL("../helpers/line_client.ts", import.meta.url).pathname;
      const answered = await on.client.exec([
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        client,
        on.ip,
        String(LINE_PORT),
        "3",
        "4",
        "t",
      ]);
      assert.equal(answered.stdout.trim(), "12");
      assert.equal(await countLines(lineLog, /^REQ t-/), 12);
    }),
});
