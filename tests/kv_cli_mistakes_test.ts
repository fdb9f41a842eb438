/**
 * `deno task kv` given a `--url` that is no proxy URL or a zero timeout: a usage error
 * (exit 2) that names the flag, not "Cannot reach" (exit 4, as if the proxy were down).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { runToEnd } from "./helpers/process.ts";

const KV = new URL("../tasks/kv.ts", import.meta.url);

Deno.test("deno task kv refuses a --url that is not http(s) or has a path, and --timeout-ms 0 with exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--url", "not-a-url"], /^Cannot use --url not-a-url: give the proxy's URL/],
    [["--url", "127.0.0.1:8080"], /^Cannot use --url 127\.0\.0\.1:8080: give the proxy's URL/],
    [["--url", "http://127.0.0.1:8080", "--timeout-ms", "0"], /^Cannot use --timeout-ms 0/],
    // The path /kv was read into every key (QA: `--url http://host/kv get a` looked for "kv/a");
    // another path is a proxy mounted there behind a load balancer.
    [
      ["--url", "http://127.0.0.1:8080/kv"],
      /^Cannot use --url http:\/\/127\.0\.0\.1:8080\/kv: give the proxy's URL, http:\/\/127\.0\.0\.1:8080 /,
    ],
  ];
  for (const [flags, message] of cases) {
    const r = await runToEnd({ script: KV, args: ["get", "k", ...flags], timeoutMs: 60_000 });
    assertEquals(r.code, 2, r.stderr);
    assertMatch(r.stderr, message);
  }
});

Deno.test("deno task kv names the variable a refused --url or --timeout-ms came from", async () => {
  // QA: RINGKV_URL=notaurl was refused as "Cannot use --url notaurl", a flag never typed.
  const cases: [Record<string, string>, RegExp][] = [
    [{ RINGKV_URL: "notaurl" }, /\(--url was read from RINGKV_URL\)$/m],
    [{ RINGKV_KV_TIMEOUT_MS: "-5" }, /\(--timeout-ms was read from RINGKV_KV_TIMEOUT_MS\)$/m],
  ];
  for (const [env, message] of cases) {
    const r = await runToEnd({ script: KV, args: ["get", "k"], env, timeoutMs: 60_000 });
    assertEquals(r.code, 2, r.stderr);
    assertMatch(r.stderr, message);
  }
});

Deno.test("deno task kv refuses a token no Bearer header can carry with exit 2, before any call", async () => {
  // Port 9 (discard) is never a proxy: a token let through would end in "Cannot reach" (exit 4).
  const cases: [string[], Record<string, string>, RegExp][] = [
    [
      ["--client-token", "a b"],
      {},
      /^Cannot use --client-token \(or RINGKV_CLIENT_TOKEN\): it contains/,
    ],
    [[], { RINGKV_CLIENT_TOKEN: "tok\u00e9n" }, /^Cannot use --client-token .*: it contains/],
    [["--token", "x y"], {}, /^Cannot use --token \(or RINGKV_ADMIN_TOKEN\): it contains/],
  ];
  for (const [flags, env, message] of cases) {
    const r = await runToEnd({
      script: KV,
      args: ["get", "k", "--url", "http://127.0.0.1:9", ...flags],
      env,
      timeoutMs: 60_000,
    });
    assertEquals(r.code, 2, r.stderr);
    assertMatch(r.stderr, message);
  }
});

Deno.test("deno task kv add takes a fractional --weight as the admin API does, and refuses one out of range with exit 2", async () => {
  const run = (weight: string) =>
    runToEnd({
      script: KV,
      args: ["add", "http://127.0.0.1:9", "--weight", weight, "--url", "http://127.0.0.1:9"],
      env: { RINGKV_ADMIN_TOKEN: "t0ken" },
      timeoutMs: 60_000,
    });
  for (const weight of ["0", "-1", "abc", "101", ""]) {
    const r = await run(weight);
    assertEquals(r.code, 2, r.stderr);
    assertMatch(r.stderr, /^Cannot use --weight .*: it must be a number > 0 and <= 100/);
  }
  // 1.5 passes the check and goes out: port 9 is no proxy, so it cannot be reached (exit 4).
  const fractional = await run("1.5");
  assertEquals(fractional.code, 4, fractional.stderr);
  assertMatch(fractional.stderr, /^Cannot reach http:\/\/127\.0\.0\.1:9/);
});

Deno.test("deno task kv whose reader stops early (kv get k | head -c 1, kv ls | head -1) exits 0 quietly, not 1 (not found) with a stack trace", async () => {
  // The stand-in proxy answers once the reader is gone, so every write meets a closed pipe.
  const { promise: readerGone, resolve: goneNow } = Promise.withResolvers<void>();
  const big = "k\n".repeat(200_000);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await readerGone;
    const url = new URL(req.url);
    if (url.pathname === "/kv") {
      const keys = Array.from({ length: 1000 }, (_, i) => `key/${i}`);
      return Response.json({ keys, cursor: null });
    }
    return new Response(big, { headers: { "content-type": "text/plain" } });
  });
  try {
    for (const args of [["get", "k"], ["ls"]]) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", KV.pathname, ...args, "--url", `http://127.0.0.1:${server.addr.port}`],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      try {
        await child.stdout.cancel();
        goneNow();
        const stderr = new TextDecoder().decode(
          new Uint8Array(await new Response(child.stderr).arrayBuffer()),
        );
        const { code } = await child.status;
        assertEquals([code, stderr], [0, ""], args.join(" "));
      } finally {
        clearTimeout(timer);
      }
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("deno task kv refuses a flag given to a command it does nothing for with exit 2, before any call", async () => {
  // Port 9 (discard) is never a proxy: a flag let through would end in "Cannot reach" (exit 4).
  const cases: [string[], RegExp][] = [
    [["get", "k", "--ttl", "5s"], /^Cannot use --ttl with get: it is for put only/],
    [["get", "k", "--if-match", "v"], /^Cannot use --if-match with get: it is for put, del only/],
    [["del", "k", "--if-none-match"], /^Cannot use --if-none-match with del: it is for put only/],
    [["ls", "--no-wait"], /^Cannot use --no-wait with ls: it is for add, remove only/],
    [["watch", "--prefix=users/"], /^Cannot use --prefix with watch: .*\(watch takes PREFIX/],
    [["nodes", "--force"], /^Cannot use --force with nodes: it is for remove only/],
    [["get", "k", "--after", "c1"], /^Cannot use --after with get: it is for watch only/],
  ];
  for (const [args, message] of cases) {
    const r = await runToEnd({
      script: KV,
      args: [...args, "--url", "http://127.0.0.1:9"],
      env: { RINGKV_ADMIN_TOKEN: "t0ken" },
      timeoutMs: 60_000,
    });
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertMatch(r.stderr, message);
  }
  // The flags of the command itself, and any word after --, still go out (exit 4 here).
  const fits = await runToEnd({
    script: KV,
    args: ["put", "k", "--ttl", "5s", "--url", "http://127.0.0.1:9", "--", "--prefix"],
    timeoutMs: 60_000,
  });
  assertEquals(fits.code, 4, fits.stderr);
});

Deno.test("deno task kv watch refuses an --after no header can carry with exit 2, before any call", async () => {
  // Port 9 (discard) is never a proxy: a cursor let through would end in "Cannot reach" (exit 4).
  for (const after of ["a b", "", "caf\u00e9"]) {
    const r = await runToEnd({
      script: KV,
      args: ["watch", "p/", "--after", after, "--url", "http://127.0.0.1:9"],
      timeoutMs: 60_000,
    });
    assertEquals(r.code, 2, `${after}: ${r.stderr}`);
    assertMatch(r.stderr, /^Cannot use --after ".*": give the id of an event/);
  }
});

Deno.test("deno task kv names a long key by its start and size, and refuses one no URL can carry with exit 6 before any call", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => Response.json({ error: { code: "not_found", message: "absent" } }, { status: 404 }),
  );
  try {
    for (const command of ["get", "put", "del"]) {
      const args = command === "put"
        ? [command, "k".repeat(5000), "v"]
        : [command, "k".repeat(5000)];
      const r = await runToEnd({
        script: KV,
        args: [...args, "--url", `http://127.0.0.1:${server.addr.port}`],
        timeoutMs: 60_000,
      });
      assertEquals(r.code, 1, r.stderr);
      assertMatch(r.stderr, /^Cannot \w+ "k{80}\.\.\." \(5000 bytes\): 404 absent\n$/);
    }
  } finally {
    await server.shutdown();
  }
  // 120 kB of URL: fetch itself refused it, which read as "Cannot reach" (exit 4), 120 kB long.
  const r = await runToEnd({
    script: KV,
    args: ["get", "\u00e9".repeat(20_000), "--url", "http://127.0.0.1:9"],
    timeoutMs: 60_000,
  });
  assertEquals(r.code, 6, r.stderr);
  assertMatch(
    r.stderr,
    /^Cannot use key "\u00e9{80}\.\.\." \(40000 bytes\): its URL is 120004 bytes, a proxy takes at most 8192\n$/,
  );
});

Deno.test("deno task kv remove is not forced by RINGKV_FORCE (the proxy's --force), only by --force or RINGKV_KV_FORCE", async () => {
  const paths: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    paths.push(url.pathname + url.search);
    return Response.json({ error: { code: "not_found", message: "no node" } }, { status: 404 });
  });
  try {
    const cases: [string[], Record<string, string>][] = [
      [[], { RINGKV_FORCE: "true" }],
      [["--force"], {}],
      [[], { RINGKV_KV_FORCE: "true" }],
    ];
    for (const [flags, env] of cases) {
      const r = await runToEnd({
        script: KV,
        args: ["remove", "n9", ...flags, "--url", `http://127.0.0.1:${server.addr.port}`],
        env: { RINGKV_ADMIN_TOKEN: "t0ken", ...env },
        timeoutMs: 60_000,
      });
      assertEquals(r.code, 1, r.stderr);
    }
  } finally {
    await server.shutdown();
  }
  // A forced removal reads /cluster first (what it may end); unread, the DELETE still goes.
  assertEquals(paths, [
    "/cluster/nodes/n9",
    "/cluster",
    "/cluster/nodes/n9?force=true",
    "/cluster",
    "/cluster/nodes/n9?force=true",
  ]);
});

Deno.test("deno task kv's call deadline is --timeout-ms or RINGKV_KV_TIMEOUT_MS, not the proxy's RINGKV_TIMEOUT_MS", async () => {
  // A server that answers only when the test ends: kv gives up after its own deadline first.
  const release = Promise.withResolvers<void>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async () => {
      await release.promise;
      return new Response("late");
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  const run = (env: Record<string, string>) =>
    runToEnd({ script: KV, args: ["get", "k", "--url", url], env, timeoutMs: 60_000 });
  try {
    const own = await run({ RINGKV_KV_TIMEOUT_MS: "300" });
    assertEquals(own.code, 4, own.stderr);
    assertMatch(own.stderr, /300 ms/);
    // The proxy's variable is not kv's: read as kv's, its 1 ms would have been the deadline.
    const proxys = await run({ RINGKV_TIMEOUT_MS: "1", RINGKV_KV_TIMEOUT_MS: "400" });
    assertEquals(proxys.code, 4, proxys.stderr);
    assertMatch(proxys.stderr, /400 ms/);
  } finally {
    release.resolve();
    await server.shutdown();
  }
});

Deno.test("deno task kv add waits 6 times --timeout-ms, then says the change may have been made and how to see it", async () => {
  // Review: a proxy whose member hangs answered the add after 12.7 s; kv gave up at 10 s with
  // "Cannot reach" while the add ran.
  const release = Promise.withResolvers<void>();
  let asked = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    asked = performance.now();
    await release.promise;
    return Response.json({ epoch: 2, nodes: [], rebalancing: null }, { status: 202 });
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}`;
    const started = performance.now();
    const add = await runToEnd({
      script: KV,
      args: ["add", "http://127.0.0.1:7004", "--no-wait", "--url", url, "--timeout-ms", "300"],
      env: { RINGKV_ADMIN_TOKEN: "t0ken" },
      timeoutMs: 60_000,
    });
    assertEquals(add.code, 4, add.stderr);
    assertMatch(add.stderr, /no answer within 1800 ms\. The proxy may have made the change/);
    assertMatch(add.stderr, /deno task kv status/);
    assert(asked > 0 && performance.now() - started >= 1800, "kv waited its 6 timeouts");
  } finally {
    release.resolve();
    await server.shutdown();
  }
});

Deno.test("deno task kv remove of the node being added says its add was cancelled; a drain says nothing of the kind", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    // The proxy's 202: the cluster view, with no rebalancing after a cancel.
    const cancelled = new URL(req.url).pathname.endsWith("/n4");
    const rebalancing = cancelled ? null : { kind: "remove", nodeId: "n3", phase: "copying" };
    return Response.json({ epoch: 7, nodes: [], rebalancing }, { status: 202 });
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}`;
    const remove = (id: string) =>
      runToEnd({
        script: KV,
        args: ["remove", id, "--no-wait", "--url", url],
        env: { RINGKV_ADMIN_TOKEN: "t0ken" },
        timeoutMs: 60_000,
      });
    const cancel = await remove("n4");
    assertEquals(cancel.code, 0, cancel.stderr);
    assertEquals(cancel.stderr, 'The add of node "n4" was cancelled.\n');
    const drain = await remove("n3");
    assertEquals(
      [drain.code, drain.stderr],
      [0, 'The removal of node "n3" runs; `deno task kv status` shows its progress.\n'],
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("deno task kv remove --force says another node's running change was cancelled or finished first", async () => {
  let phase = "copying";
  const reads: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    reads.push(`${req.method} ${path}`);
    // Before: node n3 is being drained; after the forced removal of n2, that removal runs.
    const rebalancing = req.method === "GET"
      ? { kind: "remove", nodeId: "n3", phase }
      : { kind: "remove", nodeId: path.split("/").pop(), phase: "copying" };
    return Response.json({ epoch: 7, nodes: [], rebalancing }, { status: 202 });
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}`;
    const remove = (...args: string[]) =>
      runToEnd({
        script: KV,
        args: ["remove", ...args, "--no-wait", "--url", url],
        env: { RINGKV_ADMIN_TOKEN: "t0ken" },
        timeoutMs: 60_000,
      });
    const cancelled = await remove("n2", "--force");
    assertEquals(cancelled.code, 0, cancelled.stderr);
    assertMatch(
      cancelled.stderr,
      /^The removal of node "n3" was cancelled so that node "n2" is removed for good; ask for it again/,
    );
    phase = "cleanup";
    const finished = await remove("n2", "--force");
    const runs = (id: string) =>
      `The removal of node "${id}" runs; \`deno task kv status\` shows its progress.\n`;
    assertEquals(
      finished.stderr,
      'The removal of node "n3" was finished early so that node "n2" is removed for good.\n' +
        runs("n2"),
    );
    // The forced removal of the node being drained itself goes on as its removal: nothing more.
    assertEquals((await remove("n3", "--force")).stderr, runs("n3"));
    // Without --force nothing else ends, and /cluster is not read first.
    reads.length = 0;
    assertEquals((await remove("n2")).stderr, runs("n2"));
    assertEquals(reads, ["DELETE /cluster/nodes/n2"]);
  } finally {
    await server.shutdown();
  }
});
