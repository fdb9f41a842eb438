/**
 * The auth matrix on real processes: every admin and data route of the proxy, and every
 * route of a node, called with no token, a wrong one, each other kind, and the right one.
 * No token (nor the wrong one) ever shows in any process's output.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";

const NODE = new URL("../node/main.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);
const TOKENS = {
  admin: "matrix-admin-token-5b1e",
  client: "matrix-client-token-77c2",
  secret: "matrix-cluster-secret-0d9a",
  wrong: "matrix-wrong-token-3f60",
};
type Kind = keyof typeof TOKENS | "none";
const KINDS: Kind[] = ["none", "wrong", "admin", "client", "secret"];

/** A call and the status it gets with the right token. */
interface Call {
  method: string;
  path: string;
  body?: string;
  /** Headers besides the token (a watch asks for the event stream). */
  headers?: Record<string, string>;
  status: number;
}

function headersFor(kind: Kind): Record<string, string> {
  return kind === "none" ? {} : { authorization: `Bearer ${TOKENS[kind]}` };
}

async function call(base: string, c: Call, kind: Kind): Promise<number> {
  const res = await fetch(base + c.path, {
    method: c.method,
    headers: { ...c.headers, ...headersFor(kind) },
    body: c.body,
    signal: AbortSignal.timeout(5000),
  });
  await res.body?.cancel();
  return res.status;
}

/** Runs every call with every kind; returns the mismatches against `expected`. */
async function matrix(
  base: string,
  calls: Call[],
  expected: (c: Call, kind: Kind) => number,
): Promise<string[]> {
  const wrong: string[] = [];
  for (const kind of KINDS) {
    for (const c of calls) {
      const got = await call(base, c, kind);
      const want = expected(c, kind);
      if (got !== want) wrong.push(`${c.method} ${c.path} with ${kind}: ${got}, want ${want}`);
    }
  }
  return wrong;
}

const ADMIN_CALLS: Call[] = [
  { method: "GET", path: "/cluster", status: 200 },
  { method: "GET", path: "/ring", status: 200 },
  { method: "POST", path: "/cluster/nodes", body: "{}", status: 400 },
  { method: "DELETE", path: "/cluster/nodes/nope", status: 404 },
  { method: "GET", path: "/metrics", status: 200 },
  { method: "GET", path: "/stats", status: 200 },
  { method: "GET", path: "/ring/owners?key=a", status: 200 },
];

// In this order with the right token: create, read, list, batch, delete.
const DATA_CALLS: Call[] = [
  { method: "PUT", path: "/kv/matrix/a", body: "v", status: 201 },
  { method: "GET", path: "/kv/matrix/a", status: 200 },
  { method: "HEAD", path: "/kv/matrix/a", status: 200 },
  { method: "GET", path: "/kv?prefix=matrix/", status: 200 },
  { method: "POST", path: "/kv", body: '{"set": {"matrix/b": 1}}', status: 200 },
  { method: "DELETE", path: "/kv/matrix/b", status: 204 },
  {
    method: "GET",
    path: "/watch?prefix=matrix/",
    headers: { accept: "text/event-stream" },
    status: 200,
  },
];

const NODE_CALLS: Call[] = [
  { method: "PUT", path: "/kv/direct", body: "v", status: 201 },
  { method: "GET", path: "/kv/direct", status: 200 },
  { method: "HEAD", path: "/kv/direct", status: 200 },
  { method: "DELETE", path: "/kv/direct", status: 204 },
  { method: "POST", path: "/internal/batch", body: '{"ops": []}', status: 200 },
  { method: "POST", path: "/internal/ingest", body: "", status: 200 },
  { method: "GET", path: "/internal/scan?ranges=0-1", status: 200 },
  { method: "POST", path: "/internal/drop", body: '{"ranges": []}', status: 200 },
  { method: "GET", path: "/internal/keys?limit=1", status: 200 },
  { method: "GET", path: "/internal/cluster", status: 200 },
  { method: "PUT", path: "/internal/cluster", body: "{}", status: 400 },
  { method: "GET", path: "/export", status: 200 },
  { method: "POST", path: "/import", body: "{}", status: 200 },
  { method: "GET", path: "/metrics", status: 200 },
  { method: "POST", path: "/internal/read", body: '{"keys": []}', status: 200 },
  { method: "POST", path: "/internal/prepare", body: '{"ops": []}', status: 200 },
  { method: "POST", path: "/internal/accept", body: '{"entries": []}', status: 200 },
  { method: "POST", path: "/internal/digest", body: '{"buckets": []}', status: 200 },
  { method: "GET", path: "/internal/expired?before=0&limit=1", status: 200 },
  { method: "GET", path: "/internal/tombstones?graceMs=600000&limit=1", status: 200 },
  {
    method: "POST",
    path: "/internal/purge",
    body: '{"graceMs": 600000, "entries": []}',
    status: 200,
  },
  { method: "GET", path: "/internal/changes", status: 200 },
  {
    method: "POST",
    path: "/internal/changes/at",
    body: '{"boot": "x", "at": 0, "keys": []}',
    status: 200,
  },
];

function assertNoTokenIn(processes: ServerProcess[]): void {
  const output = processes.flatMap((p) => [...p.stdoutLines, ...p.stderrLines]).join("\n");
  for (const [name, token] of Object.entries(TOKENS)) {
    assertEquals(output.includes(token), false, `the ${name} token was printed`);
  }
}

Deno.test("auth matrix: proxy admin and data routes, node routes, tokens never printed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-auth-" });
  const running: ServerProcess[] = [];
  try {
    const node = await spawnServer({
      script: NODE,
      args: ["--id", "n1", "--port", "0", "--data", join(dir, "n1")],
      env: { RINGKV_CLUSTER_SECRET: TOKENS.secret },
    });
    running.push(node);
    const proxy = await spawnServer({
      script: PROXY,
      args: ["--port", "0", "--data", join(dir, "proxy"), "--nodes", node.url],
      env: {
        RINGKV_CLUSTER_SECRET: TOKENS.secret,
        RINGKV_ADMIN_TOKEN: TOKENS.admin,
        RINGKV_CLIENT_TOKEN: TOKENS.client,
      },
    });
    running.push(proxy);

    const only = (right: Kind) => (c: Call, kind: Kind) => kind === right ? c.status : 401;
    assertEquals(await matrix(proxy.url, ADMIN_CALLS, only("admin")), []);
    assertEquals(await matrix(proxy.url, DATA_CALLS, only("client")), []);
    assertEquals(await matrix(node.url, NODE_CALLS, only("secret")), []);
    const health = { method: "GET", path: "/health", status: 200 };
    assertEquals(await matrix(proxy.url, [health], () => 200), []);
    assertEquals(await matrix(node.url, [health], () => 200), []);

    // A malformed header and a wrong token get different messages; each says where the
    // token is kept and neither echoes what was sent.
    const where = [
      [proxy.url, "/cluster", /RINGKV_ADMIN_TOKEN.*data\/admin-token/],
      [proxy.url, "/metrics", /RINGKV_ADMIN_TOKEN.*data\/admin-token/],
      [proxy.url, "/kv/x", /RINGKV_CLIENT_TOKEN/],
      [node.url, "/kv/x", /RINGKV_CLUSTER_SECRET.*data\/cluster-secret/],
    ] as const;
    for (const [base, path, hint] of where) {
      const messages = [];
      for (const authorization of ["nope", `Bearer ${TOKENS.wrong}`]) {
        const res = await fetch(base + path, {
          headers: { authorization },
          signal: AbortSignal.timeout(5000),
        });
        assertEquals(res.status, 401);
        const message: string = (await res.json()).error.message;
        assertMatch(message, hint);
        assertEquals(message.includes(TOKENS.wrong) || message.includes("nope"), false, message);
        messages.push(message);
      }
      assertMatch(messages[0]!, /not of the form "Bearer </);
      assertMatch(messages[1]!, /sent is wrong/);
    }

    const refused = await fetch(`${proxy.url}/kv/x`, { signal: AbortSignal.timeout(5000) });
    assertEquals(refused.headers.get("www-authenticate"), 'Bearer realm="ringkv"');
    assertEquals((await refused.json()).error.code, "unauthorized");
    for (const p of running.toReversed()) await p.stop();
    assertNoTokenIn(running);
  } finally {
    for (const p of running.toReversed()) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
