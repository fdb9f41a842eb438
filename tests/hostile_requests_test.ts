/**
 * Hostile and malformed requests against a real proxy (over two real nodes), sent as raw
 * bytes: each gets its documented answer within 1 s (docs/api.md "Malformed requests"):
 * ringkv's JSON error when the request reaches the handler, Deno.serve's (hyper's) own
 * bare 400 and close for HTTP it cannot parse, or a closed connection; the proxy keeps
 * serving, and no stored key or value changes.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { latin1, rawExchange, type RawRequest } from "./helpers/raw_http.ts";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";

const NODE = new URL("../node/main.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);
const ENV = { RINGKV_CLUSTER_SECRET: "hostile-secret", RINGKV_ADMIN_TOKEN: "hostile-admin" };
const BODY_TIMEOUT_MS = 400;

/** One row: what is sent and what must come back. */
interface Row {
  name: string;
  req: RawRequest;
  /**
   * `code`: a status with ringkv's JSON error body of that code; `hyper`: Deno.serve's own
   * answer to HTTP it does not parse (the status, an empty body, `connection: close`);
   * "closed": the connection is closed with no answer; "hangup": we close first, only the
   * proxy's health afterwards is checked.
   */
  expect: { status: number; code: string } | { status: number; hyper: true } | "closed" | "hangup";
}

const H = "Host: x\r\nConnection: close\r\n";
const get = (target: string, extra = "") => `GET ${target} HTTP/1.1\r\n${H}${extra}\r\n`;
const put = (target: string, body: string, extra = "") =>
  `PUT ${target} HTTP/1.1\r\n${H}Content-Length: ${body.length}\r\n${extra}\r\n${body}`;
const post = (body: string, extra = "") => put("/kv", body, extra).replace(/^PUT/, "POST");
const err = (status: number, code: string) => ({ status, code });
/** Deno.serve's own answer: no JSON body, the connection closed after it. */
const hyper = (status: number) => ({ status, hyper: true as const });

function keyRows(): Row[] {
  const rows: [string, string | Uint8Array, Row["expect"]][] = [
    ["empty key (PUT)", put("/kv/", "x"), err(400, "invalid_key")],
    ["empty key (GET)", get("/kv/"), err(400, "invalid_key")],
    ["%00 key", put("/kv/%00", "x"), err(400, "invalid_key")],
    ["%00 inside a key", put("/kv/a%00b", "x"), err(400, "invalid_key")],
    ["%1b (escape) in a key", put("/kv/a%1bb", "x"), err(400, "invalid_key")],
    ["%7f in a key", get("/kv/a%7f"), err(400, "invalid_key")],
    ["invalid UTF-8 %ff", put("/kv/%ff", "x"), err(400, "invalid_key")],
    ["invalid UTF-8 %c3%28", put("/kv/%c3%28", "x"), err(400, "invalid_key")],
    ["truncated UTF-8 %e2%82", get("/kv/%e2%82"), err(400, "invalid_key")],
    ["UTF-16 surrogate %ed%a0%80", get("/kv/%ed%a0%80"), err(400, "invalid_key")],
    ["lone %", put("/kv/a%", "x"), err(400, "invalid_key")],
    ["%zz", put("/kv/%zz", "x"), err(400, "invalid_key")],
    ["%4 at the end", get("/kv/ab%4"), err(400, "invalid_key")],
    ["raw 0xff byte in the path", latin1(get("/kv/\xff\xfe")), hyper(400)],
    ["raw tab in the path", get("/kv/a\tb"), hyper(400)],
    ["key of 1025 bytes", put("/kv/" + "k".repeat(1025), "x"), err(414, "key_too_long")],
    ["key of 1025 bytes, encoded", get("/kv/" + "%41".repeat(1025)), err(414, "key_too_long")],
    [
      "key of 342 three-byte chars",
      get("/kv/" + "%e2%82%ac".repeat(342)),
      err(414, "key_too_long"),
    ],
    ["raw .. key", put("/kv/..", "x"), err(400, "invalid_key")],
    ["raw . segment", put("/kv/a/./b", "x"), err(400, "invalid_key")],
    ["/kv/../etc/passwd", get("/kv/../etc/passwd"), err(400, "invalid_key")],
    ["%2e%2e segments", put("/kv/%2e%2e/%2E%2e/etc", "x"), err(400, "invalid_key")],
    ["encoded a%2F..%2Fb is a key", get("/kv/a%2F..%2Fb"), err(404, "not_found")],
  ];
  return rows.map(([name, send, expect]) => ({ name, req: { send }, expect }));
}

function valueRows(): Row[] {
  const tooBig = `PUT /kv/big HTTP/1.1\r\n${H}Content-Length: 1048577\r\n\r\n`;
  const chunk = "a".repeat(64 * 1024);
  const chunked = `PUT /kv/big HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n` +
    `${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(17) + "0\r\n\r\n";
  const rows: [string, string, Row["expect"]][] = [
    ["value over 1 MiB by Content-Length", tooBig, err(413, "value_too_large")],
    [
      "value over 1 MiB with Expect: 100-continue",
      tooBig.replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n"),
      err(413, "value_too_large"),
    ],
    ["value over 1 MiB, chunked", chunked, err(413, "value_too_large")],
    [
      "Content-Type of 300 characters",
      put("/kv/a", "x", `Content-Type: ${"t".repeat(300)}\r\n`),
      err(400, "invalid_header"),
    ],
    ["If-Match: *", put("/kv/a", "x", "If-Match: *\r\n"), err(400, "invalid_header")],
    [
      "If-Match with a list",
      put("/kv/a", "x", 'If-Match: "a", "b"\r\n'),
      err(400, "invalid_header"),
    ],
    ["If-Match weak ETag", put("/kv/a", "x", 'If-Match: W/"a"\r\n'), err(400, "invalid_header")],
    [
      'If-None-Match: "v" on PUT',
      put("/kv/a", "x", 'If-None-Match: "v"\r\n'),
      err(400, "invalid_header"),
    ],
    [
      "If-Match on DELETE with *",
      `DELETE /kv/a HTTP/1.1\r\n${H}If-Match: *\r\n\r\n`,
      err(400, "invalid_header"),
    ],
    [
      "duplicate equal Content-Length",
      `PUT /kv/a HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 1\r\n\r\nx`,
      err(400, "invalid_header"),
    ],
  ];
  return rows.map(([name, send, expect]) => ({ name, req: { send }, expect }));
}

function batchRows(): Row[] {
  const ops = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`b${i}`, "v"]));
  const rows: [string, string | Uint8Array, Row["expect"]][] = [
    ["batch: truncated JSON", post('{"set": {'), err(400, "invalid_json")],
    ["batch: not JSON", post("hello"), err(400, "invalid_json")],
    ["batch: empty body", post(""), err(400, "invalid_json")],
    ["batch: JSON null", post("null"), err(400, "invalid_batch")],
    ["batch: an array", post("[]"), err(400, "invalid_batch")],
    ["batch: unknown field", post('{"put": {"a": 1}}'), err(400, "invalid_batch")],
    ["batch: set is an array", post('{"set": ["a"]}'), err(400, "invalid_batch")],
    ["batch: delete is a string", post('{"delete": "a"}'), err(400, "invalid_batch")],
    [
      "batch: key in set and delete",
      post('{"set": {"a": 1}, "delete": ["a"]}'),
      err(400, "invalid_batch"),
    ],
    ["batch: key twice in delete", post('{"delete": ["a", "a"]}'), err(400, "invalid_batch")],
    [
      "batch: If-Match (a batch has no conditions)",
      post('{"set": {"a": "changed"}}', 'If-Match: "nope"\r\n'),
      err(400, "invalid_header"),
    ],
    [
      "batch: If-None-Match: *",
      post('{"set": {"a": "changed"}}', "If-None-Match: *\r\n"),
      err(400, "invalid_header"),
    ],
    ["batch: empty key", post('{"set": {"": 1}}'), err(400, "invalid_key")],
    ["batch: control character key", post('{"set": {"a\\u0000": 1}}'), err(400, "invalid_key")],
    ["batch: lone surrogate key", post('{"delete": ["\\ud800"]}'), err(400, "invalid_key")],
    ["batch: the key ..", post('{"set": {"..": 1}}'), err(400, "invalid_key")],
    [
      "batch: key of 1025 bytes",
      post(JSON.stringify({ set: { ["k".repeat(1025)]: 1 } })),
      err(414, "key_too_long"),
    ],
    [
      "batch: value over 1 MiB",
      post(JSON.stringify({ set: { a: "v".repeat(1048577) } })),
      err(413, "value_too_large"),
    ],
    ["batch: 1001 operations", post(JSON.stringify({ set: ops })), err(413, "batch_too_large")],
    [
      "batch: Content-Length 17 MiB",
      `POST /kv HTTP/1.1\r\n${H}Content-Length: 17825792\r\n\r\n`,
      err(413, "batch_too_large"),
    ],
    ["batch: invalid UTF-8", latin1(post('{"set": {"a": "\xff"}}')), err(400, "invalid_json")],
    [
      "batch: XML content type",
      post("<set><a>1</a></set>", "Content-Type: application/xml\r\n"),
      err(400, "invalid_json"),
    ],
    [
      "batch: form content type",
      post("a=1&b=2", "Content-Type: application/x-www-form-urlencoded\r\n"),
      err(400, "invalid_json"),
    ],
    [
      "batch: multipart body",
      post("--x\r\n\r\n1\r\n--x--", "Content-Type: multipart/form-data; boundary=x\r\n"),
      err(400, "invalid_json"),
    ],
  ];
  return rows.map(([name, send, expect]) => ({ name, req: { send }, expect }));
}

function listingAndRouteRows(): Row[] {
  const rows: [string, string, Row["expect"]][] = [
    ["listing: limit=0", get("/kv?limit=0"), err(400, "bad_request")],
    ["listing: limit=1001", get("/kv?limit=1001"), err(400, "bad_request")],
    ["listing: limit=abc", get("/kv?limit=abc"), err(400, "bad_request")],
    ["listing: forged cursor", get("/kv?cursor=%%%"), err(400, "invalid_cursor")],
    [
      "listing: prefix of 1025 bytes",
      get("/kv?prefix=" + "p".repeat(1025)),
      err(400, "bad_request"),
    ],
    [
      "query string of 9000 bytes",
      get("/kv?prefix=a&x=" + "q".repeat(9000)),
      err(414, "uri_too_long"),
    ],
    ["key URL of 9000 bytes", get("/kv/a?" + "q".repeat(9000)), err(414, "uri_too_long")],
    ["URL of 100,000 bytes", get("/kv/" + "u".repeat(100_000)), hyper(400)],
    [
      "PATCH a key",
      `PATCH /kv/a HTTP/1.1\r\n${H}Content-Length: 1\r\n\r\nx`,
      err(405, "method_not_allowed"),
    ],
    ["unknown method FOO", `FOO /kv/a HTTP/1.1\r\n${H}\r\n`, err(405, "method_not_allowed")],
    ["TRACE a key", `TRACE /kv/a HTTP/1.1\r\n${H}\r\n`, err(405, "method_not_allowed")],
    ["OPTIONS /kv", `OPTIONS /kv HTTP/1.1\r\n${H}\r\n`, err(405, "method_not_allowed")],
    ["PUT /kv", put("/kv", "x"), err(405, "method_not_allowed")],
    ["DELETE /kv", `DELETE /kv HTTP/1.1\r\n${H}\r\n`, err(405, "method_not_allowed")],
    ["unknown path", get("/etc/passwd"), err(404, "no_route")],
    ["admin without token", get("/cluster"), err(401, "unauthorized")],
    [
      "admin POST without token",
      post('{"url": "http://evil"}').replace("/kv", "/cluster/nodes"),
      err(401, "unauthorized"),
    ],
    ["absolute-form target", get("http://evil.example/kv/none"), err(404, "not_found")],
  ];
  return rows.map(([name, send, expect]) => ({ name, req: { send }, expect }));
}

function framingRows(): Row[] {
  const big = "X-Big: " + "h".repeat(20_000) + "\r\n";
  const many = Array.from({ length: 90 }, (_, i) => `X-H${i}: ${"v".repeat(250)}\r\n`).join("");
  const rows: [string, string | Uint8Array, Row["expect"]][] = [
    ["one header of 20 KB", get("/kv/a", big), err(431, "headers_too_large")],
    ["90 headers, 23 KB in all", get("/kv/a", many), err(431, "headers_too_large")],
    [
      "one header of 100 KB",
      get("/kv/a", "X-Big: " + "h".repeat(100_000) + "\r\n"),
      hyper(400),
    ],
    [
      "600 headers",
      get("/kv/a", Array.from({ length: 600 }, (_, i) => `X-${i}: v\r\n`).join("")),
      hyper(400),
    ],
    [
      "conflicting Content-Length",
      `PUT /kv/a HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nxy`,
      hyper(400),
    ],
    [
      "Content-Length list 1, 2",
      `PUT /kv/a HTTP/1.1\r\n${H}Content-Length: 1, 2\r\n\r\nxy`,
      hyper(400),
    ],
    [
      "Transfer-Encoding and Content-Length",
      `PUT /kv/a HTTP/1.1\r\n${H}Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n`,
      hyper(400),
    ],
    [
      "Transfer-Encoding: gzip",
      `PUT /kv/a HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nx`,
      hyper(400),
    ],
    [
      "Content-Length: abc",
      `PUT /kv/a HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\nx`,
      hyper(400),
    ],
    [
      "Content-Length: -1",
      `PUT /kv/a HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\nx`,
      hyper(400),
    ],
    [
      "Content-Length: +1",
      `PUT /kv/a HTTP/1.1\r\n${H}Content-Length: +1\r\n\r\nx`,
      hyper(400),
    ],
    [
      "bad chunk size",
      `PUT /kv/a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n`,
      "closed",
    ],
    [
      "chunk size overflow",
      `PUT /kv/a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx`,
      "closed",
    ],
    ["header name with a space", get("/kv/a", "Bad Name: x\r\n"), hyper(400)],
    ["obsolete line folding", get("/kv/a", "X-A: a\r\n b\r\n"), hyper(400)],
    ["NUL in a header value", get("/kv/a", "X-A: a\x00b\r\n"), hyper(400)],
    ["binary garbage", "\x00\x01\x02\x03 garbage\r\n\r\n", hyper(400)],
    [
      "HTTP/2.0 request line",
      "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
      hyper(400),
    ],
    [
      "HTTP/9.9 request line",
      "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
      hyper(400),
    ],
    [
      "HTTP/1.1 without Host",
      "GET /kv/a HTTP/1.1\r\nConnection: close\r\n\r\n",
      err(404, "not_found"),
    ],
    ["two Host headers", get("/kv/a", "Host: y\r\n"), hyper(400)],
    [
      "Host with a path in it",
      "GET /kv/a HTTP/1.1\r\nHost: x/kv/b\r\n\r\n",
      err(400, "bad_request"),
    ],
    // A Host that is no URL authority once was a 500 from `new URL(req.url)` (HEAD too:
    // shared/guard_test.ts).
    ...["x:99999999", "%", "[::1", "x%zz"].map((host): [string, string, Row["expect"]] => [
      `GET /kv?prefix=a with Host: ${host}`,
      `GET /kv?prefix=a HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      err(400, "bad_request"),
    ]),
    [
      "space before the colon",
      put("/kv/a", "x").replace("Content-Length:", "Content-Length :"),
      hyper(400),
    ],
    [
      "Transfer-Encoding: chunked, chunked",
      `PUT /kv/a HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`,
      hyper(400),
    ],
    [
      "Transfer-Encoding in HTTP/1.0",
      "PUT /kv/a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
      hyper(400),
    ],
    ["# in the target", get("/kv/a#b"), err(400, "invalid_key")],
    ["CONNECT", `CONNECT x:443 HTTP/1.1\r\n${H}\r\n`, err(404, "no_route")],
    ["TRACK", `TRACK /kv/a HTTP/1.1\r\n${H}\r\n`, err(405, "method_not_allowed")],
    ["a backslash is part of the key", get("/kv/none\\..\\x"), err(404, "not_found")],
    ...smugglingRows(),
  ];
  return rows.map(([name, send, expect]) => ({ name, req: { send }, expect }));
}

/** What an outside check found hand-written parsers accept (issue 13); they must not change data. */
function smugglingRows(): [string, string, Row["expect"]][] {
  const te = (coding: string, chunk = "1") =>
    `PUT /kv/seed/0 HTTP/1.1\r\n${H}Transfer-Encoding: ${coding}\r\n\r\n${chunk}\r\nx\r\n0\r\n\r\n`;
  return [
    ["Transfer-Encoding: chun ked", te("chun ked"), hyper(400)],
    ["Transfer-Encoding: c<TAB>hunked", te("c\thunked"), hyper(400)],
    ["chunk size after a vertical tab", te("chunked", "\x0b1"), "closed"],
    ["chunk size after a form feed", te("chunked", "\x0c1"), "closed"],
    ["chunk size after an NBSP", te("chunked", "\xa01"), "closed"],
    // Methods are case-sensitive (RFC 9110): a lowercase one is no known method.
    ["lowercase delete", `delete /kv/seed/0 HTTP/1.1\r\n${H}\r\n`, err(405, "method_not_allowed")],
    [
      "lowercase put",
      put("/kv/seed/0", "x").replace(/^PUT/, "put"),
      err(405, "method_not_allowed"),
    ],
  ];
}

function brokenConnectionRows(): Row[] {
  const half = `PUT /kv/a HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\nabc`;
  const halfBatch = `POST /kv HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\n{"set": {"a": `;
  const halfChunked = `PUT /kv/a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nab`;
  return [
    { name: "value body stops half-way", req: { send: half }, expect: err(408, "request_timeout") },
    {
      name: "batch body stops half-way",
      req: { send: halfBatch },
      expect: err(408, "request_timeout"),
    },
    {
      name: "chunked body stops half-way",
      req: { send: halfChunked },
      expect: err(408, "request_timeout"),
    },
    { name: "hang up mid-body", req: { send: half, hangUp: true }, expect: "hangup" },
    {
      name: "hang up mid-headers",
      req: { send: "PUT /kv/a HTTP/1.1\r\nHo", hangUp: true },
      expect: "hangup",
    },
    { name: "hang up mid-batch", req: { send: halfBatch, hangUp: true }, expect: "hangup" },
  ];
}

/** Every row; at least 60. */
export function hostileRows(): Row[] {
  return [
    ...keyRows(),
    ...valueRows(),
    ...batchRows(),
    ...listingAndRouteRows(),
    ...framingRows(),
    ...brokenConnectionRows(),
  ];
}

async function listing(url: string): Promise<unknown> {
  const res = await fetch(`${url}/kv?values=true&limit=1000`, {
    signal: AbortSignal.timeout(5000),
  });
  assertEquals(res.status, 200);
  return await res.json();
}

function check(row: Row, answer: Awaited<ReturnType<typeof rawExchange>>): string | undefined {
  const got = `status ${answer.status ?? "none"}, closed ${answer.closed}, ` +
    `timed out ${answer.timedOut}, ${answer.ms} ms, body ${answer.body.slice(0, 160)}`;
  if (row.expect === "hangup") return undefined;
  if (answer.timedOut) return `no answer within 1 s (${got})`;
  if (row.expect === "closed") {
    return answer.status === undefined && answer.closed ? undefined : `want a close: ${got}`;
  }
  if (answer.status !== row.expect.status) return `want ${row.expect.status}: ${got}`;
  if ("hyper" in row.expect) {
    const closing = answer.headers.get("connection") === "close";
    return answer.body === "" && closing ? undefined : `want an empty body and a close: ${got}`;
  }
  let code: string | undefined;
  try {
    code = JSON.parse(answer.body).error?.code;
  } catch { /* not JSON */ }
  return code === row.expect.code ? undefined : `want code ${row.expect.code}: ${got}`;
}

Deno.test("hostile requests get their documented status within 1 s and change nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-hostile-" });
  const running: ServerProcess[] = [];
  try {
    for (const id of ["n1", "n2"]) {
      running.push(
        await spawnServer({
          script: NODE,
          args: ["--id", id, "--port", "0", "--data", join(dir, id)],
          env: ENV,
        }),
      );
    }
    const proxy = await spawnServer({
      script: PROXY,
      args: [
        ...["--port", "0", "--data", join(dir, "proxy"), "--poll-ms", "0"],
        ...[
          "--nodes",
          running.map((n) => n.url).join(","),
          "--body-timeout-ms",
          String(BODY_TIMEOUT_MS),
        ],
      ],
      env: ENV,
    });
    running.push(proxy);
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${proxy.url}/kv/seed/${i}`, { method: "PUT", body: `value ${i}` });
      assertEquals(res.status, 201, await res.text());
    }
    const before = await listing(proxy.url);

    const rows = hostileRows();
    assert(rows.length >= 60, `only ${rows.length} rows`);
    const failures: string[] = [];
    for (const row of rows) {
      const answer = await rawExchange(proxy.port, row.req);
      const problem = check(row, answer);
      if (problem !== undefined) failures.push(`${row.name}: ${problem}`);
      const health = await fetch(`${proxy.url}/health`, { signal: AbortSignal.timeout(2000) });
      if (health.status !== 200) failures.push(`${row.name}: the proxy stopped serving`);
      await health.body?.cancel();
    }
    assertEquals(failures, [], `${failures.length} of ${rows.length} rows failed`);
    assertEquals(await listing(proxy.url), before);
  } finally {
    for (const p of running.toReversed()) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
