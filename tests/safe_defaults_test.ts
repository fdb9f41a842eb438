/**
 * Safe defaults on real processes: a proxy or node asked to listen beyond loopback
 * without its token refuses to start and says what to set; with `--cert`/`--key` both
 * serve https, and the proxy talks https to nodes it trusts through `--ca`.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { runToEnd, type ServerProcess, spawnServer } from "./helpers/process.ts";
import { selfSigned } from "./helpers/self_signed.ts";

const NODE = new URL("../node/main.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);

Deno.test("a node or proxy on a non-loopback address without its token refuses to start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-bind-" });
  try {
    const node = await runToEnd({
      script: NODE,
      args: ["--host", "0.0.0.0", "--port", "0", "--data", join(dir, "n1")],
      timeoutMs: 20_000,
    });
    assertEquals(node.code, 2);
    assertMatch(node.stderr, /Cannot start the node on 0\.0\.0\.0.*--cluster-secret/);
    const proxy = await runToEnd({
      script: PROXY,
      args: ["--host", "0.0.0.0", "--port", "0", "--data", join(dir, "p"), "--nodes", "http://x"],
      env: { RINGKV_CLUSTER_SECRET: "s" },
      timeoutMs: 20_000,
    });
    assertEquals(proxy.code, 2);
    assertMatch(proxy.stderr, /Cannot start the proxy on 0\.0\.0\.0.*--admin-token/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with --cert and --key the proxy and nodes serve https end to end", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-tls-" });
  const running: ServerProcess[] = [];
  const files = await selfSigned(dir);
  if (files === undefined) {
    console.warn("SKIPPED: openssl is not installed, so no self-signed certificate can be made");
    await Deno.remove(dir, { recursive: true });
    return;
  }
  const tls = ["--cert", files.cert, "--key", files.key];
  const env = { RINGKV_CLUSTER_SECRET: "tls-secret", RINGKV_ADMIN_TOKEN: "tls-admin" };
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(files.cert)] });
  try {
    for (const id of ["n1", "n2"]) {
      running.push(
        await spawnServer({
          script: NODE,
          args: ["--id", id, "--port", "0", "--data", join(dir, id), ...tls],
          env,
        }),
      );
    }
    assert(running.every((n) => n.url.startsWith("https://")), "nodes announce https URLs");
    const proxy = await spawnServer({
      script: PROXY,
      args: [
        ...["--port", "0", "--data", join(dir, "proxy"), ...tls, "--ca", files.cert],
        ...["--nodes", running.map((n) => n.url).join(",")],
      ],
      env,
    });
    running.push(proxy);
    assert(proxy.url.startsWith("https://"), proxy.url);
    for (let i = 0; i < 10; i++) {
      const put = await fetch(`${proxy.url}/kv/tls/${i}`, { method: "PUT", body: `v${i}`, client });
      assertEquals(put.status, 201, await put.text());
    }
    const list = await fetch(`${proxy.url}/kv?prefix=tls/`, { client });
    assertEquals((await list.json()).keys.length, 10);
    const view = await fetch(`${proxy.url}/cluster`, {
      client,
      headers: { authorization: "Bearer tls-admin" },
    });
    const nodes = (await view.json()).nodes as { state: string }[];
    assertEquals(nodes.map((n) => n.state), ["up", "up"]);
    // Without the CA, a client cannot talk to the node: the certificate is not trusted.
    const untrusted = await fetch(`${running[0]!.url}/health`).then(() => "ok", () => "refused");
    assertEquals(untrusted, "refused");
  } finally {
    client.close();
    for (const p of running.toReversed()) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
