import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import {
  closest,
  ConfigError,
  editDistance,
  helpText,
  namingVariables,
  parseFlags,
} from "./config.ts";

const SPEC = {
  port: { type: "int", default: 7001, help: "port" },
  data: { type: "string", default: "./data", help: "data dir" },
  nodes: { type: "list", default: [] as string[], help: "node URLs" },
  verbose: { type: "bool", default: false, help: "talk more" },
  adminToken: { type: "string", help: "token", secret: true },
} as const;

function values(args: string[], env: Record<string, string> = {}) {
  const parsed = parseFlags(SPEC, args, env);
  assert(!("help" in parsed));
  return parsed.values;
}

Deno.test("parseFlags() reads flags in both --x v and --x=v forms", () => {
  const v = values(["--port", "8000", "--data=/tmp/d", "--nodes", "a,b", "--verbose"]);
  assertEquals([v.port, v.data, v.nodes, v.verbose], [8000, "/tmp/d", ["a", "b"], true]);
});

Deno.test("parseFlags() reads every word after -- as an argument, one that starts with -- too", () => {
  const spec = { ttl: { type: "string", help: "t" } } as const;
  const parsed = parseFlags(spec, ["put", "--ttl", "5", "--", "--k", "--help", "--"], {});
  assert(!("help" in parsed));
  assertEquals([parsed.values.ttl, parsed.rest], ["5", ["put", "--k", "--help", "--"]]);
});

Deno.test("parseFlags() takes RINGKV_ variables, and flags win over them", () => {
  const env = { RINGKV_PORT: "9000", RINGKV_ADMIN_TOKEN: "s3cret" };
  assertEquals(values([], env).port, 9000);
  assertEquals(values([], env).adminToken, "s3cret");
  assertEquals(values(["--port", "1"], env).port, 1);
});

Deno.test("parseFlags() names the variable a bad value came from, and a flag wins even over that", () => {
  // QA: RINGKV_NODES exported for a proxy (URLs) stopped `deno task cluster --nodes 3` with
  // 'Cannot read --nodes: "http://..." is not a whole number', blaming the flag typed right.
  const env = { RINGKV_PORT: "http://127.0.0.1:7001", RINGKV_VERBOSE: "maybe" };
  assertThrows(() => values([], env), ConfigError, 'Cannot read RINGKV_PORT (--port): "http');
  assertThrows(() => values(["--port", "1"], env), ConfigError, "RINGKV_VERBOSE (--verbose)");
  const given = values(["--port", "1", "--verbose"], env);
  assertEquals([given.port, given.verbose], [1, true]);
});

Deno.test("parseFlags() keeps defaults and reports bad input clearly", () => {
  assertEquals(values([]).port, 7001);
  assertThrows(() => values(["--port", "x"]), ConfigError, "--port");
  assertThrows(() => values(["--bogus"]), ConfigError, "Unknown option --bogus");
  assertThrows(() => values(["--port"]), ConfigError, "needs a value");
  // The next option is not a value (review: `kv put k v --ttl --url http://…`).
  assertThrows(() => values(["--data", "--port", "5"]), ConfigError, "not the option --port");
  assertThrows(() => values(["--data", "--port=5"]), ConfigError, "not the option --port=5");
  assertThrows(() => values(["--data", "--help"]), ConfigError, "needs a value");
  assertEquals(values(["--no-verbose"]).verbose, false);
});

Deno.test("parseFlags() takes --no- only before an on/off option, and then no value", () => {
  assertEquals(values(["--verbose", "--no-verbose"]).verbose, false);
  assertThrows(() => values(["--no-port", "5"]), ConfigError, "only on/off options take --no-");
  assertThrows(() => values(["--no-data=x"]), ConfigError, "--no-data=x");
  assertThrows(() => values(["--no-verbose=true"]), ConfigError, "then no value");
});

Deno.test("parseFlags() answers --help, and the help never shows secrets", () => {
  assertEquals(parseFlags(SPEC, ["--help"], {}), { help: true });
  const text = helpText("usage: x", SPEC);
  assertMatch(text, /--admin-token/);
  assertMatch(text, /RINGKV_ADMIN_TOKEN/);
  assert(!text.includes("s3cret"));
});

Deno.test("parseFlags() refuses a secret with whitespace or a control character, without showing it", () => {
  for (const bad of ["two words", " lead", "trail\t", "new\nline", "nul\u0000"]) {
    const flag = assertThrows(() => values(["--admin-token", bad]), ConfigError, "whitespace");
    assert(flag.message.includes("--admin-token"), flag.message);
    assert(!flag.message.includes(bad), flag.message);
    const env = assertThrows(() => values([], { RINGKV_ADMIN_TOKEN: bad }), ConfigError);
    assert(env.message.includes("RINGKV_ADMIN_TOKEN"), env.message);
  }
  assertEquals(values(["--admin-token", "a-b_c.d~e+f/g="]).adminToken, "a-b_c.d~e+f/g=");
  assertEquals(values(["--data", "with space"]).data, "with space"); // only secrets
});

Deno.test("parseFlags() refuses a secret outside the Bearer token set (non-ASCII, quotes, = inside), without showing it", () => {
  for (const bad of ["pässwort", "tok\u00e9n", "日本", 'a"b', "a,b", "a=b", "=a", "a@b", "a:b"]) {
    const flag = assertThrows(() => values(["--admin-token", bad]), ConfigError, "--admin-token");
    assert(flag.message.includes("RINGKV_ADMIN_TOKEN"), flag.message);
    assert(!flag.message.includes(bad), flag.message);
    assertThrows(() => values([], { RINGKV_ADMIN_TOKEN: bad }), ConfigError, "RINGKV_ADMIN_TOKEN");
  }
  const hex = crypto.getRandomValues(new Uint8Array(24)).toHex(); // what task cluster makes
  assertEquals(values(["--admin-token", hex]).adminToken, hex);
  assertEquals(values(["--admin-token", "AZaz09-._~+/=="]).adminToken, "AZaz09-._~+/==");
});

Deno.test("parseFlags() suggests the flag a mistyped one most likely meant", () => {
  assertThrows(
    () => values(["--prot", "1"]),
    ConfigError,
    "Unknown option --prot; did you mean --port?",
  );
  assertThrows(() => values(["--admin-tokn=x"]), ConfigError, "did you mean --admin-token?");
  assertThrows(() => values(["--verb"]), ConfigError, "did you mean --verbose?");
  const far = assertThrows(() => values(["--zzzzzz"]), ConfigError);
  assert(!far.message.includes("did you mean"), far.message);
});

Deno.test("closest() takes a unique prefix or the nearest name within a few edits", () => {
  assertEquals(editDistance("replcias", "replicas"), 1);
  assertEquals(editDistance("node-prot", "node-port"), 1);
  assertEquals(closest("node-prot", ["port", "node-port", "nodes"]), "node-port");
  assertEquals(closest("replica", ["replicas", "nodes"]), "replicas");
  assertEquals(closest("no", ["nodes", "node-port"]), undefined, "an ambiguous prefix is no hint");
  assertEquals(closest("x", ["port"]), undefined);
});

Deno.test("namingVariables adds the variable of each flag named that came from one, and leaves other errors alone", () => {
  const spec = {
    port: { type: "int", default: 1, help: "p" },
    nodes: { type: "int", default: 3, help: "n" },
    replicas: { type: "int", default: 3, help: "r" },
  } as const;
  const parsed = parseFlags(spec, ["--nodes", "2"], { RINGKV_REPLICAS: "9", RINGKV_PORT: "5" });
  assert(!("help" in parsed));
  assertEquals([...parsed.fromEnv], [["port", "RINGKV_PORT"], ["replicas", "RINGKV_REPLICAS"]]);
  const err = namingVariables(
    new ConfigError("--replicas must be 1 to --nodes (2), and --replicas again"),
    parsed.fromEnv,
  );
  assert(err instanceof ConfigError);
  assertEquals(
    err.message,
    "--replicas must be 1 to --nodes (2), and --replicas again " +
      "(--replicas was read from RINGKV_REPLICAS)",
  );
  const plain = new ConfigError("Cannot use --nodes 2");
  assertEquals(namingVariables(plain, parsed.fromEnv), plain);
  const other = new Error("--port");
  assertEquals(namingVariables(other, parsed.fromEnv), other);
});
