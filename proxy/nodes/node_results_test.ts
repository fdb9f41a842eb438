import { assertEquals } from "@std/assert";
import { resultProblem } from "./node_results.ts";

const GET = { op: "get" as const, key: "k" };
const PUT = { op: "put" as const, key: "k", value: "dg==" };
const V = "0190aaaabbbb-0001-n1";

Deno.test("resultProblem() accepts what nodes answer: values, tombstones, errors, writes", () => {
  for (
    const [op, r] of [
      [GET, { status: 200, version: V, text: "v", contentType: "text/plain" }],
      [GET, { status: 200, version: V, value: "dg==" }],
      [GET, { status: 404 }],
      [GET, { status: 404, version: V }],
      [PUT, { status: 201, version: V }],
      [PUT, { status: 412 }],
      [PUT, { status: 413, error: { code: "value_too_large", message: "m" } }],
      [{ op: "delete" as const, key: "k" }, { status: 204, version: V }],
    ] as const
  ) assertEquals(resultProblem(op, r), undefined, JSON.stringify(r));
});

Deno.test("resultProblem() names what a malformed result lacks, and its position", () => {
  assertEquals(resultProblem(GET, null, 3), "result 3 is not an object");
  assertEquals(resultProblem(GET, { status: "200" }, 1), "result 1 has no HTTP status");
  assertEquals(resultProblem(GET, { status: 2000 }), "result 0 has no HTTP status");
  assertEquals(resultProblem(GET, { status: 200, text: "v" }), "result 0 is 200 without a version");
  assertEquals(
    resultProblem(PUT, { status: 201, version: "undefined" }),
    "result 0 is 201 without a version",
  );
  assertEquals(resultProblem(GET, { status: 200, version: V }), "result 0 is 200 without a value");
});
