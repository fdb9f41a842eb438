import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { parseWrkOutput, wrkArgs, wrkScript } from "./wrk.ts";

const OUTPUT = `Running 3s test @ http://127.0.0.1:8080
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  400.00us  12.00ms   90.00%
  75000 requests in 3.00s, 12.00MB read
  Non-2xx or 3xx responses: 7
Requests/sec:  25000.00
RINGKV_RESULT {"requests":75000,"durationUs":3000000,"p50Us":1050,"p99Us":4200,"maxUs":12000,"errors":{"connect":1,"read":2,"write":0,"status":7,"timeout":3},"cpuSeconds":1.234}
`;

Deno.test("parseWrkOutput() reads requests/s, percentiles and errors from the result line", () => {
  const r = parseWrkOutput(OUTPUT);
  assertEquals(r.requests, 75000);
  assertAlmostEquals(r.rps, 25000, 1e-6);
  assertAlmostEquals(r.p50Ms, 1.05, 1e-9);
  assertAlmostEquals(r.p99Ms, 4.2, 1e-9);
  assertEquals(r.maxMs, 12);
  assertEquals(r.non2xx, 7);
  assertEquals(r.socketErrors, 6);
  assertEquals(r.cpuSeconds, 1.234, "wrk's own CPU, from its done hook");
  const older = OUTPUT.replace(',"cpuSeconds":1.234', "");
  assertEquals(parseWrkOutput(older).cpuSeconds, undefined, "a line without it has none");
});

Deno.test("parseWrkOutput() refuses output without a result line", () => {
  assertThrows(() => parseWrkOutput("unable to connect to 127.0.0.1:1\n"), Error, "RINGKV_RESULT");
});

Deno.test("wrkScript() writes GETs only, PUTs only, or the mix, over the key range", () => {
  const get = wrkScript({ prefix: "k", keys: 100, putRatio: 0, valueBytes: 100 });
  assert(get.includes("local keys = 100"));
  assert(get.includes("local put_ratio = 0\n"));
  assert(get.includes('string.rep("v", 100)'));
  const mix = wrkScript({ prefix: "k", keys: 100, putRatio: 0.1, valueBytes: 4096 });
  assert(mix.includes("local put_ratio = 0.1\n"));
  assert(mix.includes('string.rep("v", 4096)'));
});

Deno.test("wrkScript() sends the given headers, quoted for Lua", () => {
  const lua = wrkScript({
    prefix: 'we"ird',
    keys: 1,
    putRatio: 0,
    valueBytes: 1,
    headers: { Authorization: "Bearer s3cret" },
  });
  assert(lua.includes('["Authorization"] = "Bearer s3cret"'));
  assert(lua.includes('local prefix = "we\\"ird"'));
  assert(lua.includes('["Content-Type"] = "text/plain"'));
});

Deno.test("wrkScript() refuses an empty key range and a PUT share outside 0..1", () => {
  assertThrows(() => wrkScript({ prefix: "k", keys: 0, putRatio: 0, valueBytes: 1 }), RangeError);
  assertThrows(() => wrkScript({ prefix: "k", keys: 1, putRatio: 2, valueBytes: 1 }), RangeError);
});

Deno.test("wrkArgs() passes threads, connections, duration, timeout and the script", () => {
  assertEquals(wrkArgs("http://h:1", "/t/s.lua", { connections: 64, threads: 2, seconds: 3 }), [
    "-t",
    "2",
    "-c",
    "64",
    "-d",
    "3s",
    "--timeout",
    "5s",
    "-s",
    "/t/s.lua",
    "http://h:1",
  ]);
});

/** Whether wrk is installed; `Command.output()` throws NotFound synchronously when it is not. */
async function wrkInstalled(): Promise<boolean> {
  try {
    await new Deno.Command("wrk", { args: ["-v"], stdout: "null", stderr: "null" }).output();
    return true;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return false;
  }
}
const hasWrk = await wrkInstalled();

Deno.test({
  name: "wrkScript() with sequential reads every key in order, then again",
  ignore: !hasWrk,
  async fn() {
    const seen: number[] = [];
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      seen.push(Number(new URL(req.url).pathname.slice("/kv/k".length)));
      return new Response("ok");
    });
    try {
      const dir = await Deno.makeTempDir({ prefix: "ringkv-wrk-test-" });
      const script = `${dir}/seq.lua`;
      const sequential = { threads: 1 };
      await Deno.writeTextFile(
        script,
        wrkScript({ prefix: "k", keys: 50, putRatio: 0, valueBytes: 1, sequential }),
      );
      const url = `http://127.0.0.1:${server.addr.port}`;
      await new Deno.Command("wrk", {
        args: wrkArgs(url, script, { connections: 1, threads: 1, seconds: 1 }),
        stdout: "null",
      }).output();
      await Deno.remove(dir, { recursive: true });
    } finally {
      await server.shutdown();
    }
    // (wrk calls request() once before sending, so the first key sent may be 1, not 0.)
    const first = seen.slice(0, 100);
    assertEquals(first.length, 100);
    assertEquals(
      first,
      first.map((_, i) => (first[0]! + i) % 50),
      "every key in order, then again",
    );
  },
});

Deno.test("wrkScript() refuses a sequential script without threads", () => {
  assertThrows(() =>
    wrkScript({ prefix: "k", keys: 1, putRatio: 0, valueBytes: 1, sequential: { threads: 0 } })
  );
});

Deno.test("wrkScript() for etcd posts range and put to the gateway, linearizable by default", () => {
  const lua = wrkScript({ prefix: "k", keys: 10, putRatio: 0.5, valueBytes: 100, api: "etcd" });
  assert(lua.includes('"/v3/kv/range"') && lua.includes('"/v3/kv/put"'));
  assert(lua.includes('["Content-Type"] = "application/json"'));
  // A serializable range would read a possibly stale follower: not what etcd users get.
  assert(!lua.includes("serializable"));
  assert(!lua.includes('wrk.format("GET"'));
});

Deno.test({
  name: "wrkScript() for etcd sends base64 keys and values that decode to the bench's keys",
  ignore: !hasWrk,
  async fn() {
    const bodies: { path: string; key: string; value?: string }[] = [];
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const body = await req.json();
      const decode = (b64: string) => new TextDecoder().decode(Uint8Array.fromBase64(b64));
      bodies.push({
        path: new URL(req.url).pathname,
        key: decode(body.key),
        ...(body.value === undefined ? {} : { value: decode(body.value) }),
      });
      return Response.json({});
    });
    const dir = await Deno.makeTempDir({ prefix: "ringkv-wrk-test-" });
    try {
      const script = `${dir}/etcd.lua`;
      // Values of 1, 2, 3 and 100 bytes: every base64 padding case ("==", "=", none).
      for (const valueBytes of [1, 2, 3, 100]) {
        await Deno.writeTextFile(
          script,
          wrkScript({ prefix: "ke", keys: 1000, putRatio: 0.5, valueBytes, api: "etcd" }),
        );
        const url = `http://127.0.0.1:${server.addr.port}`;
        await new Deno.Command("wrk", {
          args: wrkArgs(url, script, { connections: 1, threads: 1, seconds: 1 }),
          stdout: "null",
        }).output();
        const puts = bodies.filter((b) => b.path === "/v3/kv/put");
        const ranges = bodies.filter((b) => b.path === "/v3/kv/range");
        assert(
          puts.length > 0 && ranges.length > 0,
          `${puts.length} puts, ${ranges.length} ranges`,
        );
        for (const b of bodies) assert(/^ke\d{6}$/.test(b.key), b.key);
        for (const p of puts) assertEquals(p.value, "v".repeat(valueBytes));
        assert(ranges.every((r) => r.value === undefined));
        bodies.length = 0;
      }
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
