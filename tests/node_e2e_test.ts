import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { runToEnd, type ServerProcess, spawnServer } from "./helpers/process.ts";

const MAIN = new URL("../node/main.ts", import.meta.url);
const TIMEOUT = 10_000;

function startNode(dir: string, args: string[] = []): Promise<ServerProcess> {
  return spawnServer({ script: MAIN, args: ["--port", "0", "--data", dir, ...args] });
}

function call(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT) });
}

Deno.test("a node process serves put, get and delete over HTTP", async () => {
  const dir = await Deno.makeTempDir();
  const node = await startNode(dir, ["--id", "e2e1"]);
  try {
    assertMatch(node.stdoutLines[0]!, /^ringkv node e2e1 listening on http:\/\/127\.0\.0\.1:\d+$/);
    const put = await call(`${node.url}/kv/users/42`, { method: "PUT", body: "Ada" });
    assertEquals(put.status, 201);
    assertMatch(put.headers.get("etag")!, /^"[0-9a-f]{12}-[0-9a-f]{4}-e2e1"$/);
    await put.body?.cancel();
    const health = await call(`${node.url}/health`);
    assertEquals((await health.json()).id, "e2e1", "the node's id is in /health");
    const get = await call(`${node.url}/kv/users%2F42`);
    assertEquals([get.status, await get.text()], [200, "Ada"]);
    const del = await call(`${node.url}/kv/users/42`, { method: "DELETE" });
    assertEquals(del.status, 204);
    const gone = await call(`${node.url}/kv/users/42`);
    assertEquals(gone.status, 404);
    assertEquals((await gone.json()).error.code, "not_found");
  } finally {
    assertEquals((await node.stop()).code, 0, "SIGTERM stops the node cleanly");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a node process refuses oversized values, sent whole or chunked, and keeps serving", async () => {
  const dir = await Deno.makeTempDir();
  const node = await startNode(dir, ["--max-value-bytes", "1000"]);
  try {
    const whole = await call(`${node.url}/kv/big`, { method: "PUT", body: "x".repeat(5000) });
    assertEquals(whole.status, 413);
    assertEquals((await whole.json()).error.code, "value_too_large");
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 64 * 1024) return controller.close();
        controller.enqueue(new Uint8Array(1024).fill(120));
        sent += 1024;
      },
    });
    const chunked = await call(`${node.url}/kv/big`, {
      method: "PUT",
      body: stream,
      duplex: "half",
    } as RequestInit);
    assertEquals(chunked.status, 413);
    assertEquals((await chunked.json()).error.code, "value_too_large");
    const ok = await call(`${node.url}/kv/small`, { method: "PUT", body: "fits" });
    assertEquals(ok.status, 201);
    const big = await call(`${node.url}/kv/big`);
    assertEquals(big.status, 404);
    await big.body?.cancel();
  } finally {
    await node.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a node started with --import serves the image and exports it back", async () => {
  const dir = await Deno.makeTempDir();
  const image = { greeting: "hello", "a/b": "c", "été": "☀" };
  const file = join(dir, "image.json");
  await Deno.writeTextFile(file, JSON.stringify(image));
  const node = await startNode(join(dir, "data"), ["--import", file, "--cluster-secret", "s"]);
  try {
    const auth = { authorization: "Bearer s" };
    assertEquals((await call(`${node.url}/export`)).status, 401);
    assertEquals(await (await call(`${node.url}/export`, { headers: auth })).json(), image);
    const one = await call(`${node.url}/kv/a/b`, { headers: auth });
    assertEquals(await one.text(), "c");
    assert(!node.stdoutLines.join("\n").includes("Bearer s"));
  } finally {
    await node.stop();
  }
  const again = await startNode(join(dir, "data"), ["--cluster-secret", "s"]);
  try {
    const res = await call(`${again.url}/export`, { headers: { authorization: "Bearer s" } });
    assertEquals(await res.json(), image, "the imported keys survive a restart");
  } finally {
    await again.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a node given a bad --import exits 1 naming the file and writes nothing in its --data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-import-" });
  try {
    const images: [string, string | undefined, RegExp][] = [
      ["missing.json", undefined, /the file does not exist/],
      ["object.json", '{"a":1}', /key "a": its value is neither a string nor/],
      ["text.json", "not json", /it is not JSON/],
      ["binary.json", '{"b":{"base64":"***"}}', /not valid base64/],
    ];
    for (const [name, text, why] of images) {
      const file = join(dir, name);
      if (text !== undefined) await Deno.writeTextFile(file, text);
      const empty = join(dir, `empty-${name}`); // made by the operator beforehand: stays empty
      await Deno.mkdir(empty);
      for (const data of [join(dir, `data-${name}`), empty]) {
        const r = await runToEnd({
          script: MAIN,
          args: ["--id", "n8", "--port", "0", "--data", data, "--import", file],
        });
        assertEquals(r.code, 1, r.stderr);
        assertMatch(r.stderr, new RegExp(`^ringkv node: Cannot import ${file}: `));
        assertMatch(r.stderr, why);
        assert(!r.stderr.includes("    at "), "no stack trace");
        const left = await Deno.readDir(data)[Symbol.asyncIterator]().next().catch(() => null);
        assertEquals(left === null || left.done, true, `${data} was written: ${r.stderr}`);
      }
      assertEquals(
        await Deno.stat(join(dir, `data-${name}`)).then(() => true, () => false),
        false,
        `data-${name} was created`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("node --help prints the flags and exits 0", async () => {
  const { code, stdout } = await runToEnd({ script: MAIN, args: ["--help"] });
  assertEquals(code, 0);
  for (const flag of ["--port", "--host", "--data", "--id", "--cluster-secret", "--import"]) {
    assert(stdout.includes(flag), flag);
  }
});

Deno.test("a bad flag stops the node with a message and exit code 2 (a usage error)", async () => {
  const { code, stderr } = await runToEnd({ script: MAIN, args: ["--port", "nope"] });
  assertEquals(code, 2);
  assertMatch(stderr, /--port/);
  assert(!stderr.includes("    at "), "no stack trace");
});

Deno.test("a node whose log is damaged in the middle refuses to start, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  const node = await startNode(dir);
  try {
    for (let i = 0; i < 5; i++) {
      const res = await call(`${node.url}/kv/k${i}`, { method: "PUT", body: `value number ${i}` });
      assertEquals(res.status, 201);
    }
  } finally {
    await node.kill("SIGKILL"); // no clean shutdown: the writes stay in the log
  }
  const wal = join(dir, "wal.jsonl");
  const text = await Deno.readTextFile(wal);
  const lines = text.split("\n");
  assert(lines.length >= 5, "the log has the writes");
  lines[1] = lines[1]!.replace("value number", "VALUE NUMBER");
  await Deno.writeTextFile(wal, lines.join("\n"));
  try {
    const { code, stderr } = await runToEnd({
      script: MAIN,
      args: ["--port", "0", "--data", dir],
      timeoutMs: 30_000,
    });
    assertEquals(code, 1);
    assertMatch(stderr, /wal\.jsonl/);
    assert(!stderr.includes("    at "), `no stack trace: ${stderr}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a data directory refuses to start under another node id", async () => {
  const dir = await Deno.makeTempDir();
  const node = await startNode(dir, ["--id", "first"]);
  await node.stop();
  try {
    const { code, stderr } = await runToEnd({
      script: MAIN,
      args: ["--port", "0", "--data", dir, "--id", "second"],
    });
    assertEquals(code, 1);
    assertMatch(stderr, /first/);
    assert(!stderr.includes("    at "), `no stack trace: ${stderr}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
