import { assert, assertEquals, assertThrows } from "@std/assert";
import { ConfigError } from "../shared/config.ts";
import { parseProxyConfig, type ProxyConfig } from "./proxy_config.ts";

function parse(args: string[], env: Record<string, string> = {}): ProxyConfig {
  const config = parseProxyConfig(args, env);
  assert(!("help" in config));
  return config;
}

Deno.test("parseProxyConfig() has the documented defaults", () => {
  const c = parse([]);
  assertEquals([c.port, c.host, c.data, c.replicas, c.timeoutMs, c.pollMs], [
    8080,
    "127.0.0.1",
    "./data/proxy",
    undefined, // a new cluster's map gets defaultReplicas() of its nodes (bootstrap_test.ts)
    2000,
    1000,
  ]);
  assertEquals([c.nodes, c.join, c.adminToken, c.clusterSecret], [
    [],
    undefined,
    undefined,
    undefined,
  ]);
});

Deno.test("parseProxyConfig() reads flags and the RINGKV_ secrets, trimming URL slashes", () => {
  const c = parse(["--port", "0", "--nodes", "http://127.0.0.1:7001/,http://127.0.0.1:7002"], {
    RINGKV_ADMIN_TOKEN: "adm",
    RINGKV_CLIENT_TOKEN: "cli",
    RINGKV_CLUSTER_SECRET: "sec",
  });
  assertEquals(c.port, 0);
  assertEquals(c.nodes, ["http://127.0.0.1:7001", "http://127.0.0.1:7002"]);
  assertEquals([c.adminToken, c.clientToken, c.clusterSecret], ["adm", "cli", "sec"]);
  assertEquals(parse(["--join", "http://h:1"]).join, "http://h:1");
});

Deno.test("parseProxyConfig() refuses bad URLs, ports and replicas with ConfigError", () => {
  assertThrows(() => parse(["--nodes", "not a url"]), ConfigError, "not a URL");
  assertThrows(() => parse(["--join", "ftp://h"]), ConfigError, "http");
  for (const url of ["http://h:1/kv", "http://h:1/?a=1", "http://h:1/#x", "http://u:p@h:1"]) {
    assertThrows(() => parse(["--nodes", `http://h:2,${url}`]), ConfigError, "scheme://host:port");
  }
  assertThrows(() => parse(["--port", "70000"]), ConfigError, "--port");
  assertThrows(() => parse(["--replicas", "0"]), ConfigError, "--replicas");
  assertThrows(() => parse(["stray"]), ConfigError, "stray");
});

Deno.test("parseProxyConfig() refuses --nodes with --join, also from a leftover RINGKV_JOIN (join won silently)", () => {
  const nodes = ["--nodes", "http://h:1"];
  assertThrows(() => parse([...nodes, "--join", "http://h:2"]), ConfigError, "give one");
  assertThrows(() => parse(nodes, { RINGKV_JOIN: "http://h:2" }), ConfigError, "RINGKV_JOIN");
  assertEquals(parse(nodes, { RINGKV_JOIN: "" }).join, undefined);
  assertEquals(parse(["--join", "http://h:2"]).join, "http://h:2");
});

Deno.test("parseProxyConfig() answers --help with text that hides secrets", () => {
  const config = parseProxyConfig(["--help"], { RINGKV_ADMIN_TOKEN: "hunter2" });
  assert("help" in config);
  assert(config.help.includes("--admin-token"));
  assert(!config.help.includes("hunter2"));
});

Deno.test("parseProxyConfig(): fast writes are on unless --no-fast-writes or RINGKV_FAST_WRITES=false", () => {
  assertEquals(parse([]).fastWrites, true);
  assertEquals(parse(["--no-fast-writes"]).fastWrites, false);
  assertEquals(parse([], { RINGKV_FAST_WRITES: "false" }).fastWrites, false);
});

Deno.test("parseProxyConfig() reads --host [::1] as ::1 and refuses an empty --host", () => {
  assertEquals(parse(["--host", "[::1]"]).host, "::1");
  assertThrows(() => parse(["--host", ""]), ConfigError, 'Cannot listen on --host ""');
});

Deno.test("parseProxyConfig() refuses one value for two of the admin, client and cluster tokens", () => {
  // Each kind opens only its own routes; a shared value would let a client token open the
  // admin API, or call the nodes directly past the proxy.
  const pairs: [string, string][] = [
    ["--admin-token", "--client-token"],
    ["--admin-token", "--cluster-secret"],
    ["--client-token", "--cluster-secret"],
  ];
  for (const [a, b] of pairs) {
    const err = assertThrows(() => parse([a, "same-1234", b, "same-1234"]), ConfigError);
    const named = new RegExp(`^Cannot use the same value for ${a} \\(or RINGKV_\\w+\\) and ${b} `);
    assertEquals(named.test(err.message), true, err.message);
    assertEquals(err.message.includes("same-1234"), false, "the value is never shown");
  }
  const env = { RINGKV_ADMIN_TOKEN: "x-1", RINGKV_CLIENT_TOKEN: "x-1" };
  assertThrows(() => parse([], env), ConfigError, "RINGKV_ADMIN_TOKEN");
  const three = ["--admin-token", "a-1", "--client-token", "c-1", "--cluster-secret", "s-1"];
  assertEquals(parse(three).clientToken, "c-1");
});

Deno.test("parseProxyConfig(): the Host allow-list is strict without a client token, on loopback or not, and open with one", () => {
  const admin = { RINGKV_ADMIN_TOKEN: "adm" };
  assertEquals(parse([]).allowedHosts, []);
  assertEquals(parse(["--host", "0.0.0.0"], admin).allowedHosts, [], "DNS rebinding on a LAN too");
  assertEquals(
    parse(["--host", "0.0.0.0"], { ...admin, RINGKV_CLIENT_TOKEN: "c" }).allowedHosts,
    "*",
  );
  assertEquals(parse(["--allowed-hosts", "kv.example,.internal"]).allowedHosts, [
    "kv.example",
    ".internal",
  ]);
  assertEquals(parse([], { RINGKV_ALLOWED_HOSTS: "*" }).allowedHosts, "*");
  assertThrows(() => parse(["--allowed-hosts", "kv.example:8080"]), ConfigError, "port");
});

Deno.test("parseProxyConfig() takes --tombstone-grace-ms of at least a minute, or 0 to keep tombstones for good", () => {
  assertEquals(parse([]).tombstoneGraceMs, 600_000);
  assertEquals(parse(["--tombstone-grace-ms", "0"]).tombstoneGraceMs, 0);
  assertEquals(parse([], { RINGKV_TOMBSTONE_GRACE_MS: "3600000" }).tombstoneGraceMs, 3_600_000);
  const short = assertThrows(() => parse(["--tombstone-grace-ms", "1000"]), ConfigError);
  assert(short.message.includes("tombstone-grace-ms"), short.message);
});

Deno.test("parseProxyConfig names the variable a refused value came from, and only the flag when it was typed", () => {
  // QA: RINGKV_PORT=99999 was refused as "Cannot use --port 99999", a flag never typed.
  const fromVariable = assertThrows(
    () => parseProxyConfig(["--nodes", "http://127.0.0.1:7001"], { RINGKV_PORT: "99999" }),
    ConfigError,
  );
  assertEquals(
    fromVariable.message,
    "Cannot use --port 99999: it must be 0 to 65535 (--port was read from RINGKV_PORT)",
  );
  const typed = assertThrows(
    () => parseProxyConfig(["--nodes", "http://127.0.0.1:7001", "--port", "99999"], {}),
    ConfigError,
  );
  assertEquals(typed.message, "Cannot use --port 99999: it must be 0 to 65535");
});
