/**
 * What a web page of another site can make a browser do to a proxy on 127.0.0.1 with no client
 * token (the default of `deno task cluster`), each as a review reproduced it: a stored text/html
 * value opened on the proxy's origin ran its script and read the page's admin token; a "simple"
 * text/plain POST /kv from another origin wrote and deleted keys (CSRF); a name re-pointed at
 * 127.0.0.1 (DNS rebinding) read every key. Real processes; the browser part runs in headless
 * Chromium (Debian's `chromium`) and is skipped, saying so, when it is missing.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { chromium } from "playwright-core";
import { join } from "@std/path";
import { ADMIN_TOKEN, ProcessCluster } from "./helpers/process_cluster.ts";
import { spawnServer } from "./helpers/process.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
const SCRIPT_VALUE =
  '<script>document.title = "PWN:" + sessionStorage.getItem("ringkv-token")</script>';

async function put(url: string, key: string, body: string, contentType: string) {
  const res = await fetch(`${url}/kv/${key}`, {
    method: "PUT",
    body,
    headers: { "content-type": contentType },
    signal: AbortSignal.timeout(10_000),
  });
  await res.body?.cancel();
  assert(res.ok, `PUT ${key}: ${res.status}`);
}

/** An HTTP/1.1 request written by hand, to send a Host that fetch() would not. */
async function rawStatus(port: number, request: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    const line = new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0]!;
    return Number(line.split(" ")[1]);
  } finally {
    conn.close();
  }
}

Deno.test({
  name:
    "a proxy on 127.0.0.1 answers a rebinding Host 403, takes --allowed-hosts names, refuses another site's writes and serves values sandboxed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await ProcessCluster.create();
    try {
      const n1 = await cluster.startNode("n1");
      const proxy = await cluster.startProxy("p1", ["--nodes", n1.url]);
      const listed = await cluster.startProxy("p2", [
        "--nodes",
        n1.url,
        "--allowed-hosts",
        "kv.internal",
      ]);
      const port = Number(new URL(proxy.url).port);
      const get = (host: string, p = port) =>
        rawStatus(p, `GET /kv?prefix= HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assertEquals(await get(`rebind.attacker.example:${port}`), 403);
      assertEquals(await get(`kv.internal:${port}`), 403, "not listed on p1");
      assertEquals(await get(`localhost:${port}`), 200);
      const listedPort = Number(new URL(listed.url).port);
      assertEquals(await get(`kv.internal:${listedPort}`, listedPort), 200, "listed on p2");

      const csrf = await fetch(`${proxy.url}/kv`, {
        method: "POST",
        body: '{"set":{"csrf/planted":"x"}}',
        headers: { "content-type": "text/plain", origin: "http://evil.example" },
      });
      assertEquals(csrf.status, 403);
      assertMatch((await csrf.json()).error.message, /another site/);
      const planted = await fetch(`${proxy.url}/kv/csrf/planted`);
      await planted.body?.cancel();
      assertEquals(planted.status, 404, "nothing written");

      await put(proxy.url, "evil", SCRIPT_VALUE, "text/html");
      const value = await fetch(`${proxy.url}/kv/evil`);
      assertEquals(await value.text(), SCRIPT_VALUE, "the value itself is unchanged");
      assertEquals(value.headers.get("content-type"), "text/html");
      assertEquals(value.headers.get("content-security-policy"), "default-src 'none'; sandbox");
      assertEquals(value.headers.get("x-content-type-options"), "nosniff");
      // A 304 refreshes a copy the browser keeps: it says the same (or the old copy runs).
      const revalidated = await fetch(`${proxy.url}/kv/evil`, {
        headers: { "if-none-match": value.headers.get("etag")! },
      });
      await revalidated.body?.cancel();
      assertEquals(revalidated.status, 304);
      assertEquals(
        revalidated.headers.get("content-security-policy"),
        "default-src 'none'; sandbox",
      );
      const page = await fetch(`${proxy.url}/`);
      await page.body?.cancel();
      assertEquals(page.headers.get("x-frame-options"), "DENY");
      // A browser of before 2020 sends no Origin on a form's POST, but says where it came from.
      const form = await fetch(`${proxy.url}/kv`, {
        method: "POST",
        body: '{"set":{"csrf/form":"x"}}',
        headers: { "content-type": "text/plain", "sec-fetch-site": "cross-site" },
      });
      assertEquals(form.status, 403);
      await form.body?.cancel();

      // A node without a cluster secret (loopback only) takes neither either.
      const bare = await spawnServer({
        script: new URL("../node/main.ts", import.meta.url),
        args: ["--id", "nb", "--port", "0", "--data", join(cluster.dir, "nb")],
        env: {},
      });
      try {
        const nodePort = Number(new URL(bare.url).port);
        assertEquals(await get(`rebind.attacker.example:${nodePort}`, nodePort), 403);
        const ingest = await fetch(`${bare.url}/internal/ingest`, {
          method: "POST",
          body: "{}",
          headers: { "content-type": "text/plain", origin: "http://evil.example" },
        });
        assertEquals(ingest.status, 403);
        await ingest.body?.cancel();
      } finally {
        await bare.stop();
      }
    } finally {
      await cluster.stop();
    }
  },
});

Deno.test({
  name: hasChromium
    ? "in a browser: a stored text/html value runs no script on the proxy's origin, another site's page cannot write, a rebound name reads nothing"
    : `web attacks in a browser (skipped: ${CHROMIUM} is not installed; apt-get install chromium)`,
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await ProcessCluster.create();
    // The other site: a page on another port of 127.0.0.1 (another origin, same address space).
    const attacker = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("<title>elsewhere</title>", { headers: { "content-type": "text/html" } }),
    );
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1",
      ],
    });
    try {
      const n1 = await cluster.startNode("n1");
      const proxy = await cluster.startProxy("p1", ["--nodes", n1.url]);
      await put(proxy.url, "evil", SCRIPT_VALUE, "text/html");
      await put(proxy.url, "secrets/db", "hunter2", "text/plain");
      const page = await browser.newPage();

      // Logged in to the web page, then the stored value opened in the same tab.
      await page.goto(`${proxy.url}/`);
      await page.fill("#token", ADMIN_TOKEN);
      await page.click("#connect");
      await page.waitForFunction(`sessionStorage.getItem("ringkv-token") !== null`);
      await page.goto(`${proxy.url}/kv/evil`);
      assert(
        !(await page.title()).startsWith("PWN"),
        `the value's script ran: ${await page.title()}`,
      );

      // A page of another site sends the simple POST a form or no-cors fetch can send.
      await page.goto(`http://127.0.0.1:${attacker.addr.port}/`);
      const sent = await page.evaluate(async (url) => {
        await fetch(`${url}/kv`, {
          method: "POST",
          mode: "no-cors",
          headers: { "content-type": "text/plain" },
          body: '{"set":{"csrf/planted":"x"},"delete":["secrets/db"]}',
        });
        return true;
      }, proxy.url);
      assert(sent);
      const planted = await fetch(`${proxy.url}/kv/csrf/planted`);
      await planted.body?.cancel();
      assertEquals(planted.status, 404, "another site's page wrote a key");
      const kept = await fetch(`${proxy.url}/kv/secrets/db`);
      assertEquals([kept.status, await kept.text()], [200, "hunter2"], "and deleted one");

      // DNS rebinding: the attacker's name resolves to 127.0.0.1.
      const port = new URL(proxy.url).port;
      const rebound = await page.goto(`http://rebind.attacker.test:${port}/kv/secrets/db`);
      assertEquals(rebound?.status(), 403);
      assert(!(await page.content()).includes("hunter2"));
    } finally {
      await browser.close();
      await attacker.shutdown();
      await cluster.stop();
    }
  },
});
