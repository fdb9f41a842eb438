/**
 * The web page in headless Chromium (Debian's `chromium`, driven by playwright-core; no
 * browser is downloaded): token, three nodes and the ring, the live feed of changes, a node
 * added with the CLI, the rebalancing on the page, then four nodes; the live feed at the proxy's
 * stream cap (503), after `reset` and `compacted`, and on a /watch that never answers. Screenshots go to a temp directory whose
 * path the test prints; it is removed when the test passes, unless RINGKV_KEEP_SHOTS=1 (kept
 * when it fails, to look at). Skipped, saying so, when /usr/bin/chromium is missing.
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "@std/assert";
import { join } from "@std/path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { ADMIN_TOKEN, loadKeys, ProcessCluster, SECRET } from "./helpers/process_cluster.ts";
import { runToEnd, type ServerProcess, spawnServer } from "./helpers/process.ts";
import { until } from "./helpers/poll.ts";
import { openSse, type SseReader } from "./helpers/sse.ts";
import { DEFAULT_MAX_WATCHERS } from "../proxy/http/watch_route.ts";
import { formatVersion } from "../shared/version.ts";
import { jsonQuoted as cliJsonQuoted, quoted as cliQuoted } from "../tasks/kv_output.ts";

/** The page's copies of the CLI's quoting (tasks/kv_output.ts), called in the page. */
declare function quoted(text: string): string;
declare function jsonQuoted(text: string): string;

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
const KV = new URL("../tasks/kv.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);

async function launch(profile: string) {
  return await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 760 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A browser test: `fn` gets a cluster (its temporary directory) and Chromium with its profile in
 * that directory, both stopped after it, even when it fails; without Chromium the test is skipped
 * and its name, `skipped`, says why.
 */
function browserTest(
  name: string,
  skipped: string,
  fn: (cluster: ProcessCluster, browser: BrowserContext) => Promise<void>,
): void {
  Deno.test({
    name: hasChromium ? name : `${skipped} (skipped: ${CHROMIUM} is not installed)`,
    ignore: !hasChromium,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const cluster = await ProcessCluster.create();
      const browser = await launch(join(cluster.dir, "chromium-profile"));
      try {
        await fn(cluster, browser);
      } finally {
        await browser.close();
        await cluster.stop();
      }
    },
  });
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();

Deno.test({
  name: hasChromium
    ? "the web page shows the ring, nodes and live changes, then a CLI-added node's rebalancing, then four nodes"
    : `the web page in a browser (skipped: ${CHROMIUM} is not installed; apt-get install chromium)`,
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await ProcessCluster.create();
    const shots = await Deno.makeTempDir({ prefix: "ringkv-ui-shots-" });
    const browser = await launch(join(cluster.dir, "chromium-profile"));
    let paused: number | undefined;
    let passed = false;
    try {
      const proxy = await cluster.startAll(3);
      await loadKeys(proxy.url, "key-", 2000);
      const page = await browser.newPage();
      await page.goto(`${proxy.url}/`);
      assertMatch(await text(page, "#login"), /data\/admin-token.*RINGKV_ADMIN_TOKEN/s);
      await page.fill("#token", ADMIN_TOKEN);
      await page.click("#connect");
      await page.waitForFunction(`document.querySelectorAll("#nodes tr").length === 3`);
      await page.waitForSelector("#ring path.arc");
      // One arc per node (its share of the hash space), not one per virtual node.
      const owners = await page.$$eval("#ring path.arc", (ps) => ps.map((p) => p.dataset.node));
      assertEquals(owners, ["n1", "n2", "n3"], "one arc per node");
      assertMatch(await text(page, "#rebalancing"), /No rebalancing/);

      // The live feed (GET /watch read with fetch): a put and a delete made after it opened.
      await page.waitForFunction(`document.querySelector("#feed") !== null`);
      for (let i = 0; i < 30; i++) {
        const put = await fetch(`${proxy.url}/kv/live%2F1`, { method: "PUT", body: "hi" });
        assert(put.status === 200 || put.status === 201, `PUT answered ${put.status}`);
        await put.body?.cancel();
        const shown = await page.waitForFunction(
          `/put live\\/1 = "hi"/.test(document.querySelector("#feed").textContent)`,
          undefined,
          { timeout: 1000 },
        ).then(() => true, () => false);
        if (shown) break;
      }
      assertMatch(await text(page, "#feed"), /put live\/1 = "hi"/);
      // Each line's time is when the page got the change: the delete, 1.2 s after the put and a
      // one-round-trip write on it (its version keeps the put's milliseconds), shows a later one.
      await new Promise((r) => setTimeout(r, 1200));
      const del = await fetch(`${proxy.url}/kv/live%2F1`, { method: "DELETE" });
      assertEquals(del.status, 204);
      await page.waitForFunction(
        `/del live\\/1/.test(document.querySelector("#feed").textContent)`,
      );
      const times = await page.$$eval(
        "#feed li.change .time",
        (ts) => ts.map((t) => t.textContent),
      );
      assertNotEquals(times[0], times[1], "the delete's time is not the put's");

      await page.fill("#lookup-key", "key-7");
      await page.click("#lookup-go");
      await page.waitForFunction(
        `/owned by/.test(document.querySelector("#lookup-result").textContent)`,
      );
      const lookup = await text(page, "#lookup-result");
      // Every replica of the key is named (3 with the default replica count).
      const named = [...lookup.matchAll(/(n[123]) \(http/g)].map((m) => m[1]!);
      assertEquals(named.length, 3, lookup);
      await page.waitForSelector("#ring .key-point");
      const highlighted = await page.$$eval(
        "#ring path.arc.owner",
        (ps) => ps.map((p) => p.dataset.node),
      );
      assertEquals(highlighted.sort(), named.sort(), "the key's owners' arcs are highlighted");
      await page.screenshot({ path: join(shots, "1-three-nodes.png") });
      // A narrow window: one column, nothing wider than the window.
      await page.setViewportSize({ width: 380, height: 800 });
      const overflow = await page.evaluate(
        `document.documentElement.scrollWidth - document.documentElement.clientWidth`,
      );
      assertEquals(overflow, 0, "no horizontal scrolling at 380 px");
      const ringBox = (await page.locator("#ring").boundingBox())!;
      assert(ringBox.width <= 380 && ringBox.width > 200, `ring ${ringBox.width} px wide`);
      await page.screenshot({ path: join(shots, "1b-narrow.png"), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 760 });

      // n1 paused: the rebalancing cannot finish until it runs again, so the page sees it.
      const n4 = await cluster.startNode("n4");
      paused = cluster.nodes.get("n1")!.pid;
      Deno.kill(paused, "SIGSTOP");
      const add = runToEnd({
        script: KV,
        args: ["add", n4.url, "--url", proxy.url, "--timeout-ms", "60000"],
        env: { RINGKV_ADMIN_TOKEN: ADMIN_TOKEN },
        timeoutMs: 120_000,
      });
      await page.waitForFunction(
        `/Adding n4/.test(document.querySelector("#rebalancing").textContent)`,
        undefined,
        { timeout: 60_000 },
      );
      assertMatch(await text(page, "#rebalancing"), /keys moved/);
      await page.screenshot({ path: join(shots, "2-rebalancing.png") });
      Deno.kill(paused, "SIGCONT");
      paused = undefined;

      const result = await add;
      assertEquals(result.code, 0, result.stderr);
      await page.waitForFunction(
        `document.querySelectorAll("#nodes tr").length === 4 &&
          /No rebalancing/.test(document.querySelector("#rebalancing").textContent)`,
        undefined,
        { timeout: 60_000 },
      );
      const rows = await page.$$eval("#nodes tr", (trs) => trs.map((tr) => tr.dataset.node));
      assertEquals(rows, ["n1", "n2", "n3", "n4"]);
      assert((await text(page, "#nodes tr[data-node=n4]")).includes("up"));
      await page.screenshot({ path: join(shots, "3-four-nodes.png") });
      passed = true;
    } finally {
      if (paused !== undefined) Deno.kill(paused, "SIGCONT");
      await browser.close();
      await cluster.stop();
      if (passed && Deno.env.get("RINGKV_KEEP_SHOTS") !== "1") {
        await Deno.remove(shots, { recursive: true });
      } else {
        console.log(`screenshots in ${shots}`);
      }
    }
  },
});

browserTest(
  "the web page's live feed on a proxy with a client token asks for it, then shows changes",
  "the web page's live feed with a client token",
  async (cluster, browser) => {
    const clientToken = "ui-client-token-0123456789";
    const n1 = await cluster.startNode("n1");
    const proxy = await cluster.startProxy("p1", [
      ...["--nodes", n1.url, "--client-token", clientToken],
    ]);
    const page = await browser.newPage();
    await page.goto(`${proxy.url}/`);
    await page.fill("#token", ADMIN_TOKEN);
    await page.click("#connect");
    // /watch refuses the admin token here: the feed asks for the client token.
    await page.waitForSelector("#client-token-form", { timeout: 30_000 });
    assertMatch(await text(page, "#client-token-form"), /client token/);
    assertEquals(await page.locator("#feed .asks-token").count(), 1, "the feed asked for it");
    await page.fill("#client-token", clientToken);
    await page.click("#client-token-form button");
    await page.waitForFunction(`document.querySelector("#client-token-form") === null`);
    // The line that asked for the token goes with the form (review: it stayed, in red).
    assertEquals(await page.locator("#feed .asks-token").count(), 0);
    // A put made once the feed is open shows in it (bounded: one put a second, 30 at most).
    const shown = `/put live\\/2 = "yo"/.test(document.querySelector("#feed").textContent)`;
    let seen = false;
    for (let i = 0; i < 30 && !seen; i++) {
      const put = await fetch(`${proxy.url}/kv/live/2`, {
        method: "PUT",
        body: "yo",
        headers: { authorization: `Bearer ${clientToken}` },
        signal: AbortSignal.timeout(10_000),
      });
      assert(put.ok, `PUT ${put.status}`);
      await put.body?.cancel();
      seen = await page.waitForFunction(shown, undefined, { timeout: 1000 }).then(
        () => true,
        () => false,
      );
    }
    assert(seen, await text(page, "#feed"));
  },
);

/** Logs in to the page at `url` with the admin token, which starts its live feed. */
/**
 * A new page logged in at `url` with the admin token; with `clock`, its timers run on
 * Playwright's clock from the start (the test moves it).
 */
async function openPage(browser: BrowserContext, url: string, options: { clock?: boolean } = {}) {
  const page = await browser.newPage();
  if (options.clock) await page.clock.install();
  await page.goto(`${url}/`);
  await page.fill("#token", ADMIN_TOKEN);
  await page.click("#connect");
  return page;
}

/** Puts `key` once a second (30 at most) until the page's feed shows it; false if it never does. */
async function feedShows(page: Page, proxyUrl: string, key: string): Promise<boolean> {
  const shown = `document.querySelector("#feed").textContent.includes("put ${key} = ")`;
  for (let i = 0; i < 30; i++) {
    const put = await fetch(`${proxyUrl}/kv/${key}`, {
      method: "PUT",
      body: "v",
      signal: AbortSignal.timeout(10_000),
    });
    assert(put.ok, `PUT ${put.status}`);
    await put.body?.cancel();
    const seen = await page.waitForFunction(shown, undefined, { timeout: 1000 }).then(
      () => true,
      () => false,
    );
    if (seen) return true;
  }
  return false;
}

browserTest(
  "the web page's live feed retries a 503 of a proxy at its stream cap for as long as it lasts, then shows changes",
  "the web page's live feed at the stream cap",
  async (cluster, browser) => {
    const held: SseReader[] = [];
    try {
      const proxy = await cluster.startAll(1);
      // The proxy's cap (no flag sets it): every stream it allows, held open by this test.
      for (let i = 0; i < DEFAULT_MAX_WATCHERS; i++) {
        const reader = await openSse(`${proxy.url}/watch?prefix=held/`);
        held.push(reader);
        assertEquals(reader.status, 200, `stream ${i}`);
      }
      const over = await openSse(`${proxy.url}/watch?prefix=held/`);
      await over.stop();
      assertEquals(over.status, 503, "the cap is reached");

      let refused = 0;
      const page = await openPage(browser, proxy.url);
      page.on("response", (res) => {
        if (new URL(res.url()).pathname === "/watch" && res.status() === 503) refused++;
      });
      await page.waitForFunction(`/live feed unavailable: 503/.test(
        document.querySelector("#feed").textContent)`);
      // More 503s than the 20 tries after which the page used to give up for good.
      await until(() => `the page's 21st try (${refused} so far)`, () => refused > 20, 90_000, 100);
      await held.pop()!.stop();
      assert(await feedShows(page, proxy.url, "after-cap"), await text(page, "#feed"));
    } finally {
      await Promise.all(held.map((reader) => reader.stop()));
    }
  },
);

browserTest(
  "the web page's live feed starts from the present after reset, and resumes from compacted's id",
  "the web page's live feed after reset and compacted",
  async (cluster, browser) => {
    const proxy = await cluster.startAll(1);
    // A reset needs 50,000 keys waiting for a replica: the first two streams are written
    // here, in the proxy's frame format (proxy/watch/watch_group.ts), the rest is the proxy's.
    const streams = [
      `id: cursor-before\ndata: {"key":"crafted/1","version":"v1","value":"a"}\n\n` +
      `event: reset\ndata: {"reason":"crafted reset"}\n\n`,
      `id: cursor-present\nevent: compacted\ndata: {"reason":"crafted compacted"}\n\n`,
    ];
    const sent: (string | undefined)[] = [];
    await browser.route("**/watch", async (route) => {
      const headers = route.request().headers();
      sent.push(headers["last-event-id"]);
      const body = streams[sent.length - 1];
      if (body !== undefined) {
        await route.fulfill({ status: 200, contentType: "text/event-stream", body });
        return;
      }
      // The crafted cursor means nothing to the proxy: from here on the real stream.
      delete headers["last-event-id"];
      await route.continue({ headers });
    });
    const page = await openPage(browser, proxy.url);
    await page.waitForFunction(`/compacted: crafted compacted/.test(
        document.querySelector("#feed").textContent)`);
    await until(() => `the page's third stream (${sent.length} so far)`, () => sent.length >= 3);
    const feedText = await text(page, "#feed");
    assertMatch(feedText, /put crafted\/1 = "a"/);
    assertMatch(feedText, /reset: crafted reset/);
    assertEquals(sent[0], undefined, "the first stream starts from the present");
    assertEquals(sent[1], undefined, "after a reset, from the present: no Last-Event-ID");
    assertEquals(sent[2], "cursor-present", "after compacted, from its id (the present)");
    assert(await feedShows(page, proxy.url, "after-reset"), await text(page, "#feed"));
  },
);

browserTest(
  "the web page's live feed gives up a /watch that says nothing for 15 s and opens it again",
  "the web page's live feed on a silent proxy",
  async (cluster, browser) => {
    const proxy = await cluster.startAll(1);
    // The first /watch never answers (a proxy that hangs, or a middlebox holding the request);
    // the page's timers run on Playwright's clock, which jumps when the test says (real time
    // moves it only by the few seconds the test takes).
    let watches = 0;
    await browser.route("**/watch", async (route) => {
      if (++watches === 1) return; // never fulfilled
      await route.continue();
    });
    const page = await openPage(browser, proxy.url, { clock: true });
    await until(() => "the page's first /watch", () => watches >= 1);
    await page.clock.fastForward(14_000);
    assert(!(await text(page, "#feed")).includes("no answer in 15 s"), "given up before 15 s");
    assertEquals(watches, 1, "not given up before 15 s");
    await page.clock.fastForward(1_500);
    await page.waitForFunction(`/no answer in 15 s/.test(
        document.querySelector("#feed").textContent)`);
    await page.clock.fastForward(1_500); // the pause before it tries again
    await until(() => `the page's second /watch (${watches} so far)`, () => watches >= 2);
    await page.clock.resume();
    assert(await feedShows(page, proxy.url, "after-silence"), await text(page, "#feed"));
  },
);

/** The lines of the page's live feed, newest first. */
const feedLines = (page: Page) =>
  page.$$eval("#feed li", (lis) => lis.map((li) => li.textContent ?? ""));

browserTest(
  "the web page's live feed shows when each change came, keys and values as the CLI prints them, cut by code points, and an outage as one counted line",
  "the web page's live feed lines",
  async (cluster, browser) => {
    const proxy = await cluster.startAll(1);
    // Writes 3 s and 7 s apart, sent in one burst (as after a reconnect), in the proxy's format.
    const t0 = Date.UTC(2026, 0, 2, 3, 4, 5);
    const at = (ms: number) => formatVersion(t0 + ms, 0, "n1");
    const longKey = "long/" + "k".repeat(999);
    const emojiValue = "x".repeat(58) + "😀" + "more";
    const events = [
      { key: "timed/1", version: at(0), value: "a" },
      { key: "timed/2", version: at(3_000), value: "b" },
      { key: "timed/3", version: at(7_000), deleted: true },
      { key: longKey, version: at(8_000), value: "long" },
      { key: 'a = "fake" ', version: at(9_000), value: "real" },
      { key: "evil\u202Etxt.exe", version: at(9_000), value: "x\u202Ey" },
      { key: "emoji", version: at(9_000), value: emojiValue },
    ];
    const crafted = events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("");
    let mode: "crafted" | "down" | "up" = "crafted";
    let failed = 0;
    await browser.route("**/watch", async (route) => {
      if (mode === "crafted") {
        mode = "down";
        await route.fulfill({ status: 200, contentType: "text/event-stream", body: crafted });
      } else if (mode === "down") {
        failed++;
        await route.abort("failed");
      } else {
        await route.continue();
      }
    });
    const page = await openPage(browser, proxy.url, { clock: true });
    await page.waitForFunction(`document.querySelectorAll("#feed li.change").length === 7`);
    const lines = await feedLines(page);
    const line = (start: string) => lines.find((l) => l.includes(start)) ?? `(no ${start})`;

    // Each line has the time the page got it, not its version's (a proxy's one-round-trip write
    // keeps its base's milliseconds): the burst's lines show one time, none of the versions'.
    const versionTimes = await page.evaluate(
      (ms) => ms.map((m) => new Date(m).toLocaleTimeString()),
      [t0, t0 + 3_000, t0 + 7_000],
    );
    const shown = ["put timed/1 ", "put timed/2 ", "del timed/3"].map((l) =>
      line(l).split("  ")[0]
    );
    assertEquals(new Set(shown).size, 1, `one time for the burst: ${shown}`);
    assert(!versionTimes.includes(shown[0]!), `${shown[0]} is not a version's time`);

    // Keys and values as `kv watch` prints them: quoted when odd, invisible ones escaped.
    assertMatch(line('put "a = '), /put "a = \\"fake\\" " = "real"$/);
    assertMatch(line('put "evil'), /put "evil\\u202etxt\.exe" = "x\\u202ey"$/);
    assert(!lines.join("").includes("\u202E"), "no bidi override reaches the page");
    const samples = [
      "users/1",
      "my key",
      "",
      'a = "fake" ',
      "evil\u202Etxt",
      "tab\tx",
      "\u2028",
      "é",
      "😀",
      "\u00A0",
      "back\\slash",
      "\u200B",
      "\uFEFFbom",
      "\u0085",
    ];
    const inPage = await page.evaluate(
      (texts) => texts.map((t) => [quoted(t), jsonQuoted(t)]),
      samples,
    );
    assertEquals(inPage, samples.map((t) => [cliQuoted(t), cliJsonQuoted(t)]), "the CLI's rule");

    // Values cut at 60 code points (the emoji whole), keys at 80, each marked by "…".
    assertMatch(line("put emoji"), new RegExp(`= "x{58}😀m"…$`));
    assert(!line("put emoji").includes("\uFFFD"), line("put emoji"));
    assertMatch(line('put "long/'), /put "long\/k{75}"… = "long"$/);
    assert(!line("put timed/1 ").includes("…"), "an uncut value has no ellipsis");
    for (const width of [1280, 380]) {
      await page.setViewportSize({ width, height: 760 });
      const overflow = await page.evaluate(
        `document.documentElement.scrollWidth - document.documentElement.clientWidth`,
      );
      assertEquals(overflow, 0, `no horizontal scrolling at ${width} px`);
    }
    await page.setViewportSize({ width: 1280, height: 760 });

    // An outage of 25 tries (one a second) is one line with a count: the changes stay.
    for (let tries = 0; failed < 25 && tries < 100; tries++) {
      const before = failed;
      await page.clock.fastForward(1_000);
      await until(() => `a try after ${before}`, () => failed > before, 10_000, 20);
    }
    const down = await feedLines(page);
    assertEquals(
      down.filter((l) => l.includes("put ") || l.includes("del ")).length,
      7,
      down.join("\n"),
    );
    const errors = down.filter((l) => l.includes("Failed to fetch"));
    assertEquals(errors.length, 1, down.join("\n"));
    const count = Number(/\((\d+) times since/.exec(errors[0]!)?.[1]);
    assert(count >= 25, errors[0]);
    mode = "up";
    await page.clock.resume();
    assert(await feedShows(page, proxy.url, "after-outage"), await text(page, "#feed"));
  },
);

browserTest(
  "the web page shows a proxy's 403 (no admin token) without asking for tokens; a refused token stops its calls and feed, and a new login starts one feed",
  "the web page's token handling",
  async (cluster, browser) => {
    let bare: ServerProcess | undefined;
    try {
      const proxy = await cluster.startAll(1);
      const n1 = cluster.nodes.get("n1")!;
      bare = await spawnServer({
        script: PROXY,
        args: ["--port", "0", "--data", join(cluster.dir, "bare"), "--nodes", n1.url],
        env: { RINGKV_CLUSTER_SECRET: SECRET, RINGKV_ADMIN_TOKEN: "" },
      });
      const calls: string[] = [];
      const failed: string[] = [];
      browser.on("request", (req) => calls.push(new URL(req.url()).pathname));
      browser.on("requestfailed", (req) => failed.push(new URL(req.url()).pathname));
      const callsSince = (from: number, path: string) =>
        calls.slice(from).filter((p) => p === path).length;

      // No admin token on the proxy: its own message, no token box, whatever the tab holds.
      const page = await browser.newPage();
      await page.goto(`${bare.url}/`);
      await page.evaluate(`sessionStorage.setItem("ringkv-token", "typed-before")`);
      await page.reload();
      await page.waitForFunction(`/the proxy has no admin token/.test(document.body.innerText)`);
      assertMatch(await text(page, "#refused"), /--admin-token.*RINGKV_ADMIN_TOKEN/s);
      assertEquals(await page.locator("#token").isVisible(), false, "no token box");
      const mark = calls.length;
      await page.click("#retry");
      await page.waitForFunction(`/the proxy has no admin token/.test(document.body.innerText)`);
      await new Promise((r) => setTimeout(r, 2_000));
      assertEquals(callsSince(mark, "/cluster"), 1, "one call per try, no loop");
      assertEquals(await page.evaluate(`sessionStorage.getItem("ringkv-token")`), "typed-before");
      await page.close();

      // A refused token: the token box, and the page stops polling and closes its feed.
      const app = await openPage(browser, proxy.url);
      assert(await feedShows(app, proxy.url, "before-refusal"), await text(app, "#feed"));
      await app.evaluate(`sessionStorage.setItem("ringkv-client-token", "client")`);
      const watchFailed = failed.filter((p) => p === "/watch").length;
      await app.evaluate(`sessionStorage.setItem("ringkv-token", "wrong-token")`);
      await app.waitForFunction(`/The token was refused/.test(document.body.innerText)`);
      await until(
        () => "the feed's stream to be closed",
        () => failed.filter((p) => p === "/watch").length > watchFailed,
        10_000,
      );
      const hidden = calls.length;
      await new Promise((r) => setTimeout(r, 2_500));
      assertEquals(calls.slice(hidden), [], "no call from the hidden page");
      assertEquals(
        await app.evaluate(`[sessionStorage.getItem("ringkv-token"),
          sessionStorage.getItem("ringkv-client-token")]`),
        [null, null],
      );

      // Logged in again: one feed, not two.
      const login = calls.length;
      await app.fill("#token", ADMIN_TOKEN);
      await app.click("#connect");
      assert(await feedShows(app, proxy.url, "after-login"), await text(app, "#feed"));
      await new Promise((r) => setTimeout(r, 2_500));
      assertEquals(callsSince(login, "/watch"), 1, "one /watch since the login");
    } finally {
      await bare?.stop();
    }
  },
);
