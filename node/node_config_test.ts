import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { ConfigError } from "../shared/config.ts";
import { DEFAULT_LIMITS, DEFAULT_REQUEST_LIMITS } from "../shared/limits.ts";
import { type NodeConfig, parseNodeConfig } from "./node_config.ts";

function config(args: string[], env: Record<string, string> = {}): NodeConfig {
  const parsed = parseNodeConfig(args, env);
  assert(!("help" in parsed));
  return parsed;
}

Deno.test("parseNodeConfig() has the documented defaults", () => {
  assertEquals(config([]), {
    port: 7001,
    host: "127.0.0.1",
    data: "./data/node",
    limits: DEFAULT_LIMITS,
    maxInFlight: DEFAULT_REQUEST_LIMITS.maxInFlight,
  });
});

Deno.test("parseNodeConfig() reads every flag", () => {
  const c = config([
    ...["--port", "0", "--host", "0.0.0.0", "--data", "/tmp/n", "--id", "n_7"],
    ...["--cluster-secret", "s", "--import", "img.json", "--max-value-bytes", "10"],
    ...["--max-key-bytes", "5", "--snapshot-every-bytes", "4096"],
  ]);
  assertEquals(c, {
    port: 0,
    host: "0.0.0.0",
    data: "/tmp/n",
    id: "n_7",
    clusterSecret: "s",
    import: "img.json",
    snapshotEveryBytes: 4096,
    limits: { ...DEFAULT_LIMITS, maxValueBytes: 10, maxKeyBytes: 5 },
    maxInFlight: DEFAULT_REQUEST_LIMITS.maxInFlight,
  });
});

Deno.test("parseNodeConfig() reads RINGKV_ variables and flags win over them", () => {
  const env = { RINGKV_PORT: "7100", RINGKV_CLUSTER_SECRET: "x", RINGKV_DATA: "/d" };
  const c = config(["--port", "7200"], env);
  assertEquals([c.port, c.clusterSecret, c.data], [7200, "x", "/d"]);
});

Deno.test("parseNodeConfig() refuses bad ports, ids, limits and stray arguments", () => {
  for (
    const args of [
      ["--port", "70000"],
      ["--port", "-1"],
      ["--port", "abc"],
      ["--id", "bad id"],
      ["--max-value-bytes", "0"],
      ["--nope"],
      ["stray"],
    ]
  ) {
    assertThrows(() => parseNodeConfig(args, {}), ConfigError);
  }
});

Deno.test("parseNodeConfig() --help lists every flag and never prints the secret", () => {
  const parsed = parseNodeConfig(["--help"], { RINGKV_CLUSTER_SECRET: "topsecret" });
  assert("help" in parsed);
  for (const flag of ["--port", "--host", "--data", "--id", "--cluster-secret", "--import"]) {
    assertMatch(parsed.help, new RegExp(flag));
  }
  assertMatch(parsed.help, /--max-value-bytes/);
  assert(!parsed.help.includes("topsecret"));
});

Deno.test("parseNodeConfig() reads --host [::1] as ::1 and refuses an empty --host (exit 2)", () => {
  // It announced http://[[::1]]:7001 and a " 127.0.0.1" died in Deno.serve with a stack trace.
  assertEquals(config(["--host", "[::1]"]).host, "::1");
  assertThrows(() => config(["--host", ""]), ConfigError, 'Cannot listen on --host ""');
  assertThrows(() => config(["--host", " 127.0.0.1"]), ConfigError, "Cannot listen on --host");
});

Deno.test("parseNodeConfig names the variable a refused value came from", () => {
  const err = assertThrows(
    () => parseNodeConfig(["--data", "d"], { RINGKV_MAX_VALUE_BYTES: "-1" }),
    ConfigError,
  );
  assertMatch(
    err.message,
    /^Cannot use --max-value-bytes -1: .*\(--max-value-bytes was read from RINGKV_MAX_VALUE_BYTES\)$/,
  );
});
